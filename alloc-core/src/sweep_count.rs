//! The leak sweeps' schedule counter: what allocation does to ask for a sweep.
//!
//! # What it owns
//! The count of generation 0 (tracked allocations minus frees since the last sweep of
//! generation 0, CPython's `count0`), the trigger it is compared with, the futex word
//! that wakes the sweeper thread, and the sweep statistics `stats()` shows. The runtime's
//! sweeper (`runtime::sweep`) sets the trigger, waits on the word and runs the sweeps.
//!
//! # Cost on the tracked path
//! Nothing on a free, and nothing of its own on an allocation: each heap's counters
//! already count its allocations and frees (`counters`), and remember how many of each
//! were folded into the shared count ([`crate::counters::Counters::sweep_folded`]). When
//! a heap has made [`STEP`] allocations since its last fold (the heap's budget runs out
//! no later: `counters`), its allocations minus frees since then are folded into the
//! shared count (one atomic addition) and the count compared with the trigger; past it,
//! the sweeper is woken (an exchange, and a futex wake only when it was asleep). With
//! sweeps off, the step is `i64::MAX`: a heap never folds. A change of the step is seen
//! by each heap when its budget runs out, within 64 allocations. The count is therefore
//! off by what each heap did since its last fold: low by fewer than `STEP` allocations,
//! high by the frees made since (a heap that only frees folds at its next allocation).
//! The trigger can only be crossed by allocations, and it is compared when they are
//! folded, with the frees up to then counted.

use crate::counters::Counters;
use crate::platform;
use crate::sync::Isolated;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

/// Ticks a heap gathers before folding them into [`COUNT0`]; `i64::MAX` when automatic
/// sweeps are off.
#[used]
static STEP: Isolated<AtomicI64> = Isolated(AtomicI64::new(i64::MAX));
/// Generation 0's count, folded in from the heaps.
static COUNT0: AtomicI64 = AtomicI64::new(0);
/// The count past which the sweeper is woken; `i64::MAX` when off.
static TRIGGER: AtomicI64 = AtomicI64::new(i64::MAX);
/// The sweeper's futex word: 1 when a wake-up is pending.
pub(crate) static WAKE: AtomicU32 = AtomicU32::new(0);

/// Some heap folded allocations in since the sweeper last looked.
static ALLOCATED: AtomicBool = AtomicBool::new(false);
/// Sweeps run, per generation.
static SWEEPS: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
/// Leaked blocks the sweeps reported (each once).
static REPORTED_BLOCKS: AtomicU64 = AtomicU64::new(0);
/// Young sweeps scan every old block: the kernel cannot tell which pages were written.
static YOUNG_FALLBACK: AtomicBool = AtomicBool::new(false);

/// Largest step: a thread's unfolded ticks are at most this.
const MAX_STEP: i64 = 64;

/// Folds the heap whose counters are `c` into the count if it is due (the allocation that
/// asks already counted there); returns the allocations it may make before its next
/// fold is due (at least one). Called when an allocation ran out the heap's budget
/// (`Counters::settle`), which happens no later than a fold falls due.
pub(crate) fn settle(c: &mut Counters) -> i64 {
    let allocs = c.allocs.get();
    let step = STEP.load(Ordering::Relaxed);
    if allocs.wrapping_sub(c.sweep_folded[0]) >= step as u64 {
        fold(allocs, c.frees.get(), &mut c.sweep_folded);
    }
    step.saturating_sub(allocs.wrapping_sub(c.sweep_folded[0]) as i64)
}

/// Folds a heap's allocations minus frees since its last fold into the count; wakes the
/// sweeper past the trigger.
#[cold]
#[inline(never)]
fn fold(allocs: u64, frees: u64, folded: &mut [u64; 2]) {
    let t = allocs.wrapping_sub(folded[0]) as i64 - frees.wrapping_sub(folded[1]) as i64;
    *folded = [allocs, frees];
    if t > 0 && !ALLOCATED.load(Ordering::Relaxed) {
        ALLOCATED.store(true, Ordering::Relaxed);
    }
    let count = COUNT0.fetch_add(t, Ordering::Relaxed) + t;
    if count > TRIGGER.load(Ordering::Relaxed) {
        wake();
    }
}

/// Wakes the sweeper thread (async-signal-safe: an exchange and a futex wake).
pub(crate) fn wake() {
    if WAKE.swap(1, Ordering::Release) == 0 {
        platform::futex_wake_all(&WAKE);
    }
}

/// Sets the trigger: `threshold0` (0: automatic sweeps off). `count_anyway` keeps the
/// heaps folding their ticks without a trigger (a timed sweep wants to know whether
/// anything was allocated).
pub(crate) fn set_trigger(threshold0: u64, count_anyway: bool) {
    let t = i64::try_from(threshold0).unwrap_or(i64::MAX);
    let (trigger, step) = match (t, count_anyway) {
        (0, false) => (i64::MAX, i64::MAX),
        (0, true) => (i64::MAX, MAX_STEP),
        (t, _) => (t, (t / 8).clamp(1, MAX_STEP)),
    };
    TRIGGER.store(trigger, Ordering::Relaxed);
    STEP.store(step, Ordering::Relaxed);
}

/// Whether a heap folded allocations in since the last call (for timed sweeps).
pub(crate) fn take_allocated() -> bool {
    ALLOCATED.swap(false, Ordering::Relaxed)
}

/// Generation 0's count (never negative).
pub(crate) fn count0() -> u64 {
    COUNT0.load(Ordering::Relaxed).max(0) as u64
}

/// A sweep of generation 0 (or older) ran: generation 0's count starts again.
pub(crate) fn reset_count0() {
    COUNT0.store(0, Ordering::Relaxed);
}

/// Records a finished sweep of generation `g` that reported `new_leaks` blocks.
pub(crate) fn record_sweep(g: usize, new_leaks: u64) {
    SWEEPS[g.min(2)].fetch_add(1, Ordering::Relaxed);
    REPORTED_BLOCKS.fetch_add(new_leaks, Ordering::Relaxed);
}

/// Records that young sweeps scan every old block (no record of written pages).
pub(crate) fn set_young_fallback(on: bool) {
    YOUNG_FALLBACK.store(on, Ordering::Relaxed);
}

/// Sweeps run per generation, blocks they reported, and whether young sweeps fall back to
/// scanning every old block.
pub(crate) fn sweep_stats() -> ([u64; 3], u64, bool) {
    let sweeps = [0, 1, 2].map(|g| SWEEPS[g].load(Ordering::Relaxed));
    (sweeps, REPORTED_BLOCKS.load(Ordering::Relaxed), YOUNG_FALLBACK.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fold_counts_allocations_minus_frees_since_the_last_one() {
        let before = count0() as i64;
        let mut c = Counters::new();
        // Sweeps are off in this test binary: the step is huge, nothing folds.
        for _ in 0..100 {
            c.allocs.add(1);
            settle(&mut c);
        }
        assert_eq!(c.sweep_folded, [0, 0]);
        let mut folded = [0u64; 2];
        fold(100, 1, &mut folded);
        assert_eq!(folded, [100, 1]);
        assert!(count0() as i64 >= before + 99, "the count took allocations minus frees");
        // Frees alone since: the next fold counts down.
        fold(100, 31, &mut folded);
        assert_eq!(folded, [100, 31]);
    }
}
