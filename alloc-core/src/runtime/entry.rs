//! The allocation entry points: what `GlobalAlloc`'s methods call.
//!
//! # Fast path
//! One thread-local read: if the thread has a heap and its mode word is zero (not inside
//! the allocator's own code, no `disable()` or leak-check scope), allocate from its heap
//! (no lock). Free and in-place realloc need no thread state up front: the block's page
//! says who owns it.
//!
//! # Cold path
//! Everything else: the process's one-time initialization, the allocator's own
//! allocations (reentrancy guard set: the internal heap), a thread's first allocation
//! (its heap is made here), and threads whose heap was retired (the shared heap).

use super::{init, scope, thread};
use crate::heap::{self, locked, Heap};
use crate::page::{IGNORED, SCOPED};
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
    // A scope's blocks start zeroed: bytes the program leaves unwritten (a `Vec`'s spare
    // capacity) then never hold an earlier occupant's pointers, which the conservative
    // scan would follow and which could hide another scope's leaks.
    let zeroed = zeroed || flags & SCOPED != 0;
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
