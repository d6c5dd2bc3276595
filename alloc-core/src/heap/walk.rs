//! The real heap as the leak check sees it: [`HeapSnapshot`] implements
//! [`HeapView`](crate::leak::view::HeapView) over every segment.
//!
//! # Numbering
//! [`HeapSnapshot::take`] walks the segment list and gives each page in use a base id
//! (`block_id_base`) and each large segment one id, so that block `i` of a page is
//! `block_id_base + i`: `block_containing` is then the O(1) lookup of [`crate::block`] plus an
//! addition. Internal pages and blocks are skipped: they are the allocator's own.
//!
//! # Young places
//! A sweep of generation 0 should cost what is young, not the whole heap, so the same
//! walk lists the places that may hold blocks of generation 0: the pages flagged
//! [`Page::young`] or current in their heap, and the large blocks of generation 0 (ids
//! ascending). [`HeapView::for_each_young_block`] visits those alone. The invariant that
//! makes it enough: *every live block of generation 0 lies in a page flagged young or
//! current*. Blocks are taken only from a heap's current page; a page is flagged each
//! time it becomes current, after the store that makes it current (so a thread stopped
//! between the two has it current); and a sweep that promoted every reachable block of
//! generation 0 clears the flag only of pages that hold no block of generation 0 any
//! more (the leaked ones stay young) and are not current
//! ([`HeapView::young_blocks_promoted`]). The flag costs the allocation fast path
//! nothing: it is written on the slow path, when the current page changes.
//!
//! # When
//! Only with the segment pool's lock held and the other threads stopped (or, in tests, no
//! other thread allocating): ids and descriptors must not change during the check.

use super::Heap;
use crate::block::{self, BlockRef};
use crate::leak::view::{BlockDesc, HeapView, Marks, Promotion, Walk};
use crate::os::MmapVec;
use crate::page::{Page, GEN_MASK, GEN_SHIFT, IGNORED, INTERNAL, LIVE, REPORTED, SCOPED, SLICE_SHIFT, SLICE_SIZE};
use crate::segment::{self, Pool, Segment, KIND_LARGE, KIND_PAGES};
use core::sync::atomic::Ordering;

/// The heap, numbered for one check.
///
/// Invariant: for the snapshot's whole life, the conditions of [`HeapSnapshot::take`]'s
/// `# Safety` section hold (the pool lock is held, every other thread is stopped); its
/// safe methods, the [`HeapView`] ones included, rely on them to read and write page
/// descriptors, block metadata and segment headers.
pub(crate) struct HeapSnapshot<'a> {
    pool: &'a Pool,
    slots: usize,
    /// Bit per block id: freed by another thread, not yet collected by the owner.
    freed: MmapVec<u64>,
    /// `[lo, hi)` holds every segment: a word outside it points into no block, which
    /// [`HeapView::block_containing`] answers without a look at the segment map (most
    /// words a check scans are not heap pointers, and the map's entries for them lie
    /// all over its 128 MiB, a page fault and a TLB miss each the first time).
    lo: usize,
    hi: usize,
    /// The places that may hold blocks of generation 0, in id order: pages flagged
    /// [`Page::young`] or current, large blocks of generation 0. `None` when the list
    /// could not get memory (every block is then visited).
    young: Option<MmapVec<YoungPlace>>,
}

/// A place that may hold blocks of generation 0.
#[derive(Clone, Copy)]
enum YoungPlace {
    Page(*mut Page),
    Large(*mut Segment),
}

impl<'a> HeapSnapshot<'a> {
    /// Numbers every block of the heap.
    ///
    /// # Safety
    /// - The caller holds the pool lock for the snapshot's whole life: `pool` is borrowed
    ///   from its guard (a `&Pool` can be had no other way).
    /// - Every other thread that may run allocator code is stopped for the snapshot's
    ///   whole life: no thread allocates from, frees into or collects a page, so page
    ///   descriptors, block metadata, thread-free lists and large-block headers change
    ///   only through the snapshot. (A thread still running the allocation or free fast
    ///   path would write `free`, `used`, metadata words and `thread_free` while the
    ///   snapshot reads and writes them.)
    pub(crate) unsafe fn take(pool: &'a Pool) -> Self {
        let mut next: usize = 0;
        let (mut lo, mut hi) = (usize::MAX, 0);
        let mut young = Some(MmapVec::new());
        let mut note_young = |place| {
            if young.as_mut().is_some_and(|y| !y.push(place)) {
                young = None;
            }
        };
        pool.for_each_segment(|seg| {
            // SAFETY: `seg` is on `all`, so a live segment whose header is mapped (pool
            // invariant); its `len` does not change while the pool lock is held.
            let len = unsafe { (*seg).len };
            (lo, hi) = (lo.min(seg as usize), hi.max(seg as usize + len));
            // SAFETY:
            // - `seg` is on `all`, so a live segment whose header is mapped (pool
            //   invariant); its `kind` is set before it is linked.
            // - `for_each_page`: `seg` is a live page segment (kind checked) and the pool
            //   lock is held (first bullet); each `p` it gives is an in-use descriptor.
            // - Writing `block_id_base` of a page or a large block races with nobody:
            //   every other thread is stopped (second bullet), and owners never write it.
            // - `is_current`: `p` is in use, every thread that may allocate from it is
            //   stopped (second bullet).
            unsafe {
                match (*seg).kind {
                    KIND_PAGES => segment::for_each_page(seg, |p| {
                        if !(*p).is_internal() {
                            (*p).block_id_base = next as u32;
                            next += (*p).capacity as usize;
                            if (*p).young.load(Ordering::Relaxed) || Heap::is_current(p) {
                                note_young(YoungPlace::Page(p));
                            }
                        }
                    }),
                    KIND_LARGE if (*seg).large.flags & INTERNAL == 0 => {
                        (*seg).large.block_id_base = next as u32;
                        next += 1;
                        if (*seg).large.flags & (LIVE | GEN_MASK) == LIVE {
                            note_young(YoungPlace::Large(seg));
                        }
                    }
                    _ => {}
                }
            }
        });
        let mut snapshot = Self { pool, slots: next, freed: MmapVec::new(), lo, hi, young };
        // SAFETY: `note_thread_freed` needs the pool lock held and every other thread
        // stopped: this function's own two bullets (caller).
        unsafe { snapshot.note_thread_freed() };
        snapshot
    }

    /// Marks the blocks other threads freed and their owners have not collected yet: they
    /// still carry LIVE (only owners clear it) but are free.
    ///
    /// # Safety
    /// - The pool lock is held (`self.pool` borrows its guard).
    /// - Every other thread that may run allocator code is stopped (as
    ///   [`HeapSnapshot::take`] requires): nobody pushes onto or takes a thread-free list.
    unsafe fn note_thread_freed(&mut self) {
        let Some(zeroed) = MmapVec::zeroed(self.slots.div_ceil(64)) else { return };
        self.freed = zeroed;
        let freed = &mut self.freed;
        // SAFETY: `for_each_user_page`'s bullets are this function's. For each page:
        // `for_each_thread_freed`'s bullet, every thread that could touch the page is
        // stopped (second bullet); the indices it gives are below `capacity`, so
        // `base + i < slots` and the bitmap word exists (indexing is bounds checked
        // anyway).
        unsafe {
            Self::for_each_user_page(self.pool, |p| {
                let base = (*p).block_id_base as usize;
                (*p).for_each_thread_freed(|i| freed[(base + i) / 64] |= 1 << ((base + i) % 64));
            });
        }
    }

    /// Calls `f(page)` for every in-use page of a live page segment that is not the
    /// internal heap's: the pages whose blocks `take` numbered.
    ///
    /// # Safety
    /// - The pool lock is held (`pool` borrows its guard), and every other thread that may
    ///   run allocator code is stopped (as [`HeapSnapshot::take`] requires): `f` may read
    ///   the pages' descriptors and metadata.
    unsafe fn for_each_user_page(pool: &Pool, mut f: impl FnMut(*mut Page)) {
        pool.for_each_segment(|seg| {
            // SAFETY:
            // - `seg` is on `all`, so a live segment whose header is mapped (pool
            //   invariant); its `kind` is set before it is linked.
            // - `for_each_page`: `seg` is a live page segment (kind checked) and the pool
            //   lock is held (caller); each `p` it gives is in use.
            unsafe {
                if (*seg).kind == KIND_PAGES {
                    segment::for_each_page(seg, |p| {
                        if !(*p).is_internal() {
                            f(p);
                        }
                    });
                }
            }
        });
    }

    /// Calls `f(id, block)` for every live block of `seg`, a live segment (on the pool's
    /// list, or named by the segment map), in increasing id order.
    fn blocks_of(&self, seg: *mut Segment, f: &mut dyn FnMut(u32, BlockDesc)) {
        self.blocks_of_promoting(seg, None, f);
    }

    /// [`HeapSnapshot::blocks_of`]; with `promote`, each block set in its marks is first
    /// promoted as it says.
    fn blocks_of_promoting(
        &self,
        seg: *mut Segment,
        promote: Option<(&Marks, Promotion)>,
        f: &mut dyn FnMut(u32, BlockDesc),
    ) {
        // SAFETY:
        // - `seg` is a live segment whose header is mapped (caller).
        // - `for_each_page`: `seg` is a live page segment (kind checked) and the pool
        //   lock is held (snapshot invariant); each `p` it gives is in use, as
        //   `blocks_of_page` needs.
        // - `BlockRef::Large(seg)` meets the type's invariant (a live large segment) and
        //   stays good while the world is stopped.
        unsafe {
            match (*seg).kind {
                KIND_PAGES => segment::for_each_page(seg, |p| self.blocks_of_page_promoting(p, promote, f)),
                KIND_LARGE if (*seg).large.flags & (INTERNAL | LIVE) == LIVE => {
                    let b = BlockRef::Large(seg);
                    let (id, d) = describe(b);
                    if let Some((_, promotion)) = promote.filter(|(m, _)| m.get(id)) {
                        // The world is stopped (snapshot invariant): `set_flags`' condition.
                        b.set_flags(promoted(b.flags(), promotion));
                    }
                    f(id, d);
                }
                _ => {}
            }
        }
    }

    /// [`HeapView::unmarked_block_containing`] for an address inside `[lo, hi)`.
    fn unmarked_in_range(&self, addr: usize, marks: &Marks) -> Option<(u32, BlockDesc)> {
        // `containing`'s callers' duty, and the `BlockRef`'s: the pool lock is held and
        // every other thread stopped (snapshot invariant).
        let b = block::containing(addr)?;
        // The marks were set for every free slot first (`mark_empty_slots`): a block
        // they leave clear is live, and its word, which the size is read from anyway,
        // tells the rest without the live bit (one cache miss fewer).
        if marks.get(id_of(b)) {
            return None;
        }
        let meta = b.meta_unless_freed();
        if meta.0 & LIVE == 0 || addr - b.start() >= scan_len(meta.1) {
            return None;
        }
        let (id, desc) = describe_with(b, meta);
        (!self.is_freed(id)).then_some((id, desc))
    }

    /// Calls `f(id, block)` for every live block of page `p`, in increasing id order
    /// (none for an internal page).
    ///
    /// # Safety
    /// - `p` is an in-use page of a live segment.
    unsafe fn blocks_of_page(&self, p: *mut Page, f: &mut dyn FnMut(u32, BlockDesc)) {
        // SAFETY: the caller's condition is the same.
        unsafe { self.blocks_of_page_promoting(p, None, f) }
    }

    /// [`HeapSnapshot::blocks_of_page`]; with `promote`, each block set in its marks is
    /// first promoted as it says.
    ///
    /// # Safety
    /// - `p` is an in-use page of a live segment.
    unsafe fn blocks_of_page_promoting(
        &self,
        p: *mut Page,
        promote: Option<(&Marks, Promotion)>,
        f: &mut dyn FnMut(u32, BlockDesc),
    ) {
        // SAFETY: the caller's condition; the whole page.
        unsafe { self.blocks_of_page_in(p, 0..(*p).capacity as usize, promote, f) }
    }

    /// [`HeapSnapshot::blocks_of_page_promoting`] for the blocks of `indices` only (those
    /// at or past the page's capacity are none).
    ///
    /// # Safety
    /// - `p` is an in-use page of a live segment.
    unsafe fn blocks_of_page_in(
        &self,
        p: *mut Page,
        indices: core::ops::Range<usize>,
        promote: Option<(&Marks, Promotion)>,
        f: &mut dyn FnMut(u32, BlockDesc),
    ) {
        // SAFETY:
        // - `p` is in use (caller), its descriptor readable.
        // - `flags_of(i)` and `set_flags(i, _)`: `p` is in use and `i < capacity`;
        //   nobody else reads or writes the metadata meanwhile (snapshot invariant: the
        //   world is stopped).
        // - `BlockRef::Small(p, i)` meets the type's invariants (an in-use page and
        //   `i < capacity`) and stays good while the world is stopped.
        unsafe {
            if (*p).is_internal() {
                return;
            }
            let base = (*p).block_id_base;
            // The live bits say which blocks to visit: the metadata words of the others
            // are not read (a page's array may still be untouched memory where no block
            // was carved, which reading would fault in).
            for i in (*p).live_indices(indices) {
                if self.is_freed(base + i as u32) {
                    continue;
                }
                let b = BlockRef::Small(p, i);
                let meta = b.meta();
                let flags = meta.0;
                let (id, d) = describe_with(b, meta);
                if let Some((_, promotion)) = promote.filter(|(m, _)| m.get(id)) {
                    let to = promoted(flags, promotion);
                    if to != flags {
                        (*p).set_flags(i, to);
                    }
                }
                f(id, d);
            }
        }
    }

    /// The blocks of `walk` (every live block, or those of the young places: all of them
    /// when the list of young places could not get memory), in increasing id order; with
    /// `promote`, each block set in its marks promoted as it says first.
    fn walk_with(&self, walk: Walk, promote: Option<(&Marks, Promotion)>, f: &mut dyn FnMut(u32, BlockDesc)) {
        match (walk, &self.young) {
            (Walk::Young, Some(young)) => {
                for &place in young.iter() {
                    match place {
                        // SAFETY: `take` listed `p`, an in-use page of a live segment, and
                        // with the pool lock held and the world stopped (snapshot
                        // invariant) it still is; the stopped world is also what
                        // promotion needs.
                        YoungPlace::Page(p) => unsafe { self.blocks_of_page_promoting(p, promote, f) },
                        // A large segment `take` listed as live: it still is (snapshot
                        // invariant).
                        YoungPlace::Large(seg) => self.blocks_of_promoting(seg, promote, f),
                    }
                }
            }
            // The segments on the pool's list are live: `blocks_of_promoting`'s condition;
            // the world is stopped (snapshot invariant), as promotion needs.
            _ => self.pool.for_each_segment(|seg| self.blocks_of_promoting(seg, promote, f)),
        }
    }

    /// [`HeapView::for_each_block_overlapping`], block by block: each page's blocks in
    /// the range found by index, each free slice skipped whole.
    fn blocks_overlapping(&self, a: usize, b: usize, f: &mut dyn FnMut(BlockDesc)) {
        let Some(seg_start) = segment::map::segment_start(a) else { return };
        let seg = seg_start as *mut Segment;
        // SAFETY:
        // - The map names `seg_start` as a live segment holding `a`, and with the pool lock
        //   held and the world stopped (snapshot invariant) it stays live, its header and
        //   page descriptors unchanged: readable.
        // - `page_of_mut`: `seg` is a page segment (kind checked) and `p` lies in it past
        //   the header slice (`p >= seg + SLICE_SIZE`, `p < b <= seg + SEGMENT_SIZE`: the
        //   range lies inside one owned region, caller).
        // - A descriptor is used only when in use and when `p` lies in its span (a free
        //   slice's `slice_first` may name an older page's descriptor), which is
        //   `blocks_of_page_in`'s condition.
        unsafe {
            match (*seg).kind {
                KIND_PAGES => {
                    let mut p = a.max(seg_start + SLICE_SIZE);
                    while p < b {
                        let page = Segment::page_of_mut(seg, p);
                        let pg = &*page;
                        let span_start = pg.start as usize;
                        let span_end = span_start + pg.slices as usize * SLICE_SIZE;
                        if !pg.in_use() || pg.is_internal() || p < span_start || p >= span_end {
                            p = ((p >> SLICE_SHIFT) + 1) << SLICE_SHIFT;
                            continue;
                        }
                        let end = b.min(span_end);
                        self.blocks_of_page_in(page, pg.index_of(p)..pg.index_of(end - 1) + 1, None, &mut |_, d| f(d));
                        p = end;
                    }
                }
                KIND_LARGE if (*seg).large.flags & (INTERNAL | LIVE) == LIVE => {
                    let (_, d) = describe(BlockRef::Large(seg));
                    if d.start < b && a < d.start + d.usable {
                        f(d);
                    }
                }
                _ => {}
            }
        }
    }

    #[inline]
    fn is_freed(&self, id: u32) -> bool {
        self.freed.get(id as usize / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

/// Flags with the generation `promotion` gives a marked block.
#[inline]
fn promoted(flags: u8, promotion: Promotion) -> u8 {
    let generation = promotion.generation_after((flags & GEN_MASK) >> GEN_SHIFT);
    (flags & !GEN_MASK) | (generation << GEN_SHIFT)
}

/// Bytes of a block that are scanned and that interior pointers may point into.
#[inline]
pub(crate) fn scan_len(size: usize) -> usize {
    (size.max(1) + 7) & !7
}

/// The block's id in the snapshot.
#[inline]
fn id_of(b: BlockRef) -> u32 {
    match b {
        // SAFETY: `p` is an in-use page descriptor of a live segment (`BlockRef`
        // invariant), readable; `block_id_base` was written by `take`, and nobody writes
        // it while the snapshot lives (snapshot invariant: the world is stopped).
        BlockRef::Small(p, i) => (unsafe { (*p).block_id_base }) + i as u32,
        // SAFETY: `s` is a live large segment (`BlockRef` invariant), its header mapped;
        // `block_id_base` was written by `take` and is stable while the world is stopped.
        BlockRef::Large(s) => unsafe { (*s).large.block_id_base },
    }
}

fn describe(b: BlockRef) -> (u32, BlockDesc) {
    describe_with(b, b.meta())
}

/// [`describe`], with the block's metadata (`BlockRef::meta`) already read.
#[inline]
fn describe_with(b: BlockRef, (flags, size, stack): (u8, usize, u32)) -> (u32, BlockDesc) {
    let id = id_of(b);
    let desc = BlockDesc {
        start: b.start(),
        size,
        usable: scan_len(size),
        stack,
        ignored: flags & IGNORED != 0,
        scoped: flags & SCOPED != 0,
        generation: (flags & GEN_MASK) >> GEN_SHIFT,
        reported: flags & REPORTED != 0,
    };
    (id, desc)
}

impl HeapView for HeapSnapshot<'_> {
    fn block_slots(&self) -> usize {
        self.slots
    }

    #[inline]
    fn block_containing(&self, addr: usize) -> Option<(u32, BlockDesc)> {
        if addr.wrapping_sub(self.lo) >= self.hi.wrapping_sub(self.lo) {
            return None;
        }
        // `containing`'s callers' duty, and the `BlockRef`'s: the pool lock is held and
        // every other thread stopped (snapshot invariant).
        let b = block::containing(addr)?;
        let meta = b.meta();
        if meta.0 & LIVE == 0 || addr - b.start() >= scan_len(meta.1) {
            return None;
        }
        let (id, desc) = describe_with(b, meta);
        (!self.is_freed(id)).then_some((id, desc))
    }

    #[inline(always)]
    fn candidate_range(&self) -> (usize, usize) {
        (self.lo, self.hi)
    }

    #[inline(always)]
    fn unmarked_block_containing(&self, addr: usize, marks: &Marks) -> Option<(u32, BlockDesc)> {
        // Inlined into the scan: for most words this compare is the whole answer.
        if addr.wrapping_sub(self.lo) >= self.hi.wrapping_sub(self.lo) {
            return None;
        }
        self.unmarked_in_range(addr, marks)
    }

    fn for_each_block(&self, f: &mut dyn FnMut(u32, BlockDesc)) {
        self.walk_with(Walk::All, None, f);
    }

    fn for_each_young_block(&self, f: &mut dyn FnMut(u32, BlockDesc)) {
        self.walk_with(Walk::Young, None, f);
    }

    fn young_blocks_promoted(&self) {
        let Some(young) = &self.young else { return };
        for &place in young.iter() {
            let YoungPlace::Page(p) = place else { continue };
            let mut young_left = false;
            // SAFETY: `take` listed `p`, an in-use page of a live segment; the world is
            // stopped (snapshot invariant), as `blocks_of_page` and `is_current` need.
            // Only a stopped owner writes `young`, so clearing it races with nobody; a
            // page made current after the world resumes is flagged again then.
            unsafe {
                self.blocks_of_page(p, &mut |_, d| young_left |= d.generation == 0);
                if !young_left && !Heap::is_current(p) {
                    (*p).young.store(false, Ordering::Relaxed);
                }
            }
        }
    }

    fn for_each_block_overlapping(&self, a: usize, b: usize, f: &mut dyn FnMut(BlockDesc)) {
        // The parts of `[a, b)` that `old_parts` keeps (scanned bytes) must be the same
        // whichever way the blocks are found: a debug build checks it against the lookup
        // word by word (a count and a sum of the kept parts; nothing allocated).
        #[cfg(debug_assertions)]
        {
            let kept = |by_index: bool| {
                let (mut n, mut sum) = (0usize, 0usize);
                let mut tally = |d: BlockDesc| {
                    let (s, e) = (a.max(d.start), b.min(d.scan_end()));
                    if s < e {
                        n += 1;
                        sum = sum.wrapping_add(s ^ e.rotate_left(17));
                    }
                };
                if by_index {
                    self.blocks_overlapping(a, b, &mut tally);
                } else {
                    crate::leak::view::blocks_overlapping_by_lookup(self, a, b, &mut tally);
                }
                (n, sum)
            };
            debug_assert_eq!(kept(true), kept(false), "blocks overlapping {a:#x}..{b:#x}");
        }
        self.blocks_overlapping(a, b, f);
    }

    fn for_each_block_in_region(&self, region_start: usize, f: &mut dyn FnMut(u32, BlockDesc)) {
        // A region start the view gave is a live segment's (`blocks_of`'s condition);
        // the map confirms it is one.
        if segment::map::segment_start(region_start) == Some(region_start) {
            self.blocks_of(region_start as *mut Segment, f);
        }
    }

    fn walk_promoting(&self, walk: Walk, marks: &Marks, promotion: Promotion, f: &mut dyn FnMut(u32, BlockDesc)) {
        self.walk_with(walk, Some((marks, promotion)), f);
    }

    fn may_hold_ignored(&self) -> bool {
        crate::page::ignored_ever()
    }

    fn mark_empty_slots(&self, marks: &mut Marks) {
        // The pages' free slots, and the blocks other threads freed. (A large block's
        // lookup reads its exact flags: a free one needs no mark.)
        marks.set_all_of(self.freed.as_slice());
        // SAFETY: the pool lock is held and the world stopped (snapshot invariant):
        // `for_each_user_page`'s bullet. Each `p` is in use and `k < live_words(capacity)`;
        // its ids are `base..base + capacity`, all below `slots` (`take` numbered them).
        unsafe {
            Self::for_each_user_page(self.pool, |p| {
                let base = (*p).block_id_base as usize;
                for k in 0..crate::page::live_words((*p).capacity as usize) {
                    let empty = (*p).empty_in_word(k);
                    if empty != 0 {
                        marks.set_word(base + 64 * k, empty);
                    }
                }
            });
        }
    }

    fn set_reported(&self, start: usize) {
        // `containing` and `set_flags` need the pool lock held and every other thread
        // stopped: the snapshot invariant.
        if let Some(b) = block::containing(start) {
            b.set_flags(b.flags() | REPORTED);
        }
    }

    fn for_each_owned_region(&self, f: &mut dyn FnMut(usize, usize)) {
        self.pool.for_each_segment(|seg| {
            // SAFETY: `seg` is on `all`, so a live segment whose header is mapped (pool
            // invariant); its `len` does not change while the pool lock is held.
            f(seg as usize, seg as usize + unsafe { (*seg).len });
        });
    }

    fn owned_region_end(&self, addr: usize) -> Option<usize> {
        let start = segment::map::segment_start(addr)?;
        // SAFETY: the map names `start` as the start of a live segment, whose header is
        // mapped (map invariant); with the pool lock held and the world stopped (snapshot
        // invariant) it stays live and its `len` does not change.
        Some(start + unsafe { (*(start as *const Segment)).len })
    }
}
