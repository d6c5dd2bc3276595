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
use crate::leak::view::BlockDesc;
use crate::leak::{self, Failure, LeakKind};
use crate::platform::Errno;
use crate::report::build::{self, RawCheck, RawLeak};
use crate::report::model::{CheckFailure, CheckStatus, FailureKind, LeakReport};
use crate::segment::POOL;
use crate::sync::SpinLock;
use crate::thread_state::ReentrancyGuard;
use std::time::{Duration, Instant};

/// One check at a time, from its stop to its report built (and `retained_by`'s search).
///
/// While a check builds its report, its thread's live frames hold the addresses of the
/// blocks it found leaked. Another thread's check that stopped it then would scan those
/// frames and find the blocks reachable: a parallel test's scoped check missed its leak
/// about one run in thirty (release builds) when a whole-process check in another test
/// had found the same blocks leaked a moment before. Serialized, a check meets the other
/// checking threads waiting here, with nothing of theirs on their stacks. Taken before
/// any allocator lock (after a scope's shard locks), released after the stack is
/// scrubbed; a `fork` child releases it (its holder, another thread, does not exist
/// there).
pub(crate) static CHECKS: SpinLock<()> = SpinLock::new(());

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
    check_selected(&|_| true, true)
}

/// A leak check that reports on the blocks `selected` chooses only (a scope's), and
/// counts only them as reachable. Every block is still marked: any may lead to a selected
/// one. The calling thread's stack is scanned from this function's frame up. `promote`:
/// the reachable blocks move up a generation (see `leak::analyze`).
#[inline(never)]
pub(crate) fn check_selected(selected: &dyn Fn(&BlockDesc) -> bool, promote: bool) -> LeakReport {
    check_selected_listing(selected, promote, true)
}

/// [`check`] for the exit: the report's `modules` listed only when `modules` (the JSON
/// report needs them, the text report does not).
#[inline(never)]
pub(crate) fn check_for_exit(modules: bool) -> LeakReport {
    check_selected_listing(&|_| true, true, modules)
}

/// [`check_selected`]; `modules`: list the loaded objects in the report.
#[inline(never)]
fn check_selected_listing(selected: &dyn Fn(&BlockDesc) -> bool, promote: bool, modules: bool) -> LeakReport {
    let _one_at_a_time = CHECKS.lock();
    // The caller's callee-saved registers, kept in this frame, which the stack scan covers.
    let mut spill = [0usize; 6];
    let sp = leak::spill_registers(&mut spill);
    let _guard = ReentrancyGuard::enter();
    let raw = collect(sp, selected, promote);
    std::hint::black_box(&spill);
    let report = build::build_report(
        &raw,
        &|id| crate::stack::frames(crate::stack::StackId::from_u32(id)).to_vec(),
        &build::BuildOptions { modules, ..build_options() },
    );
    crate::stack::scrub_below(this_thread_stack());
    report
}

/// The calling thread's stack bounds, as its heap recorded them (unknown without one).
pub(crate) fn this_thread_stack() -> crate::stack::StackBounds {
    let heap = crate::heap::current_heap();
    if heap.is_null() {
        crate::stack::StackBounds { lo: 0, hi: 0 }
    } else {
        // SAFETY: a non-null current heap is this thread's own, live until the thread
        // ends; its bounds are written once, at its creation.
        unsafe { (*heap).bounds }
    }
}

fn build_options() -> build::BuildOptions {
    build::BuildOptions::from_config(crate::config::current())
}

/// Steps 1, 2 and 4 around `analyze` (step 3): the loaded objects listed and the root
/// options read (both allocate, so before the lock), the segment pool locked, every other
/// thread stopped and the heap's snapshot taken; then `analyze` runs, which must not
/// allocate; then the world resumes and the lock is released. The leak check, the leak
/// sweeps and `retained_by` all stop the world this way. Returns what `analyze` returned,
/// the stop's failure (threads not listed or not stopped), and how long the other threads
/// were stopped.
pub(crate) fn with_world_stopped<R>(
    analyze: impl FnOnce(&HeapSnapshot<'_>, &leak::stop::StoppedWorld, &leak::RootPlan, &leak::RootOptions) -> R,
) -> (R, Option<Failure>, Duration) {
    let opts = leak::RootOptions::from_config(crate::config::current());
    let plan = leak::RootPlan::prepare();
    let mut world = leak::stop::StoppedWorld::new();
    let pool = POOL.lock();
    let stopped_at = Instant::now();
    world.stop(STOP_TIMEOUT);
    // SAFETY: we hold the pool lock, so no page or segment appears or goes, and every
    // other thread is stopped. A thread that could not be stopped keeps running its
    // allocator fast paths, which write its pages' free lists and metadata words while
    // the snapshot reads them: the stop's failure is returned (the caller's result says
    // so), reads may see torn or stale values (which can only make the analysis wrong,
    // never write), and the analyses write block flags only when every thread stopped.
    let view = unsafe { HeapSnapshot::take(&pool) };
    let result = analyze(&view, &world, &plan, &opts);
    let stop_failure = world.failure();
    world.resume();
    let pause = stopped_at.elapsed();
    drop(pool);
    (result, stop_failure, pause)
}

/// Steps 1 to 4: the raw leaked blocks. Allocates only after the world resumed.
fn collect(sp: usize, selected: &dyn Fn(&BlockDesc) -> bool, promote: bool) -> RawCheck {
    let started = Instant::now();
    let (analysis, stop_failure, _) =
        with_world_stopped(|view, world, plan, opts| leak::analyze(view, world, plan, opts, sp, selected, promote));
    // The first failure is the stop's: an analysis of a world not stopped still ran.
    let failure = stop_failure.or(analysis.as_ref().err().copied());
    let empty = leak::Analysis::default();
    let a = analysis.as_ref().unwrap_or(&empty);
    let leaked: Vec<RawLeak> = a.leaked.iter().map(raw_leak).collect();
    tracing::info!(
        target: "heapsweep",
        duration_us = started.elapsed().as_micros() as u64,
        live_blocks = a.live_blocks,
        reachable_blocks = a.reachable_blocks,
        leaked_blocks = leaked.len(),
        words_scanned = a.words_scanned,
        root_bytes = a.root_bytes,
        failed = failure.is_some(),
        "leak check"
    );
    let status = match failure {
        None => CheckStatus::Ok,
        Some(f) => {
            let failure = describe(f);
            tracing::error!(target: "heapsweep", kind = failure.kind.as_str(), "leak check failed: {}", failure.message);
            CheckStatus::Failed(failure)
        }
    };
    RawCheck {
        leaked,
        reachable_blocks: a.reachable_blocks,
        reachable_bytes: a.reachable_bytes,
        program: crate::report::program_name(),
        pid: std::process::id(),
        status,
    }
}

/// A leaked block as the report builder takes it (the leak sweeps' too).
pub(crate) fn raw_leak(b: &leak::LeakedBlock) -> RawLeak {
    RawLeak {
        stack: b.desc.stack,
        start: b.desc.start,
        size: b.desc.size,
        kind: match b.kind {
            LeakKind::Direct => build::RawKind::Direct,
            LeakKind::Indirect => build::RawKind::Indirect,
        },
        cyclic: b.cyclic,
        cycle: build::CycleLink {
            next: b.cycle_next,
            next_offset: b.next_offset,
            component_blocks: b.component_blocks,
        },
        reported: b.desc.reported,
    }
}

/// A phase's failure in words, for the report's status. The hint names the stop signal
/// in use.
pub(crate) fn describe(f: Failure) -> CheckFailure {
    let mut failure = describe_phase(f);
    let signal = crate::config::current().stop_signal;
    if signal != crate::config::StopSignal::DEFAULT {
        failure.hint = failure.hint.replace("SIGPWR", &signal.to_string());
    }
    failure
}

fn describe_phase(f: Failure) -> CheckFailure {
    match f {
        Failure::ThreadsNotListed { errno } => CheckFailure::new(
            FailureKind::ThreadsNotListed,
            format!("the process's threads could not be listed: /proc/self/task: {}", Errno(errno)),
        ),
        Failure::ThreadsNotStopped { first_tid, count: 1, timeout_ms } => CheckFailure::new(
            FailureKind::ThreadsNotStopped,
            format!("thread {first_tid} did not stop within {timeout_ms} ms; its stack was scanned while it ran"),
        ),
        Failure::ThreadsNotStopped { first_tid, count, timeout_ms } => CheckFailure::new(
            FailureKind::ThreadsNotStopped,
            format!(
                "{count} threads (thread {first_tid} and others) did not stop within {timeout_ms} ms; their stacks \
                 were scanned while they ran"
            ),
        ),
        Failure::TooManyThreads { max } => CheckFailure {
            kind: FailureKind::ThreadsNotStopped,
            message: format!("the process has more than {max} threads; the others were not stopped"),
            hint: format!("a check stops at most {max} threads at once: run it when fewer threads are alive"),
        },
        Failure::RootsUnreadable { errno } => CheckFailure::new(
            FailureKind::RootsUnreadable,
            format!("the process's mappings could not be read: /proc/self/maps: {}", Errno(errno)),
        ),
        Failure::OutOfMemory { what } => {
            CheckFailure::new(FailureKind::OutOfMemory, format!("out of memory for {what} of the leak check"))
        }
    }
}
