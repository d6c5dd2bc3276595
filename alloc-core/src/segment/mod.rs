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

/// The one large block of a large segment.
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
    /// For each slice in use, the first slice of its page.
    slice_first: [u8; SLICES],
    pub(crate) large: LargeBlock,
    pub(crate) pages: [Page; SLICES],
}

/// Offset of the header's metadata area.
const HEADER_META: usize = (core::mem::size_of::<Segment>() + 63) & !63;
const _: () = assert!(HEADER_META + SLICES * HEADER_META_PER_SLICE <= SLICE_SIZE);

impl Segment {
    /// Mutable access to the page covering `addr`.
    ///
    /// # Safety
    /// - As [`Segment::page_of`], and the caller has the right to mutate that page (its
    ///   owner, or the pool lock for a free span).
    #[inline]
    pub(crate) unsafe fn page_of_mut(seg: *mut Segment, addr: usize) -> *mut Page {
        let slice = (addr - seg as usize) >> SLICE_SHIFT;
        // SAFETY: `seg` is a live page segment; slice < SLICES for addresses inside it.
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
pub(crate) struct Pool {
    /// Every live segment, pages and large.
    all: *mut Segment,
    /// Page segments with at least one free slice.
    avail: *mut Segment,
    /// Freed large segments kept for reuse (contents dirty).
    large_cache: [*mut Segment; LARGE_CACHE_SLOTS],
    large_cached_bytes: usize,
    /// Statistics.
    pub(crate) segments: usize,
    pub(crate) mapped_bytes: usize,
}

// SAFETY: the raw pointers name segments, which are process-wide; the lock serializes use.
unsafe impl Send for Pool {}

pub(crate) static POOL: SpinLock<Pool> = SpinLock::new(Pool {
    all: core::ptr::null_mut(),
    avail: core::ptr::null_mut(),
    large_cache: [core::ptr::null_mut(); LARGE_CACHE_SLOTS],
    large_cached_bytes: 0,
    segments: 0,
    mapped_bytes: 0,
});

impl Pool {
    fn link_all(&mut self, seg: *mut Segment) {
        // SAFETY: `seg` is a fresh or reused segment header we own under the lock, and
        // `self.all` is null or a live segment.
        unsafe {
            (*seg).prev_all = core::ptr::null_mut();
            (*seg).next_all = self.all;
            if !self.all.is_null() {
                (*self.all).prev_all = seg;
            }
        }
        self.all = seg;
        self.segments += 1;
        // SAFETY: as above.
        self.mapped_bytes += unsafe { (*seg).len };
    }

    fn unlink_all(&mut self, seg: *mut Segment) {
        // SAFETY: `seg` is on the list (caller), its neighbours are live segments.
        unsafe {
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
        }
        self.segments -= 1;
    }

    fn link_avail(&mut self, seg: *mut Segment) {
        // SAFETY: as in `link_all`.
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

    fn unlink_avail(&mut self, seg: *mut Segment) {
        // SAFETY: as in `unlink_all`.
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

    /// Calls `f` for every live segment (the caller holds the lock, or the world is stopped
    /// with the lock held by the checker).
    pub(crate) fn for_each_segment(&self, mut f: impl FnMut(*mut Segment)) {
        let mut s = self.all;
        while !s.is_null() {
            f(s);
            // SAFETY: list members are live segment headers.
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

fn new_page_segment(pool: &mut Pool) -> Option<*mut Segment> {
    let seg = os::map_aligned(SEGMENT_SIZE, SEGMENT_SIZE)?.as_ptr().cast::<Segment>();
    // SAFETY: fresh zeroed mapping of SEGMENT_SIZE bytes; an all-zero Segment is valid
    // (null links, free page descriptors); we set the fields that must not be zero.
    unsafe {
        (*seg).kind = KIND_PAGES;
        (*seg).len = SEGMENT_SIZE;
        (*seg).free_slices = ALL_FREE;
        map::insert(seg as usize, SEGMENT_SIZE);
    }
    pool.link_all(seg);
    pool.link_avail(seg);
    Some(seg)
}

/// Takes a span of `slices` slices (1 or 8) and sets it up as a page of `class`.
/// Returns null when out of memory.
pub(crate) fn acquire_page(slices: usize, class: usize, internal: bool) -> *mut Page {
    let mut pool = POOL.lock();
    let mut seg = pool.avail;
    let mut first = None;
    while !seg.is_null() {
        // SAFETY: avail members are live page segments.
        first = find_run(unsafe { (*seg).free_slices }, slices);
        if first.is_some() {
            break;
        }
        // SAFETY: as above.
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
    // SAFETY: `seg` is a live page segment and the slices [first, first + slices) are
    // free: we hold the lock, so we may claim them and set up their descriptor.
    unsafe { claim(&mut pool, seg, first, slices, class, internal) }
}

/// # Safety
/// - See the call in [`acquire_page`].
unsafe fn claim(
    pool: &mut SpinGuard<'_, Pool>,
    seg: *mut Segment,
    first: usize,
    slices: usize,
    class: usize,
    internal: bool,
) -> *mut Page {
    let mask = ((1u64 << slices) - 1) << first;
    // SAFETY: per the caller's contract.
    unsafe {
        (*seg).free_slices &= !mask;
        for i in first..first + slices {
            (*seg).slice_first[i] = first as u8;
        }
        if (*seg).free_slices == 0 {
            pool.unlink_avail(seg);
        }
        let start = (seg as *mut u8).add(first << SLICE_SHIFT);
        let header_meta = (seg as *mut u8).add(HEADER_META + first * HEADER_META_PER_SLICE);
        let page = core::ptr::addr_of_mut!((*seg).pages[first]);
        (*page).init(start, slices, class, header_meta, internal);
        page
    }
}

/// Gives a page's span back to its segment; unmaps the segment when it becomes empty.
///
/// # Safety
/// - `page` is a page in use with no live block, removed from every heap queue, and
///   nobody will touch it again.
pub(crate) unsafe fn release_page(page: *mut Page) {
    let seg = Segment::of_page(page);
    let mut pool = POOL.lock();
    // SAFETY: per the contract the page is dead; we hold the lock for its segment.
    let empty = unsafe {
        let first = page.offset_from(core::ptr::addr_of!((*seg).pages[0])) as usize;
        let slices = (*page).slices as usize;
        (*page).flags = 0;
        (*page).slices = 0;
        (*page).capacity = 0;
        (*seg).free_slices |= ((1u64 << slices) - 1) << first;
        if !(*seg).in_avail {
            pool.link_avail(seg);
        }
        (*seg).free_slices == ALL_FREE
    };
    if empty && pool.segments > 1 {
        pool.unlink_avail(seg);
        pool.unlink_all(seg);
        // SAFETY: the segment is empty and off every list; nobody refers to it.
        unsafe { map::remove(seg as usize, SEGMENT_SIZE) };
        drop(pool);
        // SAFETY: as above.
        unsafe { os::unmap(seg.cast(), SEGMENT_SIZE) };
    }
}

/// Offset of a large block from its segment's start, for an alignment.
fn large_offset(align: usize) -> usize {
    let header = (core::mem::size_of::<Segment>() + os::OS_PAGE - 1) & !(os::OS_PAGE - 1);
    (header + align - 1) & !(align - 1)
}

/// Allocates a large block of `size` bytes aligned to `align`, recording `stack` and
/// `flags`. Zeroes it if `zeroed` and the memory may be dirty. Null when out of memory.
pub(crate) fn alloc_large(size: usize, align: usize, stack: u32, flags: u8, zeroed: bool) -> *mut u8 {
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
    // SAFETY: a cached segment's header is intact.
    let len = if dirty { unsafe { (*seg).len } } else { len };
    if seg.is_null() {
        drop(pool);
        seg = match os::map_aligned_committed(len, align.max(SEGMENT_SIZE)) {
            Some(p) => p.as_ptr().cast(),
            None => return core::ptr::null_mut(),
        };
        pool = POOL.lock();
    }
    let start = seg as usize + offset;
    if zeroed && dirty {
        // SAFETY: the block range lies inside the segment we own.
        unsafe { core::ptr::write_bytes(start as *mut u8, 0, size) };
    }
    // SAFETY: `seg` maps `len` bytes and is ours alone until it is linked below.
    unsafe {
        (*seg).kind = KIND_LARGE;
        (*seg).len = len;
        (*seg).large = LargeBlock { start, size, capacity: len - offset, stack, flags, block_id_base: 0 };
        map::insert(seg as usize, len);
    }
    pool.link_all(seg);
    start as *mut u8
}

/// Takes the smallest cached segment of at least `len` bytes and at most four times
/// that (a growing `Vec` then reuses the memory it freed at its previous size, already
/// faulted in, instead of mapping fresh pages).
fn take_cached_large(pool: &mut Pool, len: usize) -> *mut Segment {
    // SAFETY: cached entries are live mappings we own.
    let fits =
        |s: *mut Segment| !s.is_null() && unsafe { (*s).len } >= len && unsafe { (*s).len } <= len.saturating_mul(4);
    // SAFETY: as above.
    let best =
        pool.large_cache.iter().enumerate().filter(|(_, s)| fits(**s)).min_by_key(|(_, s)| unsafe { (***s).len });
    let Some((i, _)) = best else { return core::ptr::null_mut() };
    let seg = core::mem::replace(&mut pool.large_cache[i], core::ptr::null_mut());
    // SAFETY: as above.
    pool.large_cached_bytes -= unsafe { (*seg).len };
    os::unregister_own_mapping(seg as usize);
    seg
}

/// Frees a large segment's block: caches the segment for reuse or unmaps it.
///
/// # Safety
/// - `seg` is a live large segment whose block the caller is freeing (LIVE was set).
pub(crate) unsafe fn free_large(seg: *mut Segment) {
    let mut pool = POOL.lock();
    pool.unlink_all(seg);
    // SAFETY: per the contract; the segment is off the list now.
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
    // SAFETY: off every list and map: nobody refers to it.
    unsafe { os::unmap(seg.cast(), len) };
}

/// Grows a large block beyond its segment by moving its pages to a larger, fresh segment
/// with `mremap` (no copy). Returns the new block start, or null if the kernel refuses
/// (the old block is then untouched).
///
/// # Safety
/// - `seg` is a live large segment whose block the caller owns; `new_size` exceeds its
///   capacity; the block's alignment is at most [`SEGMENT_SIZE`].
pub(crate) unsafe fn grow_large(seg: *mut Segment, new_size: usize) -> *mut u8 {
    // SAFETY: per the contract the header is live.
    let (old_len, offset) = unsafe { ((*seg).len, (*seg).large.start - seg as usize) };
    let Some(new_len) = offset.checked_add(new_size).and_then(|n| os::round_up(n, SEGMENT_SIZE)) else {
        return core::ptr::null_mut();
    };
    let Some(target) = os::map_aligned(new_len, SEGMENT_SIZE) else {
        return core::ptr::null_mut();
    };
    let mut pool = POOL.lock();
    pool.unlink_all(seg);
    // SAFETY: the old segment is a whole mapping of ours, off the list and out of the map;
    // `target` is a fresh reservation of ours: the move replaces it with the old pages,
    // leaving the old range unmapped, and only the new address is used afterwards.
    let moved = unsafe {
        map::remove(seg as usize, old_len);
        crate::platform::mremap_fixed(seg.cast(), old_len, new_len, target.as_ptr())
    };
    let Ok(moved) = moved else {
        // SAFETY: the reservation is unused; the old segment goes back as it was.
        unsafe {
            os::unmap(target.as_ptr(), new_len);
            map::insert(seg as usize, old_len);
        }
        pool.link_all(seg);
        return core::ptr::null_mut();
    };
    let new_seg = moved.as_ptr().cast::<Segment>();
    // SAFETY: the header moved with the pages; fix the fields that hold addresses.
    unsafe {
        (*new_seg).len = new_len;
        (*new_seg).large.start = new_seg as usize + offset;
        (*new_seg).large.capacity = new_len - offset;
        (*new_seg).large.size = new_size;
        map::insert(new_seg as usize, new_len);
        pool.link_all(new_seg);
        (*new_seg).large.start as *mut u8
    }
}

/// Describes which slices of a page segment are in use, for walks: calls `f(page)` for
/// each page in use.
///
/// # Safety
/// - `seg` is a live page segment and the pool lock is held (or the world is stopped with
///   it held).
pub(crate) unsafe fn for_each_page(seg: *mut Segment, mut f: impl FnMut(*mut Page)) {
    let mut i = 1;
    while i < SLICES {
        // SAFETY: per the contract.
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
}
