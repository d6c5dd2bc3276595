//! Allocation counters: current, peak and total blocks and bytes.
//!
//! # Design
//! Each heap counts its own allocations and frees in plain per-heap counters (atomics
//! written with load + store by their one writer: no locked instruction on the fast path).
//! Peak tracking needs a global view, so each heap also accumulates a signed balance of
//! bytes and blocks and folds it into the global live totals when it passes
//! [`FLUSH_BYTES`]; the peak is taken at each fold. The peak is therefore exact for one
//! thread and low by at most `threads * FLUSH_BYTES` with many.
//!
//! # One test on an allocation
//! An allocation has two folds to ask about: this balance past [`FLUSH_BYTES`], and the
//! leak sweeps' count (`sweep_count`, every few allocations). Rather than compute both
//! (eight loads and two tests), each heap keeps a budget that every allocation spends
//! (its size plus [`ALLOC_WEIGHT`]) and that runs out no later than either fold falls
//! due: the allocation that would take it below zero asks the two questions
//! ([`Counters::settle`], off the fast path) and sets a new budget. The folds happen
//! exactly when they did with both tests on every allocation; what the budget changes is
//! when a change of the sweeps' step is seen: within 64 allocations (`ALLOC_WEIGHT`
//! times 64 is `FLUSH_BYTES`, the most a budget holds), instead of at the next one.
//! Frees have a budget of their own, the bytes they may take off before the balance
//! could pass `-FLUSH_BYTES`: one subtraction and a sign test instead of three loads.
//!
//! # Who calls it
//! The tracking hook (`track`) on every tracked allocation and free (owner thread; the
//! locked heaps under their lock), `introspect::stats` from any thread.

use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Balance, in bytes, a heap accumulates before folding it into the global totals.
pub(crate) const FLUSH_BYTES: i64 = 256 << 10;

/// What an allocation spends of its heap's budget besides its bytes: a budget holds at
/// most [`FLUSH_BYTES`], so it runs out within `FLUSH_BYTES / ALLOC_WEIGHT` (64: the
/// sweeps' largest step) allocations whatever their sizes.
pub(crate) const ALLOC_WEIGHT: i64 = 4096;

/// A single-writer counter that any thread may read without tearing.
#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) const fn new() -> Self {
        Self(AtomicU64::new(0))
    }
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }
    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One heap's counters. The balance not yet folded into the global totals is
/// `alloc_bytes - free_bytes - folded_bytes` (and likewise for blocks): no extra field to
/// update on the fast path.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) allocs: Counter,
    pub(crate) alloc_bytes: Counter,
    pub(crate) frees: Counter,
    pub(crate) free_bytes: Counter,
    folded_bytes: i64,
    folded_blocks: i64,
    /// The `allocs` and `frees` already folded into the leak sweeps' count
    /// (`sweep_count`): the heap's share of that count not yet folded is the difference.
    pub(crate) sweep_folded: [u64; 2],
    /// What allocations may spend before one of them asks whether a fold is due (module
    /// notes). Invariants, between any two operations on the heap:
    /// - `0 <= budget <= FLUSH_BYTES - pending_bytes()`, so that an allocation that
    ///   leaves the budget at zero or above leaves the balance at most `FLUSH_BYTES`;
    /// - `budget < ALLOC_WEIGHT * (allocations the sweeps' step allows before a fold)`, so
    ///   that it leaves the sweeps' count not due.
    budget: i64,
    /// What frees may take off the balance before one of them asks whether it is due a
    /// fold (below `-FLUSH_BYTES`). Invariant, between any two operations on the heap:
    /// `0 <= free_budget <= FLUSH_BYTES + pending_bytes()`, so that a free that leaves it
    /// at zero or above leaves the balance at `-FLUSH_BYTES` or above.
    free_budget: i64,
}

/// Live totals folded in from every heap, and their peaks.
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_BLOCKS: AtomicI64 = AtomicI64::new(0);
static PEAK_BYTES: AtomicU64 = AtomicU64::new(0);
static PEAK_BLOCKS: AtomicU64 = AtomicU64::new(0);

/// Totals of heaps that are gone (threads that exited), and of frees that no heap counted.
pub(crate) static RETIRED: Counters = Counters::new();

impl Counters {
    pub(crate) const fn new() -> Self {
        Self {
            allocs: Counter::new(),
            alloc_bytes: Counter::new(),
            frees: Counter::new(),
            free_bytes: Counter::new(),
            folded_bytes: 0,
            folded_blocks: 0,
            sweep_folded: [0; 2],
            budget: 0,
            free_budget: 0,
        }
    }

    /// Bytes allocated minus bytes freed by this heap, not yet folded in.
    #[inline]
    fn pending_bytes(&self) -> i64 {
        (self.alloc_bytes.get() as i64).wrapping_sub(self.free_bytes.get() as i64) - self.folded_bytes
    }

    /// Counts an allocation of `size` bytes. True when it ran out the budget: the caller
    /// then calls [`Counters::settle`] (the tracking hook does, with the sweeps' count),
    /// before any other operation on these counters.
    #[inline(always)]
    #[must_use]
    pub(crate) fn count_alloc_spending(&mut self, size: usize) -> bool {
        let left = self.budget_after_alloc(size);
        self.count_alloc(size);
        if left < 0 {
            return true;
        }
        self.budget = left;
        false
    }

    /// Counts an allocation of `size` bytes, with no sweeps' count to ask (tests).
    #[cfg(test)]
    pub(crate) fn on_alloc(&mut self, size: usize) {
        if self.count_alloc_spending(size) {
            self.settle(|_| i64::MAX);
        }
    }

    /// The budget an allocation of `size` bytes would leave: below zero, it is to
    /// [`Counters::settle`] instead (a fold may be due). `size` is a live block's, at most
    /// `isize::MAX`: the subtraction cannot overflow (the budget is never negative).
    #[inline(always)]
    pub(crate) fn budget_after_alloc(&self, size: usize) -> i64 {
        debug_assert!(self.budget >= 0 && size <= isize::MAX as usize);
        self.budget - (size as i64 + ALLOC_WEIGHT)
    }

    /// Counts an allocation of `size` bytes that left the budget at `left`
    /// ([`Counters::budget_after_alloc`], zero or more): no fold is due.
    #[inline(always)]
    pub(crate) fn count_alloc_within(&mut self, size: usize, left: i64) {
        debug_assert!(left >= 0);
        self.count_alloc(size);
        self.budget = left;
    }

    #[inline(always)]
    fn count_alloc(&mut self, size: usize) {
        self.allocs.add(1);
        self.alloc_bytes.add(size as u64);
    }

    /// The allocation just counted ran out the budget: makes the folds that are due (the
    /// balance past [`FLUSH_BYTES`]; the sweeps' count past its step, which `sweeps`
    /// makes, returning the allocations it allows before its next fold, at least one:
    /// `sweep_count::settle`) and sets a new budget, the most both invariants allow.
    #[cold]
    #[inline(never)]
    pub(crate) fn settle(&mut self, sweeps: impl FnOnce(&mut Self) -> i64) {
        if self.pending_bytes() > FLUSH_BYTES {
            self.flush();
        }
        let allocs_left = sweeps(self);
        debug_assert!(allocs_left > 0 && self.pending_bytes() <= FLUSH_BYTES);
        let by_bytes = FLUSH_BYTES - self.pending_bytes();
        let by_count = allocs_left.saturating_mul(ALLOC_WEIGHT) - 1;
        self.budget = by_bytes.min(by_count).max(0);
    }

    #[inline]
    pub(crate) fn on_free(&mut self, size: usize) {
        if self.count_free(size) {
            self.settle_frees();
        }
    }

    /// Counts a free; true when it ran out the frees' budget: the caller then calls
    /// [`Counters::settle_frees`] (a fast path does, off its own path), before any other
    /// operation on these counters.
    #[inline(always)]
    pub(crate) fn count_free(&mut self, size: usize) -> bool {
        self.frees.add(1);
        self.free_bytes.add(size as u64);
        debug_assert!(size <= isize::MAX as usize);
        self.free_budget -= size as i64;
        self.free_budget < 0
    }

    /// A free ran out the frees' budget: folds the balance if it is below
    /// `-FLUSH_BYTES`, and sets a new budget, the most its invariant allows.
    #[cold]
    #[inline(never)]
    pub(crate) fn settle_frees(&mut self) {
        if self.pending_bytes() < -FLUSH_BYTES {
            self.flush();
        }
        self.free_budget = FLUSH_BYTES + self.pending_bytes();
        debug_assert!(self.free_budget >= 0);
    }

    /// Folds this heap's balance into the global live totals and updates the peaks.
    #[cold]
    pub(crate) fn flush(&mut self) {
        let pending_bytes = self.pending_bytes();
        let pending_blocks = (self.allocs.get() as i64).wrapping_sub(self.frees.get() as i64) - self.folded_blocks;
        let bytes = LIVE_BYTES.fetch_add(pending_bytes, Ordering::Relaxed) + pending_bytes;
        let blocks = LIVE_BLOCKS.fetch_add(pending_blocks, Ordering::Relaxed) + pending_blocks;
        PEAK_BYTES.fetch_max(bytes.max(0) as u64, Ordering::Relaxed);
        PEAK_BLOCKS.fetch_max(blocks.max(0) as u64, Ordering::Relaxed);
        self.folded_bytes += pending_bytes;
        self.folded_blocks += pending_blocks;
        // The balance is zero now: a budget set when it was below zero (frees) would
        // allow more than `FLUSH_BYTES` from here (the budget's first invariant).
        self.budget = self.budget.min(FLUSH_BYTES);
        self.free_budget = self.free_budget.min(FLUSH_BYTES);
    }

    /// Adds another heap's totals into these (a retiring heap into [`RETIRED`]). Atomic
    /// additions: orphan counts (below) reach [`RETIRED`] from any thread meanwhile.
    pub(crate) fn absorb(&self, other: &Counters) {
        for (mine, theirs) in [
            (&self.allocs, &other.allocs),
            (&self.alloc_bytes, &other.alloc_bytes),
            (&self.frees, &other.frees),
            (&self.free_bytes, &other.free_bytes),
        ] {
            mine.0.fetch_add(theirs.get(), Ordering::Relaxed);
        }
    }
}

/// A free no heap can count (a thread past its heap's retirement): counted into
/// [`RETIRED`] and the live totals with atomic operations. Rare.
pub(crate) fn on_orphan_free(size: usize) {
    RETIRED.frees.0.fetch_add(1, Ordering::Relaxed);
    RETIRED.free_bytes.0.fetch_add(size as u64, Ordering::Relaxed);
    LIVE_BYTES.fetch_sub(size as i64, Ordering::Relaxed);
    LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
}

/// An allocation no heap can count (the new size of a block resized in place by a thread
/// past its heap's retirement): counted like [`on_orphan_free`], and the peaks raised.
pub(crate) fn on_orphan_alloc(size: usize) {
    RETIRED.allocs.0.fetch_add(1, Ordering::Relaxed);
    RETIRED.alloc_bytes.0.fetch_add(size as u64, Ordering::Relaxed);
    let bytes = LIVE_BYTES.fetch_add(size as i64, Ordering::Relaxed) + size as i64;
    let blocks = LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed) + 1;
    PEAK_BYTES.fetch_max(bytes.max(0) as u64, Ordering::Relaxed);
    PEAK_BLOCKS.fetch_max(blocks.max(0) as u64, Ordering::Relaxed);
}

/// The global peaks (bytes, blocks) seen at folds.
pub(crate) fn peaks() -> (u64, u64) {
    (PEAK_BYTES.load(Ordering::Relaxed), PEAK_BLOCKS.load(Ordering::Relaxed))
}

/// Raises the peaks to at least the given values (a `stats()` call that computed exact
/// current totals).
pub(crate) fn raise_peaks(bytes: u64, blocks: u64) {
    PEAK_BYTES.fetch_max(bytes, Ordering::Relaxed);
    PEAK_BLOCKS.fetch_max(blocks, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An allocation (`true`) or a free of the given size.
    fn op() -> impl proptest::strategy::Strategy<Value = (bool, usize)> {
        use proptest::prelude::*;
        (any::<bool>(), prop_oneof![0usize..64, 0usize..5000, 0usize..(3 * FLUSH_BYTES as usize)])
    }

    proptest::proptest! {
        /// The budgets fold the balance exactly when testing it on every operation did:
        /// after an allocation that takes it past `FLUSH_BYTES`, after a free that takes
        /// it below `-FLUSH_BYTES`, and at no other time.
        #[test]
        fn the_budgets_fold_exactly_when_the_balance_passes_its_bound(ops in proptest::collection::vec(op(), 1..400)) {
            let mut c = Counters::new();
            let mut pending = 0i64;
            for (alloc, size) in ops {
                if alloc {
                    c.on_alloc(size);
                    pending += size as i64;
                    if pending > FLUSH_BYTES {
                        pending = 0;
                    }
                } else {
                    c.on_free(size);
                    pending -= size as i64;
                    if pending < -FLUSH_BYTES {
                        pending = 0;
                    }
                }
                proptest::prop_assert_eq!(c.pending_bytes(), pending);
                proptest::prop_assert!(0 <= c.budget && c.budget <= FLUSH_BYTES - pending);
                proptest::prop_assert!(0 <= c.free_budget && c.free_budget <= FLUSH_BYTES + pending);
            }
        }
    }

    #[test]
    fn counters_balance_and_flush_raises_the_peak() {
        // Each allocation passes FLUSH_BYTES, so each folds: the last fold sees 10 MiB of
        // this heap's. Other test threads' heaps may hold unfolded balances (negative ones
        // too), so the peak is low by at most their FLUSH_BYTES each (the module's bound),
        // here allowing for 8 of them.
        let size = 4 * FLUSH_BYTES as usize;
        let mut c = Counters::new();
        for _ in 0..10 {
            c.on_alloc(size);
        }
        let (peak, _) = peaks();
        assert!(peak >= (10 * size) as u64 - 8 * FLUSH_BYTES as u64, "peak {peak}");
        for _ in 0..10 {
            c.on_free(size);
        }
        c.flush();
        assert_eq!(c.allocs.get(), 10);
        assert_eq!(c.free_bytes.get(), 10 * size as u64);
    }
}
