//! `libheapsweep_preload.so`: HeapSweep for programs that do not name it, loaded with
//! `LD_PRELOAD` (see `heapsweep run`).
//!
//! # What it owns
//! The C allocation functions, exported under their C names so that the dynamic loader
//! binds every `malloc` of the process (the program's, the C library's own, Rust's
//! `System` allocator's) to them: `malloc`, `free`, `calloc`, `realloc`,
//! `reallocarray`, `posix_memalign`, `aligned_alloc`, `memalign`, `valloc`, `pvalloc`,
//! `malloc_usable_size`. Each maps C's rules onto `alloc_core::preload` (the same entry
//! points as `GlobalAlloc`), so blocks are tracked, checked at exit and reported exactly
//! as under `#[global_allocator]`, with the same `HEAPSWEEP` keys and exit status.
//!
//! # C's rules kept here
//! - `malloc` aligns to 16 bytes; `malloc(0)` returns a unique pointer.
//! - `free(NULL)` does nothing; `free` of a pointer outside HeapSweep's memory (the
//!   dynamic loader's own, allocated before this library was loaded) is ignored, while
//!   a misuse of HeapSweep's memory (double free, interior pointer) is reported and
//!   aborts, as under `#[global_allocator]`.
//! - `realloc(NULL, n)` is `malloc(n)`; `realloc(p, 0)` frees `p` and returns null
//!   (glibc's behaviour).
//! - Failure returns null with `errno = ENOMEM`; `posix_memalign` returns `EINVAL` for an
//!   alignment that is not a power of two times `sizeof(void *)`, `ENOMEM` when out of
//!   memory, and leaves `errno` alone; `aligned_alloc` and `memalign` refuse an alignment
//!   that is not a power of two with `EINVAL` (glibc rounds `memalign`'s up; we do too).
//!
//! # Initialization
//! None here: the first call initializes the allocator (`alloc_core`'s runtime), which
//! never waits for itself: what its initialization allocates comes from its internal heap.
//! The dynamic loader makes its first `malloc` call after it has set up the main thread's
//! TLS, which the allocator's per-thread state lives in.
//!
//! # Build
//! Always optimized: the workspace builds `alloc-core` at `opt-level = 2` even in debug
//! profiles, and this crate's few lines are inlined into it (`[profile.dev.package]` in
//! the workspace manifest). `cargo build --release -p heapsweep-preload` is the build to
//! install.

use core::ffi::c_void;

/// Sets `errno`.
fn set_errno(code: i32) {
    // SAFETY: `__errno_location` returns the calling thread's `errno`, always valid.
    unsafe { *libc::__errno_location() = code };
}

/// Null with `errno = ENOMEM` for a null `p`.
#[inline]
fn or_enomem(p: *mut u8) -> *mut c_void {
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p.cast()
}

/// C's `malloc`.
#[no_mangle]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    or_enomem(alloc_core::preload::malloc(size))
}

/// C's `calloc`: zeroed; null with `ENOMEM` when `count * size` overflows.
#[no_mangle]
pub extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    or_enomem(alloc_core::preload::calloc(count, size))
}

/// C's `free`.
///
/// # Safety
/// `ptr` is null or a block of this allocator that the caller gives up (C's contract);
/// a block freed twice or an interior pointer is detected and aborts the process.
#[no_mangle]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: the caller gives the block up (C's `free` contract). Whether it is ours is
    // checked inside; a pointer that is not is left alone (see the crate notes).
    let _ours = unsafe { alloc_core::preload::free(ptr.cast()) };
}

/// C's `realloc`.
///
/// # Safety
/// `ptr` is null or a live block of this allocator, held by the caller (C's contract).
#[no_mangle]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    if ptr.is_null() {
        return malloc(size);
    }
    if size == 0 {
        // SAFETY: `ptr` is a block the caller gives up (C's `realloc(p, 0)` frees it).
        unsafe { free(ptr) };
        return core::ptr::null_mut();
    }
    // SAFETY: `ptr` is a live block held by the caller, given up on success (C's
    // contract), which is `preload::realloc`'s.
    match unsafe { alloc_core::preload::realloc(ptr.cast(), size) } {
        Ok(p) => or_enomem(p),
        Err(alloc_core::preload::NotOurs) => foreign_realloc(ptr),
    }
}

/// `realloc` of a pointer HeapSweep never handed out: its size is unknown, so it cannot
/// be moved. Reported as misuse: only the dynamic loader's early memory is foreign, and
/// it is never resized.
#[cold]
fn foreign_realloc(ptr: *mut c_void) -> ! {
    let msg = format!(
        "heapsweep: error: realloc({ptr:p}): a pointer HeapSweep never handed out (not in any of its segments)\n\
         heapsweep: misuse detected; aborting\n"
    );
    // SAFETY: writes `msg.len()` bytes from a live buffer to fd 2.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
    std::process::abort()
}

/// C's `reallocarray`: `realloc(ptr, count * size)`, null with `ENOMEM` on overflow.
///
/// # Safety
/// As [`realloc`].
#[no_mangle]
pub unsafe extern "C" fn reallocarray(ptr: *mut c_void, count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        // SAFETY: as `realloc` (the caller's contract).
        Some(n) => unsafe { realloc(ptr, n) },
        None => {
            set_errno(libc::ENOMEM);
            core::ptr::null_mut()
        }
    }
}

/// C's `posix_memalign`: 0, `EINVAL` (alignment not a power of two multiple of
/// `sizeof(void *)`) or `ENOMEM`; `errno` untouched.
///
/// # Safety
/// `out` is valid for a pointer-sized write.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> i32 {
    if !align.is_power_of_two() || !align.is_multiple_of(core::mem::size_of::<*mut c_void>()) {
        return libc::EINVAL;
    }
    let p = alloc_core::preload::aligned(align, size);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: `out` is valid for writes (the caller's contract).
    unsafe { *out = p.cast() };
    0
}

/// C11's `aligned_alloc`: `align` a power of two (else null with `EINVAL`); like glibc,
/// `size` need not be a multiple of it.
#[no_mangle]
pub extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    }
    or_enomem(alloc_core::preload::aligned(align, size))
}

/// `memalign`: as glibc's, an alignment that is not a power of two is rounded up to one.
#[no_mangle]
pub extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    match align.max(1).checked_next_power_of_two() {
        Some(a) => or_enomem(alloc_core::preload::aligned(a, size)),
        None => {
            set_errno(libc::EINVAL);
            core::ptr::null_mut()
        }
    }
}

/// The page size (4 KiB on x86-64 Linux; asked of the kernel once).
fn page_size() -> usize {
    // SAFETY: `sysconf` has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// `valloc`: page aligned.
#[no_mangle]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    or_enomem(alloc_core::preload::aligned(page_size(), size))
}

/// `pvalloc`: page aligned, the size rounded up to whole pages (one page for 0).
#[no_mangle]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let page = page_size();
    match size.max(1).checked_next_multiple_of(page) {
        Some(n) => or_enomem(alloc_core::preload::aligned(page, n)),
        None => or_enomem(core::ptr::null_mut()),
    }
}

/// `malloc_usable_size`: the bytes usable at `ptr` (at least what was asked for); 0 for
/// null and for pointers HeapSweep did not hand out.
///
/// # Safety
/// `ptr` is null or a live block (C's contract; anything else reads 0).
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(ptr: *mut c_void) -> usize {
    if ptr.is_null() {
        return 0;
    }
    alloc_core::preload::usable_size(ptr.cast()).unwrap_or(0)
}
