//! The allocation entry points: what `GlobalAlloc`'s methods call.
//!
//! # Fast path
//! One thread-local read: if the thread has a heap and its mode word is zero (not inside
//! the allocator's own code, no `disable()` or leak-check scope), allocate from its heap
//! (no lock): the heap's plain path first (`Heap::alloc_plain`), then its general one
//! (`Heap::alloc`, through `alloc_own`, with the heap already found).
//! Free and in-place realloc need no thread state up front: the block's page says who
//! owns it.
//!
//! # Cold path
//! Everything else: the process's one-time initialization, the allocator's own
//! allocations (reentrancy guard set: the internal heap), a thread's first allocation
//! (its heap is made here), and threads whose heap was retired (the shared heap).
//!
//! # Unsized entry points
//! C's `free` and `realloc` get no size: [`free_unsized`] and [`realloc_unsized`] read
//! the block's requested size from its metadata (the segment map, then the page: the same
//! O(1) lookup as every free) and take the sized paths. A pointer outside every segment
//! of ours is reported back to the caller instead of as misuse: under `LD_PRELOAD` the
//! dynamic loader frees memory it took before the library was loaded.

use super::{init, scope, thread};
use crate::heap::free::Location;
use crate::heap::{self, locked, Heap};
use crate::page::{IGNORED, LIVE, SCOPED};
use crate::thread_state::{self, ThreadState, NO_HEAP};

/// Allocates from `heap` for a thread that is not plain: inside a `disable()` scope
/// (the block is ignored) or a leak-check scope (the block is the scope's).
///
/// # Safety
/// - As [`Heap::alloc`]: the caller is `heap`'s only user, `align` a power of two.
#[cold]
#[inline(never)]
unsafe fn alloc_marked(s: &ThreadState, heap: *mut Heap, size: usize, align: usize, zeroed: bool) -> *mut u8 {
    let mut flags = if s.disabled() { IGNORED } else { 0 };
    let scope = s.scope();
    if scope != 0 {
        flags |= scope::flags_for(s, scope);
    }
    // A scope's blocks start zeroed (`segment::zeroing::zeroes`, asked by the heap).
    // SAFETY: the caller's contract is `Heap::alloc`'s.
    let p = unsafe { (*heap).alloc(size, align, flags, zeroed) };
    if flags & SCOPED != 0 && !p.is_null() {
        scope::record(p, scope);
    }
    p
}

/// Allocates `size` bytes aligned to `align`. Null when out of memory.
///
/// # Safety
/// - `align` is a power of two and `size` rounded up to it does not overflow `isize`
///   (what a `Layout` guarantees).
#[inline]
pub(crate) unsafe fn alloc(size: usize, align: usize, zeroed: bool) -> *mut u8 {
    let slot = thread_state::with(|s| s.plain_heap());
    if thread_state::is_heap(slot) && !zeroed {
        // SAFETY: the slot names this thread's own heap (made by `thread::start` for this
        // thread, not yet retired), whose only user is this thread; the mode word is
        // clear (no scope, no `disable()`); `align` is a power of two (caller).
        let heap = slot as *mut Heap;
        // SAFETY: as above.
        let declines = unsafe { (*heap).declines() };
        if declines != 0 {
            // A heap that declines only to capture stacks (the default), or to capture
            // them for the heap profile, goes straight to its stacked path from here: 15
            // instructions fewer on its allocations than through `alloc_own`, for four on
            // the plain path's (the compiler tests these cases first, whatever the order
            // written; with the tests in a function of their own, the plain path lost
            // nothing and the stacked one gained 7). The two cases are written out, not
            // folded into one test with the profile chosen inside: that cost the stacked
            // path 9 (BENCHMARKS.md, tried and not kept).
            if declines == heap::DECLINES_STACKS {
                if let Some(class) = crate::size_class::class_for(size, align) {
                    // SAFETY: as above; the heap only captures stacks; `class` is the
                    // request's.
                    return unsafe { alloc_own_stacked::<false>(size, class, heap) };
                }
            } else if declines == heap::DECLINES_STACKS_PROFILED {
                if let Some(class) = crate::size_class::class_for(size, align) {
                    // SAFETY: as above; the heap only captures stacks for the profile;
                    // `class` is the request's.
                    return unsafe { alloc_own_stacked::<true>(size, class, heap) };
                }
            }
            // SAFETY: as above.
            return unsafe { alloc_own(size, align, heap) };
        }
        // SAFETY: as above; the heap does not decline its plain path.
        let p = unsafe { (*heap).alloc_plain(size, align) };
        if !p.is_null() {
            return p;
        }
        // SAFETY: as above.
        return unsafe { alloc_own(size, align, heap) };
    }
    // SAFETY: the caller's contract.
    unsafe { alloc_general(size, align, zeroed) }
}

/// An allocation of this thread's own heap that its plain path declined: a stack to
/// capture, the heap profile on, a fold of the counters due, a slow path of the heap.
/// Called with the heap [`alloc`] already found: no second thread-local read and no frame
/// between the entry point and the heap (with stacks on, that was 20 instructions an
/// allocation). The heap comes last: `size` and `align` stay in the registers they came
/// in, which the plain path reads (two moves on every allocation otherwise).
///
/// # Safety
/// - `heap` is this thread's own heap (made by `thread::start` for this thread, not yet
///   retired), and the thread's mode word is clear (no scope, no `disable()`, not inside
///   the allocator); `align` is a power of two.
#[inline(never)]
unsafe fn alloc_own(size: usize, align: usize, heap: *mut Heap) -> *mut u8 {
    // SAFETY: the caller's contract: this thread is the heap's only user, and the heap
    // is a thread's (so `alloc` need not ask whether it is the internal one: two
    // instructions).
    unsafe {
        debug_assert!((*heap).kind == heap::HeapKind::Thread);
        core::hint::assert_unchecked((*heap).kind == heap::HeapKind::Thread);
        (*heap).alloc(size, align, 0, false)
    }
}

/// [`alloc_own`] for a heap that declines its plain path only to capture stacks
/// (`heap::DECLINES_STACKS`), or to capture them for the heap profile (`PROFILED`,
/// `heap::DECLINES_STACKS_PROFILED`), of a block of `class`: a function of its own (one
/// for each), called in tail position, so that it saves only the registers its three
/// values across the capture need (in `alloc_own`, which also holds the general path, it
/// saved six).
///
/// # Safety
/// - As [`alloc_own`]; the heap's reasons are the two above's for `PROFILED`, and `class`
///   is `size_class::class_for(size, align)`.
#[inline(never)]
unsafe fn alloc_own_stacked<const PROFILED: bool>(size: usize, class: usize, heap: *mut Heap) -> *mut u8 {
    // SAFETY: the caller's contract: this thread's own heap (its only user), which declines
    // for stacks (and the profile, `PROFILED`) alone; `class` is `size`'s.
    unsafe { (*heap).alloc_stacked::<PROFILED>(class, size) }
}

/// Every allocation [`alloc`]'s fast path does not make: zeroing, threads not in plain
/// mode (scopes, `disable()`, inside the allocator), threads without a heap.
///
/// # Safety
/// - As [`alloc`].
#[inline(never)]
unsafe fn alloc_general(size: usize, align: usize, zeroed: bool) -> *mut u8 {
    thread_state::with(|s| {
        let slot = s.heap();
        if thread_state::is_heap(slot) {
            let heap = slot as *mut Heap;
            if s.fast() {
                // SAFETY: the slot names this thread's own heap (made by `thread::start`
                // for this thread, not yet retired), whose only user is this thread;
                // `align` is a power of two (caller).
                return unsafe { (*heap).alloc(size, align, 0, zeroed) };
            }
            if !s.in_allocator() {
                // SAFETY: as for the plain allocation just above: this thread's own heap,
                // a power-of-two `align`.
                return unsafe { alloc_marked(s, heap, size, align, zeroed) };
            }
        }
        alloc_cold(s, size, align, zeroed)
    })
}

/// Allocation when the thread has no usable heap, or inside the allocator.
#[cold]
#[inline(never)]
fn alloc_cold(s: &ThreadState, size: usize, align: usize, zeroed: bool) -> *mut u8 {
    // The guard first: the initializing thread allocates under it (see `init`).
    if s.in_allocator() && init::internal_heap_ready() {
        return locked::alloc(locked::Which::Internal, size, align, 0, zeroed);
    }
    if !init::ensure() {
        return core::ptr::null_mut();
    }
    if s.in_allocator() {
        return locked::alloc(locked::Which::Internal, size, align, 0, zeroed);
    }
    if s.heap() == NO_HEAP {
        let heap = thread::start(s);
        if !heap.is_null() {
            // SAFETY: just made for this thread, which is its only user; `align` is a
            // Layout's (our caller's contract).
            return unsafe { alloc_marked(s, heap, size, align, zeroed) };
        }
    }
    let flags = if s.disabled() { IGNORED } else { 0 };
    locked::alloc(locked::Which::Shared, size, align, flags, zeroed)
}

/// Frees `ptr`, allocated with a layout of `size` bytes.
///
/// # Safety
/// - As `GlobalAlloc::dealloc`: `ptr` was returned by this allocator for a layout of
///   `size` bytes and is not used afterwards.
#[inline]
pub(crate) unsafe fn free(ptr: *mut u8, size: usize) {
    // SAFETY: the caller's contract is `heap::free`'s.
    unsafe { heap::free(ptr, size) }
}

/// Resizes the block at `ptr`: in place when the heap can, else allocate, copy, free.
///
/// # Safety
/// - As `GlobalAlloc::realloc`: `ptr` is a live block of ours allocated with a layout of
///   `old_size` bytes and alignment `align`; `new_size > 0`, and rounded up to `align` it
///   does not overflow `isize`.
#[inline]
pub(crate) unsafe fn realloc(ptr: *mut u8, old_size: usize, align: usize, new_size: usize) -> *mut u8 {
    // SAFETY: the caller's contract is `realloc_in_place`'s.
    if let Some(p) = unsafe { heap::realloc_in_place(ptr, old_size, align, new_size) } {
        return p;
    }
    // SAFETY: `align` and `new_size` form a valid layout (caller).
    let new = unsafe { alloc(new_size, align, false) };
    if !new.is_null() {
        // SAFETY: both blocks are live and distinct (`new` was just handed out), each at
        // least `min(old_size, new_size)` bytes long; then the old block is given up, as
        // the caller's contract allows on success.
        unsafe {
            core::ptr::copy_nonoverlapping(ptr, new, old_size.min(new_size));
            heap::free(ptr, old_size);
        }
    }
    new
}

/// The requested size of the live block starting at `ptr`, if `ptr` is one: a block of
/// the program's or of the allocator's own (internal blocks are freed and resized
/// through C's functions too, by the Rust code of the preload library).
fn live_size(ptr: *mut u8) -> Option<usize> {
    match heap::free::locate(ptr).ok()? {
        Location::Small(page, index) => {
            // SAFETY: `locate` returned an in-use page of a live segment and an index below
            // its capacity; the caller holds the block, so its metadata is its own.
            let (flags, size) = unsafe { ((*page).flags_of(index), (*page).size_and_stack(index).0) };
            (flags & LIVE != 0).then_some(size as usize)
        }
        Location::Large(seg) => {
            // SAFETY: `locate` returned a live large segment whose block starts at `ptr`,
            // held by the caller: its header is mapped and written only by the holder.
            let large = unsafe { &(*seg).large };
            (large.flags & LIVE != 0).then_some(large.size)
        }
    }
}

/// Whether `ptr` lies in memory of ours (a segment), block or not.
#[inline]
pub(crate) fn is_ours(ptr: *const u8) -> bool {
    crate::segment::map::segment_start(ptr as usize).is_some()
}

/// Frees `ptr` without knowing its size (C's `free`). False, and nothing done, when `ptr`
/// lies outside every segment of ours; inside them, anything but the start of a live
/// block is reported as misuse (which aborts), as by [`free`].
///
/// # Safety
/// - If `ptr` lies in our memory, the caller gives the block at `ptr` up and does not use
///   it afterwards (C's `free` contract).
pub(crate) unsafe fn free_unsized(ptr: *mut u8) -> bool {
    // SAFETY: the caller's contract.
    if unsafe { heap::free::free_small_unsized(ptr) } {
        return true;
    }
    if !is_ours(ptr) {
        return false;
    }
    // Not a live block's start: the sized path reports the exact misuse (size unused).
    let size = live_size(ptr).unwrap_or(0);
    // SAFETY: `ptr` is ours; if it is a live block's start, `size` is its requested size
    // (its layout's) and the caller gives it up; anything else is misuse that
    // `heap::free` detects and reports before touching the block.
    unsafe { heap::free(ptr, size) };
    true
}

/// Resizes the block at `ptr` without knowing its size (C's `realloc`, `ptr` not null,
/// `new_size > 0`): the new block is aligned to `align`. `Err(())` when `ptr` lies outside
/// every segment of ours (nothing done); `Ok(null)` when out of memory (the old block
/// stays). A pointer into our memory that is no live block's start is misuse and aborts.
///
/// # Safety
/// - `align` is a power of two and `new_size` rounded up to it does not overflow `isize`.
/// - If `ptr` lies in our memory, the caller held the block at `ptr` and, on success,
///   gives it up.
pub(crate) unsafe fn realloc_unsized(ptr: *mut u8, align: usize, new_size: usize) -> Result<*mut u8, ()> {
    if !is_ours(ptr) {
        return Err(());
    }
    let Some(old_size) = live_size(ptr) else {
        crate::misuse::report("realloc", ptr, misuse_kind(ptr));
    };
    // The block keeps its place only if that address suits `align`.
    if ptr as usize & (align - 1) != 0 {
        // SAFETY: `align` and `new_size` form a valid layout (caller).
        let new = unsafe { alloc(new_size, align, false) };
        if !new.is_null() {
            // SAFETY: distinct live blocks of at least `min(old, new)` bytes; the old
            // block is given up on success (caller).
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new, old_size.min(new_size));
                heap::free(ptr, old_size);
            }
        }
        return Ok(new);
    }
    // SAFETY: `ptr` is a live block of `old_size` bytes whose address is aligned to
    // `align`, held by the caller; `new_size` and `align` form a valid layout (caller).
    Ok(unsafe { realloc(ptr, old_size, align, new_size) })
}

/// What misuse a pointer into our memory that is not a live block's start is.
fn misuse_kind(ptr: *mut u8) -> crate::misuse::Misuse {
    match heap::free::locate(ptr) {
        Err(m) => m,
        Ok(_) => crate::misuse::Misuse::DoubleFree,
    }
}
