//! Running one sweep: lock the allocator, stop the world, analyze the swept generations,
//! resume, then build the report of the new leaks.
//!
//! # What it owns
//! [`run_sweep`], the sweep's counterpart of the check's `collect`: the same order of
//! events (the pool lock, the stop, nothing allocated until the world resumes, then the
//! report built with the reentrancy guard set), over `leak::sweep::analyze_generation`.
//! A sweep whose world did not stop wholly reports nothing and promotes nothing: its
//! marks could be wrong, and a leak it reported could never be taken back.

use crate::leak::sweep::{self, OldBlocks, SweepAnalysis};
use crate::leak::{self, Failure};
use crate::report::build::{self, RawCheck, RawLeak};
use crate::report::model::{CheckStatus, LeakReport};
use crate::thread_state::ReentrancyGuard;
use std::time::Duration;

/// What one sweep did.
#[derive(Clone, Debug)]
pub(crate) struct Swept {
    /// The report of the new leaks (empty `leaks` when none).
    pub(crate) report: LeakReport,
    /// Live blocks of the swept generations.
    pub(crate) swept_blocks: u64,
    /// Reachable blocks of the swept generations (promoted).
    pub(crate) survivors: u64,
    /// Blocks in the oldest generation afterwards.
    pub(crate) oldest_blocks: u64,
    /// New leaked blocks.
    pub(crate) new_leaked_blocks: u64,
    /// Why the sweep could not run to the end, in words.
    pub(crate) failure: Option<String>,
    /// The world was stopped this long.
    pub(crate) pause: Duration,
    /// Pages written since the last young sweep, when the kernel's record was used.
    pub(crate) written_pages: Option<u64>,
}

/// Sweeps generations `0..=g` now, on this thread. `sp` is where this thread's stack is
/// scanned from (the caller's spilled registers lie above it).
pub(crate) fn run_sweep(g: u8, old: OldBlocks<'_>, sp: usize) -> Swept {
    let _guard = ReentrancyGuard::enter();
    // A failed stop makes the analysis write no flag, and its result is dropped below.
    let (analysis, stop_failure, pause) = crate::check::with_world_stopped(|view, world, plan, opts| {
        sweep::analyze_generation(view, world, plan, opts, sp, g, old)
    });
    let failure = stop_failure.or(analysis.as_ref().err().copied());
    let mut swept = Swept {
        report: empty_report(),
        swept_blocks: 0,
        survivors: 0,
        oldest_blocks: 0,
        new_leaked_blocks: 0,
        failure: None,
        pause,
        written_pages: None,
    };
    match (failure, analysis) {
        (None, Ok(a)) => fill(&mut swept, &a),
        (Some(f), _) | (None, Err(f)) => swept.failure = Some(describe(f)),
    }
    crate::stack::scrub_below(crate::check::this_thread_stack());
    swept
}

/// The sweep's counts, and the report of its new leaks.
fn fill(swept: &mut Swept, a: &SweepAnalysis) {
    swept.swept_blocks = a.swept_blocks;
    swept.survivors = a.survivors;
    swept.oldest_blocks = a.oldest_blocks;
    swept.new_leaked_blocks = a.new_leaks.len() as u64;
    swept.written_pages = a.tracked.then_some(a.written_pages);
    tracing::info!(
        target: "heapsweep::sweep",
        pause_us = swept.pause.as_micros() as u64,
        swept_blocks = a.swept_blocks,
        survivors = a.survivors,
        new_leaked_blocks = swept.new_leaked_blocks,
        old_leaked_blocks = a.old_leaks,
        words_scanned = a.words_scanned,
        root_bytes = a.root_bytes,
        written_pages = a.written_pages,
        new_pages = a.new_pages,
        hot_pages = a.hot_pages,
        "leak sweep"
    );
    let raw = RawCheck {
        leaked: a.new_leaks.iter().map(raw_leak).collect(),
        reachable_blocks: a.survivors,
        reachable_bytes: a.survivor_bytes,
        program: crate::report::program_name(),
        pid: std::process::id(),
        status: CheckStatus::Ok,
    };
    swept.report = build::build_report(
        &raw,
        &|id| crate::stack::frames(crate::stack::StackId::from_u32(id)).to_vec(),
        &build::BuildOptions::from_config(crate::config::current()),
    );
}

fn raw_leak(b: &leak::LeakedBlock) -> RawLeak {
    RawLeak {
        // The sweep reports a subset of the leaked blocks (the new ones), so the indices
        // of the shown cycles do not carry over; the component's size does (for the
        // cyclic label).
        cycle: build::CycleLink { component_blocks: b.component_blocks, ..build::CycleLink::NONE },
        reported: false,
        ..crate::check::raw_leak(b)
    }
}

/// A failure in one sentence: the leak check's own wording (`check::describe`), so that
/// a sweep and a check that fail the same way say the same thing.
fn describe(f: Failure) -> String {
    crate::check::describe(f).message
}

/// A report of no leak.
pub(crate) fn empty_report() -> LeakReport {
    LeakReport::empty(crate::report::program_name(), std::process::id())
}

/// Keeps the sweep's generation in range.
pub(crate) fn generation(g: usize) -> u8 {
    g.min(sweep::OLDEST as usize) as u8
}
