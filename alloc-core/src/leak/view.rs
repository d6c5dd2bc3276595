//! The narrow interface between the leak check and the heap it checks.
//!
//! # What it owns
//! [`HeapView`] and [`BlockDesc`]. Every phase of the check (`roots`, `mark`, `classify`)
//! talks to the allocator only through this trait, so each phase is unit-tested on a fake
//! heap (see `leak::fake`), and the real heap implements it in `heap::walk`.
//!
//! Blocks are numbered densely for the duration of one check: ids lie in
//! `0..block_slots()`; not every id names a live block.

pub(crate) use super::mark::Marks;

/// One live block as the check sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockDesc {
    /// Address of the block's first byte.
    pub(crate) start: usize,
    /// The size the program asked for (`Layout::size()`).
    pub(crate) size: usize,
    /// Bytes from `start` that interior pointers may point into: at least `size` (the
    /// scan itself stops at [`BlockDesc::scan_end`]).
    pub(crate) usable: usize,
    /// The allocation stack id (`0` when none was recorded).
    pub(crate) stack: u32,
    /// The block was marked as intentionally leaked (`ignore`, `disable`): it is treated
    /// as a root, and never reported.
    pub(crate) ignored: bool,
    /// The block was allocated inside a leak-check scope (which one, the scope map says).
    pub(crate) scoped: bool,
    /// The block's generation: 0 when allocated, raised by each check or sweep it
    /// survives, at most 2.
    pub(crate) generation: u8,
    /// A sweep already reported the block as leaked (the `REPORTED` flag).
    pub(crate) reported: bool,
}

impl BlockDesc {
    /// The end of the bytes the check scans for pointers: the whole words inside the
    /// requested size. A word that crosses the end cannot hold a pointer the program
    /// stored (a pointer needs 8 bytes inside the block), but its bytes past the end hold
    /// whatever an earlier occupant of the memory left there, and with the block's last
    /// bytes they can spell an address: scanned, such words kept real leaks reachable.
    #[inline]
    pub(crate) fn scan_end(&self) -> usize {
        self.start + (self.size & !7)
    }
}

/// How [`HeapView::walk_promoting`] raises the generation of the marked blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Promotion {
    /// One generation up, at most 2: a check's survivors.
    OneUp,
    /// Blocks of generations `0..=g` to `g + 1`, at most 2; older ones stay: the
    /// survivors of a sweep of generation `g`.
    PastSwept(u8),
}

impl Promotion {
    /// The generation a marked block of `generation` moves to.
    #[inline]
    pub(crate) fn generation_after(self, generation: u8) -> u8 {
        match self {
            Promotion::OneUp => generation.saturating_add(1).min(2),
            Promotion::PastSwept(g) if generation <= g => g.saturating_add(1).min(2),
            Promotion::PastSwept(_) => generation,
        }
    }
}

/// Which blocks a walk over the heap visits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    /// Every live block ([`HeapView::for_each_block`]).
    All,
    /// The live blocks of generation 0, and perhaps some others
    /// ([`HeapView::for_each_young_block`]).
    Young,
}

/// What the leak check needs from a heap. Implementations must not allocate through the
/// global allocator: they are called while other threads are stopped.
pub(crate) trait HeapView {
    /// An upper bound (exclusive) of block ids.
    fn block_slots(&self) -> usize;

    /// The live block whose `[start, start + usable)` contains `addr`, with its id.
    /// This is called for every word scanned: it must be O(1).
    fn block_containing(&self, addr: usize) -> Option<(u32, BlockDesc)>;

    /// [`HeapView::block_containing`], for a block not set in `marks` only: the mark's
    /// question for every word it scans, where most hits are blocks it marked already,
    /// which an implementation may then leave undescribed. `marks` were prepared by
    /// [`HeapView::mark_empty_slots`] (the mark's always are: `Marker::new`).
    #[inline]
    fn unmarked_block_containing(&self, addr: usize, marks: &Marks) -> Option<(u32, BlockDesc)> {
        self.block_containing(addr).filter(|&(id, _)| !marks.get(id))
    }

    /// `[lo, hi)`: every block lies inside it, so a word outside it points into none. The
    /// scan tests several words against it at once before asking about any of them.
    #[inline]
    fn candidate_range(&self) -> (usize, usize) {
        (0, usize::MAX)
    }

    /// Calls `f(id, block)` for every live block, in increasing id order.
    fn for_each_block(&self, f: &mut dyn FnMut(u32, BlockDesc));

    /// Calls `f(id, block)` for every live block of generation 0, in increasing id order,
    /// and perhaps for some older blocks too (callers test the generation): a young
    /// sweep's walks, which should cost what is young, not the whole heap.
    fn for_each_young_block(&self, f: &mut dyn FnMut(u32, BlockDesc)) {
        self.for_each_block(f);
    }

    /// The blocks a walk visits: every live block, or those of [`Walk::Young`].
    fn walk(&self, walk: Walk, f: &mut dyn FnMut(u32, BlockDesc)) {
        match walk {
            Walk::All => self.for_each_block(f),
            Walk::Young => self.for_each_young_block(f),
        }
    }

    /// Told after a sweep moved every reachable block of generation 0 up a generation,
    /// with every other thread stopped: the heap may stop visiting, in
    /// [`HeapView::for_each_young_block`], the places that now hold no block of
    /// generation 0.
    fn young_blocks_promoted(&self) {}

    /// If `addr` lies in memory the heap owns (segments holding blocks and metadata), the
    /// end of that owned region, so that root scanning can skip it whole.
    fn owned_region_end(&self, addr: usize) -> Option<usize>;

    /// Calls `f(start, end)` for every region of memory the heap owns (its segments).
    fn for_each_owned_region(&self, f: &mut dyn FnMut(usize, usize));

    /// Calls `f(id, block)` for every live block of the owned region starting at
    /// `region_start` (as [`HeapView::for_each_owned_region`] gave it).
    fn for_each_block_in_region(&self, region_start: usize, f: &mut dyn FnMut(u32, BlockDesc));

    /// [`HeapView::walk`], raising first the generation of each block set in `marks` as
    /// `promotion` says: a check's or a sweep's one walk after its mark, and the only way
    /// generations change. Only with every other thread stopped (promotion writes the
    /// blocks' flags, which their owners write too). `f` sees each block as it was before.
    fn walk_promoting(&self, walk: Walk, marks: &Marks, promotion: Promotion, f: &mut dyn FnMut(u32, BlockDesc));

    /// Sets in `marks` (new, all clear) ids that name no live block: the mark's test of a
    /// found block's bit then also rules out those free slots, and
    /// [`HeapView::unmarked_block_containing`] may skip its own test of liveness for the
    /// blocks whose free slots it sets here (all of them, or one kind of block). Optional:
    /// the default sets nothing, and an implementation that does nothing here must test
    /// liveness itself.
    fn mark_empty_slots(&self, marks: &mut Marks) {
        let _ = marks;
    }

    /// Whether any live block may carry the ignored flag: when none can, the check skips
    /// the walk that marks them as roots.
    fn may_hold_ignored(&self) -> bool {
        true
    }

    /// Calls `f(block)` for every live block overlapping `[a, b)`, a range inside one
    /// owned region, in address order: a young sweep's question for each run of written
    /// heap pages. This default asks [`HeapView::block_containing`] word by word where no
    /// block is; a heap that knows its pages' geometry answers block by block.
    fn for_each_block_overlapping(&self, a: usize, b: usize, f: &mut dyn FnMut(BlockDesc)) {
        blocks_overlapping_by_lookup(self, a, b, f);
    }

    /// Records that a sweep reported the block starting at `start` as leaked, so that
    /// later sweeps do not report it again. Only with every other thread stopped.
    fn set_reported(&self, start: usize);
}

/// [`HeapView::for_each_block_overlapping`] by [`HeapView::block_containing`], word by
/// word where no block is (the default, and what a heap's own answer is checked against
/// in debug builds).
pub(crate) fn blocks_overlapping_by_lookup<V: HeapView + ?Sized>(
    view: &V,
    a: usize,
    b: usize,
    f: &mut dyn FnMut(BlockDesc),
) {
    let mut p = a;
    while p < b {
        match view.block_containing(p) {
            Some((_, d)) => {
                f(d);
                p = (d.start + d.usable).max(p + 8);
            }
            None => p += 8,
        }
    }
}
