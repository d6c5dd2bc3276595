//! The free and in-place realloc paths: from a pointer to its block, checks for misuse,
//! and the block handed back to the page (or the large segment) it came from.
//!
//! # Fast path (free)
//! One segment-map load, page lookup by address arithmetic, the owner compared with this
//! thread's heap, the block's live bit taken (clear already: a double free), push onto
//! the page's free list, count it. No lock and no call but, rarely, one in tail position
//! (a page that emptied, a fold of the counters), so no register is saved; with the heap
//! profile on, one call to its recorder with the block's stack. Everything else (large
//! blocks, another thread's block onto its page's atomic thread-free list, misuse) goes
//! through the general path.
//!
//! # Misuse
//! A pointer outside every segment, into a header or free span, into the middle of a
//! block, or to a block already free is reported through `misuse` (which aborts). A
//! double free by another thread than the owner is caught when the owner collects its
//! thread-free list.

use super::{current_heap, Heap, HeapKind};
use crate::counters::Counters;
use crate::misuse::{self, Misuse};
use crate::page::{Block, Page, INTERNAL, LIVE};
use crate::profile::events::Sink;
use crate::segment::{self, Segment, KIND_LARGE, KIND_PAGES, SEGMENT_SIZE};
use crate::size_class::MEDIUM_MAX;
use crate::thread_state;
use crate::track;
use core::sync::atomic::Ordering;

/// Where a pointer handed to `free` lives.
pub(crate) enum Location {
    /// A block of an in-use page: the page, the block's index (below `capacity`).
    Small(*mut Page, usize),
    /// The large block of a live large segment, at its start.
    Large(*mut Segment),
}

/// The block of an in-use page that starts at `addr`, if one does: the lookup of the free
/// fast path, with no call and no error kinds ([`locate`] tells those).
#[inline(always)]
fn small_block_at(addr: usize) -> Option<(*mut Page, usize)> {
    if !segment::map::in_page_segment(addr) {
        return None;
    }
    // The map says a live page segment starts at `seg` (its own header not read for its
    // kind), and segments stay mapped while the map names them.
    let seg = (addr & !(SEGMENT_SIZE - 1)) as *mut Segment;
    // SAFETY: a live segment's header is readable.
    debug_assert_eq!(unsafe { (*seg).kind }, KIND_PAGES);
    // SAFETY: `addr` lies in this page segment (same aligned 4 MiB slot); a page
    // descriptor exists for every slice, the header slice's included (never in use: its
    // `limit` is 0, which the test below catches).
    let page = unsafe { Segment::page_of_mut(seg, addr) };
    // SAFETY: descriptors of a live segment are valid for reads.
    let p = unsafe { &*page };
    // One compare for "the page is in use (a free descriptor's limit is 0), `addr` is at
    // or after its start (else the offset wraps past any limit) and before its blocks'
    // end": then the index is below the capacity.
    let offset = addr.wrapping_sub(p.start as usize);
    if offset >= p.limit as usize {
        return None;
    }
    debug_assert!(p.in_use());
    let index = p.index_at(offset);
    debug_assert!(index < p.capacity as usize);
    if index * p.block_size as usize != offset {
        return None;
    }
    Some((page, index))
}

/// Finds the block `ptr` starts. `Err` says what kind of misuse `ptr` is.
#[inline]
pub(crate) fn locate(ptr: *mut u8) -> Result<Location, Misuse> {
    match small_block_at(ptr as usize) {
        Some((page, index)) => Ok(Location::Small(page, index)),
        None => locate_other(ptr as usize),
    }
}

/// [`locate`] for anything but the start of a page's block: a large block, or misuse.
#[cold]
fn locate_other(addr: usize) -> Result<Location, Misuse> {
    if segment::map::in_page_segment(addr) {
        let seg = (addr & !(SEGMENT_SIZE - 1)) as *mut Segment;
        // SAFETY: as in `small_block_at`: `addr` lies in this live page segment, whose
        // descriptors are valid for reads.
        let p = unsafe { &*Segment::page_of_mut(seg, addr) };
        // Not a block's start (`small_block_at` said so): outside every block, or inside
        // one.
        return Err(if !p.in_use() || addr < p.start as usize { Misuse::NotABlock } else { Misuse::Interior });
    }
    locate_large(addr)
}

#[cold]
fn locate_large(addr: usize) -> Result<Location, Misuse> {
    let Some(start) = segment::map::segment_start(addr) else {
        return Err(Misuse::Foreign);
    };
    let seg = start as *mut Segment;
    // SAFETY: the map says a live segment starts at `start`: its header is readable.
    let (kind, block_start) = unsafe { ((*seg).kind, (*seg).large.start) };
    if kind != KIND_LARGE {
        return Err(Misuse::NotABlock);
    }
    if block_start != addr {
        return Err(Misuse::Interior);
    }
    Ok(Location::Large(seg))
}

/// Frees `ptr`; `size` is the size of the layout the caller allocated it with.
///
/// The fast path (a block of a page this thread's heap owns, live, with no listener
/// asking for its allocation stack) makes no call but, rarely, one in tail position; the
/// rest goes through [`free_general`].
///
/// # Safety
/// - `ptr` was returned by this allocator for a layout of `size` bytes and is not used
///   after this call. A pointer that was never returned, or was freed already, is detected
///   where the metadata allows (see the module notes) and aborts with a message; the
///   other misuses (a wrong `size`) are undefined behavior.
#[inline]
pub(crate) unsafe fn free(ptr: *mut u8, size: usize) {
    if let Some((page, index)) = small_block_at(ptr as usize) {
        // SAFETY: `small_block_at` found block `index` of the in-use page `page` at `ptr`;
        // the caller's contract.
        return unsafe { free_block_of(page, index, ptr, size) };
    }
    // SAFETY: the caller's contract.
    unsafe { free_general(ptr, size) }
}

/// Frees `ptr` (C's `free`: no size given), when it is the start of a block of an
/// in-use page, with its size read from the block's metadata: one lookup for both
/// (through `live_size` and then [`free`], C's `free` looked the pointer up three times:
/// 50 instructions). False, and nothing done, for any other pointer (a large block,
/// memory not ours, misuse), which the caller takes on.
///
/// # Safety
/// - If `ptr` is a live block of ours, the caller gives it up and does not use it
///   afterwards (C's `free` contract).
#[inline]
pub(crate) unsafe fn free_small_unsized(ptr: *mut u8) -> bool {
    let Some((page, index)) = small_block_at(ptr as usize) else {
        return false;
    };
    // SAFETY: `index < capacity` of an in-use page (`small_block_at`). A live block's
    // metadata word is its allocation's while the caller holds it; a block that is not
    // live gets size 0, which `free_block_of` never uses for it (its bit is clear: the
    // misuse is reported).
    let size = unsafe {
        if (*page).is_live(index) {
            (*page).size_and_stack(index).0 as usize
        } else {
            0
        }
    };
    // SAFETY: block `index` of `page` starts at `ptr` (`small_block_at`); if live, it
    // was handed out for `size` bytes (its metadata) and the caller gives it up.
    unsafe { free_block_of(page, index, ptr, size) };
    true
}

/// [`free`] of block `index` of `page`, which starts at `ptr`: the fast path when the
/// block is this thread's own and live, else [`free_general`].
///
/// # Safety
/// - `page` is an in-use page and `index` its block at `ptr` (what `small_block_at`
///   returns); the caller's contract of [`free`].
#[inline(always)]
unsafe fn free_block_of(page: *mut Page, index: usize, ptr: *mut u8, size: usize) {
    let key = thread_state::with(|s| s.free_key());
    // SAFETY: `small_block_at` returns an in-use page; its owner field is atomic.
    let owner = unsafe { (*page).heap.load(Ordering::Relaxed) };
    // The owner's metadata is read only once the page is known to be ours (another
    // thread's free never touches the owner's lines). Taking the live bit is the last
    // test: once it is taken, the fast path goes on to the end.
    let take_live = || {
        // SAFETY: `index < capacity` of an in-use page (`small_block_at`), which this
        // thread's heap owns (tested before the call): its only writer.
        unsafe { (*page).take_live(index) }
    };
    // An in-use page's owner is a heap or `NO_OWNER`, never what the key of a thread
    // without a heap holds, nor a key with `PROFILED` set: equal, the key names this
    // thread's heap, whose frees the profile does not ask for.
    if owner == key {
        debug_assert!(thread_state::is_heap(key));
        // SAFETY: the key names this thread's own heap, its fields readable by it.
        debug_assert!(!unsafe { (*(key as *const Heap)).events.is_buffered() } && track::plain());
        if take_live() {
            // SAFETY: the key names this thread's own heap (a thread heap: never the
            // internal one), which owns `page`: this thread is its only user.
            let heap = unsafe { &mut *(key as *mut Heap) };
            debug_assert!(heap.kind == HeapKind::Thread);
            // SAFETY: a block of a page this heap owns, live until its bit was just
            // taken, given up by the caller; exclusive use (above).
            if let Some((used, settle)) = unsafe { release_owned(heap, page, ptr, size) } {
                // SAFETY: this heap owns `page`; exclusive use (above).
                unsafe { after_plain_free(heap, page, used, settle) };
            }
            return;
        }
    } else if owner == key & !thread_state::PROFILED {
        // The same heap, with the profile on (the bit set): heaps are aligned, so the
        // other keys with the bit clear are no owner's either.
        debug_assert!(thread_state::is_heap(owner) && !track::plain());
        // SAFETY: `page` is an in-use page this thread's heap owns, `index` its block at
        // `ptr`; the caller's contract.
        return unsafe { free_owned_profiled(owner as *mut Heap, page, index, ptr, size) };
    }
    // SAFETY: the caller's contract.
    unsafe { free_general(ptr, size) }
}

/// The fast path's free with the heap profile on: as the plain one, and the block's
/// stack (from its metadata word, which a free leaves alone) to the profile's recorder.
/// A call of its own so that the plain fast path stays free of calls (and of the
/// register saves they bring).
///
/// # Safety
/// - `heap` is this thread's own heap (a thread heap), owning `page`, an in-use page, of
///   which `index` is the block at `ptr`; the caller's contract of [`free`].
#[inline(never)]
unsafe fn free_owned_profiled(heap: *mut Heap, page: *mut Page, index: usize, ptr: *mut u8, size: usize) {
    // SAFETY: `index < capacity` of an in-use page this thread's heap owns: its only
    // writer.
    if !unsafe { (*page).take_live(index) } {
        // SAFETY: the caller's contract (a double free, which the general path reports).
        return unsafe { free_general(ptr, size) };
    }
    // SAFETY: this thread's own heap (caller): its only user.
    let heap = unsafe { &mut *heap };
    // SAFETY: `index < capacity`; the block was live until its bit was just taken, so its
    // word is its allocation's (and stays so until the block is handed out again).
    let stack = unsafe { (*page).word_of(index).2 };
    // SAFETY: a block of a page `heap` owns, live until its bit was just taken, given up
    // by the caller; exclusive use of `heap` (caller).
    if let Some((used, settle)) = unsafe { release_owned(heap, page, ptr, size) } {
        // SAFETY: exclusive use of `heap`, which owns `page` (caller).
        return unsafe { after_profiled_free(heap, page, used, settle, stack, size) };
    }
    // Last, so that every call it may make is a tail call: the function then saves no
    // register (eight instructions a free).
    track::on_profiled_free(heap.events, stack, size);
}

/// The end of both fast frees: the block at `ptr`, whose live bit was just taken, onto
/// its page's local free list, and its free counted. `Some((used, settle))`, the page's
/// blocks still in use and whether the counters are due a fold, when there is work for
/// [`after_plain_free`]: the fold, or the page emptied and is not current (a page that
/// empties while current stays: the common case of a block freed right after it was
/// taken makes no call).
///
/// # Safety
/// - `heap` owns `page`, and the caller has exclusive use of `heap`; `ptr` is the start of
///   a block of `page` whose live bit the caller just took, and which it gives up.
#[inline(always)]
unsafe fn release_owned(heap: &mut Heap, page: *mut Page, ptr: *mut u8, size: usize) -> Option<(u32, bool)> {
    // SAFETY: the caller's contract.
    let used = unsafe { push_local(page, ptr) };
    let settle = track::on_fast_free(&mut heap.counters, size);
    // SAFETY: `page` is a valid page (caller).
    if (used == 0 && !unsafe { heap.holds_as_current(page) }) || settle {
        Some((used, settle))
    } else {
        None
    }
}

/// [`free_owned_profiled`] when the counters' frees are due a fold or the page emptied
/// and is not current: those, then the event.
///
/// # Safety
/// - As [`after_plain_free`].
#[cold]
#[inline(never)]
unsafe fn after_profiled_free(heap: &mut Heap, page: *mut Page, used: u32, settle: bool, stack: u32, size: usize) {
    // SAFETY: the caller's contract.
    unsafe { after_plain_free(heap, page, used, settle) };
    track::on_profiled_free(heap.events, stack, size);
}

/// After a fast-path free: the frees' budget settled (`settle`: the balance folded into
/// the global totals if it is due), the page retired when it emptied and is not current.
///
/// # Safety
/// - `heap` owns `page`, and the caller has exclusive use of `heap`; `used` is the page's
///   count after the free.
#[cold]
#[inline(never)]
unsafe fn after_plain_free(heap: &mut Heap, page: *mut Page, used: u32, settle: bool) {
    if settle {
        heap.counters.settle_frees();
    }
    // SAFETY: exclusive use (caller).
    unsafe { retire_if_empty(heap, page, used) };
}

/// Retires `page` if it has no live block left (`used == 0`) and is not current.
///
/// # Safety
/// - `heap` owns `page`, and the caller has exclusive use of `heap`.
#[inline]
unsafe fn retire_if_empty(heap: &mut Heap, page: *mut Page, used: u32) {
    // SAFETY: `page` is a valid page (caller).
    if used == 0 && !unsafe { heap.holds_as_current(page) } {
        // SAFETY: ours, on our queue (heap invariant), not current, no live block;
        // exclusive use (caller).
        unsafe { heap.retire_page(page) };
    }
}

/// Pushes the block at `ptr`, whose live bit the caller just cleared, onto `page`'s
/// local free list; returns the page's count of blocks still in use.
///
/// # Safety
/// - The caller has exclusive use of the heap that owns `page`; `ptr` is the start of a
///   block of `page` that was live until the caller cleared its bit, and that it gives
///   up.
#[inline(always)]
unsafe fn push_local(page: *mut Page, ptr: *mut u8) -> u32 {
    // SAFETY: the owner's user may write `free` and `used`; the block was live, so it is
    // on no free list, and its first word may become the list link.
    unsafe {
        let p = &mut *page;
        let block = ptr.cast::<Block>();
        (*block).next = p.free;
        p.free = block;
        let used = p.used.load(Ordering::Relaxed) - 1;
        p.used.store(used, Ordering::Relaxed);
        used
    }
}

/// Every free the fast path of [`free`] does not take: large blocks, other threads'
/// blocks, the internal heap's, a listener that wants the block's stack, and misuse.
///
/// # Safety
/// - As [`free`].
#[inline(never)]
unsafe fn free_general(ptr: *mut u8, size: usize) {
    match locate(ptr) {
        // SAFETY: `locate` checked that `index` is below the capacity of an in-use page
        // and that `ptr` is that block's start; the caller gives the block up.
        Ok(Location::Small(page, index)) => unsafe { free_small(page, index, ptr, size) },
        // SAFETY: `locate` checked `ptr` is the start of a live segment's large block.
        Ok(Location::Large(seg)) => unsafe { free_large(seg, ptr) },
        Err(m) => misuse::report("free", ptr, m),
    }
}

/// Frees a block of a page. The owner clears the block's LIVE flag itself (and catches a
/// double free there); another thread only pushes the block onto the page's thread-free
/// list and never writes the owner's metadata, so the two do not contend for its cache
/// lines (with the heap profile on, it reads the block's metadata word for its stack,
/// never the live bits: `track::on_remote_free`). The owner clears LIVE when it collects
/// the list (and catches a double free then), and a leak check clears it for blocks
/// still on the list.
///
/// # Safety
/// - `page` is an in-use page, `index < capacity`, `ptr` is the start of block `index`
///   (what [`locate`] returns), and the caller gives the block up (it was handed out for
///   a layout of `size` bytes).
#[inline]
unsafe fn free_small(page: *mut Page, index: usize, ptr: *mut u8, size: usize) {
    let heap = current_heap();
    // SAFETY: `page` is a valid in-use page (caller); its owner field is atomic.
    let owner = unsafe { (*page).heap.load(Ordering::Relaxed) };
    if owner == heap as usize && !heap.is_null() {
        // SAFETY: this thread's heap owns the page, so this thread is its only user
        // (heap invariant); `index < capacity` (caller).
        unsafe { free_owned(&mut *heap, page, index, ptr, size) };
        return;
    }
    // SAFETY: `page` is valid (caller); its flags are set once, at page initialization.
    if unsafe { (*page).is_internal() } {
        // SAFETY: a live block of the page, given up by the caller: pushing it is all the
        // owner (the internal heap) needs to reuse it.
        unsafe { (*page).push_thread_free(ptr.cast()) };
        return;
    }
    // SAFETY: `heap` is null or this thread's heap, whose counters only this thread
    // writes.
    let (counters, sink) = unsafe { listeners_of(heap) };
    track::on_remote_free(counters, sink, size, || {
        // SAFETY: `page` is in use and `index < capacity` (caller). The block is still
        // ours (pushed below), so its metadata word is the allocation's: the owner
        // rewrites it only after collecting the block.
        unsafe { (*page).size_and_stack(index).1 }
    });
    // SAFETY: as for the internal page above.
    unsafe { (*page).push_thread_free(ptr.cast()) };
}

/// Frees a block of a page `heap` owns: LIVE checked and cleared, the tracking hook, the
/// block onto the local free list, the page retired when it empties.
///
/// # Safety
/// - `heap` owns `page`, and the caller has exclusive use of `heap`.
/// - `index < capacity`, `ptr` is the start of block `index`, given up by the caller.
#[inline]
unsafe fn free_owned(heap: &mut Heap, page: *mut Page, index: usize, ptr: *mut u8, size: usize) {
    // SAFETY: `index < capacity` (caller).
    let flags = unsafe { (*page).flags_of(index) };
    if flags & LIVE == 0 {
        misuse::report("free", ptr, Misuse::DoubleFree);
    }
    if heap.kind != HeapKind::Internal {
        // SAFETY: `index < capacity`; the block is live, so its metadata is its
        // allocation's until we clear it below.
        track::on_free(&mut heap.counters, heap.events, size, || unsafe { (*page).size_and_stack(index).1 });
    }
    // SAFETY: a live block (checked above) of a page `heap` owns, given up by the caller;
    // exclusive use (caller).
    unsafe {
        (*page).clear_live(index);
        let used = push_local(page, ptr);
        retire_if_empty(heap, page, used);
    }
}

/// Frees a large block: its segment goes back to the pool (or its cache).
///
/// # Safety
/// - `seg` is a live large segment and `ptr` its block's start, given up by the caller.
#[cold]
unsafe fn free_large(seg: *mut Segment, ptr: *mut u8) {
    // SAFETY: the segment is live (caller): its header is readable.
    let (flags, size, stack) = unsafe { ((*seg).large.flags, (*seg).large.size, (*seg).large.stack) };
    if flags & LIVE == 0 {
        misuse::report("free", ptr, Misuse::DoubleFree);
    }
    if flags & INTERNAL == 0 {
        let heap = current_heap();
        // SAFETY: `heap` is null or this thread's heap, whose counters only this thread
        // writes.
        let (counters, sink) = unsafe { listeners_of(heap) };
        track::on_remote_free(counters, sink, size, || stack);
    }
    // SAFETY: the block is live and given up by its holder (caller).
    unsafe { segment::free_large(seg) };
}

/// Resizes the block at `ptr` (of `old_size` bytes, aligned to `align`) to `new_size`
/// bytes where it is, if it can: when the new size fits the block and does not waste more
/// than half of it; large blocks grow in place up to their segment's end, then move with
/// `mremap` (same contents, new address). `None`: the caller must move the block itself
/// (allocate, copy, free).
///
/// # Safety
/// - As `GlobalAlloc::realloc`: `ptr` is a live block of ours allocated with a layout of
///   `old_size` bytes and alignment `align`, `new_size > 0`, and `new_size` rounded up to
///   `align` does not overflow `isize`. Misuse is detected as in [`free`].
pub(crate) unsafe fn realloc_in_place(ptr: *mut u8, old_size: usize, align: usize, new_size: usize) -> Option<*mut u8> {
    match locate(ptr) {
        Ok(Location::Small(page, index)) => {
            // SAFETY: `locate` returned an in-use page and `index < capacity`.
            let (usable, live, internal) =
                unsafe { ((*page).block_size as usize, (*page).flags_of(index) & LIVE != 0, (*page).is_internal()) };
            if !live {
                misuse::report("realloc", ptr, Misuse::DoubleFree);
            }
            if new_size <= usable && new_size * 2 > usable && !internal {
                // SAFETY: a live block of a tracked page, held by the caller.
                unsafe { resize_small(page, index, old_size, new_size) };
                return Some(ptr);
            }
            None
        }
        // SAFETY: `locate` checked the segment is a live large segment starting at `ptr`;
        // the caller holds the block.
        Ok(Location::Large(seg)) => unsafe { realloc_large(seg, ptr, old_size, align, new_size) },
        Err(m) => misuse::report("realloc", ptr, m),
    }
}

/// Records an in-place resize of a small tracked block.
///
/// # Safety
/// - `index < capacity` of the in-use, tracked `page`; the block is live and held by the
///   caller, and `new_size` fits it.
unsafe fn resize_small(page: *mut Page, index: usize, old_size: usize, new_size: usize) {
    // SAFETY: the caller holds the live block: its metadata is its holder's to change (the
    // owner rewrites it only after the block is freed); `new_size` < 2^24 (it fits a
    // page block).
    let (stack, flags) = unsafe {
        let (_, stack) = (*page).size_and_stack(index);
        (*page).set_size_and_stack(index, new_size as u32, stack);
        (stack, (*page).flags_of(index))
    };
    if new_size > old_size && segment::zeroing::zeroes(flags) {
        // A block that started zeroed reads as zero past what the program wrote: the
        // grown tail too.
        // SAFETY: `[old_size, new_size)` lies inside the block (`new_size` fits it), which
        // the caller holds.
        unsafe { core::ptr::write_bytes(((*page).block_start(index) + old_size) as *mut u8, 0, new_size - old_size) };
    }
    count_resize(stack, old_size, new_size);
}

/// Counts an in-place resize of a tracked block through the tracking hook.
fn count_resize(stack: u32, old_size: usize, new_size: usize) {
    let heap = current_heap();
    // SAFETY: `heap` is null or this thread's heap, whose counters only this thread writes.
    let (counters, sink) = unsafe { listeners_of(heap) };
    track::on_resize(counters, sink, stack, old_size, new_size);
}

/// The counters and the profile's event sink of `heap`, for the tracking hook: none and
/// [`Sink::NONE`] when `heap` is null.
///
/// # Safety
/// - `heap` is null or this thread's heap, which the caller has exclusive use of while the
///   counters are borrowed.
unsafe fn listeners_of<'a>(heap: *mut Heap) -> (Option<&'a mut Counters>, Sink) {
    // SAFETY: the caller's bullet.
    match unsafe { heap.as_mut() } {
        Some(h) => (Some(&mut h.counters), h.events),
        None => (None, Sink::NONE),
    }
}

/// Resizes a large block in place or by `mremap`; `None` when it must be copied (an
/// alignment beyond a segment, a size back in the page classes, or out of memory).
///
/// # Safety
/// - `seg` is a live large segment whose block starts at `ptr`, held by the caller,
///   allocated with `old_size` bytes and alignment `align`.
unsafe fn realloc_large(
    seg: *mut Segment,
    ptr: *mut u8,
    old_size: usize,
    align: usize,
    new_size: usize,
) -> Option<*mut u8> {
    // SAFETY: the segment is live (caller), and its large-block header is written only by
    // the block's holder, which the caller is.
    let large = unsafe { &mut (*seg).large };
    if large.flags & LIVE == 0 {
        misuse::report("realloc", ptr, Misuse::DoubleFree);
    }
    let tracked = large.flags & INTERNAL == 0;
    let stack = large.stack;
    let moved_to = if new_size <= large.capacity && new_size > MEDIUM_MAX {
        if new_size < large.size / 2 {
            decommit_tail(large.start, large.size, new_size);
        }
        if new_size > old_size && segment::zeroing::zeroes(large.flags) {
            // The grown tail reads as zero, as a new block's bytes do (see `zeroing`): it
            // may hold what the block or the segment's earlier occupant wrote there.
            // SAFETY: `[old_size, new_size)` lies inside the block's capacity, held by
            // the caller.
            unsafe { core::ptr::write_bytes(ptr.add(old_size), 0, new_size - old_size) };
        }
        large.size = new_size;
        ptr
    } else if new_size > large.capacity && align <= SEGMENT_SIZE {
        // SAFETY: a live large segment whose block the caller holds (caller).
        let p = unsafe { segment::grow_large(seg, new_size) };
        if p.is_null() {
            return None;
        }
        p
    } else {
        return None;
    };
    if tracked {
        count_resize(stack, old_size, new_size);
    }
    Some(moved_to)
}

/// Shrinking a large block by more than half: gives the pages past the new end back to
/// the kernel (they stay mapped and read as zero).
fn decommit_tail(start: usize, old_size: usize, new_size: usize) {
    let keep = crate::os::round_up(start + new_size, crate::os::OS_PAGE).unwrap_or(usize::MAX);
    let end = start + old_size;
    if end > keep {
        let tail = crate::os::round_up(end - keep, crate::os::OS_PAGE).unwrap_or(0);
        // SAFETY: `[keep, keep + tail)` lies in the block's segment past the new size,
        // page aligned; the bytes there are beyond what the holder may use from now on.
        let _ = unsafe { crate::os::decommit(keep as *mut u8, tail) };
    }
}
