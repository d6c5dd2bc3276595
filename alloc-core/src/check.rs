//! Running a leak check: lock the allocator, stop the world, analyze, resume, report.
//!
//! # What it owns
//! The glue between the allocator (whose lock and heap walk it uses), the check's phases
//! (`leak`) and reporting (`report`): [`check`], the public API. The runtime runs it at
//! exit (`runtime::exit`).
//!
//! # Order of events
//! 1. Take the segment pool's lock: no page or large block can appear or vanish, and no
//!    other thread can be stopped while holding it.
//! 2. Stop every other thread (signals; see `leak::stop`).
//! 3. Number the heap's blocks, build roots, mark, classify (`leak::analyze`). Nothing
//!    here allocates: a stopped thread may hold any other lock, including the internal
//!    heap's.
//! 4. Resume the threads, release the lock.
//! 5. Only now, with the reentrancy guard set: symbolize, group, suppress, render.

use crate::heap::walk::HeapSnapshot;
use crate::leak::{self, LeakKind};
use crate::report::build::{self, RawCheck, RawLeak};
use crate::report::model::LeakReport;
use crate::segment::POOL;
use crate::thread_state::ReentrancyGuard;
use std::time::{Duration, Instant};

/// How long to wait for each thread to stop before scanning it whole, unstopped.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs a full leak check now and returns its report, without ending the process.
///
/// Every live block not reachable from the roots (thread stacks and registers,
/// thread-local storage, globals, registered regions) is reported, grouped by allocation
/// stack, as in the JSON report of the contract.
///
/// The scan is conservative: a stale copy of a pointer left in a live stack frame or a
/// register keeps its block reachable. A leak made on a thread that has ended leaves no
/// such copies:
///
/// ```
/// #[global_allocator]
/// static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();
///
/// std::thread::spawn(|| std::mem::forget(Box::new([7u8; 48]))).join().unwrap();
/// let report = alloc_core::check();
/// assert!(report.leaks.iter().any(|g| g.bytes == 48 && g.blocks == 1));
/// # // End without the at-exit check, which would report the leak again.
/// # // SAFETY: _exit ends the process at once.
/// # unsafe { libc::_exit(0) };
/// ```
#[inline(never)]
pub fn check() -> LeakReport {
    // The caller's callee-saved registers, kept in this frame, which the stack scan covers.
    let mut spill = [0usize; 6];
    let sp = leak::spill_registers(&mut spill);
    let _guard = ReentrancyGuard::enter();
    let raw = collect(sp);
    std::hint::black_box(&spill);
    build::build_report(
        &raw,
        &|id| crate::stack::frames(crate::stack::StackId::from_u32(id)).to_vec(),
        &build_options(),
    )
}

fn build_options() -> build::BuildOptions {
    build::BuildOptions::from_config(crate::config::current())
}

/// Steps 1 to 4: the raw leaked blocks. Allocates only after the world resumed.
fn collect(sp: usize) -> RawCheck {
    let started = Instant::now();
    let opts = leak::RootOptions::from_config(crate::config::current());
    // Allocated before the lock: nothing may allocate once threads are stopped.
    let plan = leak::RootPlan::prepare();
    let mut world = leak::stop::StoppedWorld::new();
    let pool = POOL.lock();
    world.stop(STOP_TIMEOUT);
    // SAFETY: we hold the pool lock and every other thread is stopped (or unstoppable and
    // then, at worst, running allocator fast paths, which never touch page descriptors).
    let view = unsafe { HeapSnapshot::take(&pool) };
    let analysis = leak::analyze(&view, &world, &plan, &opts, sp);
    world.resume();
    drop(pool);
    let leaked: Vec<RawLeak> = analysis
        .leaked
        .iter()
        .map(|b| RawLeak {
            stack: b.desc.stack,
            start: b.desc.start,
            size: b.desc.size,
            kind: match b.kind {
                LeakKind::Direct => build::RawKind::Direct,
                LeakKind::Indirect => build::RawKind::Indirect,
            },
            cyclic: b.cyclic,
        })
        .collect();
    tracing::info!(
        target: "heapsweep",
        duration_us = started.elapsed().as_micros() as u64,
        live_blocks = analysis.live_blocks,
        reachable_blocks = analysis.reachable_blocks,
        leaked_blocks = leaked.len(),
        words_scanned = analysis.words_scanned,
        root_bytes = analysis.root_bytes,
        "leak check"
    );
    RawCheck {
        leaked,
        reachable_blocks: analysis.reachable_blocks,
        reachable_bytes: analysis.reachable_bytes,
        program: crate::report::program_name(),
        pid: std::process::id(),
        status: crate::report::model::CheckStatus::Ok,
    }
}
