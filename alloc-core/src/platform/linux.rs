//! Linux and glibc: every system call and libc function the allocator makes.
//!
//! # What it owns
//! Thin wrappers, one per operation, each doing what the call it wraps does and no more:
//! the flags, the retries (none unless written here) and the error handling of the code
//! that used to make the call. Failures come back as [`Errno`]; nothing here prints,
//! panics or allocates through the global allocator (a function that takes a closure
//! runs it, and the closure may).
//!
//! The sections below follow the list in [`super`].

use core::ffi::c_void;
use core::ptr::NonNull;

/// An `errno` value: why a system call or a libc function failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Errno(pub(crate) i32);

impl Errno {
    /// `EINTR`: a signal interrupted the call.
    pub(crate) const INTERRUPTED: Errno = Errno(libc::EINTR);

    /// The calling thread's `errno`, read right after the call that failed.
    fn last() -> Errno {
        Errno(errno())
    }
}

/// The calling thread's `errno`. Async-signal-safe.
#[inline]
pub(crate) fn errno() -> i32 {
    // SAFETY: `__errno_location` returns the calling thread's errno slot, valid and
    // aligned for the thread's whole life.
    unsafe { *libc::__errno_location() }
}

/// `0` on success, the error otherwise, for calls that return `-1` and set `errno`.
fn check(rc: i64) -> Result<(), Errno> {
    if rc == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Memory

/// How the kernel accounts a new anonymous mapping against its overcommit limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reserve {
    /// `MAP_NORESERVE`: not accounted. Untouched pages cost no physical memory, and a
    /// mapping far beyond RAM and swap succeeds.
    Lazily,
    /// Accounted as committed: under the default overcommit policy a mapping far beyond
    /// RAM and swap is refused at once instead of failing later, on first touch.
    Committed,
}

/// `mmap`: `len` bytes of zeroed, readable and writable, private anonymous memory at an
/// address the kernel chooses (page aligned).
pub(crate) fn mmap_anonymous(len: usize, reserve: Reserve) -> Result<NonNull<u8>, Errno> {
    let extra = match reserve {
        Reserve::Lazily => libc::MAP_NORESERVE,
        Reserve::Committed => 0,
    };
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    // SAFETY: an anonymous private mapping at a kernel-chosen address has no
    // preconditions: it cannot overlap memory that is in use.
    let p = unsafe { libc::mmap(core::ptr::null_mut(), len, prot, flags, -1, 0) };
    mapped(p)
}

/// The result of a call that returns `MAP_FAILED` or a mapping.
fn mapped(p: *mut c_void) -> Result<NonNull<u8>, Errno> {
    if p == libc::MAP_FAILED {
        return Err(Errno::last());
    }
    NonNull::new(p.cast()).ok_or(Errno(libc::EINVAL))
}

/// `munmap`: unmaps `[ptr, ptr + len)`. Fails (`ENOMEM`) when splitting a mapping would
/// exceed the kernel's limit on the number of mappings; the range then stays mapped.
///
/// # Safety
/// - `ptr` is page aligned and `[ptr, ptr + len)` lies in mappings the caller owns.
/// - Nothing reads, writes or refers to the range afterwards.
pub(crate) unsafe fn munmap(ptr: *mut u8, len: usize) -> Result<(), Errno> {
    // SAFETY: the caller owns the range and no longer uses it.
    check(unsafe { libc::munmap(ptr.cast(), len) }.into())
}

/// `madvise(MADV_DONTNEED)`: gives the physical pages of `[ptr, ptr + len)` back to the
/// kernel; the range stays mapped and reads as zero afterwards.
///
/// # Safety
/// - `ptr` is page aligned and `[ptr, ptr + len)` lies in a private anonymous mapping the
///   caller owns.
/// - Nothing in the range is needed any more: its contents are lost.
pub(crate) unsafe fn madvise_dontneed(ptr: *mut u8, len: usize) -> Result<(), Errno> {
    // SAFETY: per the caller, the range is ours and its contents are dead; on private
    // anonymous memory MADV_DONTNEED makes later reads return zeros.
    check(unsafe { libc::madvise(ptr.cast(), len, libc::MADV_DONTNEED) }.into())
}

/// `mremap(MREMAP_MAYMOVE)`: resizes the mapping at `ptr` from `old_len` to `new_len`
/// bytes, moving its pages (without copying them) when it cannot grow in place. Returns
/// the new address; on failure the old mapping is left as it was.
///
/// # Safety
/// - `[ptr, ptr + old_len)` is a whole mapping the caller owns, page aligned.
/// - After success nothing refers to the old range (unless the new address is `ptr`).
pub(crate) unsafe fn mremap_maymove(ptr: *mut u8, old_len: usize, new_len: usize) -> Result<NonNull<u8>, Errno> {
    // SAFETY: per the caller the mapping is ours and not referred to once moved;
    // MREMAP_MAYMOVE lets the kernel pick the new place, which keeps the contents.
    mapped(unsafe { libc::mremap(ptr.cast(), old_len, new_len, libc::MREMAP_MAYMOVE) })
}

/// `mremap(MREMAP_MAYMOVE | MREMAP_FIXED)`: moves the mapping at `ptr` (`old_len` bytes)
/// to `target`, resized to `new_len` bytes. Whatever was mapped at
/// `[target, target + new_len)` is replaced, and the old range is left unmapped. On failure
/// nothing changes.
///
/// # Safety
/// - `[ptr, ptr + old_len)` is a whole mapping the caller owns, page aligned.
/// - `[target, target + new_len)` is memory the caller owns and no longer uses (a fresh
///   reservation), page aligned, not overlapping the old range.
/// - After success nothing refers to the old range.
pub(crate) unsafe fn mremap_fixed(
    ptr: *mut u8,
    old_len: usize,
    new_len: usize,
    target: *mut u8,
) -> Result<NonNull<u8>, Errno> {
    let flags = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED;
    // SAFETY: per the caller both ranges are ours, and neither the old pages' place nor
    // the replaced reservation is used afterwards.
    mapped(unsafe { libc::mremap(ptr.cast(), old_len, new_len, flags, target.cast::<c_void>()) })
}

/// `mprotect(PROT_NONE)`: makes `[ptr, ptr + len)` inaccessible (a guard page).
///
/// # Safety
/// - `ptr` is page aligned and `[ptr, ptr + len)` lies in a mapping the caller owns.
/// - Nothing accesses the range until it is unmapped: any access faults.
#[cfg(test)]
pub(crate) unsafe fn mprotect_none(ptr: *mut u8, len: usize) -> Result<(), Errno> {
    // SAFETY: per the caller the range is ours and never accessed again.
    check(unsafe { libc::mprotect(ptr.cast(), len, libc::PROT_NONE) }.into())
}

// ---------------------------------------------------------------------------------------
// File descriptors and the environment

/// `write(2)`: writes some of `bytes` to `fd` (stderr, or a descriptor the caller owns);
/// returns how many were written. One call: short writes and `EINTR` are the caller's.
pub(crate) fn write(fd: i32, bytes: &[u8]) -> Result<usize, Errno> {
    // SAFETY: `bytes` is readable for its whole length; the kernel only reads it.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    usize::try_from(n).map_err(|_| Errno::last())
}

// ---------------------------------------------------------------------------------------
// Processes and threads

/// `sched_yield`: lets another thread run on this CPU.
#[inline]
pub(crate) fn sched_yield() {
    // SAFETY: sched_yield has no preconditions.
    unsafe { libc::sched_yield() };
}

#[cfg(test)]
mod tests;
