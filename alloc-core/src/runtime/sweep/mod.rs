//! Generational leak sweeps in a running program, with Python's `gc` module API and
//! meanings.
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();
//!
//! use alloc_core::sweep;
//! std::thread::spawn(|| std::mem::forget(Box::new([3u8; 40]))).join().unwrap();
//! let first = sweep::collect(2);
//! assert!(first.new_leaks.leaks.iter().any(|g| g.bytes == 40));
//! // Reported once: a second sweep finds nothing new.
//! assert!(!sweep::collect(2).new_leaks.leaks.iter().any(|g| g.bytes == 40));
//! # // SAFETY: _exit ends the process at once, without the at-exit check.
//! # unsafe { libc::_exit(0) };
//! ```
//!
//! # Generations and the schedule (CPython's)
//! Every block has a generation, 0 when allocated. A sweep of generation `g` finds the
//! unreachable blocks of generations `0..=g`, reports those no sweep reported before, and
//! moves the reachable ones to `g + 1` (at most 2). The count of generation 0 is tracked
//! allocations minus frees since its last sweep; a sweep of `g` adds one to the count of
//! `g + 1` and resets the younger counts. When generation 0's count passes its threshold,
//! the oldest generation whose count passed its own is swept; a full sweep (generation 2)
//! also waits until the blocks that moved into generation 2 through generation-1 sweeps
//! since the last full one exceed a quarter of those there (the long-lived guard). A
//! threshold of 0 disables that generation's trigger; thresholds start from `HEAPSWEEP`'s
//! `sweep=T0/T1/T2` (off by default).
//!
//! # Who sweeps
//! Allocation only counts (see `sweep_count`) and wakes the sweeper thread
//! (`thread`), which runs the sweeps, stopping the world as the leak check does;
//! [`collect`] sweeps on the calling thread. Sweeps are serialized by [`SWEEP_LOCK`];
//! their outputs (`output`) go out after it is released.
//!
//! # Young sweeps
//! A sweep of generation 0 takes the blocks of older generations as live, and scans only
//! the registers, the stacks and the memory written since the last young sweep, as the
//! kernel recorded it (`leak::written`: userfaultfd write protection read back with
//! `PAGEMAP_SCAN`), plus the young blocks it reaches; its walks over the blocks (the
//! ignored ones, classification, promotion) visit only the pages that may hold young
//! blocks (`heap::walk`): it does not cost the whole heap.
//! Where the kernel keeps no such record (or with `sweep_young=fallback`) it scans every
//! old block instead (said once in a warning, and in `stats()`): the same answers, at the
//! cost of a full scan. Sweeps of generation 1 scan generation 2 whole.

mod output;
pub(crate) mod run;
mod thread;

use crate::leak::sweep::OldBlocks;
use crate::leak::written::WrittenPages;
use crate::report::model::LeakReport;
use crate::sweep_count;
use crate::sync::SpinLock;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

pub use output::{on_leak, LeakCallback};

/// Held while a sweep runs (and taken by the `fork` handlers first of all locks).
pub(crate) static SWEEP_LOCK: SpinLock<()> = SpinLock::new(());

static THRESHOLDS: [AtomicU32; 3] = [const { AtomicU32::new(0) }; 3];
/// Counts of generations 1 and 2 (index 0 unused: `sweep_count` keeps generation 0's).
static COUNTS: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
static ENABLED: AtomicBool = AtomicBool::new(true);
static LONG_LIVED_TOTAL: AtomicU64 = AtomicU64::new(0);
static LONG_LIVED_PENDING: AtomicU64 = AtomicU64::new(0);
/// Set at exit: no sweep runs any more.
static SHUTDOWN: AtomicBool = AtomicBool::new(false);
/// Sweeps run, for the JSON lines.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// What one sweep did, as [`collect`] returns it.
#[derive(Clone, Debug)]
pub struct SweepResult {
    /// The generation swept (with the younger ones).
    pub generation: usize,
    /// The leaks this sweep found that no sweep reported before, grouped as in the leak
    /// report (its `summary.reachable_*` count the survivors).
    pub new_leaks: LeakReport,
    /// Live blocks of the swept generations.
    pub swept_blocks: u64,
    /// Reachable blocks among them: they moved up a generation.
    pub survivors: u64,
    /// How long the other threads were stopped.
    pub pause: Duration,
    /// Why the sweep could not run to the end (it then reports and promotes nothing).
    pub failure: Option<String>,
    /// For a sweep of generation 0 that used the kernel's record: the pages written since
    /// the last such sweep (`None` when every old block was scanned instead).
    pub written_pages: Option<u64>,
}

impl SweepResult {
    /// Leaked blocks this sweep reported.
    pub fn new_leaked_blocks(&self) -> u64 {
        self.new_leaks.leaks.iter().map(|g| g.blocks).sum()
    }
}

/// Sweeps generation `generation` (0, 1 or 2; larger means 2) and the younger ones now,
/// on the calling thread, as Python's `gc.collect(generation)`. The new leaks go out as
/// for the background sweeps (a `tracing` warning per group, the [`on_leak`] callback,
/// the JSON lines) and are returned. After the process began to exit, returns an empty
/// result with a `failure`.
#[inline(never)]
pub fn collect(generation: usize) -> SweepResult {
    // The caller's callee-saved registers, kept in this frame, which the stack scan covers.
    let mut spill = [0usize; crate::platform::CALLEE_SAVED_REGISTERS];
    let sp = crate::leak::spill_registers(&mut spill);
    let r = sweep_now(run::generation(generation), sp, false);
    std::hint::black_box(&spill);
    r
}

/// `(count0, count1, count2)`: generation 0's allocations minus frees since its last
/// sweep (low by at most a few dozen per thread: heaps fold their counts in steps), and
/// the sweeps of the younger generation since each older one's last sweep.
pub fn get_count() -> (u64, u64, u64) {
    (sweep_count::count0(), COUNTS[1].load(Ordering::Relaxed), COUNTS[2].load(Ordering::Relaxed))
}

/// The thresholds; `(0, 0, 0)` unless `HEAPSWEEP=sweep=...` or [`set_threshold`] set them.
pub fn get_threshold() -> (u32, u32, u32) {
    let t = |g: usize| THRESHOLDS[g].load(Ordering::Relaxed);
    (t(0), t(1), t(2))
}

/// Sets the thresholds; `threshold0 == 0` turns automatic sweeps off, a 0 for generation
/// 1 or 2 disables that generation's trigger. Starts the sweeper thread when needed.
pub fn set_threshold(threshold0: u32, threshold1: u32, threshold2: u32) {
    for (slot, t) in THRESHOLDS.iter().zip([threshold0, threshold1, threshold2]) {
        slot.store(t, Ordering::Relaxed);
    }
    update_trigger();
}

/// Turns automatic sweeps on (they run when threshold 0 is not 0).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
    update_trigger();
}

/// Turns automatic sweeps off ([`collect`] still works).
pub fn disable() {
    ENABLED.store(false, Ordering::Relaxed);
    update_trigger();
}

/// Whether automatic sweeps are on (true unless [`disable`]d, as Python's
/// `gc.isenabled()`; they run only when threshold 0 is not 0).
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Whether automatic sweeps may run now.
fn automatic() -> bool {
    ENABLED.load(Ordering::Relaxed) && THRESHOLDS[0].load(Ordering::Relaxed) != 0
}

/// Hands the trigger to the tracking hook; starts the sweeper when anything needs it.
fn update_trigger() {
    let t0 = if automatic() { THRESHOLDS[0].load(Ordering::Relaxed) } else { 0 };
    let interval = crate::config::current().sweep_interval_ms != 0;
    sweep_count::set_trigger(u64::from(t0), interval);
    if t0 != 0 || interval {
        thread::start();
    }
}

/// Process initialization: thresholds from `HEAPSWEEP`, the signal, the sweeper thread.
pub(crate) fn init(opts: &crate::config::Options) {
    let [t0, t1, t2] = opts.sweep.0;
    for (slot, t) in THRESHOLDS.iter().zip([t0, t1, t2]) {
        slot.store(t, Ordering::Relaxed);
    }
    if let Some(sig) = opts.sweep_signal.number() {
        thread::install_signal(sig);
        thread::start();
    }
    if opts.sweep.enabled() || opts.sweep_interval_ms != 0 {
        update_trigger();
    }
}

/// The oldest generation due for an automatic sweep (CPython's `gc_collect_generations`).
fn due_generation() -> Option<u8> {
    if !automatic() {
        return None;
    }
    (0..3usize)
        .rev()
        .find(|&g| {
            let count = if g == 0 { sweep_count::count0() } else { COUNTS[g].load(Ordering::Relaxed) };
            let t = u64::from(THRESHOLDS[g].load(Ordering::Relaxed));
            let guarded =
                g == 2 && LONG_LIVED_PENDING.load(Ordering::Relaxed) < LONG_LIVED_TOTAL.load(Ordering::Relaxed) / 4;
            t != 0 && count > t && !guarded
        })
        .map(|g| g as u8)
}

/// The older generations' threshold for timed sweeps where the configured one is 0.
const TIMED_ESCALATION: u64 = 10;

/// The generation a timed sweep (`sweep_interval_ms`) sweeps: 0, or the oldest older one
/// whose count (sweeps of the generation below since its own last sweep) is past its
/// threshold, [`TIMED_ESCALATION`] where that is 0 (`sweep=0` turns off the sweeps the
/// allocation count calls for, not this), with the full sweep's long-lived guard. Without
/// it, a block still reachable at one timed sweep (so promoted) and leaked after it would
/// be found only at exit.
fn timed_generation() -> u8 {
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    escalate(
        [load(&COUNTS[1]), load(&COUNTS[2])],
        [THRESHOLDS[1].load(Ordering::Relaxed), THRESHOLDS[2].load(Ordering::Relaxed)],
        load(&LONG_LIVED_PENDING) < load(&LONG_LIVED_TOTAL) / 4,
    )
}

/// [`timed_generation`] from the counts and thresholds of generations 1 and 2, and
/// whether the full sweep's long-lived guard holds.
fn escalate(counts: [u64; 2], thresholds: [u32; 2], guarded: bool) -> u8 {
    let threshold = |i: usize| match thresholds[i] {
        0 => TIMED_ESCALATION,
        t => u64::from(t),
    };
    if counts[1] > threshold(1) && !guarded {
        2
    } else if counts[0] > threshold(0) {
        1
    } else {
        0
    }
}

#[cfg(test)]
#[test]
fn timed_sweeps_escalate_as_the_counts_say() {
    // `sweep=0`: every 11th timed sweep is of generation 1, every 11th of those of 2.
    assert_eq!(escalate([10, 0], [0, 0], false), 0);
    assert_eq!(escalate([11, 0], [0, 0], false), 1);
    assert_eq!(escalate([11, 11], [0, 0], false), 2);
    assert_eq!(escalate([11, 11], [0, 0], true), 1, "the long-lived guard holds the full sweep back");
    // Configured thresholds are the counts' own.
    assert_eq!(escalate([3, 0], [2, 5], false), 1);
    assert_eq!(escalate([0, 6], [2, 5], false), 2);
    assert_eq!(escalate([2, 5], [2, 5], false), 0);
}

/// Runs a sweep of `g` under [`SWEEP_LOCK`], updates the schedule, writes its JSON line
/// (`from_signal`: even when nothing new was found) before the lock goes, then tells the
/// program. The at-exit check waits for the lock ([`shutdown`]): a sweep's line is in the
/// file before the exit's report is written, never cut off by the exit.
fn sweep_now(g: u8, sp: usize, from_signal: bool) -> SweepResult {
    let lock = SWEEP_LOCK.lock();
    let mut pages = WRITTEN.lock();
    if SHUTDOWN.load(Ordering::Relaxed) {
        return SweepResult {
            generation: g as usize,
            new_leaks: run::empty_report(),
            swept_blocks: 0,
            survivors: 0,
            pause: Duration::ZERO,
            failure: Some("the process is exiting: no more sweeps".to_string()),
            written_pages: None,
        };
    }
    let swept = run::run_sweep(g, young_mode(g, &mut pages), sp);
    if swept.failure.is_none() {
        account(g, &swept);
    }
    drop(pages);
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed) + 1;
    let result = SweepResult {
        generation: g as usize,
        new_leaks: swept.report,
        swept_blocks: swept.swept_blocks,
        survivors: swept.survivors,
        pause: swept.pause,
        failure: swept.failure,
        written_pages: swept.written_pages,
    };
    output::write_line(&result, sequence, from_signal);
    drop(lock);
    if let Some(f) = &result.failure {
        warning!("leak sweep of generation {} failed: {}", g, f);
    }
    output::tell(&result);
    result
}

/// The schedule after a sweep of `g`: CPython's counts and long-lived totals.
fn account(g: u8, swept: &run::Swept) {
    let g = g as usize;
    if g + 1 < 3 {
        COUNTS[g + 1].fetch_add(1, Ordering::Relaxed);
    }
    for c in &COUNTS[1..=g] {
        c.store(0, Ordering::Relaxed);
    }
    sweep_count::reset_count0();
    match g {
        1 => {
            LONG_LIVED_PENDING.fetch_add(swept.survivors, Ordering::Relaxed);
        }
        2 => {
            LONG_LIVED_PENDING.store(0, Ordering::Relaxed);
            LONG_LIVED_TOTAL.store(swept.oldest_blocks, Ordering::Relaxed);
        }
        _ => {}
    }
    sweep_count::record_sweep(g, swept.new_leaked_blocks);
}

/// The kernel's record of written pages, opened at the first young sweep (`None` before,
/// or where the kernel has none). Used under [`SWEEP_LOCK`].
static WRITTEN: SpinLock<Option<WrittenPages>> = SpinLock::new(None);
/// Set in a forked child: the record inherited is the parent's, never to be used.
static WRITTEN_INHERITED: AtomicBool = AtomicBool::new(false);
/// The record could not be opened: young sweeps scan every old block from now on.
static WRITTEN_UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// How a sweep of `g` treats old blocks: for generation 0, the kernel's record of
/// written pages unless `sweep_young=fallback` or the kernel has none (said once, and
/// in `stats()`); older generations scan them whole.
fn young_mode<'a>(g: u8, pages: &'a mut Option<WrittenPages>) -> OldBlocks<'a> {
    if g != 0 {
        return OldBlocks::Scan;
    }
    if WRITTEN_INHERITED.swap(false, Ordering::Relaxed) {
        *pages = None;
        WRITTEN_UNAVAILABLE.store(false, Ordering::Relaxed);
    }
    let forced = crate::config::current().sweep_young == crate::config::YoungSweep::Fallback;
    if !forced && pages.is_none() && !WRITTEN_UNAVAILABLE.load(Ordering::Relaxed) {
        match WrittenPages::open() {
            Ok(p) => *pages = Some(p),
            Err(e) => {
                WRITTEN_UNAVAILABLE.store(true, Ordering::Relaxed);
                warning!(
                    "leak sweeps: the kernel keeps no record of written pages here ({}); young sweeps scan every older block",
                    e
                );
            }
        }
    }
    sweep_count::set_young_fallback(forced || pages.is_none());
    match pages {
        Some(p) if !forced => OldBlocks::Tracked(p),
        _ => OldBlocks::Scan,
    }
}

/// At exit, before the at-exit check: waits for a running sweep and stops the sweeps.
pub(crate) fn shutdown() {
    let _lock = SWEEP_LOCK.lock();
    SHUTDOWN.store(true, Ordering::Relaxed);
}

/// In the child of `fork`, which has no sweeper thread: automatic sweeps stop until
/// [`enable`] or [`set_threshold`] (which start a sweeper again); [`collect`] works.
pub(crate) fn after_fork_in_child() {
    thread::forget();
    crate::leak::helper::forget_after_fork();
    WRITTEN_INHERITED.store(true, Ordering::Relaxed);
    sweep_count::set_trigger(0, false);
}
