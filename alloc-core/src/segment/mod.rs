//! Segments: 4 MiB-aligned regions from the OS, split into pages; and large blocks, which
//! get a segment of their own.
//!
//! # Layout of a page segment (4 MiB, 64 slices of 64 KiB)
//! ```text
//!  slice 0                      slices 1..64
//! +----------------------------+-----------+-----------+-- ... --+
//! | Segment header             | page      | page (8 slices,     |
//! |  fields, Page[64],         | (1 slice) |  medium classes)    |
//! |  metadata area 768 B/slice |           |                     |
//! +----------------------------+-----------+-----------+-- ... --+
//! ```
//! A medium page takes an aligned group of 8 slices (groups 1..8: 7 per segment).
//! `slice_first[i]` names the first slice of the page covering slice `i`, so any address
//! finds its page descriptor in O(1).
//!
//! # Huge pages
//! A page segment mapped once the pool holds [`HUGE_PAGES_FROM`] page segments (a heap
//! of pages past 256 MiB) is advised for transparent huge pages (`MADV_HUGEPAGE`; the
//! kernel's default mode, `madvise`, gives them to such ranges alone): a 4 MiB segment is
//! two 2 MiB pages, two page faults and two TLB entries instead of 1,024 of each. A
//! program that frees a large heap in random order misses the TLB on nearly every free
//! with 4 KiB pages (the
//! `burst` workload: 1 GiB freed at random, 89-105 -> 81-90 ns a block). A smaller heap
//! stays on 4 KiB pages: a huge page is resident whole once any byte of it is written,
//! which a program whose pages are partly used (a test binary with a thread per test,
//! each with pages of its own) pays for in resident memory. The first purge of a huge
//! segment's spans advises it back (`MADV_NOHUGEPAGE`) for good: otherwise `khugepaged`
//! would collapse the purged 2 MiB ranges back into whole huge pages as soon as any of
//! their pages is in use, and give the purged memory its residency back.
//!
//! # Large segments
//! A block above 64 KiB gets a segment of its own (a multiple of 4 MiB of address space,
//! of which only the touched pages cost memory): header, then the block at an offset that
//! meets its alignment. Growing it in place is free up to the end of the segment, and
//! beyond that `mremap` moves its pages to a larger segment without copying them.
//!
//! # Locking
//! The pool (segment lists, slice bitmaps, page initialization, the segment map, the large
//! cache) is guarded by one spin lock taken only on slow paths: acquiring or releasing a
//! page, allocating or freeing a large block. A leak check holds it while the world is
//! stopped, so page descriptors and segment lists are stable during the check.

pub(crate) mod map;
mod purge;
pub(crate) mod zeroing;

use crate::os;
use crate::page::{Page, HEADER_META_PER_SLICE, SLICE_SHIFT, SLICE_SIZE};
use crate::sync::{SpinGuard, SpinLock};
pub(crate) use map::SEGMENT_SIZE;

/// Slices per page segment.
pub(crate) const SLICES: usize = SEGMENT_SIZE / SLICE_SIZE;
/// Segment kind: split into pages.
pub(crate) const KIND_PAGES: u8 = 1;
/// Segment kind: holds one large block.
pub(crate) const KIND_LARGE: u8 = 2;
/// Bitmap of a page segment with every usable slice free (slice 0 is the header).
const ALL_FREE: u64 = !1;
/// Most bytes of freed large segments kept mapped for reuse.
const LARGE_CACHE_BYTES: usize = 64 << 20;
const LARGE_CACHE_SLOTS: usize = 8;
/// Page segments the pool holds before it advises new ones for huge pages (see the module
/// notes): 64, 256 MiB of small and medium blocks' pages (large blocks, each in a segment
/// of its own, do not count: 64 of them would otherwise turn huge pages on for a small
/// heap of pages). With 8, larson's 36 MiB heap peaked 6 MiB higher (its pages' unused
/// blocks, never touched with 4 KiB pages, are resident in a huge one); with 16,
/// indexmap's test suite under the preload library peaked at 78 MiB instead of 67
/// (LeakSanitizer: 68), its test threads' pages spread over partly used huge pages.
const HUGE_PAGES_FROM: usize = 64;

/// The one large block of a large segment.
///
/// Invariants, for the large segment `seg` that holds it:
/// - `start = seg + large_offset(align)` for the block's alignment `align` (at least
///   [`os::OS_PAGE`]), so `start` is page aligned and past the header:
///   `start >= seg + size_of::<Segment>()`;
/// - `capacity = seg.len - (start - seg)`: the block can grow in place up to the end of
///   the mapping, and `size <= capacity`;
/// - `flags` holds `LIVE` exactly while the block is handed out (plus `INTERNAL`,
///   `IGNORED`, the generation); 0 once freed;
/// - `size` is written by the block's holder (in-place realloc); the other fields by the
///   pool under its lock (set up, move, free), and `flags`/`block_id_base` also by
///   `ignore` (which the block's holder calls) and by a leak check with every other
///   thread stopped.
#[repr(C)]
pub(crate) struct LargeBlock {
    pub(crate) start: usize,
    pub(crate) size: usize,
    /// Bytes from `start` to the end of the segment: the block can grow in place to this.
    pub(crate) capacity: usize,
    pub(crate) stack: u32,
    pub(crate) flags: u8,
    pub(crate) block_id_base: u32,
}

/// A segment's header, at its first byte.
///
/// Invariants of a live segment `seg` (one on the pool's `all` list), all kept under the
/// pool lock:
/// - `seg` is [`SEGMENT_SIZE`] aligned and maps `len` bytes, a positive multiple of
///   [`SEGMENT_SIZE`], readable and writable; the segment map names exactly
///   `[seg, seg + len)` as this segment (see [`map`]);
/// - `kind` is [`KIND_PAGES`] or [`KIND_LARGE`], set before the segment is linked or
///   entered in the map, and never changed while it is live.
///
/// Page segments (`kind == KIND_PAGES`), besides:
/// - `len == SEGMENT_SIZE`; slice 0 is the header (this struct, then the metadata area
///   at `HEADER_META`), and bit 0 of `free_slices` is always clear;
/// - bit `i` of `free_slices` is set ⇔ slice `i` (`i >= 1`) belongs to no page;
/// - `pages[f].in_use()` ⇔ `pages[f].limit != 0` ⇔ `f` is the first slice of a page in
///   use; that page covers slices `[f, f + pages[f].slices)` (`slices` 1, or 8 with `f`
///   a multiple of 8), all clear in `free_slices`, and `slice_first[i] == f` for each of
///   them;
/// - for a slice `i` in no page, `slice_first[i]` is stale: 0 (the header's descriptor,
///   never in use) or in `[i & !7, i]` (the first slice of an earlier page covering `i`),
///   so a lookup through it lands on a descriptor not in use or on a page of the same
///   aligned group of 8 slices that ends before slice `i` (so `addr`'s offset from its
///   start is past its `limit`, and its block index for `addr` is `>= capacity`);
/// - `in_avail` ⇔ `free_slices != 0` ⇔ the segment is on the pool's `avail` list.
///
/// Large segments (`kind == KIND_LARGE`): see [`LargeBlock`]; `pages`, `slice_first` and
/// `free_slices` are unused (zero).
#[repr(C)]
pub(crate) struct Segment {
    pub(crate) kind: u8,
    /// Bytes mapped, a multiple of [`SEGMENT_SIZE`].
    pub(crate) len: usize,
    next_all: *mut Segment,
    prev_all: *mut Segment,
    next_avail: *mut Segment,
    prev_avail: *mut Segment,
    in_avail: bool,
    /// Bit `i` set: slice `i` is free (page segments).
    free_slices: u64,
    /// Free slices whose memory is still committed, to be purged at `purge_at` (a
    /// monotonic time in ns): see `purge`. A subset of `free_slices`.
    purge_slices: u64,
    purge_at: u64,
    /// Bit `i` set: slice `i`'s bytes are all zero, untouched since the segment was
    /// mapped or the slice purged (`MADV_DONTNEED` gives zero-filled pages back). A
    /// page set up there needs no zeroing of the metadata array it keeps in its span,
    /// and so does not commit the array's pages before their blocks are used. A subset
    /// of `free_slices`: claiming a slice clears its bit, only a purge sets it again.
    zero_slices: u64,
    /// An empty page segment kept mapped for reuse (counted in the pool's `empty_kept`).
    kept_empty: bool,
    /// The kernel was asked to back this page segment with huge pages (see the module
    /// notes), and not yet told otherwise by a purge.
    huge: bool,
    /// For each slice in use, the first slice of its page.
    slice_first: [u8; SLICES],
    pub(crate) large: LargeBlock,
    pub(crate) pages: [Page; SLICES],
}

/// Offset of the header's metadata area.
const HEADER_META: usize = (core::mem::size_of::<Segment>() + 63) & !63;
const _: () = assert!(HEADER_META + SLICES * HEADER_META_PER_SLICE <= SLICE_SIZE);

impl Segment {
    /// The descriptor of the page covering `addr`: `pages[slice_first[slice of addr]]`.
    /// For a slice in no page (or the header slice) that is a descriptor not in use, or an
    /// in-use page of the same group of 8 slices that does not cover `addr` (see the
    /// struct's invariants): callers check `in_use()` (or the `limit`) and the block index.
    ///
    /// # Safety
    /// - `seg` is a live page segment (mapped, `kind == KIND_PAGES`), and stays live for
    ///   the call: the caller holds a live block of it, or the pool lock.
    /// - `seg <= addr < seg + SEGMENT_SIZE`.
    ///
    /// The result is a raw pointer: reading the descriptor needs the page to stay as it is
    /// (a live block of it held, or the pool lock); writing it needs the page's owner (its
    /// owner lines) or the pool lock (a free descriptor).
    #[inline]
    pub(crate) unsafe fn page_of_mut(seg: *mut Segment, addr: usize) -> *mut Page {
        debug_assert!(addr >= seg as usize && addr - (seg as usize) < SEGMENT_SIZE);
        let slice = (addr - seg as usize) >> SLICE_SHIFT;
        // SAFETY:
        // - `seg` is a live page segment (caller, first bullet): its header is mapped and
        //   readable, and `slice_first` is written only under the pool lock, for slices
        //   being claimed, never for the slice of a block the caller holds.
        // - `addr - seg < SEGMENT_SIZE` (caller, second bullet), so `slice < SLICES`; both
        //   indexings are bounds checked anyway (`first < SLICES` by construction).
        //   (Masking `first` instead of the check made `__rust_dealloc` set up a frame
        //   on its fast path: two instructions more a free.)
        // - `addr_of_mut!` makes no reference to the descriptor.
        unsafe {
            let first = (*seg).slice_first[slice] as usize;
            core::ptr::addr_of_mut!((*seg).pages[first])
        }
    }

    /// The segment a page descriptor belongs to.
    #[inline]
    pub(crate) fn of_page(page: *const Page) -> *mut Segment {
        (page as usize & !(SEGMENT_SIZE - 1)) as *mut Segment
    }

    /// Whether slice `i` is part of a page in use.
    #[inline]
    fn slice_in_use(&self, i: usize) -> bool {
        i > 0 && self.free_slices & (1 << i) == 0
    }
}

/// The segment pool. All fields are guarded by [`POOL`]'s lock.
///
/// [`POOL`] holds the only `Pool` (its fields are private to this module), so a `&Pool`
/// or `&mut Pool` can only be had through a [`SpinGuard`] of that lock: holding one
/// proves the lock is held.
///
/// Invariants:
/// - `all` links, through `next_all`/`prev_all` (null-terminated at both ends, `prev_all`
///   of the head null), exactly the live segments, pages and large;
///   `segments = |all|`, `page_segments` the page segments among them, and
///   `mapped_bytes = Σ len` over them;
/// - a segment is on `all` ⇔ the segment map names it; a live segment is mapped;
/// - `avail` links, through `next_avail`/`prev_avail`, exactly the page segments with
///   `free_slices != 0`, each with `in_avail` set;
/// - each non-null `large_cache[i]` is a large segment that is mapped (`len` bytes, its
///   header intact), on no list, out of the segment map and in the own-mapping registry;
///   `large_cached_bytes = Σ len` over them.
pub(crate) struct Pool {
    /// Every live segment, pages and large.
    all: *mut Segment,
    /// Page segments with at least one free slice.
    avail: *mut Segment,
    /// Freed large segments kept for reuse (contents dirty).
    large_cache: [*mut Segment; LARGE_CACHE_SLOTS],
    large_cached_bytes: usize,
    /// The earliest `purge_at` of a page segment with slices to purge (`u64::MAX`: none).
    next_purge: u64,
    /// Empty page segments kept mapped (`kept_empty`): any number until their purge comes
    /// due, at most `purge::EMPTY_KEEP` after it.
    empty_kept: usize,
    /// Statistics.
    pub(crate) segments: usize,
    pub(crate) mapped_bytes: usize,
    /// Page segments on `all` (how large the heap of small and medium blocks is, for
    /// huge pages: see the module notes).
    page_segments: usize,
}

// SAFETY: the raw pointers name segments, which are process-wide mappings, not tied to
// any thread; every access to them through a `Pool` is made with the pool lock held
// (see the struct note), so moving the `Pool` between threads moves only the right to
// use them under that lock.
unsafe impl Send for Pool {}

pub(crate) static POOL: SpinLock<Pool> = SpinLock::new(Pool {
    all: core::ptr::null_mut(),
    avail: core::ptr::null_mut(),
    large_cache: [core::ptr::null_mut(); LARGE_CACHE_SLOTS],
    large_cached_bytes: 0,
    next_purge: u64::MAX,
    empty_kept: 0,
    segments: 0,
    mapped_bytes: 0,
    page_segments: 0,
});

impl Pool {
    /// Puts `seg` at the head of the `all` list and counts it.
    ///
    /// A safe `fn` private to this module whose callers ensure (`&mut self` proves the
    /// pool lock is held):
    /// - `seg` is the header of a segment of ours, mapped, with `len` and `kind` set, on
    ///   no list.
    fn link_all(&mut self, seg: *mut Segment) {
        debug_assert!((seg as usize).is_multiple_of(SEGMENT_SIZE));
        // SAFETY:
        // - `seg` is a mapped segment header on no list (callers), so writing its links
        //   breaks no list; links are read and written only under the pool lock, which
        //   `&mut self` proves we hold.
        // - `self.all` is null or the head of `all`, a live segment (pool invariant), whose
        //   `prev_all` is ours to write under the lock.
        unsafe {
            (*seg).prev_all = core::ptr::null_mut();
            (*seg).next_all = self.all;
            if !self.all.is_null() {
                (*self.all).prev_all = seg;
            }
        }
        self.all = seg;
        self.segments += 1;
        // SAFETY: `seg` is a mapped segment header with `len` and `kind` set (callers);
        // both are written only under the pool lock, which we hold.
        unsafe {
            self.mapped_bytes += (*seg).len;
            self.page_segments += usize::from((*seg).kind == KIND_PAGES);
        }
    }

    /// Takes `seg` off the `all` list and uncounts it.
    ///
    /// A safe `fn` private to this module whose callers ensure (`&mut self` proves the
    /// pool lock is held):
    /// - `seg` is on the `all` list.
    fn unlink_all(&mut self, seg: *mut Segment) {
        // SAFETY:
        // - `seg` is on `all` (callers): a live segment, its header mapped.
        // - Its `prev_all` and `next_all` are null or live segments on `all` (pool
        //   invariant), whose links are written only under the pool lock, which
        //   `&mut self` proves we hold.
        // - `len` is written only under that lock too.
        unsafe {
            debug_assert!(!(*seg).prev_all.is_null() || self.all == seg);
            let (p, n) = ((*seg).prev_all, (*seg).next_all);
            if p.is_null() {
                self.all = n
            } else {
                (*p).next_all = n
            }
            if !n.is_null() {
                (*n).prev_all = p;
            }
            self.mapped_bytes -= (*seg).len;
            self.page_segments -= usize::from((*seg).kind == KIND_PAGES);
        }
        self.segments -= 1;
    }

    /// Puts the page segment `seg` at the head of the `avail` list.
    ///
    /// A safe `fn` private to this module whose callers ensure (`&mut self` proves the
    /// pool lock is held):
    /// - `seg` is a live page segment, not on `avail` (`in_avail` clear: checked in
    ///   debug builds).
    fn link_avail(&mut self, seg: *mut Segment) {
        // SAFETY:
        // - `seg` is a live page segment (callers): its header is mapped.
        // - It is not on `avail` (callers), so writing its `avail` links breaks no list.
        // - `self.avail` is null or the head of `avail`, a live page segment (pool
        //   invariant); `avail` links and `in_avail` are written only under the pool lock,
        //   which `&mut self` proves we hold.
        unsafe {
            debug_assert!(!(*seg).in_avail);
            (*seg).prev_avail = core::ptr::null_mut();
            (*seg).next_avail = self.avail;
            if !self.avail.is_null() {
                (*self.avail).prev_avail = seg;
            }
            (*seg).in_avail = true;
        }
        self.avail = seg;
    }

    /// Takes the page segment `seg` off the `avail` list.
    ///
    /// A safe `fn` private to this module whose callers ensure (`&mut self` proves the
    /// pool lock is held):
    /// - `seg` is on `avail` (`in_avail` set: checked in debug builds).
    fn unlink_avail(&mut self, seg: *mut Segment) {
        // SAFETY:
        // - `seg` is on `avail` (callers): a live page segment, its header mapped.
        // - Its `prev_avail` and `next_avail` are null or live page segments on `avail`
        //   (pool invariant), whose links are written only under the pool lock, which
        //   `&mut self` proves we hold.
        unsafe {
            debug_assert!((*seg).in_avail);
            let (p, n) = ((*seg).prev_avail, (*seg).next_avail);
            if p.is_null() {
                self.avail = n
            } else {
                (*p).next_avail = n
            }
            if !n.is_null() {
                (*n).prev_avail = p;
            }
            (*seg).in_avail = false;
        }
    }

    /// Calls `f` for every live segment. `&self` proves the pool lock is held (a leak
    /// check holds it with the world stopped), so the list does not change meanwhile.
    pub(crate) fn for_each_segment(&self, mut f: impl FnMut(*mut Segment)) {
        let mut s = self.all;
        while !s.is_null() {
            f(s);
            // SAFETY: `s` is non-null and on `all` (the head, or reached through
            // `next_all`), so a live segment whose header is mapped (pool invariant);
            // `next_all` is written only under the pool lock, which `&self` proves is held
            // (and `f`, given only `*mut Segment`, cannot take it again without deadlock).
            s = unsafe { (*s).next_all };
        }
    }
}

/// Finds `slices` free slices in `free` (1, or an aligned group of 8); returns the first.
fn find_run(free: u64, slices: usize) -> Option<usize> {
    if slices == 1 {
        return (free != 0).then(|| free.trailing_zeros() as usize);
    }
    (1..SLICES / slices).map(|g| g * slices).find(|&first| {
        let mask = ((1u64 << slices) - 1) << first;
        free & mask == mask
    })
}

/// Maps a fresh page segment, records it in the segment map and links it on both lists.
/// `pool` is a `&mut Pool`: the caller holds the pool lock.
fn new_page_segment(pool: &mut Pool) -> Option<*mut Segment> {
    let seg = os::map_aligned(SEGMENT_SIZE, SEGMENT_SIZE)?.as_ptr().cast::<Segment>();
    // Huge pages for a heap past `HUGE_PAGES_FROM` segments (see the module notes). The
    // flag is written with the header, below.
    // SAFETY: `advise_huge_pages`' bullet: the fresh mapping of SEGMENT_SIZE bytes just
    // made, page aligned.
    let huge =
        pool.page_segments >= HUGE_PAGES_FROM && unsafe { os::advise_huge_pages(seg.cast(), SEGMENT_SIZE, true) };
    // SAFETY:
    // - `seg` is a fresh mapping of SEGMENT_SIZE zeroed bytes, SEGMENT_SIZE aligned, that
    //   nobody else knows: the header (which fits in slice 0, asserted with `HEADER_META`)
    //   is ours to write.
    // - An all-zero `Segment` is a valid value (null links, `in_avail` false, page
    //   descriptors not in use, `slice_first` all 0); we set the fields that must not be
    //   zero.
    // - `map::insert`: `seg` is SEGMENT_SIZE aligned, the length is SEGMENT_SIZE, the
    //   mapping is ours, and `pool` proves we hold the pool lock; the header is written
    //   before the map names the segment.
    unsafe {
        (*seg).kind = KIND_PAGES;
        (*seg).len = SEGMENT_SIZE;
        (*seg).free_slices = ALL_FREE;
        (*seg).zero_slices = ALL_FREE;
        (*seg).huge = huge;
        map::insert(seg as usize, SEGMENT_SIZE, false);
    }
    pool.link_all(seg);
    pool.link_avail(seg);
    Some(seg)
}

/// Takes a span of `slices` slices (1 or 8) and sets it up as a page of `class`.
/// Returns null when out of memory.
///
/// The page returned is in use, on no heap queue, and owned by nobody; its `heap` field
/// still holds whatever its descriptor last held (`Page::init` leaves it): the caller
/// stores itself as the owner before it hands out a block, and nobody reads the field of
/// a page none of whose blocks is out.
pub(crate) fn acquire_page(slices: usize, class: usize, internal: bool) -> *mut Page {
    let mut pool = POOL.lock();
    if pool.next_purge != u64::MAX {
        // Something waits to be purged: the clock is read only then.
        pool.purge_due(crate::platform::monotonic_ns());
    }
    let mut seg = pool.avail;
    let mut first = None;
    while !seg.is_null() {
        // SAFETY: `seg` is non-null and on `avail` (its head, or reached through
        // `next_avail`), so a live page segment, its header mapped (pool invariant);
        // `free_slices` is written only under the pool lock, which `pool` holds.
        first = find_run(unsafe { (*seg).free_slices }, slices);
        if first.is_some() {
            break;
        }
        // SAFETY: `seg` is still that live page segment on `avail`; `next_avail` is
        // written only under the pool lock, which `pool` holds.
        seg = unsafe { (*seg).next_avail };
    }
    if first.is_none() {
        match new_page_segment(&mut pool) {
            Some(s) => {
                seg = s;
                first = find_run(ALL_FREE, slices);
            }
            None => return core::ptr::null_mut(),
        }
    }
    let first = first.unwrap_or(1);
    // SAFETY:
    // - `seg` is a live page segment on `avail`: found on it, or made by
    //   `new_page_segment`, which links it there (first bullet).
    // - `find_run` returned `first`: 1 or an aligned group of 8 slices (`slices` is 1 or
    //   8, the heap's choice by class), `first >= 1` and `first + slices <= SLICES`
    //   (second bullet), every slice of the run free in `free_slices` (third bullet; for a
    //   fresh segment, `ALL_FREE` is its `free_slices`).
    // - `pool` is our guard: nobody claimed those slices since we looked.
    unsafe { claim(&mut pool, seg, first, slices, class, internal) }
}

/// Claims slices `[first, first + slices)` of `seg` and sets their page up for `class`;
/// takes `seg` off `avail` if that was its last free slice. `pool` proves the pool lock is
/// held.
///
/// # Safety
/// - `seg` is a live page segment on the pool's `avail` list.
/// - `slices` is 1 or 8, `first >= 1`, `first + slices <= SLICES`, and `first` is a
///   multiple of 8 when `slices` is 8.
/// - Every slice of `[first, first + slices)` is free in `seg`'s `free_slices`: no page
///   covers it, so its bytes hold no block, and `pages[first]` is not in use.
unsafe fn claim(
    pool: &mut SpinGuard<'_, Pool>,
    seg: *mut Segment,
    first: usize,
    slices: usize,
    class: usize,
    internal: bool,
) -> *mut Page {
    debug_assert!((slices == 1 || (slices == 8 && first.is_multiple_of(8))) && first >= 1 && first + slices <= SLICES);
    let mask = ((1u64 << slices) - 1) << first;
    // SAFETY:
    // - `seg` is a live page segment (caller, first bullet), its header mapped; `pool`
    //   proves we hold the pool lock, under which alone `free_slices`, `slice_first`,
    //   the `avail` links and free descriptors are written: our writes race with nobody.
    // - `first + slices <= SLICES` (caller, second bullet): `slice_first[i]` and
    //   `pages[first]` are in bounds, and `start` (`first` slices past `seg`) and the
    //   span after it lie inside the segment's SEGMENT_SIZE bytes.
    // - `unlink_avail` needs `seg` on `avail` (caller, first bullet).
    // - `Page::init`, first bullet: `pages[first]` is not in use (caller, third bullet),
    //   a free descriptor of a segment whose pool lock we hold; nobody else holds a
    //   reference to it (owners and block holders reach only pages in use), so `init`'s
    //   `&mut self` is unique.
    // - `Page::init`, second bullet: the span `[start, start + slices * SLICE_SIZE)` is
    //   mapped and holds no block (caller, third bullet); `header_meta` is the span's own
    //   `slices * HEADER_META_PER_SLICE` bytes of the header's metadata area, inside slice
    //   0 (`HEADER_META + SLICES * HEADER_META_PER_SLICE <= SLICE_SIZE`, asserted at
    //   compile time) and reserved to slices `[first, first + slices)`.
    unsafe {
        debug_assert!((*seg).in_avail && (*seg).free_slices & mask == mask);
        debug_assert!((*seg).zero_slices & !(*seg).free_slices == 0);
        (*seg).free_slices &= !mask;
        // Taken again before its purge: nothing to give back.
        (*seg).purge_slices &= !mask;
        let span_zeroed = (*seg).zero_slices & mask == mask;
        (*seg).zero_slices &= !mask;
        if (*seg).kept_empty {
            (*seg).kept_empty = false;
            pool.empty_kept -= 1;
        }
        for i in first..first + slices {
            (*seg).slice_first[i] = first as u8;
        }
        if (*seg).free_slices == 0 {
            pool.unlink_avail(seg);
        }
        let start = (seg as *mut u8).add(first << SLICE_SHIFT);
        let header_meta = (seg as *mut u8).add(HEADER_META + first * HEADER_META_PER_SLICE);
        let page = core::ptr::addr_of_mut!((*seg).pages[first]);
        (*page).init(start, slices, class, header_meta, internal, span_zeroed);
        page
    }
}

/// Gives a page's span back to its segment; an empty segment stays mapped until its
/// purge comes due (`purge`).
///
/// # Safety
/// - `page` is an in-use page descriptor of a live page segment.
/// - The page has no live block: `used == 0` (so its thread-free list is empty too: a
///   block another thread freed counts in `used` until its owner collects it).
/// - The page is on no heap queue, and nobody touches it or its blocks again (its owner
///   gives it up; no other thread holds one of its blocks, by the second bullet).
pub(crate) unsafe fn release_page(page: *mut Page) {
    let seg = Segment::of_page(page);
    let now = crate::platform::monotonic_ns();
    let mut pool = POOL.lock();
    // SAFETY:
    // - `page` is an in-use descriptor of the live page segment `seg` (caller, first
    //   bullet; descriptors live in the header, so `of_page` rounds down to it): `page`
    //   and `pages[0]` are in the same array and `offset_from` is the page's first slice.
    // - Nobody else reads or writes the page any more (caller, second and third bullets),
    //   so clearing its geometry races with no owner or block holder.
    // - `free_slices`, `in_avail` and the `avail` links are written only under the pool
    //   lock, which `pool` holds; `link_avail` needs `seg` off `avail`, which
    //   `!in_avail` says (segment invariant).
    let (empty, mask) = unsafe {
        debug_assert!((*page).in_use() && (*page).used.load(core::sync::atomic::Ordering::Relaxed) == 0);
        let first = page.offset_from(core::ptr::addr_of!((*seg).pages[0])) as usize;
        let slices = (*page).slices as usize;
        (*page).flags = 0;
        (*page).limit = 0;
        (*page).slices = 0;
        (*page).capacity = 0;
        let mask = ((1u64 << slices) - 1) << first;
        (*seg).free_slices |= mask;
        if !(*seg).in_avail {
            pool.link_avail(seg);
        }
        ((*seg).free_slices == ALL_FREE, mask)
    };
    // `seg` is a live page segment whose slices of `mask` were just freed.
    pool.schedule_purge(seg, mask, now);
    if empty && pool.segments > 1 {
        // Kept for reuse until its purge comes due: then unmapped if more than
        // `EMPTY_KEEP` empty segments are kept, its spans purged otherwise (`purge`).
        // SAFETY: `seg` is a live page segment; `kept_empty` is written only under the
        // pool lock, which `pool` holds.
        unsafe { (*seg).kept_empty = true };
        pool.empty_kept += 1;
    }
    pool.purge_due(now);
}

impl Pool {
    /// Unmaps the empty page segment `seg`, kept until now.
    ///
    /// A safe `fn` private to this module whose callers ensure (`&mut self` proves the
    /// pool lock is held) that `seg` is a live page segment with every slice free and
    /// `kept_empty` set (so it is on `avail` and on `all`).
    fn unmap_empty(&mut self, seg: *mut Segment) {
        // SAFETY: `seg` is live (callers): its header is mapped; its fields are written
        // only under the pool lock, which we hold.
        unsafe {
            debug_assert!((*seg).kept_empty && (*seg).free_slices == ALL_FREE && (*seg).in_avail);
            (*seg).kept_empty = false;
        }
        self.empty_kept -= 1;
        self.unlink_avail(seg);
        self.unlink_all(seg);
        // SAFETY: `[seg, seg + SEGMENT_SIZE)` was recorded with `map::insert` by
        // `new_page_segment`, and we hold the pool lock.
        unsafe { map::remove(seg as usize, SEGMENT_SIZE) };
        // SAFETY:
        // - `[seg, seg + SEGMENT_SIZE)` is the whole mapping `new_page_segment` made with
        //   `os::map_aligned`, page aligned.
        // - Nothing uses it afterwards: every slice is free, so no page, block or owner
        //   refers to it, and it is off both lists and out of the segment map, so no later
        //   lookup finds it.
        unsafe { os::unmap(seg.cast(), SEGMENT_SIZE) };
    }
}

/// Offset of a large block from its segment's start, for an alignment (a power of two,
/// at least [`os::OS_PAGE`]): the header rounded up to a page, then to `align`. Never
/// below `size_of::<Segment>()`.
fn large_offset(align: usize) -> usize {
    let header = (core::mem::size_of::<Segment>() + os::OS_PAGE - 1) & !(os::OS_PAGE - 1);
    (header + align - 1) & !(align - 1)
}

/// Where a large block goes in a reused segment whose last block started at `previous`:
/// one step of `align` further than it, or back at `base` when the block would not fit
/// (`base` is [`large_offset`]`(align)`, `len` the segment's length).
///
/// Why: a conservative scan counts a stale copy of a freed block's address as a pointer
/// into whatever block covers that address now. A segment reused with its block at the
/// same offset puts the new block right where the old pointers aim (a test harness's
/// queue kept such a copy of a freed large block's address and hid a leak allocated
/// there next). Moving on a page keeps the old start out of the new block and reuses all
/// but one page of what the old block had faulted in.
fn moved_on_offset(previous: usize, base: usize, align: usize, size: usize, len: usize) -> usize {
    let next = (previous.max(base) + align).next_multiple_of(align);
    if next.checked_add(size).is_some_and(|end| end <= len) {
        next
    } else {
        base
    }
}

/// Where a large block goes in a fresh mapping of `len` bytes: `base` plus a number of
/// `align` steps that grows by one with each fresh mapping, round the room the segment
/// has past the block.
///
/// Why: the kernel hands out addresses it took back, so a fresh mapping may sit where a
/// freed large block was, and stale copies of that block's address may survive (see
/// [`moved_on_offset`]). Blocks placed ever further in make the old starts fall before
/// the new block, not in it, until the count comes round. Pages before the block are
/// never touched: they cost address space, not memory.
fn fresh_offset(base: usize, align: usize, size: usize, len: usize) -> usize {
    use core::sync::atomic::{AtomicUsize, Ordering};
    static FRESH: AtomicUsize = AtomicUsize::new(0);
    let room = len.saturating_sub(base + size) / align;
    if room == 0 {
        return base;
    }
    base + FRESH.fetch_add(1, Ordering::Relaxed) % (room + 1) * align
}

/// Allocates a large block of `size` bytes aligned to `align`, recording `stack` and
/// `flags`. Zeroes it if `zeroed` and the memory may be dirty. Null when out of memory.
///
/// `align` must be a power of two (checked in debug builds): the heap passes a `Layout`'s.
/// Otherwise the block is misaligned, though still inside its segment and past its header.
pub(crate) fn alloc_large(size: usize, align: usize, stack: u32, flags: u8, zeroed: bool) -> *mut u8 {
    debug_assert!(align.is_power_of_two());
    let align = align.max(os::OS_PAGE);
    let offset = large_offset(align);
    let Some(len) = offset.checked_add(size).and_then(|n| os::round_up(n, SEGMENT_SIZE)) else {
        return core::ptr::null_mut();
    };
    let mut pool = POOL.lock();
    // Cached segments are aligned to SEGMENT_SIZE only.
    let mut seg = if align <= SEGMENT_SIZE { take_cached_large(&mut pool, len) } else { core::ptr::null_mut() };
    let dirty = !seg.is_null();
    // A reused segment keeps its own (larger or equal) length.
    // SAFETY: `seg` is non-null only when `take_cached_large` returned it: a cached large
    // segment, mapped with its header intact (pool invariant), now out of the cache and
    // referred to by nobody else.
    let len = if dirty { unsafe { (*seg).len } } else { len };
    if seg.is_null() {
        drop(pool);
        seg = match os::map_aligned_committed(len, align.max(SEGMENT_SIZE)) {
            Some(p) => p.as_ptr().cast(),
            None => return core::ptr::null_mut(),
        };
        pool = POOL.lock();
    }
    // Where the block goes in its segment: at the start unless new blocks are zeroed
    // (`zero_new`, exact leak-check scopes), which also keeps large blocks off the
    // addresses freed ones had. Moving them costs in-place growth room and, on reuse, a
    // page's decommit (vec-push 11% slower), so only for programs that asked.
    let offset = if !zeroing::on() {
        offset
    } else if dirty {
        // SAFETY: a cached segment, out of the cache and ours alone, its header intact
        // (`take_cached_large`): `large.start` is where its last block started.
        let previous = unsafe { (*seg).large.start } - seg as usize;
        let offset = moved_on_offset(previous, offset, align, size, len);
        if offset > previous {
            // The pages the last block began with are not the new block's: give them back.
            // SAFETY: `[seg + previous, seg + offset)` lies inside the segment's mapping,
            // page aligned (both offsets are multiples of a page), past its header and
            // before the new block: nobody uses it.
            let _ = unsafe { os::decommit((seg as usize + previous) as *mut u8, offset - previous) };
        }
        offset
    } else {
        fresh_offset(offset, align, size, len)
    };
    let start = seg as usize + offset;
    if zeroed && dirty {
        // SAFETY: `seg` is a cached segment of `len` bytes, at least the requested
        // `offset + size` rounded up (`take_cached_large` returns no shorter one), so
        // `[start, start + size)` lies inside its mapping, past its header
        // (`offset >= size_of::<Segment>()`); it is out of the cache and ours alone.
        unsafe { core::ptr::write_bytes(start as *mut u8, 0, size) };
    }
    // SAFETY:
    // - `seg` maps `len` bytes, SEGMENT_SIZE aligned: a fresh `map_aligned_committed`
    //   mapping aligned to `max(align, SEGMENT_SIZE)`, or a cached segment (aligned
    //   to SEGMENT_SIZE, taken only when `align <= SEGMENT_SIZE`) whose own `len` we took.
    //   Nobody else refers to it until it is linked and entered in the map below: its
    //   header is ours to write (an all-zero or previous `Segment` is a valid value).
    // - `map::insert`: `seg` is SEGMENT_SIZE aligned, `len` a positive multiple of
    //   SEGMENT_SIZE, the mapping is ours, and `pool` holds the pool lock again (re-taken
    //   after mapping a fresh segment); the header is written before the map names it.
    unsafe {
        (*seg).kind = KIND_LARGE;
        (*seg).len = len;
        (*seg).large = LargeBlock { start, size, capacity: len - offset, stack, flags, block_id_base: 0 };
        map::insert(seg as usize, len, true);
    }
    pool.link_all(seg);
    start as *mut u8
}

/// Takes the smallest cached segment of at least `len` bytes and at most four times
/// that (a growing `Vec` then reuses the memory it freed at its previous size, already
/// faulted in, instead of mapping fresh pages). `pool` is a `&mut Pool`: the caller holds
/// the pool lock. The segment returned is out of the cache and the own-mapping registry,
/// still mapped, its header intact.
fn take_cached_large(pool: &mut Pool, len: usize) -> *mut Segment {
    // SAFETY: `fits` dereferences `s` only when it is non-null, and non-null cache entries
    // are mapped large segments with intact headers (pool invariant); `pool` proves the
    // lock is held, so no entry changes meanwhile.
    let fits =
        |s: *mut Segment| !s.is_null() && unsafe { (*s).len } >= len && unsafe { (*s).len } <= len.saturating_mul(4);
    // SAFETY: `min_by_key` sees only the entries `fits` accepted: non-null cached
    // segments, mapped with intact headers (pool invariant).
    let best =
        pool.large_cache.iter().enumerate().filter(|(_, s)| fits(**s)).min_by_key(|(_, s)| unsafe { (***s).len });
    let Some((i, _)) = best else { return core::ptr::null_mut() };
    let seg = core::mem::replace(&mut pool.large_cache[i], core::ptr::null_mut());
    // SAFETY: `seg` is the entry `best` chose: non-null and a mapped cached segment with
    // its header intact (pool invariant); taking it out of the cache unmapped nothing.
    pool.large_cached_bytes -= unsafe { (*seg).len };
    os::unregister_own_mapping(seg as usize);
    seg
}

/// Frees a large segment's block: caches the segment for reuse or unmaps it.
///
/// # Safety
/// - `seg` is a live large segment (on `all`, named by the segment map).
/// - Its block is handed out (`LIVE` set) and the caller gives it up: nothing refers to
///   the block or the segment after this call.
pub(crate) unsafe fn free_large(seg: *mut Segment) {
    let mut pool = POOL.lock();
    // On `all` (first bullet).
    pool.unlink_all(seg);
    // SAFETY:
    // - `seg` is a live large segment (caller, first bullet): its header is mapped, and
    //   its `len` changes only under the pool lock, which `pool` holds.
    // - Writing `large.flags`: the block is given up (caller, second bullet), so its
    //   holder writes the header no more; a leak check would need the pool lock we hold.
    // - `map::remove`: `[seg, seg + len)` was recorded with `map::insert` when the
    //   segment was set up or last moved (`alloc_large`, `grow_large`), and `pool` holds
    //   the pool lock.
    let len = unsafe {
        (*seg).large.flags = 0;
        map::remove(seg as usize, (*seg).len);
        (*seg).len
    };
    if len <= LARGE_CACHE_BYTES / 4 && pool.large_cached_bytes + len <= LARGE_CACHE_BYTES {
        if let Some(slot) = pool.large_cache.iter_mut().find(|s| s.is_null()) {
            *slot = seg;
            pool.large_cached_bytes += len;
            // Out of the segment map, but its stale contents must never be scanned as
            // roots: record it as the allocator's own memory while it waits.
            os::register_own_mapping(seg as usize, len);
            return;
        }
    }
    drop(pool);
    // SAFETY:
    // - `[seg, seg + len)` is a whole mapping of ours, page aligned: the one
    //   `alloc_large` made with `map_aligned_committed`, or the `map_aligned` reservation
    //   `grow_large` moved the segment into.
    // - Nothing uses it afterwards: the block was given up (caller, second bullet), and
    //   the segment is off `all`, out of the segment map and not cached.
    unsafe { os::unmap(seg.cast(), len) };
}

/// Grows a large block beyond its segment by moving its pages to a larger, fresh segment
/// with `mremap` (no copy). Returns the new block start, or null if the kernel refuses
/// (the old block is then untouched).
///
/// # Safety
/// - `seg` is a live large segment (on `all`, named by the segment map).
/// - The caller holds its block (`LIVE` set) and nobody else uses the block or the
///   segment's header during the call, nor the old range after a success.
/// - `new_size` exceeds the block's capacity, and the block's alignment is at most
///   [`SEGMENT_SIZE`] (so moving it to a SEGMENT_SIZE-aligned place keeps it aligned).
pub(crate) unsafe fn grow_large(seg: *mut Segment, new_size: usize) -> *mut u8 {
    // SAFETY: `seg` is live (caller, first bullet): its header is mapped. `len` and
    // `large.start` are written only when the block is set up or moved, by its holder,
    // which is the caller (second bullet): nobody writes them meanwhile.
    let (old_len, offset) = unsafe { ((*seg).len, (*seg).large.start - seg as usize) };
    let Some(new_len) = offset.checked_add(new_size).and_then(|n| os::round_up(n, SEGMENT_SIZE)) else {
        return core::ptr::null_mut();
    };
    let Some(target) = os::map_aligned(new_len, SEGMENT_SIZE) else {
        return core::ptr::null_mut();
    };
    let mut pool = POOL.lock();
    // On `all` (first bullet).
    pool.unlink_all(seg);
    // SAFETY:
    // - `map::remove`: `[seg, seg + old_len)` was recorded with `map::insert` when the
    //   segment was set up or last moved, and `pool` holds the pool lock.
    // - `mremap_fixed`, first bullet: `[seg, seg + old_len)` is the segment's whole
    //   mapping (`len` is what was mapped), ours, SEGMENT_SIZE (so page) aligned.
    // - Second bullet: `[target, target + new_len)` is the `map_aligned` reservation just
    //   made, ours, page aligned, used by nobody; a fresh mapping cannot overlap the old
    //   one, which is still mapped.
    // - Third bullet: after a success nothing refers to the old range: the segment is off
    //   `all` and out of the map, and the block's only user (caller, second bullet) takes
    //   the new address from our return value.
    let moved = unsafe {
        map::remove(seg as usize, old_len);
        crate::platform::mremap_fixed(seg.cast(), old_len, new_len, target.as_ptr())
    };
    let Ok(moved) = moved else {
        // SAFETY:
        // - `os::unmap`: `[target, target + new_len)` is the whole `map_aligned`
        //   reservation, page aligned, left unused (a failed `mremap_fixed` changes
        //   nothing) and forgotten here.
        // - `map::insert`: the old segment is as it was: SEGMENT_SIZE aligned, `old_len` a
        //   positive multiple of SEGMENT_SIZE, ours; `pool` holds the pool lock.
        unsafe {
            os::unmap(target.as_ptr(), new_len);
            map::insert(seg as usize, old_len, true);
        }
        // Off every list since the unlink above.
        pool.link_all(seg);
        return core::ptr::null_mut();
    };
    let new_seg = moved.as_ptr().cast::<Segment>();
    // SAFETY:
    // - `new_seg` (the reservation's address) maps `new_len` bytes that begin with the
    //   old segment's: the header moved with the pages, so it is a valid `Segment`, and
    //   nobody else refers to it yet; we fix the fields that hold addresses or lengths.
    // - `map::insert`: `new_seg` is SEGMENT_SIZE aligned (the reservation was), `new_len`
    //   a positive multiple of SEGMENT_SIZE, the mapping ours; `pool` holds the pool lock.
    // - `link_all`: `new_seg` is on no list (its old place was unlinked before the move;
    //   the stale links it carries are overwritten).
    unsafe {
        (*new_seg).len = new_len;
        (*new_seg).large.start = new_seg as usize + offset;
        (*new_seg).large.capacity = new_len - offset;
        (*new_seg).large.size = new_size;
        map::insert(new_seg as usize, new_len, true);
        pool.link_all(new_seg);
        (*new_seg).large.start as *mut u8
    }
}

/// Describes which slices of a page segment are in use, for walks: calls `f(page)` for
/// each page in use, with an in-use descriptor of `seg` that stays in use while the pool
/// lock is held.
///
/// # Safety
/// - `seg` is a live page segment.
/// - The caller holds the pool lock (a leak check holds it with the other threads
///   stopped), so no page of `seg` is claimed or released meanwhile.
pub(crate) unsafe fn for_each_page(seg: *mut Segment, mut f: impl FnMut(*mut Page)) {
    let mut i = 1;
    while i < SLICES {
        // SAFETY:
        // - `seg` is a live page segment (caller, first bullet): its header, with
        //   `free_slices`, `slice_first` and `pages`, is mapped; `slice_in_use` borrows
        //   the header for one read of `free_slices`.
        // - Those fields, and a descriptor's `slices`, are written only under the pool
        //   lock, which the caller holds (second bullet): they are stable for the walk.
        // - A slice in use with `slice_first[i] == i` is the first slice of a page in use
        //   (segment invariants), so `pages[i]` is in use and its `slices` is 1 or 8;
        //   `i < SLICES` keeps every index in bounds.
        unsafe {
            if (*seg).slice_in_use(i) && (*seg).slice_first[i] as usize == i {
                let page = core::ptr::addr_of_mut!((*seg).pages[i]);
                f(page);
                i += ((*page).slices as usize).max(1);
                continue;
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_found_where_slices_are_free() {
        assert_eq!(find_run(ALL_FREE, 1), Some(1));
        assert_eq!(find_run(ALL_FREE, 8), Some(8));
        assert_eq!(find_run(0, 1), None);
        let only_group_3 = 0xFFu64 << 24;
        assert_eq!(find_run(only_group_3, 8), Some(24));
        assert_eq!(find_run(only_group_3 & !(1 << 27), 8), None);
    }

    #[test]
    fn a_reused_large_segment_puts_its_block_a_step_further_until_it_no_longer_fits() {
        let page = os::OS_PAGE;
        let base = large_offset(page);
        let (size, len) = (100_000, SEGMENT_SIZE);
        let mut at = base;
        let mut offsets = Vec::new();
        for _ in 0..2000 {
            let next = moved_on_offset(at, base, page, size, len);
            assert!(next >= base && next + size <= len && next.is_multiple_of(page));
            // The old start is never inside the new block, except on the way back to `base`.
            assert!(next > at || next == base, "{at} -> {next}");
            offsets.push(next);
            at = next;
        }
        assert_eq!(offsets[0], base + page);
        assert!(offsets.contains(&base), "it wraps round");
        // Aligned blocks move by their alignment.
        let big = 1 << 20;
        let b = large_offset(big);
        assert_eq!(moved_on_offset(b, b, big, size, len), b + big);
        assert_eq!(moved_on_offset(b, b, big, 3 << 20, len), b, "no room: back at the start");
    }

    #[test]
    fn a_fresh_large_segment_puts_its_block_anywhere_it_fits() {
        let page = os::OS_PAGE;
        let base = large_offset(page);
        let offsets: Vec<usize> = (0..64).map(|_| fresh_offset(base, page, 100_000, SEGMENT_SIZE)).collect();
        assert!(offsets.iter().all(|&o| o >= base && o + 100_000 <= SEGMENT_SIZE && o.is_multiple_of(page)));
        assert!(offsets.iter().filter(|&&o| o == offsets[0]).count() < 4, "{offsets:?}");
        assert_eq!(fresh_offset(base, page, SEGMENT_SIZE - base, SEGMENT_SIZE), base, "no room");
    }
}
