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
//! # Who calls it
//! The tracking hook (`track`) on every tracked allocation and free (owner thread; the
//! locked heaps under their lock), `introspect::stats` from any thread.

use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Balance, in bytes, a heap accumulates before folding it into the global totals.
pub(crate) const FLUSH_BYTES: i64 = 256 << 10;

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
        }
    }

    /// Bytes allocated minus bytes freed by this heap, not yet folded in.
    #[inline]
    fn pending_bytes(&self) -> i64 {
        (self.alloc_bytes.get() as i64).wrapping_sub(self.free_bytes.get() as i64) - self.folded_bytes
    }

    #[inline]
    pub(crate) fn on_alloc(&mut self, size: usize) {
        self.count_alloc(size);
        if self.pending_bytes() > FLUSH_BYTES {
            self.flush();
        }
    }

    /// Counts an allocation, leaving the fold to the caller ([`Counters::on_alloc`], or a
    /// fast path that asked [`Counters::flush_due_after_alloc`] first).
    #[inline(always)]
    pub(crate) fn count_alloc(&mut self, size: usize) {
        self.allocs.add(1);
        self.alloc_bytes.add(size as u64);
    }

    /// Whether [`Counters::on_alloc`] of `size` bytes would fold the balance into the
    /// global totals.
    #[inline(always)]
    pub(crate) fn flush_due_after_alloc(&self, size: usize) -> bool {
        self.pending_bytes().wrapping_add(size as i64) > FLUSH_BYTES
    }

    #[inline]
    pub(crate) fn on_free(&mut self, size: usize) {
        if self.count_free(size) {
            self.flush();
        }
    }

    /// Counts a free; true when the balance is due a [`Counters::flush`], left to the
    /// caller (a fast path calls it off its own path).
    #[inline(always)]
    pub(crate) fn count_free(&mut self, size: usize) -> bool {
        self.frees.add(1);
        self.free_bytes.add(size as u64);
        self.pending_bytes() < -FLUSH_BYTES
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
