//! The memory written since the last young sweep: a young sweep's roots.
//!
//! # Why it suffices
//! A block of generation 0 was allocated after the last sweep (every sweep and check
//! moves the reachable ones up), so a pointer to it can only sit in memory written since
//! then, or in a register. A young sweep therefore scans the registers, the stacks, the
//! other registered roots, and of the remaining root mappings and of the heap only the
//! pages written since the last young sweep: in the heap, only the parts of those pages
//! inside older live blocks (the heap's metadata and free blocks are never roots; young
//! blocks are scanned when marked). The kernel keeps the record (`platform::WriteTracker`,
//! a remembered set kept by the MMU instead of a write barrier).
//!
//! # What counts as written
//! - A range seen for the first time (a new mapping, a new heap segment), or one the
//!   kernel no longer tracks (unmapped and mapped again): wholly written (in a heap
//!   segment: every old block in it). It is then registered and protected, so only later
//!   writes count.
//! - Reading the record protects the pages again: the next young sweep sees the writes
//!   made after this one. Only sweeps of generation 0 read it: a sweep of generation 1
//!   must see pointers from generation 2 written before the last young sweep, so it scans
//!   generation 2 whole.
//! - A sweep that read the record and then failed (nothing promoted) [`invalidate`]s it:
//!   the next young sweep treats everything as new.
//! - A heap segment found almost wholly written (7/8 of its pages or more) is left
//!   unprotected for the next [`HOT_SWEEPS`] young sweeps, which take it as wholly
//!   written (every old block in it is a root, as on its first sweep), then protected
//!   again. A program that rewrites its whole heap between two sweeps (a cache, a working
//!   set replaced at random) otherwise took a write-protection fault on every page after
//!   every sweep, to tell the sweep what it would scan anyway: 9% of the random working
//!   set's run with a sweep every 100 ms.
//!
//! [`invalidate`]: WrittenPages::invalidate

use super::roots::{RootKind, RootRange};
use super::view::HeapView;
use crate::os::{MmapVec, OS_PAGE};
use crate::platform::{Errno, PageRegion, WriteTracker};

/// Most ranges kept registered; past it, new ranges are scanned whole every time.
const MAX_RANGES: usize = 1 << 14;
/// Young sweeps a heap segment found almost wholly written stays unprotected.
pub(crate) const HOT_SWEEPS: u8 = 8;

/// The kernel's record of written pages, and the ranges registered with it.
pub(crate) struct WrittenPages {
    tracker: WriteTracker,
    /// Page-aligned ranges registered and protected, sorted by start, disjoint or equal.
    registered: MmapVec<(usize, usize)>,
    /// Scratch for the runs of written pages of one range.
    runs: MmapVec<PageRegion>,
    /// Heap segments left unprotected (see the module notes), sorted by start: start,
    /// end, young sweeps left before they are protected again (0: protected again by this
    /// sweep, dropped at its end).
    hot: MmapVec<(usize, usize, u8)>,
}

/// What [`WrittenPages::young_roots`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct YoungRoots {
    /// Written pages found (root mappings and heap).
    pub(crate) written_pages: u64,
    /// Pages of old blocks in heap segments new to the record, scanned whole.
    pub(crate) new_pages: u64,
    /// Pages of old blocks in heap segments left unprotected, scanned whole.
    pub(crate) hot_pages: u64,
}

impl WrittenPages {
    /// Opens the kernel's record; fails where it has none.
    pub(crate) fn open() -> Result<WrittenPages, Errno> {
        let mut runs = MmapVec::new();
        if !runs.resize(1024, PageRegion::default()) {
            return Err(Errno(12)); // ENOMEM
        }
        Ok(WrittenPages { tracker: WriteTracker::open()?, registered: MmapVec::new(), runs, hot: MmapVec::new() })
    }

    /// Forgets every registration: the next young sweep treats all memory as new.
    pub(crate) fn invalidate(&mut self) {
        self.registered.clear();
        self.hot.clear();
    }

    /// The index in `hot` of the segment `[start, end)`.
    fn hot_index(&self, start: usize, end: usize) -> Option<usize> {
        let at = self.hot.partition_point(|&(s, _, _)| s < start);
        self.hot.get(at).filter(|&&(s, e, _)| s == start && e == end).map(|_| at)
    }

    /// Leaves the segment `[start, end)` unprotected for [`HOT_SWEEPS`] young sweeps
    /// (nothing changes when the kernel refuses, or the list is full).
    fn make_hot(&mut self, start: usize, end: usize) {
        if self.hot.len() < MAX_RANGES
            && self.tracker.unprotect(start, end - start).is_ok()
            && self.hot.push((start, end, HOT_SWEEPS))
        {
            self.hot.as_mut_slice().sort_unstable();
        }
    }

    /// One young sweep of the unprotected segment `hot[k]` done: counts it down, and at
    /// zero protects it again (registering it again if its mapping is new), so that the
    /// next young sweep reads its record.
    fn cool_down(&mut self, k: usize) {
        let (start, end, left) = self.hot[k];
        self.hot[k].2 = left.saturating_sub(1);
        if left <= 1 && self.tracker.protect(start, end - start).is_err() {
            self.track(start, end);
        }
    }

    /// Drops the segments protected again (count 0) from `hot`.
    fn drop_cooled(&mut self) {
        let mut kept = 0;
        for i in 0..self.hot.len() {
            if self.hot[i].2 > 0 {
                self.hot[kept] = self.hot[i];
                kept += 1;
            }
        }
        while self.hot.len() > kept {
            self.hot.pop();
        }
    }

    /// Whether `[start, end)` lies inside one registered range.
    fn is_registered(&self, start: usize, end: usize) -> bool {
        let at = self.registered.partition_point(|&(s, _)| s <= start);
        at > 0 && self.registered[at - 1].1 >= end
    }

    /// Registers and protects `[start, end)` (page-aligned); false when the kernel refused.
    fn track(&mut self, start: usize, end: usize) -> bool {
        if self.registered.len() >= MAX_RANGES {
            return false;
        }
        let ok = self.tracker.register(start, end - start).is_ok() && self.tracker.protect(start, end - start).is_ok();
        if ok && !self.registered.contains(&(start, end)) && self.registered.push((start, end)) {
            self.registered.as_mut_slice().sort_unstable();
        }
        ok
    }

    /// Calls `f` for each run of pages of `[start, end)` (page-aligned, registered)
    /// written since the last call, protecting them again. False when the kernel says the
    /// range is not (wholly) registered any more, or fails.
    fn for_each_written(&mut self, start: usize, end: usize, f: &mut dyn FnMut(usize, usize)) -> bool {
        let (tracker, runs) = (&self.tracker, self.runs.as_mut_slice());
        let mut from = start;
        while from < end {
            let Ok((n, walk_end)) = tracker.take_written(from, end, runs) else { return false };
            for r in &runs[..n] {
                f(r.start as usize, r.end as usize);
            }
            if walk_end <= from {
                return false;
            }
            from = walk_end;
        }
        true
    }

    /// The young sweep's roots, from the full root list `roots` and the heap `view`, into
    /// `out`: registers, stacks, TLS and registered regions whole; other root mappings
    /// as their written pages (whole when new); in the heap, the parts of written pages
    /// inside blocks of generations above `g`. With every other thread stopped. Returns
    /// false in `Err` when out of memory for `out`.
    pub(crate) fn young_roots(
        &mut self,
        view: &dyn HeapView,
        roots: &[RootRange],
        g: u8,
        out: &mut MmapVec<RootRange>,
    ) -> Result<YoungRoots, ()> {
        let mut found = YoungRoots::default();
        let mut ok = true;
        // Ranges read through the record, by start. Several may share a page (the
        // writable data of one object, split round the allocator's own statics): they are
        // read as one group, since reading a page's record protects it again, and a second
        // read of the same page would find it clean.
        let mut paged = MmapVec::new();
        for r in roots {
            let whole = matches!(r.kind, RootKind::Stack | RootKind::Registers | RootKind::Tls | RootKind::Registered);
            // Whole as well when empty, or when there is no room to hold it for the record.
            if whole || r.start >= r.end || !paged.push(*r) {
                ok &= out.push(*r);
            }
        }
        paged.as_mut_slice().sort_unstable_by_key(|r: &RootRange| r.start);
        let mut i = 0;
        while i < paged.len() {
            let (gs, mut ge) = page_span(&paged[i]);
            let mut j = i + 1;
            while let Some((_, e)) = paged.get(j).map(page_span).filter(|&(s, _)| s < ge) {
                ge = ge.max(e);
                j += 1;
            }
            let group = &paged[i..j];
            let read = self.is_registered(gs, ge)
                && self.for_each_written(gs, ge, &mut |a, b| {
                    found.written_pages += ((b - a) / OS_PAGE) as u64;
                    for r in group {
                        let (a, b) = (a.max(r.start), b.min(r.end));
                        if a < b {
                            ok &= out.push(RootRange { start: a, end: b, kind: r.kind });
                        }
                    }
                });
            if !read {
                for r in group {
                    ok &= out.push(*r);
                }
                self.track(gs, ge);
            }
            i = j;
        }
        let mut segments = MmapVec::new();
        view.for_each_owned_region(&mut |s, e| ok &= segments.push((s, e)));
        for &(s, e) in segments.iter() {
            if let Some(k) = self.hot_index(s, e) {
                // Unprotected: its record says nothing, every old block counts as written.
                ok &= all_old_blocks(view, s, g, out, &mut found.hot_pages);
                self.cool_down(k);
                continue;
            }
            let mut written = 0;
            let read = self.is_registered(s, e)
                && self.for_each_written(s, e, &mut |a, b| {
                    written += (b - a) / OS_PAGE;
                    ok &= old_parts(view, a, b, g, out);
                });
            found.written_pages += written as u64;
            if !read {
                // New (or mapped again): its old blocks are wholly written.
                ok &= all_old_blocks(view, s, g, out, &mut found.new_pages);
                self.track(s, e);
            } else if written * 8 >= (e - s) / OS_PAGE * 7 {
                self.make_hot(s, e);
            }
        }
        self.drop_cooled();
        if ok {
            Ok(found)
        } else {
            Err(())
        }
    }
}

/// Pushes every old block (generation above `g`) of the heap segment at `segment` whole,
/// and adds the pages they span to `pages`. False when out of memory.
fn all_old_blocks(view: &dyn HeapView, segment: usize, g: u8, out: &mut MmapVec<RootRange>, pages: &mut u64) -> bool {
    let mut ok = true;
    view.for_each_block_in_region(segment, &mut |_, d| {
        if d.generation > g && d.scan_end() > d.start {
            *pages += ((d.scan_end() - d.start).div_ceil(OS_PAGE)) as u64;
            ok &= out.push(RootRange { start: d.start, end: d.scan_end(), kind: RootKind::OtherMapping });
        }
    });
    ok
}

/// The pages `r` touches: its start rounded down and its end rounded up to a page.
fn page_span(r: &RootRange) -> (usize, usize) {
    (r.start & !(OS_PAGE - 1), (r.end + OS_PAGE - 1) & !(OS_PAGE - 1))
}

/// Pushes the parts of `[a, b)` inside live blocks of generations above `g` (their
/// scanned bytes only). False when out of memory.
fn old_parts(view: &dyn HeapView, a: usize, b: usize, g: u8, out: &mut MmapVec<RootRange>) -> bool {
    let mut ok = true;
    view.for_each_block_overlapping(a, b, &mut |d| {
        let (s, e) = (a.max(d.start), b.min(d.scan_end()));
        if d.generation > g && s < e {
            ok &= out.push(RootRange { start: s, end: e, kind: RootKind::OtherMapping });
        }
    });
    ok
}

#[cfg(test)]
mod tests;
