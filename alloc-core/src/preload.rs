//! The C allocation API, for the `LD_PRELOAD` library (`alloc-core/preload`, package
//! `heapsweep-preload`) that runs unchanged programs under HeapSweep.
//!
//! # What it owns
//! The functions that library's `malloc`, `free`, `calloc`, `realloc`,
//! `posix_memalign`, ... call: C's sizes and alignments mapped onto the runtime's entry
//! points (the same as `GlobalAlloc`'s), and C's unsized `free` and `realloc` through the
//! block lookup. What C adds on top (`errno`, `EINVAL` for a bad alignment, `free(NULL)`,
//! `realloc(p, 0)`) stays in that library, which may use libc; this crate's libc calls
//! stay in `platform`.
//!
//! # Pointers that are not ours
//! Under `LD_PRELOAD` the dynamic loader hands out memory of its own before the library
//! is loaded and may free it later through `free`. A pointer outside every segment of
//! ours is therefore not misuse here: [`free`] tells the caller, which ignores it (as
//! other preloaded allocators do). A pointer into our memory that is not a live block's
//! start (an interior pointer, a double free) is reported and aborts, as everywhere.
//!
//! # Initialization
//! Nothing to call first: the first allocation initializes the allocator, as for
//! `GlobalAlloc`, and the initialization itself never calls `malloc` on the allocating
//! thread's behalf without the reentrancy guard (see `runtime::init`). Each function marks
//! the process as preloaded, which makes the report apply [`DEFAULT_SUPPRESSIONS`].
//!
//! Not a stable interface: it exists for `heapsweep-preload` and may change with it.

use crate::runtime::entry;

/// The alignment `malloc` gives: 16 bytes, as glibc's on x86-64 (`max_align_t`).
pub const MALLOC_ALIGN: usize = 16;

/// The default suppressions under `LD_PRELOAD` (`leak:` lines, as in a suppressions
/// file): allocations the C library and the dynamic loader make for themselves.
pub const DEFAULT_SUPPRESSIONS: &str = crate::report::suppress::PRELOAD_DEFAULTS;

/// The pointer given to [`realloc`] is not in HeapSweep's memory: nothing was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotOurs;

/// Whether `size` bytes at alignment `align` (a power of two) form a valid layout.
#[inline]
fn layout_ok(size: usize, align: usize) -> bool {
    size <= isize::MAX as usize - (align - 1)
}

/// `malloc(size)`: 16-byte aligned; `malloc(0)` a unique pointer. Null when out of memory.
#[inline]
pub fn malloc(size: usize) -> *mut u8 {
    aligned(MALLOC_ALIGN, size)
}

/// `calloc(count, size)`: zeroed. Null when the product overflows or memory runs out.
#[inline]
pub fn calloc(count: usize, size: usize) -> *mut u8 {
    crate::config::set_preloaded();
    match count.checked_mul(size) {
        Some(n) if layout_ok(n, MALLOC_ALIGN) => {
            // SAFETY: `entry::alloc`'s bullet: 16 is a power of two and `n` rounded up to
            // it does not overflow `isize` (checked just above).
            unsafe { entry::alloc(n, MALLOC_ALIGN, true) }
        }
        _ => core::ptr::null_mut(),
    }
}

/// `size` bytes aligned to `align`, which must be a power of two (checked: null when
/// not); alignments below 16 get 16. Null when out of memory.
#[inline]
pub fn aligned(align: usize, size: usize) -> *mut u8 {
    crate::config::set_preloaded();
    if !align.is_power_of_two() {
        return core::ptr::null_mut();
    }
    let align = align.max(MALLOC_ALIGN);
    if !layout_ok(size, align) {
        return core::ptr::null_mut();
    }
    // SAFETY: `entry::alloc`'s bullet: `align` is a power of two and `size` rounded up to
    // it does not overflow `isize` (both checked just above).
    unsafe { entry::alloc(size, align, false) }
}

/// `free(ptr)` for a non-null `ptr`. False, and nothing done, when `ptr` is not in
/// HeapSweep's memory (see the module notes); a misuse of our memory aborts with a report.
///
/// # Safety
/// - If `ptr` is in HeapSweep's memory, it is a block this API handed out that the caller
///   gives up: nothing uses it afterwards.
#[inline]
pub unsafe fn free(ptr: *mut u8) -> bool {
    crate::config::set_preloaded();
    // SAFETY: the caller gives the block up, if it is ours (`free_unsized`'s bullet).
    unsafe { entry::free_unsized(ptr) }
}

/// `realloc(ptr, size)` for a non-null `ptr` and `size > 0`: the new block is 16-byte
/// aligned. `Err(NotOurs)` when `ptr` is not in HeapSweep's memory (nothing done); `Ok(null)`
/// when out of memory (the old block stays the caller's).
///
/// # Safety
/// - If `ptr` is in HeapSweep's memory, it is a block this API handed out, held by the
///   caller, who gives it up when the call returns a new pointer.
#[inline]
pub unsafe fn realloc(ptr: *mut u8, size: usize) -> Result<*mut u8, NotOurs> {
    crate::config::set_preloaded();
    if !layout_ok(size, MALLOC_ALIGN) {
        return if entry::is_ours(ptr) { Ok(core::ptr::null_mut()) } else { Err(NotOurs) };
    }
    // SAFETY: `realloc_unsized`'s bullets: 16 is a power of two and `size` rounded up to
    // it fits `isize` (checked just above); the caller holds the block and gives it up
    // on success.
    unsafe { entry::realloc_unsized(ptr, MALLOC_ALIGN, size.max(1)) }.map_err(|()| NotOurs)
}

/// `malloc_usable_size(ptr)`: the bytes usable at `ptr`, a live block's start; `None`
/// for anything else.
#[inline]
pub fn usable_size(ptr: *const u8) -> Option<usize> {
    crate::introspect::usable_size(ptr)
}

/// Whether `ptr` lies in HeapSweep's memory (a block or not).
#[inline]
pub fn is_ours(ptr: *const u8) -> bool {
    entry::is_ours(ptr)
}
