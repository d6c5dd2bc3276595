//! Purging: the memory of free spans given back to the OS a while after they were freed,
//! and empty page segments kept for reuse instead of unmapped at once.
//!
//! # What it owns
//! Each page segment's `purge_slices` (free slices whose memory is still committed) and
//! `purge_at` (when they may be purged), the pool's `next_purge` (the earliest such time)
//! and its count of empty segments kept ([`EMPTY_KEEP`] at most).
//!
//! # Policy (mimalloc's `purge_delay`, jemalloc's decay, simplified)
//! A span freed at time t is purged (`madvise(MADV_DONTNEED)`: its pages go back to the
//! kernel and read as zero afterwards) at the first pool operation after t +
//! [`PURGE_DELAY_NS`], unless a page took it again meanwhile; so a program that frees and
//! allocates in bursts reuses committed memory, and one that frees for good gives it
//! back. Each purge handles at most [`PURGE_BATCH_SLICES`] slices (16 MiB), under the
//! pool lock: the rest waits for the next operation, so no call holds the lock for long.
//! An empty page segment stays mapped until its purge comes due; then it is unmapped if
//! more than [`EMPTY_KEEP`] empty segments are kept, and its spans purged otherwise.
//!
//! The delay is a second (mimalloc: 10 ms for a page span, 100 ms for memory given back
//! to its arenas; jemalloc: 10 s of decay). With 10 ms, and empty segments beyond eight
//! unmapped at once, a program that builds and drops a 500 MB structure over and over
//! (the `json` workload: 450 ms a round) faulted every page in again each round, 130,000
//! faults and a third of its time; with a second, 10,000.
//!
//! Purges happen only on pool operations (a page taken or given back, on any thread):
//! a program that stops allocating keeps the last second of freed spans committed.

use super::{Pool, Segment, KIND_PAGES};
use crate::os;
use crate::page::{SLICE_SHIFT, SLICE_SIZE};

/// How long a freed span stays committed (see the module note).
pub(super) const PURGE_DELAY_NS: u64 = 1_000_000_000;
/// Most slices one purge gives back (16 MiB).
const PURGE_BATCH_SLICES: u32 = 256;
/// Most empty page segments kept mapped past their purge (their spans purged): 32 MiB of
/// address space.
pub(super) const EMPTY_KEEP: usize = 8;

impl Pool {
    /// Records that the slices of `mask` in the page segment `seg` became free at `now`.
    ///
    /// A safe `fn` private to the segment module whose callers ensure (`&mut self` proves
    /// the pool lock is held) that `seg` is a live page segment and every slice of `mask`
    /// is free in its `free_slices`.
    pub(super) fn schedule_purge(&mut self, seg: *mut Segment, mask: u64, now: u64) {
        let at = now.saturating_add(PURGE_DELAY_NS);
        // SAFETY: `seg` is a live page segment (callers): its header is mapped, and its
        // purge fields are read and written only under the pool lock, which we hold.
        unsafe {
            debug_assert!((*seg).free_slices & mask == mask);
            (*seg).purge_slices |= mask;
            (*seg).purge_at = at;
        }
        self.next_purge = self.next_purge.min(at);
    }

    /// Purges the spans due at `now`, at most [`PURGE_BATCH_SLICES`] slices; the rest
    /// stays due for a later call. Cheap when nothing is due (one compare).
    pub(super) fn purge_due(&mut self, now: u64) {
        if now < self.next_purge {
            return;
        }
        let mut budget = PURGE_BATCH_SLICES;
        let mut next = u64::MAX;
        let mut seg = self.all;
        while !seg.is_null() {
            // SAFETY: `seg` is on `all` (its head, or reached by `next_all`), so a live
            // segment whose header is mapped (pool invariant); its kind, slice bitmaps,
            // purge fields and links are written only under the pool lock, which we hold.
            // Its successor is read before it may be unmapped.
            unsafe {
                let after = (*seg).next_all;
                if (*seg).kind == KIND_PAGES && (*seg).purge_slices != 0 {
                    if (*seg).purge_at > now {
                        next = next.min((*seg).purge_at);
                    } else if budget > 0 && (*seg).kept_empty && self.empty_kept > EMPTY_KEEP {
                        budget = budget.saturating_sub((*seg).purge_slices.count_ones());
                        // A kept empty segment (every slice free, on both lists).
                        self.unmap_empty(seg);
                        seg = after;
                        continue;
                    } else if budget > 0 {
                        budget = budget.saturating_sub(purge_segment(seg, budget));
                    }
                    if (*seg).purge_slices != 0 {
                        // Due but past this call's budget: the next call goes on.
                        next = next.min((*seg).purge_at);
                    }
                }
                seg = after;
            }
        }
        self.next_purge = next;
    }
}

/// Purges up to `budget` of `seg`'s pending slices, run by run; returns how many.
///
/// # Safety
/// - `seg` is a live page segment and the caller holds the pool lock.
/// - Every pending slice (`purge_slices`) is free: no page covers it, so its bytes hold
///   no block and nobody reads them (claiming a slice clears its pending bit).
unsafe fn purge_segment(seg: *mut Segment, budget: u32) -> u32 {
    let mut done = 0;
    // SAFETY: the pool lock is held (caller): the purge fields are ours to read and write.
    let mut pending = unsafe { (*seg).purge_slices };
    // SAFETY: as above, for the huge flag; `advise_huge_pages`' bullet: the segment's
    // mapping is a private anonymous one of ours, SEGMENT_SIZE long and aligned.
    unsafe {
        if (*seg).huge && pending != 0 {
            // Small pages from here on, before any range is purged: see the segment
            // module's notes on huge pages (`khugepaged` would fill purged ranges again).
            os::advise_huge_pages(seg.cast(), super::SEGMENT_SIZE, false);
            (*seg).huge = false;
        }
    }
    while pending != 0 && done < budget {
        let first = pending.trailing_zeros();
        let run = (pending >> first).trailing_ones().min(budget - done);
        let mask = (u64::MAX >> (64 - run)) << first;
        // SAFETY: `os::decommit`'s bullets: slices `[first, first + run)` lie inside the
        // segment's mapping (a private anonymous mapping of ours, `first >= 1` since the
        // header slice is never free, `first + run <= 64`), slice aligned, so page
        // aligned; they are free (second bullet), so nothing needs their contents.
        unsafe {
            debug_assert!((*seg).free_slices & mask == mask && first >= 1);
            if os::decommit((seg as *mut u8).add((first as usize) << SLICE_SHIFT), run as usize * SLICE_SIZE) {
                (*seg).zero_slices |= mask;
            }
            (*seg).purge_slices &= !mask;
        }
        pending &= !mask;
        done += run;
    }
    done
}

#[cfg(test)]
mod tests;
