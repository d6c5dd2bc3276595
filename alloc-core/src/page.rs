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
//! # Live bits
//! Whether a block is live is not in its word but in the page's live bitmap, one bit a
//! block, at the start of the page's area in the segment header (at most 512 bytes: 4,095
//! blocks of 8 bytes). A free reads and clears one bit there and does not touch the
//! block's word at all. Why: a program that frees a large heap in an order unrelated to
//! the one it allocated it in (the `burst` workload: 4 million blocks freed at random)
//! missed the cache on every free's metadata word, 8 bytes a block spread over the whole
//! heap; the bitmaps of the same heap are 64 times smaller, and packed into the segment
//! headers. The word's flags byte is meaningful only while the block's bit is set: a
//! block whose bit is clear has no flags ([`Page::flags_of`] returns 0), whatever its
//! word still holds.
//!
//! # Invariants
//! - `used` = blocks handed out and not yet freed locally or collected from `thread_free`.
//! - `free` ∪ `thread_free` ∪ {the blocks carved `bump`-th and after (`carved_index`)} ∪
//!   {blocks with LIVE set} ∪ {blocks
//!   freed by another thread and not yet collected} = all blocks, disjointly;
//!   LIVE (the block's live bit) is set exactly for blocks handed out and not freed by
//!   the owner nor collected from `thread_free` (a block another thread freed keeps LIVE
//!   until collection).
//! - A block whose live bit is set has LIVE in its flags byte too; a free clears the
//!   bit only, so a free block's byte may still say LIVE (stale: every reader asks the
//!   bit first, or, the mark, has its marks set for every free slot).
//! - Only the owning heap touches `free`, `bump` and the metadata of blocks it hands out;
//!   any thread may push onto `thread_free`.
//!
//! # Who calls it
//! `heap` (allocate, free, collect), `segment` (init, on page acquisition under the pool's
//! lock), the leak check's heap walk (reads, with the world stopped).

use crate::size_class;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// log2 of the slice size.
pub(crate) const SLICE_SHIFT: usize = 16;
/// Slice size: 64 KiB, the unit pages are made of.
pub(crate) const SLICE_SIZE: usize = 1 << SLICE_SHIFT;
/// Metadata bytes per block: one word of flags, size and stack id.
pub(crate) const META_PER_BLOCK: usize = 8;

/// A block's metadata word: the flags in the low byte, the requested size in the next
/// 24 bits (`size < 2^24`), the stack id in the high 32.
#[inline(always)]
const fn pack_word(flags: u8, size: u32, stack: u32) -> u64 {
    flags as u64 | (size as u64) << 8 | (stack as u64) << 32
}

/// The flags, size and stack id of a metadata word ([`pack_word`]).
#[inline(always)]
const fn unpack_word(word: u64) -> (u8, u32, u32) {
    (word as u8, (word >> 8) as u32 & 0xFF_FFFF, (word >> 32) as u32)
}
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

/// Bytes of the segment header's metadata area reserved for each slice: a page's live
/// bits, then, for a page of at most 96 blocks a slice, its metadata words (96 blocks:
/// 16 bytes of bits and 768 of words).
pub(crate) const HEADER_META_PER_SLICE: usize = 784;

/// Words of live bits for `capacity` blocks.
#[inline]
pub(crate) const fn live_words(capacity: usize) -> usize {
    capacity.div_ceil(64)
}
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

/// [`Page::heap`] of an in-use page no heap owns: just set up and not yet taken, or
/// abandoned by a thread that ended. Never a thread's heap slot (`thread_state`: 0, 1 or a
/// heap's address), so that a free that finds its page's owner equal to its thread's slot
/// knows the slot names a heap without testing it.
pub(crate) const NO_OWNER: usize = 2;
const _: () = assert!(NO_OWNER != crate::thread_state::NO_HEAP && NO_OWNER != crate::thread_state::HEAP_RETIRED);

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
    /// The bytes from `start` that blocks cover, `capacity * block_size`, while the page
    /// is in use; 0 while the descriptor is free. An address whose offset from `start`
    /// (wrapping) is below it lies in a block of an in-use page: one compare says "in
    /// use, at or after `start` and before the blocks' end" on the free path.
    pub(crate) limit: u32,
    /// `ceil(2^40 / block_size)`: `index = (offset * recip) >> 40` is exact for every
    /// offset below 2^19 (512 KiB) and block size up to 2^16 (tested exhaustively).
    pub(crate) recip: u64,
    pub(crate) start: *mut u8,
    /// One metadata word per block (see the module note).
    pub(crate) meta: *mut u64,
    /// The owning heap (a `*mut Heap`), or [`NO_OWNER`] (a page just set up, or
    /// abandoned); 0 only in a descriptor never used.
    pub(crate) heap: AtomicUsize,
    /// The live bits, `live_words(capacity)` words in the segment header (see the
    /// module note). On the line every free reads anyway, so that the bits' address
    /// waits on no other line. Atomic words, loaded and stored (never a locked
    /// read-modify-write): the owner (or the leak check, with the world stopped) is
    /// their only writer, but any thread may read them (`block_info`).
    pub(crate) live: *const AtomicU64,
    /// Links in the owning heap's queue for this class.
    pub(crate) next: *mut Page,
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
    /// The index of the block handed out first: blocks are carved from there round the
    /// page (see [`Page::carve`]). Varies from one initialization to the next.
    pub(crate) first: u32,
    /// The page may hold blocks of generation 0: set by the owner each time the page
    /// becomes its heap's current page (the only page blocks are taken from), cleared by
    /// a leak sweep that found none left in a page that is not current (`heap::walk`).
    /// A young sweep visits the blocks of these pages only.
    pub(crate) young: AtomicBool,
    /// Link in the owning heap's queue for this class (with `next`, on line 0).
    pub(crate) prev: *mut Page,
    _pad1: [u8; 24],
    // -- line 2: other threads'
    /// Blocks freed by threads other than the owner (Treiber stack, push only; the owner
    /// takes the whole list with a swap).
    pub(crate) thread_free: AtomicPtr<Block>,
    _pad2: [u8; 56],
}

const _: () = assert!(core::mem::offset_of!(Page, free) == 64);
const _: () = assert!(core::mem::offset_of!(Page, live) < 64 && core::mem::offset_of!(Page, recip) < 64);
const _: () = assert!(core::mem::offset_of!(Page, limit) < 64 && core::mem::offset_of!(Page, start) < 64);
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
            limit: 0,
            recip: 0,
            start: core::ptr::null_mut(),
            meta: core::ptr::null_mut(),
            heap: AtomicUsize::new(0),
            thread_free: AtomicPtr::new(core::ptr::null_mut()),
            next: core::ptr::null_mut(),
            prev: core::ptr::null_mut(),
            block_id_base: 0,
            young: AtomicBool::new(false),
            live: core::ptr::null(),
            _pad1: [0; 24],
            _pad2: [0; 56],
        }
    }
}

/// The iterator of [`Page::live_indices`].
pub(crate) struct LiveIndices<'a> {
    page: &'a Page,
    /// The word `bits` came from.
    word: usize,
    /// The live bits of `word` not yet yielded.
    bits: u64,
    /// Past the last index to yield (at most the page's capacity).
    end: usize,
}

impl Iterator for LiveIndices<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.bits == 0 {
            self.word += 1;
            if self.word * 64 >= self.end {
                return None;
            }
            // SAFETY: `word * 64 < end <= capacity` of an in-use page (`live_indices`'
            // caller), so the word is one of the page's.
            let (word, _) = unsafe { self.page.live_word(self.word * 64) };
            self.bits = word.load(Ordering::Relaxed);
        }
        let i = self.word * 64 + self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        if i >= self.end {
            self.bits = 0;
            self.word = self.end.div_ceil(64);
            return None;
        }
        Some(i)
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
    if live_words(whole) * 8 + whole * META_PER_BLOCK <= HEADER_META_PER_SLICE * slices {
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
    ///   HEADER_META_PER_SLICE` writable bytes in the segment header reserved for it,
    ///   8-byte aligned.
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
        debug_assert!((header_meta as usize).is_multiple_of(8));
        let words = live_words(geo.capacity);
        let meta = if geo.meta_in_header {
            // SAFETY: the bits and the words fit the header area (`geometry`).
            unsafe { header_meta.add(words * 8) }
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
        // At most a page's span, 512 KiB.
        self.limit = (geo.capacity * block_size) as u32;
        self.recip = (1u64 << RECIP_SHIFT).div_ceil(block_size as u64);
        self.start = start;
        self.meta = meta.cast();
        self.live = header_meta.cast();
        // SAFETY: `words` words at the start of the header area (`geometry` keeps them
        // within it, at most 64 words for a slice); every block starts not live.
        unsafe { core::ptr::write_bytes(header_meta, 0, words * 8) };
        if geo.meta_in_header || !span_zeroed {
            // SAFETY: the metadata region holds `capacity` words (see `geometry`). Flags
            // must start clear: the region may hold an older page's bytes.
            unsafe { core::ptr::write_bytes(self.meta, 0, geo.capacity) };
        }
        self.thread_free.store(core::ptr::null_mut(), Ordering::Relaxed);
        self.next = core::ptr::null_mut();
        self.prev = core::ptr::null_mut();
        self.young.store(false, Ordering::Relaxed);
        self.heap.store(NO_OWNER, Ordering::Relaxed);
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
        self.index_at(addr - self.start as usize)
    }

    /// Index of the block containing the byte `offset` bytes from `start` (exact below a
    /// page's span, 512 KiB: see `recip`).
    #[inline(always)]
    pub(crate) fn index_at(&self, offset: usize) -> usize {
        ((offset as u64 * self.recip) >> RECIP_SHIFT) as usize
    }

    #[inline]
    pub(crate) fn block_start(&self, index: usize) -> usize {
        self.start as usize + index * self.block_size as usize
    }

    /// The word of live bits holding block `index`'s, and the bit's mask.
    ///
    /// # Safety
    /// - `self` is in use (its `live` words are mapped) and `index < capacity`.
    #[inline(always)]
    unsafe fn live_word(&self, index: usize) -> (&AtomicU64, u64) {
        debug_assert!(index < self.capacity as usize);
        // SAFETY: `live` points to `live_words(capacity)` words of this in-use page
        // (caller), set up by `init` and in the segment header for as long as the segment
        // lives; `index / 64` is below that count.
        (unsafe { &*self.live.add(index / 64) }, 1 << (index % 64))
    }

    /// Whether block `index` is live (its live bit).
    ///
    /// # Safety
    /// - `self` is an in-use page and `index < capacity`.
    #[inline(always)]
    pub(crate) unsafe fn is_live(&self, index: usize) -> bool {
        // SAFETY: the caller's condition.
        let (word, bit) = unsafe { self.live_word(index) };
        word.load(Ordering::Relaxed) & bit != 0
    }

    /// Sets or clears block `index`'s live bit.
    ///
    /// # Safety
    /// - `self` is in use and `index < capacity`.
    /// - The caller is the page's owner (allocating or freeing one of its blocks), or
    ///   every other thread is stopped (the leak check): the word's other bits have no
    ///   other writer meanwhile, so a load and a store make no update lost.
    #[inline(always)]
    unsafe fn set_live(&self, index: usize, live: bool) {
        // SAFETY: the caller's first condition.
        let (word, bit) = unsafe { self.live_word(index) };
        let w = word.load(Ordering::Relaxed);
        word.store(if live { w | bit } else { w & !bit }, Ordering::Relaxed);
    }

    /// Records block `index` as freed: clears its live bit, and nothing else (its
    /// metadata word keeps its stale contents, which no reader looks at while the bit is
    /// clear).
    ///
    /// # Safety
    /// - As [`Page::set_live`]'s.
    #[inline(always)]
    pub(crate) unsafe fn clear_live(&self, index: usize) {
        // SAFETY: the caller's.
        unsafe { self.set_live(index, false) }
    }

    /// [`Page::clear_live`] if block `index` is live, with one load of its word: true if
    /// it was, false (and nothing written) if it was not.
    ///
    /// # Safety
    /// - As [`Page::set_live`]'s.
    #[inline(always)]
    pub(crate) unsafe fn take_live(&self, index: usize) -> bool {
        // SAFETY: the caller's first condition.
        let (word, bit) = unsafe { self.live_word(index) };
        let w = word.load(Ordering::Relaxed);
        if w & bit == 0 {
            return false;
        }
        // The caller's second condition: no other writer of the word.
        word.store(w ^ bit, Ordering::Relaxed);
        true
    }

    /// The flags byte of block `index`: 0 for a block that is not live.
    ///
    /// # Safety
    /// - `self` is an in-use page (its `meta` array is mapped) and `index < capacity`.
    #[inline]
    pub(crate) unsafe fn flags_of(&self, index: usize) -> u8 {
        // SAFETY: the caller's condition.
        if !unsafe { self.is_live(index) } {
            return 0;
        }
        // SAFETY:
        // - `meta` points to `capacity` words of this in-use page (caller), and
        //   `index < capacity` (caller), so the word is in bounds; a live block's word
        //   was written when it was handed out.
        // - The flags are the word's low byte (x86-64 is little-endian).
        let flags = unsafe { self.meta.add(index).cast::<u8>().read() };
        debug_assert!(flags & LIVE != 0, "block {index}: live bit set, LIVE flag clear");
        flags
    }

    /// The live blocks among `indices` (those at or past `capacity` are none), in
    /// increasing order, read from the live bits alone, 64 blocks a load: a page of few
    /// live blocks costs few loads, and no metadata word is read.
    ///
    /// # Safety
    /// - `self` is an in-use page, whose live bits nobody changes while the iterator is
    ///   in use but the iterator's user (the world is stopped, or the caller is the
    ///   owner's only user).
    pub(crate) unsafe fn live_indices(&self, indices: core::ops::Range<usize>) -> LiveIndices<'_> {
        let end = indices.end.min(self.capacity as usize);
        let start = indices.start.min(end);
        let mut it = LiveIndices { page: self, word: start / 64, bits: 0, end };
        if start < end {
            // SAFETY: `start < end <= capacity` of an in-use page (caller).
            let (word, _) = unsafe { self.live_word(start) };
            it.bits = word.load(Ordering::Relaxed) & (!0u64 << (start % 64));
        }
        it
    }

    /// Records a block as handed out.
    ///
    /// # Safety
    /// - `self` is in use and `index < capacity`.
    /// - The caller is the page's owner and just took block `index` from the free list:
    ///   nobody else reads or writes the block's word meanwhile (the leak check reads
    ///   metadata only with the owner stopped).
    /// - `size < 2^24` (page blocks are at most 64 KiB); `flags` has `LIVE`.
    #[inline]
    pub(crate) unsafe fn set_meta(&self, index: usize, size: u32, stack: u32, flags: u8) {
        debug_assert!(index < self.capacity as usize);
        debug_assert!(size < 1 << 24);
        debug_assert!(flags & LIVE != 0);
        // SAFETY: in bounds (first bullet); the owner alone writes a block's word and
        // bit while it moves between free and live (second bullet).
        unsafe {
            self.meta.add(index).write(pack_word(flags, size, stack));
            self.set_live(index, true);
        }
    }

    /// Sets the flags of block `index`: without `LIVE`, the block is recorded as not live
    /// (its live bit cleared, its word left alone); with it, the flags byte is written
    /// and the bit set.
    ///
    /// # Safety
    /// - `self` is in use and `index < capacity`.
    /// - The caller may write the block's metadata: it is the page's owner allocating or
    ///   freeing the block, or it holds a live pointer to the block (`ignore`), or every
    ///   other thread is stopped (the leak check).
    /// - A caller that is not the page's owner and does not have the world stopped keeps
    ///   the block live (`flags` has `LIVE`, and the block is live): only then is the
    ///   live word, which other blocks' bits share, left unwritten.
    #[inline]
    pub(crate) unsafe fn set_flags(&self, index: usize, flags: u8) {
        debug_assert!(index < self.capacity as usize);
        // SAFETY: in bounds (first bullet); no other writer of the byte (second bullet);
        // the flags are the word's low byte, written alone; the live word is written only
        // when the bit changes, which the third bullet keeps to the owner or a stopped
        // world.
        unsafe {
            let live = flags & LIVE != 0;
            if live {
                self.meta.add(index).cast::<u8>().write(flags);
            }
            if self.is_live(index) != live {
                self.set_live(index, live);
            }
        }
    }

    /// The blocks of word `k` of the live bits that are not live (those past `capacity`
    /// excluded), as the bits of a word: bit `j` for block `64 k + j`.
    ///
    /// # Safety
    /// - `self` is in use and `k < live_words(capacity)`.
    #[inline]
    pub(crate) unsafe fn empty_in_word(&self, k: usize) -> u64 {
        let capacity = self.capacity as usize;
        debug_assert!(k < live_words(capacity));
        // SAFETY: `64 k < capacity` (caller).
        let (word, _) = unsafe { self.live_word(64 * k) };
        let in_page = if capacity - 64 * k >= 64 { !0 } else { (1u64 << (capacity - 64 * k)) - 1 };
        !word.load(Ordering::Relaxed) & in_page
    }

    /// Block `index`'s flags, requested size and stack id, from its word alone: exact for
    /// a live block, but a freed block's word may still say LIVE. For the mark, whose bits
    /// rule out free slots before it asks (`HeapView::mark_empty_slots`).
    ///
    /// # Safety
    /// - `self` is in use and `index < capacity`.
    #[inline]
    pub(crate) unsafe fn word_of(&self, index: usize) -> (u8, u32, u32) {
        debug_assert!(index < self.capacity as usize);
        // SAFETY: in bounds (caller); every word of an in-use page is initialized.
        unpack_word(unsafe { self.meta.add(index).read() })
    }

    /// Block `index`'s flags, requested size and stack id, from one read of its live bit
    /// and one of its word: flags 0 (and the word's stale size and stack) for a block
    /// that is not live. For readers that want several of them: the live bit is an
    /// atomic load, which the compiler does not merge, so each [`Page::flags_of`] reads
    /// it again.
    ///
    /// # Safety
    /// - `self` is in use and `index < capacity`.
    #[inline]
    pub(crate) unsafe fn meta_of(&self, index: usize) -> (u8, u32, u32) {
        // SAFETY: the caller's condition, for both.
        let (live, (flags, size, stack)) = unsafe { (self.is_live(index), self.word_of(index)) };
        (if live { flags } else { 0 }, size, stack)
    }

    /// Requested size and stack id of block `index`.
    ///
    /// # Safety
    /// - `self` is in use and `index < capacity`.
    #[inline]
    pub(crate) unsafe fn size_and_stack(&self, index: usize) -> (u32, u32) {
        debug_assert!(index < self.capacity as usize);
        // SAFETY: in bounds and initialized (caller; see `flags_of`).
        let (_, size, stack) = unsafe { self.word_of(index) };
        (size, stack)
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
            let (flags, _, _) = unpack_word(self.meta.add(index).read());
            self.meta.add(index).write(pack_word(flags, size, stack));
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
                if !self.is_live(index) {
                    self.used.store(self.used.load(Ordering::Relaxed) - n, Ordering::Relaxed);
                    return Err(list);
                }
                self.clear_live(index);
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
    use std::alloc::{alloc_zeroed, dealloc, Layout};

    /// A zeroed one-slice span and one slice's header area for a page under test, freed
    /// when dropped.
    struct Scratch {
        start: *mut u8,
        area: *mut u8,
    }

    impl Scratch {
        const SPAN: Layout = match Layout::from_size_align(SLICE_SIZE, SLICE_SIZE) {
            Ok(l) => l,
            Err(_) => panic!("a slice is a valid layout"),
        };
        const AREA: Layout = match Layout::from_size_align(HEADER_META_PER_SLICE, 64) {
            Ok(l) => l,
            Err(_) => panic!("a header area is a valid layout"),
        };

        fn new() -> Self {
            // SAFETY: non-zero sizes; both freed in `drop` with the same layouts.
            let (start, area) = unsafe { (alloc_zeroed(Self::SPAN), alloc_zeroed(Self::AREA)) };
            assert!(!start.is_null() && !area.is_null());
            Self { start, area }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with these layouts, freed once.
            unsafe {
                dealloc(self.start, Self::SPAN);
                dealloc(self.area, Self::AREA);
            }
        }
    }

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
        let scratch = Scratch::new();
        let (start, meta) = (scratch.start, scratch.area);
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
                }
                assert!(seen.iter().all(|&s| s), "size {size}: a block was never carved");
                assert_eq!(order[0], page.first, "size {size}: the first block handed out");
                assert_eq!(order[(capacity - page.first) as usize % capacity as usize], 0, "round the page");
                let expected: Vec<u32> = (0..capacity).map(|k| (page.first + k) % capacity).collect();
                assert_eq!(order, expected, "size {size}: in address order from the first, round the page");
            }
        }
        assert!(firsts.iter().filter(|&&f| f == 0).count() < firsts.len() / 2, "{firsts:?}");
    }

    #[test]
    fn geometry_fits_blocks_and_metadata() {
        for class in 0..size_class::CLASS_COUNT {
            let size = size_class::class_size(class);
            let slices = if size_class::is_small_class(class) { 1 } else { 8 };
            let g = geometry(size, slices);
            assert!(g.capacity >= 7, "class {size}: {} blocks", g.capacity);
            let span = slices * SLICE_SIZE;
            let bits = live_words(g.capacity) * 8;
            if g.meta_in_header {
                assert!(g.capacity * size <= span);
                assert!(bits + g.capacity * META_PER_BLOCK <= slices * HEADER_META_PER_SLICE);
            } else {
                assert!(bits <= HEADER_META_PER_SLICE, "class {size}: the live bits fit one slice's area");
                assert!(((g.capacity * size + 7) & !7) + g.capacity * META_PER_BLOCK <= span);
            }
        }
    }

    #[test]
    fn a_block_is_live_exactly_while_its_bit_is_set_whatever_its_word_holds() {
        let scratch = Scratch::new();
        let (start, area) = (scratch.start, scratch.area);
        for size in [8, 16, 312, 1024, 8192] {
            // An earlier page's bits and words: every byte set.
            // SAFETY: the header area is `HEADER_META_PER_SLICE` bytes, ours.
            unsafe { core::ptr::write_bytes(area, 0xFF, HEADER_META_PER_SLICE) };
            let mut page = Page::empty();
            // SAFETY: a free descriptor over a mapped, unused span (not zeroed: a span
            // metadata array is cleared too) and a header area of one slice's size.
            unsafe { page.init(start, 1, size_class::class_of(size), area, false, false) };
            let capacity = page.capacity as usize;
            // SAFETY: every call below is for `i < capacity` of an in-use page this test
            // alone uses, as owner.
            unsafe {
                assert!((0..capacity).all(|i| page.flags_of(i) == 0 && !page.is_live(i)), "size {size}: stale bits");
                // Blocks on both sides of word boundaries, and a spread.
                let chosen: Vec<usize> = (0..capacity).filter(|i| i % 3 == 0 || i % 64 == 63 || i % 64 == 1).collect();
                for &i in &chosen {
                    page.set_meta(i, size as u32 - 1, i as u32, LIVE | (1 << GEN_SHIFT));
                }
                for i in 0..capacity {
                    let want = if chosen.contains(&i) { LIVE | (1 << GEN_SHIFT) } else { 0 };
                    assert_eq!(page.flags_of(i), want, "size {size} block {i}");
                }
                for &i in &chosen {
                    assert_eq!(page.size_and_stack(i), (size as u32 - 1, i as u32));
                    page.set_flags(i, LIVE | IGNORED);
                    assert!(page.is_live(i) && page.flags_of(i) == LIVE | IGNORED);
                }
                // Freeing takes the bit once, and leaves the neighbours' alone.
                for &i in chosen.iter().step_by(2) {
                    assert!(page.take_live(i), "size {size} block {i}");
                    assert!(!page.take_live(i), "size {size} block {i}: taken twice");
                    // The word still says LIVE: it is not read.
                    assert_eq!(page.meta.add(i).cast::<u8>().read() & LIVE, LIVE);
                    assert_eq!(page.flags_of(i), 0);
                }
                for (k, &i) in chosen.iter().enumerate() {
                    assert_eq!(page.is_live(i), k % 2 == 1, "size {size} block {i}");
                }
                // Flags without LIVE free the block too; with it, the bit comes back.
                if let Some(&i) = chosen.get(1) {
                    page.set_flags(i, 0);
                    assert!(!page.is_live(i) && page.flags_of(i) == 0);
                    page.set_flags(i, LIVE | REPORTED);
                    assert_eq!(page.flags_of(i), LIVE | REPORTED);
                }
                // The live blocks of any range, word by word, are those whose bit is set.
                let c = capacity;
                for r in [
                    0..c,
                    0..c + 100,
                    1..c,
                    63..65,
                    64..128,
                    65..c.saturating_sub(1),
                    5..5,
                    c..c + 64,
                    core::ops::Range { start: 7, end: 3 },
                ] {
                    let want: Vec<usize> = r.clone().filter(|&i| i < c && page.is_live(i)).collect();
                    let got: Vec<usize> = page.live_indices(r.clone()).collect();
                    assert_eq!(got, want, "size {size} range {r:?}");
                }
            }
        }
    }
}
