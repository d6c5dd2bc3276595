//! Pages: runs of equal-sized blocks of one size class, with their metadata beside them.
//!
//! # Layout
//! A page is a span of 64 KiB slices of a segment: one slice for small classes
//! (<= 8 KiB), eight for medium classes (<= 64 KiB). Its blocks start at the span's first
//! byte (so any alignment dividing the class size is met). Each block has one 8-byte
//! metadata word kept OUTSIDE the block, in an array beside the page:
//!
//! ```text
//!   63            32 31             8 7       0
//!  +----------------+----------------+---------+
//!  | stack id (u32) | requested size | flags   |   flags: LIVE | IGNORED | generation (2) | SCOPED | REPORTED
//!  +----------------+----------------+---------+
//! ```
//!
//! One word, so allocation writes one cache line of metadata (three separate arrays cost
//! three), and the flags byte is the word's low byte, readable and writable alone.
//! Requested sizes fit in 24 bits: page blocks are at most 64 KiB.
//!
//! Pages with many small blocks keep the array at the end of the span (then
//! `capacity = span / (class_size + 8)`); pages with at most 96 blocks a slice keep it in
//! the segment header (`capacity = span / class_size`, so a power-of-two class loses
//! nothing to metadata).
//!
//! # Invariants
//! - `used` = blocks handed out and not yet freed locally or collected from `thread_free`.
//! - `free` ∪ `thread_free` ∪ {the blocks carved `bump`-th and after (`carved_index`)} ∪
//!   {blocks with LIVE set} ∪ {blocks
//!   freed by another thread and not yet collected} = all blocks, disjointly;
//!   LIVE is set exactly for blocks handed out and not freed by the owner nor collected
//!   from `thread_free` (a block another thread freed keeps LIVE until collection).
//! - Only the owning heap touches `free`, `bump` and the metadata of blocks it hands out;
//!   any thread may push onto `thread_free`.
//!
//! # Who calls it
//! `heap` (allocate, free, collect), `segment` (init, on page acquisition under the pool's
//! lock), the leak check's heap walk (reads, with the world stopped).

use crate::size_class;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// log2 of the slice size.
pub(crate) const SLICE_SHIFT: usize = 16;
/// Slice size: 64 KiB, the unit pages are made of.
pub(crate) const SLICE_SIZE: usize = 1 << SLICE_SHIFT;
/// Metadata bytes per block: one word of flags, size and stack id.
pub(crate) const META_PER_BLOCK: usize = 8;
/// Where a new page starts carving: round the page, by a step that changes with every
/// initialization.
///
/// Why: a conservative scan counts any stale word that points into a live block as a
/// pointer to it. If every page handed out its block 0 first, the first bytes of each
/// span would be the most reused addresses of the heap, and a stale pointer to an earlier
/// page's first block would most likely fall in the new page's first block: a leak there
/// would be hidden. Starting elsewhere each time spreads both the stale words and the new
/// blocks over the page. Costs one add and compare per block carved.
fn first_block(capacity: u32) -> u32 {
    static INITS: AtomicU32 = AtomicU32::new(0);
    if capacity == 0 {
        return 0;
    }
    let n = INITS.fetch_add(1, Ordering::Relaxed);
    // Fibonacci hashing: consecutive initializations land far apart.
    ((n.wrapping_mul(0x9E37_79B9) as u64 * capacity as u64) >> 32) as u32
}

/// Bytes of the segment header's metadata area reserved for each slice.
pub(crate) const HEADER_META_PER_SLICE: usize = 768;
/// Shift of the reciprocal used to turn an offset into a block index.
const RECIP_SHIFT: u32 = 40;

/// Block flag: handed out and not freed.
pub(crate) const LIVE: u8 = 1;
/// Block flag: never reported as a leak; its contents are roots.
pub(crate) const IGNORED: u8 = 2;
/// Set before the first block is given [`IGNORED`] (by `ignore`, or by a `disable()`
/// scope opening): until then no block carries the flag, and a check skips the walk that
/// looks for ignored blocks to mark as roots. Never cleared.
static IGNORED_EVER: AtomicBool = AtomicBool::new(false);

/// Records that blocks may be flagged [`IGNORED`] from now on: called before the flag is
/// written (a release store, which a check's acquire load pairs with; a stopped thread's
/// earlier writes are visible to the check anyway).
#[inline]
pub(crate) fn note_ignored() {
    if !IGNORED_EVER.load(Ordering::Relaxed) {
        IGNORED_EVER.store(true, Ordering::Release);
    }
}

/// Whether any block may carry [`IGNORED`] (see [`note_ignored`]).
#[inline]
pub(crate) fn ignored_ever() -> bool {
    IGNORED_EVER.load(Ordering::Acquire)
}

/// Block flags: the block's generation (0, 1 or 2), in bits 2..4.
pub(crate) const GEN_SHIFT: u8 = 2;
pub(crate) const GEN_MASK: u8 = 0b1100;
/// Block flag: allocated inside a leak-check scope (`check_scope`); the runtime's scope
/// map says which scope.
pub(crate) const SCOPED: u8 = 16;
/// Block flag: a leak sweep (`alloc_core::sweep`) already reported the block as leaked;
/// later sweeps do not report it again. Cleared with the rest when the block is freed.
pub(crate) const REPORTED: u8 = 32;
/// Block flag (large blocks): allocated by the internal heap; never tracked.
pub(crate) const INTERNAL: u8 = 128;

/// Page flag: the page holds blocks (it is not a free span).
pub(crate) const PAGE_IN_USE: u8 = 1;
/// Page flag: the page belongs to the internal heap: never tracked, never scanned.
pub(crate) const PAGE_INTERNAL: u8 = 2;

/// A free block: its first word links to the next free block.
#[repr(C)]
pub(crate) struct Block {
    pub(crate) next: *mut Block,
}

/// Descriptor of one page, kept in its segment's header.
///
/// Three cache lines, by who writes them (so that a thread freeing into another thread's
/// page does not fight the owner for a cache line on every operation):
/// - line 0: set up at page initialization, read by everyone (geometry, owner, links);
/// - line 1: written by the owner on every allocation and local free;
/// - line 2: written by other threads pushing freed blocks.
#[repr(C, align(64))]
pub(crate) struct Page {
    /// Number of blocks in the page.
    pub(crate) capacity: u32,
    pub(crate) block_size: u32,
    pub(crate) class: u8,
    /// Slices the page spans (1 or 8); 0 for a free descriptor.
    pub(crate) slices: u8,
    /// `PAGE_IN_USE`, `PAGE_INTERNAL`.
    pub(crate) flags: u8,
    /// The index of the block handed out first: blocks are carved from there round the
    /// page (see [`Page::carve`]). Varies from one initialization to the next.
    pub(crate) first: u32,
    /// `ceil(2^40 / block_size)`: `index = (offset * recip) >> 40` is exact for every
    /// offset below 2^19 (512 KiB) and block size up to 2^16 (tested exhaustively).
    pub(crate) recip: u64,
    pub(crate) start: *mut u8,
    /// One metadata word per block (see the module note).
    pub(crate) meta: *mut u64,
    /// The owning heap (a `*mut Heap`), or 0 when the page is abandoned.
    pub(crate) heap: AtomicUsize,
    /// Links in the owning heap's queue for this class.
    pub(crate) next: *mut Page,
    pub(crate) prev: *mut Page,
    // -- line 1: the owner's
    /// Local free list (owner only).
    pub(crate) free: *mut Block,
    /// Blocks handed out and not yet known to be freed. Written by the owner only; atomic
    /// so that statistics may read it from any thread.
    pub(crate) used: AtomicU32,
    /// Blocks carved so far: those `carved_index(k)` for `k < bump` (owner only); the rest
    /// have never been handed out.
    pub(crate) bump: u32,
    /// First block id of this page in the current leak check's dense numbering.
    pub(crate) block_id_base: u32,
    /// The page may hold blocks of generation 0: set by the owner each time the page
    /// becomes its heap's current page (the only page blocks are taken from), cleared by
    /// a leak sweep that found none left in a page that is not current (`heap::walk`).
    /// A young sweep visits the blocks of these pages only.
    pub(crate) young: AtomicBool,
    _pad1: [u8; 43],
    // -- line 2: other threads'
    /// Blocks freed by threads other than the owner (Treiber stack, push only; the owner
    /// takes the whole list with a swap).
    pub(crate) thread_free: AtomicPtr<Block>,
    _pad2: [u8; 56],
}

const _: () = assert!(core::mem::offset_of!(Page, free) == 64);
const _: () = assert!(core::mem::offset_of!(Page, thread_free) == 128);
const _: () = assert!(core::mem::size_of::<Page>() == 192);

impl Page {
    /// A descriptor with no blocks: what a heap's `current` slot holds for a class it has
    /// no page for yet, so the fast path needs no null check.
    pub(crate) const fn empty() -> Page {
        Page {
            free: core::ptr::null_mut(),
            used: AtomicU32::new(0),
            capacity: 0,
            bump: 0,
            block_size: 0,
            class: 0,
            slices: 0,
            flags: 0,
            first: 0,
            recip: 0,
            start: core::ptr::null_mut(),
            meta: core::ptr::null_mut(),
            heap: AtomicUsize::new(0),
            thread_free: AtomicPtr::new(core::ptr::null_mut()),
            next: core::ptr::null_mut(),
            prev: core::ptr::null_mut(),
            block_id_base: 0,
            young: AtomicBool::new(false),
            _pad1: [0; 43],
            _pad2: [0; 56],
        }
    }
}

/// Blocks per page and where their metadata goes, for a class and span.
pub(crate) struct PageGeometry {
    pub(crate) capacity: usize,
    pub(crate) meta_in_header: bool,
}

/// How many blocks of `block_size` fit in a span of `slices` slices.
pub(crate) fn geometry(block_size: usize, slices: usize) -> PageGeometry {
    let span = slices * SLICE_SIZE;
    let whole = span / block_size;
    if whole * META_PER_BLOCK <= HEADER_META_PER_SLICE * slices {
        PageGeometry { capacity: whole, meta_in_header: true }
    } else {
        PageGeometry { capacity: (span - 8) / (block_size + META_PER_BLOCK), meta_in_header: false }
    }
}

impl Page {
    /// Sets the page up for `class` over `[start, start + slices * SLICE_SIZE)`.
    ///
    /// # Safety
    /// - `self` is a free descriptor of a segment whose pool lock the caller holds.
    /// - The span is mapped, unused, and `header_meta` points to `slices *
    ///   HEADER_META_PER_SLICE` writable bytes in the segment header reserved for it.
    /// - `span_zeroed`: every byte of the span is zero (a metadata array kept there then
    ///   needs no clearing, and its pages are committed only as blocks are used).
    pub(crate) unsafe fn init(
        &mut self,
        start: *mut u8,
        slices: usize,
        class: usize,
        header_meta: *mut u8,
        internal: bool,
        span_zeroed: bool,
    ) {
        let block_size = size_class::class_size(class);
        let geo = geometry(block_size, slices);
        let meta = if geo.meta_in_header {
            header_meta
        } else {
            // SAFETY: capacity * (block_size + 8) + 8 <= span, so the array fits after the
            // blocks, rounded up to 8 bytes.
            unsafe { start.add((geo.capacity * block_size + 7) & !7) }
        };
        self.free = core::ptr::null_mut();
        self.used.store(0, Ordering::Relaxed);
        self.capacity = geo.capacity as u32;
        self.bump = 0;
        self.first = first_block(geo.capacity as u32);
        self.block_size = block_size as u32;
        self.class = class as u8;
        self.slices = slices as u8;
        self.flags = PAGE_IN_USE | if internal { PAGE_INTERNAL } else { 0 };
        self.recip = (1u64 << RECIP_SHIFT).div_ceil(block_size as u64);
        self.start = start;
        self.meta = meta.cast();
        if geo.meta_in_header || !span_zeroed {
            // SAFETY: the metadata region holds `capacity` words (see `geometry`). Flags
            // must start clear: the region may hold an older page's bytes.
            unsafe { core::ptr::write_bytes(self.meta, 0, geo.capacity) };
        }
        self.thread_free.store(core::ptr::null_mut(), Ordering::Relaxed);
        self.next = core::ptr::null_mut();
        self.prev = core::ptr::null_mut();
        self.young.store(false, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn is_internal(&self) -> bool {
        self.flags & PAGE_INTERNAL != 0
    }

    #[inline]
    pub(crate) fn in_use(&self) -> bool {
        self.flags & PAGE_IN_USE != 0
    }

    /// Index of the block containing `addr` (which must be at or after `start`); may be
    /// `>= capacity` for addresses in the metadata or the tail.
    #[inline]
    pub(crate) fn index_of(&self, addr: usize) -> usize {
        let offset = addr - self.start as usize;
        ((offset as u64 * self.recip) >> RECIP_SHIFT) as usize
    }

    #[inline]
    pub(crate) fn block_start(&self, index: usize) -> usize {
        self.start as usize + index * self.block_size as usize
    }

    /// The flags byte of block `index`.
    ///
    /// # Safety
    /// - `self` is an in-use page (its `meta` array is mapped) and `index < capacity`.
    #[inline]
    pub(crate) unsafe fn flags_of(&self, index: usize) -> u8 {
        debug_assert!(index < self.capacity as usize);
        // SAFETY:
        // - `meta` points to `capacity` words of this in-use page (caller), and
        //   `index < capacity` (caller), so the word is in bounds and initialized (zeroed
        //   at page setup or written since).
        // - The flags are the word's low byte (x86-64 is little-endian).
        unsafe { self.meta.add(index).cast::<u8>().read() }
    }

    /// Records a block as handed out.
    ///
    /// # Safety
    /// - `self` is in use and `index < capacity`.
    /// - The caller is the page's owner and just took block `index` from the free list:
    ///   nobody else reads or writes the block's word meanwhile (the leak check reads
    ///   metadata only with the owner stopped).
    /// - `size < 2^24` (page blocks are at most 64 KiB).
    #[inline]
    pub(crate) unsafe fn set_meta(&self, index: usize, size: u32, stack: u32, flags: u8) {
        debug_assert!(index < self.capacity as usize);
        debug_assert!(size < 1 << 24);
        // SAFETY: in bounds (first bullet); the owner alone writes a block's word while it
        // moves between free and live (second bullet).
        unsafe { self.meta.add(index).write(flags as u64 | (size as u64) << 8 | (stack as u64) << 32) }
    }

    /// Sets the flags of block `index`.
    ///
    /// # Safety
    /// - `self` is in use and `index < capacity`.
    /// - The caller may write the block's metadata: it is the page's owner allocating or
    ///   freeing the block, or it holds a live pointer to the block (`ignore`), or every
    ///   other thread is stopped (the leak check).
    #[inline]
    pub(crate) unsafe fn set_flags(&self, index: usize, flags: u8) {
        debug_assert!(index < self.capacity as usize);
        // SAFETY: in bounds (first bullet); no other writer (second bullet); the flags are
        // the word's low byte, written alone.
        unsafe { self.meta.add(index).cast::<u8>().write(flags) };
    }

    /// Requested size and stack id of block `index`.
    ///
    /// # Safety
    /// - `self` is in use and `index < capacity`.
    #[inline]
    pub(crate) unsafe fn size_and_stack(&self, index: usize) -> (u32, u32) {
        debug_assert!(index < self.capacity as usize);
        // SAFETY: in bounds and initialized (caller; see `flags_of`).
        let word = unsafe { self.meta.add(index).read() };
        ((word >> 8) as u32 & 0xFF_FFFF, (word >> 32) as u32)
    }

    /// Sets the requested size of block `index` (in-place realloc).
    ///
    /// # Safety
    /// - As [`Page::set_flags`], and `size < 2^24`.
    #[inline]
    pub(crate) unsafe fn set_size_and_stack(&self, index: usize, size: u32, stack: u32) {
        debug_assert!(index < self.capacity as usize && size < 1 << 24);
        // SAFETY: in bounds, and the caller may write the word (caller); the flags byte is
        // read and written back unchanged.
        unsafe {
            let flags = self.meta.add(index).read() & 0xFF;
            self.meta.add(index).write(flags | (size as u64) << 8 | (stack as u64) << 32);
        }
    }

    /// Moves up to `max` never-used blocks onto the free list; the first time, none that
    /// starts past the OS page where the first block starts: carving writes each block's
    /// first word (its link), and a page of a class a program uses a few blocks of
    /// should commit one page of memory, not two (a test binary's start paid a fault,
    /// some microseconds in a virtual machine, for every page carved ahead). Later carves
    /// are for a class in use: limiting those too cost larson and json 3-8% with stacks
    /// (more trips to the slow path). Returns how many (at least one when any block is
    /// left and `max > 0`).
    ///
    /// # Safety
    /// - `self` is in use, and the caller is its owner's only user (the owning thread, or
    ///   the holder of the owning locked heap's lock): nobody else touches `free`, `bump`
    ///   or the never-used blocks.
    pub(crate) unsafe fn carve(&mut self, max: u32) -> u32 {
        debug_assert!(self.first < self.capacity.max(1));
        let mut n = (self.capacity - self.bump).min(max);
        if self.bump == 0 {
            n = n.min(self.starting_in_first_os_page());
        }
        let mut next = self.free;
        for i in (self.bump..self.bump + n).rev() {
            let b = self.block_start(self.carved_index(i) as usize) as *mut Block;
            // SAFETY: `carved_index` maps `bump + i < capacity` to an index below
            // `capacity`, so the block lies inside the page's span; it was never handed
            // out (each index is carved once), so its first word is ours to use as the
            // link (caller).
            unsafe { (*b).next = next };
            next = b;
        }
        self.free = next;
        self.bump += n;
        n
    }

    /// Takes every block other threads freed onto the local free list, clearing their
    /// LIVE flags (a freeing thread leaves the owner's metadata alone). Returns how many,
    /// or `Err(block)` for a block found already free: a double free (a block pushed twice
    /// also makes the list cyclic, which this catches on the second visit).
    ///
    /// # Safety
    /// - As [`Page::carve`]: the caller is the owner's only user.
    pub(crate) unsafe fn collect_thread_free(&mut self) -> Result<u32, *mut Block> {
        if self.thread_free.load(Ordering::Relaxed).is_null() {
            return Ok(0);
        }
        let mut list = self.thread_free.swap(core::ptr::null_mut(), Ordering::Acquire);
        let mut n = 0;
        while !list.is_null() {
            let index = self.index_of(list as usize);
            // SAFETY:
            // - Blocks on the thread-free list are blocks of this page (`push_thread_free`'s
            //   contract), so `index < capacity`.
            // - Each pushing thread wrote the block's first word before its Release CAS,
            //   which our Acquire swap synchronizes with: `next` is initialized.
            // - We are the owner's only user (caller), so writing the flags and `free` races
            //   with nobody.
            unsafe {
                if self.flags_of(index) & LIVE == 0 {
                    self.used.store(self.used.load(Ordering::Relaxed) - n, Ordering::Relaxed);
                    return Err(list);
                }
                self.set_flags(index, 0);
                let next = (*list).next;
                (*list).next = self.free;
                self.free = list;
                list = next;
            }
            n += 1;
        }
        self.used.store(self.used.load(Ordering::Relaxed) - n, Ordering::Relaxed);
        Ok(n)
    }

    /// Calls `f(index)` for every block on the thread-free list, without taking them:
    /// for the leak check, which must not see blocks freed by other threads (whose LIVE
    /// flag only the owner clears, on collection) as live. Visits at most `capacity`
    /// blocks, so a list made cyclic by a double free ends the walk.
    ///
    /// # Safety
    /// - Every thread that could touch the page is stopped.
    pub(crate) unsafe fn for_each_thread_freed(&self, mut f: impl FnMut(usize)) {
        let mut b = self.thread_free.load(Ordering::Acquire);
        for _ in 0..self.capacity {
            if b.is_null() {
                return;
            }
            let index = self.index_of(b as usize);
            if index >= self.capacity as usize {
                return;
            }
            f(index);
            // SAFETY: blocks on the list hold a valid next link; the world is stopped.
            b = unsafe { (*b).next };
        }
    }

    /// Pushes a block freed by a thread that does not own the page.
    ///
    /// # Safety
    /// - `block` is a block of this page that was live and that the caller just freed.
    #[inline]
    pub(crate) unsafe fn push_thread_free(&self, block: *mut Block) {
        let mut head = self.thread_free.load(Ordering::Relaxed);
        loop {
            // SAFETY: the block is a block of this page given up by the caller (contract),
            // so its first word is the caller's to write until the CAS publishes it.
            unsafe { (*block).next = head };
            match self.thread_free.compare_exchange_weak(head, block, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// How many blocks, from the first carved (`first`) on, start in the OS page where it
    /// starts, without going round the page's end: at least 1 (0 for a page of no block).
    fn starting_in_first_os_page(&self) -> u32 {
        let start = self.block_start(self.first as usize);
        let page_end = (start | (crate::os::OS_PAGE - 1)) + 1;
        let starting_here = (page_end - start).div_ceil(self.block_size.max(1) as usize) as u32;
        starting_here.min(self.capacity - self.first)
    }

    /// The indices of the blocks carved so far (the only ones that may be live), as two
    /// ranges in increasing order: `[0, wrapped)` and `[first, ...)` (either may be
    /// empty).
    #[inline]
    pub(crate) fn carved_ranges(&self) -> [core::ops::Range<usize>; 2] {
        let (first, bump, capacity) = (self.first as usize, self.bump as usize, self.capacity as usize);
        let end = first + bump;
        if end <= capacity {
            [0..0, first..end]
        } else {
            [0..end - capacity, first..capacity]
        }
    }

    /// The index of the `k`-th block carved (`k < capacity`): `first + k`, round the page.
    #[inline]
    pub(crate) fn carved_index(&self, k: u32) -> u32 {
        let i = self.first + k;
        if i >= self.capacity {
            i - self.capacity
        } else {
            i
        }
    }

    /// Checks the page's invariants; walks the free lists. For tests and `paranoid` builds.
    ///
    /// # Safety
    /// - The caller owns the page and no other thread pushes onto `thread_free` meanwhile.
    #[cfg(any(test, feature = "paranoid"))]
    pub(crate) unsafe fn assert_valid(&self) {
        assert!(self.bump <= self.capacity);
        let mut free = 0u32;
        let mut b = self.free;
        while !b.is_null() {
            let i = self.index_of(b as usize);
            let k = (i + self.capacity as usize - self.first as usize) % self.capacity as usize;
            assert!(k < self.bump as usize && self.block_start(i) == b as usize);
            // SAFETY: i < capacity.
            assert_eq!(unsafe { self.flags_of(i) } & LIVE, 0, "free block marked live");
            free += 1;
            // SAFETY: free-list blocks hold a valid next link.
            b = unsafe { (*b).next };
        }
        let live = (0..self.capacity as usize)
            // SAFETY: i < capacity.
            .filter(|&i| unsafe { self.flags_of(i) } & LIVE != 0)
            .count() as u32;
        assert_eq!(live, self.used.load(Ordering::Relaxed));
        assert_eq!(live + free, self.bump, "blocks lost or duplicated");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reciprocal_index_is_exact_for_every_class_and_offset() {
        for class in 0..size_class::CLASS_COUNT {
            let size = size_class::class_size(class);
            let recip = (1u64 << RECIP_SHIFT).div_ceil(size as u64);
            for offset in (0..(8 * SLICE_SIZE)).step_by(if size < 256 { 1 } else { 3 }) {
                assert_eq!(
                    ((offset as u64 * recip) >> RECIP_SHIFT) as usize,
                    offset / size,
                    "size {size} offset {offset}"
                );
            }
        }
    }

    #[test]
    fn carving_starts_round_the_page_and_hands_out_every_block_once() {
        use std::alloc::{alloc_zeroed, dealloc, Layout};
        let span = Layout::from_size_align(SLICE_SIZE, SLICE_SIZE).unwrap();
        let header = Layout::from_size_align(HEADER_META_PER_SLICE, 64).unwrap();
        // SAFETY: non-zero sizes; both freed at the end with the same layouts.
        let (start, meta) = unsafe { (alloc_zeroed(span), alloc_zeroed(header)) };
        assert!(!start.is_null() && !meta.is_null());
        let mut firsts = Vec::new();
        for size in [16, 312, 1024, 8192] {
            let class = size_class::class_of(size);
            for _ in 0..4 {
                let mut page = Page::empty();
                // SAFETY: a free descriptor over a mapped, unused 64 KiB span and a header
                // area of the size reserved for one slice; nobody else sees them.
                unsafe { page.init(start, 1, class, meta, false, false) };
                let capacity = page.capacity;
                assert!(page.first < capacity, "size {size}");
                firsts.push(page.first);
                // As the heap does: carve a batch when the free list is empty, take it all.
                let mut seen = vec![false; capacity as usize];
                let mut order = Vec::new();
                // SAFETY: this test is the page's only user.
                while unsafe { page.carve(7) } > 0 {
                    let mut b = page.free;
                    let os_page = |b: *mut Block| b as usize / crate::os::OS_PAGE;
                    let batch_page = if order.is_empty() { Some(os_page(b)) } else { None };
                    while !b.is_null() {
                        let i = page.index_of(b as usize);
                        assert!(i < capacity as usize && !seen[i], "size {size}: block {i} twice or out of the page");
                        if let Some(batch_page) = batch_page {
                            assert_eq!(
                                os_page(b),
                                batch_page,
                                "size {size}: the first batch wrote to a second OS page"
                            );
                        }
                        seen[i] = true;
                        order.push(i as u32);
                        // SAFETY: a free-list block of this page holds its next link.
                        b = unsafe { (*b).next };
                    }
                    page.free = core::ptr::null_mut();
                    // The carved ranges name exactly the blocks carved so far, in order.
                    let ranges = page.carved_ranges();
                    assert_eq!(ranges[0].len() + ranges[1].len(), page.bump as usize, "size {size}");
                    assert!(ranges[0].is_empty() || ranges[0].end <= ranges[1].start, "size {size}");
                    for (i, &carved) in seen.iter().enumerate() {
                        assert_eq!(carved, ranges.iter().any(|r| r.contains(&i)), "size {size}: block {i}");
                    }
                }
                assert!(seen.iter().all(|&s| s), "size {size}: a block was never carved");
                assert_eq!(order[0], page.first, "size {size}: the first block handed out");
                assert_eq!(order[(capacity - page.first) as usize % capacity as usize], 0, "round the page");
                let expected: Vec<u32> = (0..capacity).map(|k| (page.first + k) % capacity).collect();
                assert_eq!(order, expected, "size {size}: in address order from the first, round the page");
            }
        }
        assert!(firsts.iter().filter(|&&f| f == 0).count() < firsts.len() / 2, "{firsts:?}");
        // SAFETY: allocated above with these layouts.
        unsafe {
            dealloc(start, span);
            dealloc(meta, header);
        }
    }

    #[test]
    fn geometry_fits_blocks_and_metadata() {
        for class in 0..size_class::CLASS_COUNT {
            let size = size_class::class_size(class);
            let slices = if size_class::is_small_class(class) { 1 } else { 8 };
            let g = geometry(size, slices);
            assert!(g.capacity >= 7, "class {size}: {} blocks", g.capacity);
            let span = slices * SLICE_SIZE;
            if g.meta_in_header {
                assert!(g.capacity * size <= span);
                assert!(g.capacity * META_PER_BLOCK <= slices * HEADER_META_PER_SLICE);
            } else {
                assert!(((g.capacity * size + 7) & !7) + g.capacity * META_PER_BLOCK <= span);
            }
        }
    }
}
