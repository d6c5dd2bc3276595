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

use core::ffi::{c_void, CStr};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use core::time::Duration;

/// An `errno` value: why a system call or a libc function failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Errno(pub(crate) i32);

impl Errno {
    /// `EINTR`: a signal interrupted the call.
    pub(crate) const INTERRUPTED: Errno = Errno(libc::EINTR);
    /// `ESRCH`: no such process or thread.
    pub(crate) const NO_SUCH_PROCESS: Errno = Errno(libc::ESRCH);
    /// `EAGAIN`: try again.
    pub(crate) const TRY_AGAIN: Errno = Errno(libc::EAGAIN);
    /// `ENOTTY`: the file takes no such `ioctl` request (the kernel is older than it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) const NO_SUCH_REQUEST: Errno = Errno(libc::ENOTTY);

    /// The calling thread's `errno`, read right after the call that failed.
    fn last() -> Errno {
        Errno(errno())
    }
}

/// `strerror`'s words and the number, as in "No such file or directory (errno 2)".
/// Formats through a stack buffer: never allocates.
impl core::fmt::Display for Errno {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut buf = [0u8; 128];
        // SAFETY: the buffer is writable for its whole length, which is passed; the XSI
        // `strerror_r` (what the libc crate binds) NUL-terminates what it writes.
        let rc = unsafe { libc::strerror_r(self.0, buf.as_mut_ptr().cast(), buf.len()) };
        let len = buf.iter().position(|&c| c == 0).unwrap_or(0);
        match core::str::from_utf8(&buf[..len]) {
            Ok(words) if rc == 0 && !words.is_empty() => write!(f, "{words} (errno {})", self.0),
            _ => write!(f, "errno {}", self.0),
        }
    }
}

/// The calling thread's `errno`. Async-signal-safe.
#[inline]
pub(crate) fn errno() -> i32 {
    // SAFETY: `__errno_location` returns the calling thread's errno slot, valid and
    // aligned for the thread's whole life.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's `errno` (a signal handler puts back the value it found).
/// Async-signal-safe.
#[inline]
pub(crate) fn set_errno(value: i32) {
    // SAFETY: as in `errno`: the slot is the calling thread's own.
    unsafe { *libc::__errno_location() = value };
}

/// `0` on success, the error otherwise, for calls that return `-1` and set `errno`.
fn ok_or_errno(rc: i64) -> Result<(), Errno> {
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
    ok_or_errno(unsafe { libc::munmap(ptr.cast(), len) }.into())
}

/// `madvise(MADV_HUGEPAGE)` (`huge`) or `madvise(MADV_NOHUGEPAGE)`: whether the kernel
/// may back `[ptr, ptr + len)` with transparent huge pages (2 MiB), at faults and by
/// collapsing small pages later (`khugepaged`). Contents are unchanged. Fails where the
/// kernel has no transparent huge pages (`EINVAL`): nothing changes then.
///
/// # Safety
/// - `ptr` is page aligned and `[ptr, ptr + len)` lies in a private anonymous mapping the
///   caller owns.
#[inline]
pub(crate) unsafe fn madvise_huge_pages(ptr: *mut u8, len: usize, huge: bool) -> Result<(), Errno> {
    let advice = if huge { libc::MADV_HUGEPAGE } else { libc::MADV_NOHUGEPAGE };
    // SAFETY: per the caller, the range is ours; the advice changes how its pages are
    // backed, never what they hold.
    ok_or_errno(unsafe { libc::madvise(ptr.cast(), len, advice) }.into())
}

/// `madvise(MADV_DONTNEED)`: gives the physical pages of `[ptr, ptr + len)` back to the
/// kernel; the range stays mapped and reads as zero afterwards.
///
/// # Safety
/// - `ptr` is page aligned and `[ptr, ptr + len)` lies in a private anonymous mapping the
///   caller owns.
/// - Nothing in the range is needed any more: its contents are lost.
#[inline]
pub(crate) unsafe fn madvise_dontneed(ptr: *mut u8, len: usize) -> Result<(), Errno> {
    // SAFETY: per the caller, the range is ours and its contents are dead; on private
    // anonymous memory MADV_DONTNEED makes later reads return zeros.
    ok_or_errno(unsafe { libc::madvise(ptr.cast(), len, libc::MADV_DONTNEED) }.into())
}

/// `madvise(MADV_POPULATE_WRITE)` (Linux 5.14): commits the pages of `[ptr, ptr + len)`
/// now, in one call, as writes would one page fault at a time. Contents are unchanged.
/// Fails on older kernels (`EINVAL`): the pages then fault in as they are used.
///
/// # Safety
/// - `ptr` is page aligned and `[ptr, ptr + len)` lies in a private anonymous mapping the
///   caller owns.
#[inline]
pub(crate) unsafe fn madvise_populate_write(ptr: *mut u8, len: usize) -> Result<(), Errno> {
    // SAFETY: per the caller, the range is ours; populating changes no byte of it.
    ok_or_errno(unsafe { libc::madvise(ptr.cast(), len, libc::MADV_POPULATE_WRITE) }.into())
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
    ok_or_errno(unsafe { libc::mprotect(ptr.cast(), len, libc::PROT_NONE) }.into())
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

/// `isatty`: whether `fd` is a terminal.
pub(crate) fn isatty(fd: i32) -> bool {
    // SAFETY: isatty only queries the descriptor; any value may be asked about.
    unsafe { libc::isatty(fd) == 1 }
}

/// `getenv`: calls `f` with the bytes of environment variable `name` (without its NUL),
/// or returns `None` when it is unset. Does not allocate.
///
/// The bytes are the environment's own: they stay valid while nothing changes the
/// environment, which in Rust takes `std::env::set_var` (unsafe for this reason: its
/// caller promises that no other thread reads the environment meanwhile).
pub(crate) fn getenv<R>(name: &CStr, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    // SAFETY: getenv with a NUL-terminated name; it only reads the environment.
    let raw = unsafe { libc::getenv(name.as_ptr()) };
    if raw.is_null() {
        return None;
    }
    // SAFETY: getenv returned a NUL-terminated string, valid while the environment is
    // not changed (see above); it is used only during `f`.
    Some(f(unsafe { CStr::from_ptr(raw) }.to_bytes()))
}

// ---------------------------------------------------------------------------------------
// Processes and threads

/// The calling thread's kernel thread id (`gettid`). Async-signal-safe.
#[inline]
pub(crate) fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// The process id (`getpid`). Async-signal-safe.
#[inline]
pub(crate) fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// `tgkill(pid, tid, sig)`: sends `sig` to thread `tid` of process `pid`. Signal 0 sends
/// nothing and only checks that the thread exists (`ESRCH` when it is gone).
pub(crate) fn tgkill(pid: i32, tid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: tgkill passes no memory; what the signal does is the receiver's handler's.
    ok_or_errno(unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) })
}

/// `FUTEX_WAIT` (process-private): sleeps while `*word == expected`, for at most
/// `timeout`. Returns when woken, at once when the word differs, on timeout, or when a
/// signal arrives: the caller checks its condition again. Async-signal-safe.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec { tv_sec: timeout.as_secs() as _, tv_nsec: timeout.subsec_nanos() as _ };
    let op = libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG;
    // SAFETY: FUTEX_WAIT on a valid, aligned u32 with a valid relative timeout.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), op, expected, &ts) };
}

/// `FUTEX_WAKE` (process-private): wakes every thread waiting on `word`.
/// Async-signal-safe.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    let op = libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG;
    // SAFETY: FUTEX_WAKE on a valid, aligned u32 has no other preconditions.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), op, i32::MAX) };
}

/// `sched_yield`: lets another thread run on this CPU.
#[inline]
pub(crate) fn sched_yield() {
    // SAFETY: sched_yield has no preconditions.
    unsafe { libc::sched_yield() };
}

/// Which of the `out.len()` pages from `start` (page aligned) are resident in memory:
/// `mincore`'s answer, one byte per page, bit 0 set for a resident page. False (and
/// `out` unspecified) when the kernel refuses (the range not wholly mapped, say).
pub(crate) fn resident(start: usize, out: &mut [u8]) -> bool {
    debug_assert!(start.is_multiple_of(4096));
    // SAFETY: mincore writes one byte per page of the range, `out.len()` bytes, into
    // `out`; it reads no memory of the range, which it checks is mapped.
    (unsafe { libc::mincore(start as *mut c_void, out.len() * 4096, out.as_mut_ptr()) }) == 0
}

/// How many of the pages of `[ptr, ptr + len)` are resident in memory (`mincore`);
/// `None` when the kernel refuses (the range not mapped, say). `ptr` page aligned.
#[cfg(test)]
pub(crate) fn resident_pages(ptr: *const u8, len: usize) -> Option<usize> {
    let pages = len.div_ceil(4096);
    let mut vec = [0u8; 1024];
    let mut resident_count = 0;
    let mut done = 0;
    while done < pages {
        let n = (pages - done).min(vec.len());
        if !resident(ptr as usize + done * 4096, &mut vec[..n]) {
            return None;
        }
        resident_count += vec[..n].iter().filter(|&&b| b & 1 != 0).count();
        done += n;
    }
    Some(resident_count)
}

/// `CLOCK_MONOTONIC` in nanoseconds (through the vDSO: no system call).
#[inline]
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// CPU time the calling thread has used, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`):
/// for measurements on a machine whose other work takes the CPU away (the stack capture
/// timings, a test).
#[cfg(test)]
pub(crate) fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec; the thread CPU clock exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// The calling thread's stack, `(lo, hi)`, from `pthread_getattr_np`. It may use libc's
/// malloc (never ours), and for the main thread it reads `/proc/self/maps`.
pub(crate) fn current_thread_stack() -> Result<(usize, usize), Errno> {
    // SAFETY: an all-zero pthread_attr_t is valid storage for pthread_getattr_np to fill.
    let mut attr: libc::pthread_attr_t = unsafe { core::mem::zeroed() };
    // SAFETY: `attr` is writable; pthread_self() is the calling thread.
    let rc = unsafe { libc::pthread_getattr_np(libc::pthread_self(), &mut attr) };
    if rc != 0 {
        return Err(Errno(rc));
    }
    let mut addr: *mut c_void = core::ptr::null_mut();
    let mut size: libc::size_t = 0;
    // SAFETY: `attr` was initialized by pthread_getattr_np; the out-pointers are valid.
    let rc = unsafe { libc::pthread_attr_getstack(&attr, &mut addr, &mut size) };
    // SAFETY: `attr` was initialized by pthread_getattr_np and is not used afterwards.
    unsafe { libc::pthread_attr_destroy(&mut attr) };
    if rc != 0 {
        return Err(Errno(rc));
    }
    Ok((addr as usize, addr as usize + size))
}

// ---------------------------------------------------------------------------------------
// `/proc`

/// A descriptor opened read-only here, closed on drop. No buffering, no allocation:
/// usable while other threads are stopped anywhere.
#[derive(Debug)]
pub(crate) struct ReadOnlyFd(i32);

impl ReadOnlyFd {
    /// `open(path, O_RDONLY | O_CLOEXEC | extra_flags)`.
    fn open(path: &CStr, extra_flags: i32) -> Result<ReadOnlyFd, Errno> {
        // SAFETY: open with a NUL-terminated path; no other precondition.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC | extra_flags) };
        if fd < 0 {
            return Err(Errno::last());
        }
        Ok(ReadOnlyFd(fd))
    }

    /// `read(2)` into `dst`: the number of bytes read, 0 at the end. One call, no retry.
    pub(crate) fn read(&mut self, dst: &mut [u8]) -> Result<usize, Errno> {
        // SAFETY: the kernel writes at most `dst.len()` bytes into the writable `dst`.
        let n = unsafe { libc::read(self.0, dst.as_mut_ptr().cast(), dst.len()) };
        usize::try_from(n).map_err(|_| Errno::last())
    }
}

impl Drop for ReadOnlyFd {
    fn drop(&mut self) {
        // SAFETY: closing the descriptor this value opened and owns.
        unsafe { libc::close(self.0) };
    }
}

/// Opens `/proc/self/maps` for reading (`leak::maps` parses it).
pub(crate) fn open_proc_self_maps() -> Result<ReadOnlyFd, Errno> {
    ReadOnlyFd::open(c"/proc/self/maps", 0)
}

/// One mapping as the kernel's `PROCMAP_QUERY` gives it: its range and permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QueriedMapping {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
}

/// `struct procmap_query` of `linux/fs.h` (Linux 6.11), as the ioctl takes it.
#[repr(C)]
#[derive(Default)]
struct ProcmapQuery {
    size: u64,
    query_flags: u64,
    query_addr: u64,
    vma_start: u64,
    vma_end: u64,
    vma_flags: u64,
    vma_page_size: u64,
    vma_offset: u64,
    inode: u64,
    dev_major: u32,
    dev_minor: u32,
    vma_name_size: u32,
    build_id_size: u32,
    vma_name_addr: u64,
    build_id_addr: u64,
}

/// `_IOWR('f', 17, struct procmap_query)`.
const PROCMAP_QUERY: u64 = (3 << 30) | ((core::mem::size_of::<ProcmapQuery>() as u64) << 16) | (0x66 << 8) | 17;
const PROCMAP_QUERY_VMA_READABLE: u64 = 0x01;
const PROCMAP_QUERY_VMA_WRITABLE: u64 = 0x02;

/// The mapping that holds `addr`, asked of the kernel directly (`PROCMAP_QUERY` on
/// `/proc/self/maps`: one system call, where reading the file makes the kernel print
/// every mapping). `Ok(None)`: no mapping holds `addr`. An error (`ENOTTY` before Linux
/// 6.11) means the caller must read the file instead.
pub(crate) fn query_mapping(addr: usize) -> Result<Option<QueriedMapping>, Errno> {
    let file = open_proc_self_maps()?;
    let mut q = ProcmapQuery {
        size: core::mem::size_of::<ProcmapQuery>() as u64,
        query_addr: addr as u64,
        ..Default::default()
    };
    // SAFETY: the request's argument is a `procmap_query` of the size it says, which the
    // kernel reads and writes in place; no name or build id is asked (their sizes are 0).
    let rc = unsafe { libc::ioctl(file.0, PROCMAP_QUERY as _, &mut q as *mut ProcmapQuery) };
    if rc < 0 {
        let e = Errno::last();
        return if e.0 == libc::ENOENT { Ok(None) } else { Err(e) };
    }
    Ok(Some(QueriedMapping {
        start: q.vma_start as usize,
        end: q.vma_end as usize,
        readable: q.vma_flags & PROCMAP_QUERY_VMA_READABLE != 0,
        writable: q.vma_flags & PROCMAP_QUERY_VMA_WRITABLE != 0,
    }))
}

/// `/proc/self/pagemap`, open: which pages of the process hold data.
pub(crate) struct Pagemap(ReadOnlyFd);

/// Pagemap entry bits: the page is present in memory; it is swapped out (or another
/// kind of non-present entry the kernel keeps, a migration or a marker).
const PM_PRESENT: u64 = 1 << 63;
const PM_SWAP: u64 = 1 << 62;

impl Pagemap {
    /// Opens `/proc/self/pagemap` (readable by the process itself without privileges;
    /// page frame numbers then read as zero, which is not used here). Open it for each
    /// use: a descriptor kept across a `fork` would describe the parent.
    pub(crate) fn open() -> Result<Pagemap, Errno> {
        ReadOnlyFd::open(c"/proc/self/pagemap", 0).map(Pagemap)
    }

    /// Whether the kernel's entries can be trusted: the page holding `addr`, which the
    /// caller knows holds data (its own stack), must read as present or swapped out.
    /// (A kernel or sandbox that gives every page an empty entry would otherwise make
    /// every anonymous page look untouched.)
    pub(crate) fn answers_for(&self, addr: usize) -> bool {
        const PAGE: usize = 4096;
        let page = addr & !(PAGE - 1);
        let mut answered = false;
        let read = self.for_each_touched_run(page, page + PAGE, |_, _| answered = true);
        read.is_ok() && answered
    }

    /// Calls `f(start, end)` for each run of pages of `[start, end)` (page aligned) that
    /// are present or swapped out, in address order. The rest of an anonymous private
    /// mapping was never written since it was mapped or discarded, and reads as zero.
    /// (Not so for a file mapping: a page not yet read in holds the file's bytes.) Fails
    /// when the kernel refuses a read: then `f` has been called for the runs before it.
    pub(crate) fn for_each_touched_run(
        &self,
        start: usize,
        end: usize,
        mut f: impl FnMut(usize, usize),
    ) -> Result<(), Errno> {
        const PAGE: usize = 4096;
        debug_assert!(start.is_multiple_of(PAGE) && end.is_multiple_of(PAGE) && start <= end);
        let mut entries = [0u64; 512];
        let mut run: Option<usize> = None;
        let mut page = start;
        while page < end {
            let n = ((end - page) / PAGE).min(entries.len());
            let offset = (page / PAGE * 8) as libc::off_t;
            // SAFETY: the kernel writes at most `n * 8` bytes into `entries`, which holds
            // `512 >= n` words.
            let got = unsafe { libc::pread(self.0 .0, entries.as_mut_ptr().cast(), n * 8, offset) };
            let Ok(got) = usize::try_from(got) else { return Err(Errno::last()) };
            let got = got / 8;
            if got == 0 {
                return Err(Errno(libc::EIO));
            }
            for (k, &e) in entries[..got].iter().enumerate() {
                let at = page + k * PAGE;
                match (e & (PM_PRESENT | PM_SWAP) != 0, run) {
                    (true, None) => run = Some(at),
                    (false, Some(s)) => {
                        f(s, at);
                        run = None;
                    }
                    _ => {}
                }
            }
            page += got * PAGE;
        }
        if let Some(s) = run {
            f(s, end);
        }
        Ok(())
    }
}

/// Calls `f(tid)` for each thread of the process (`/proc/self/task`), without
/// allocating. Fails when the directory cannot be opened or read; the threads listed
/// before a read error have been passed to `f`.
pub(crate) fn for_each_task(f: impl FnMut(i32)) -> Result<(), Errno> {
    for_each_task_in(c"/proc/self/task", f)
}

/// How many threads the process has (`num_threads`, field 20 of `/proc/self/stat`).
pub(crate) fn thread_count() -> Result<usize, Errno> {
    let mut file = ReadOnlyFd::open(c"/proc/self/stat", 0)?;
    let mut buf = [0u8; 1024];
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..])? {
            0 => break,
            n => len += n,
        }
    }
    // After the command name, which may hold spaces and parentheses: the last `)`.
    let text = &buf[..len];
    let after = text.iter().rposition(|&c| c == b')').map_or(&text[..0], |i| &text[i + 1..]);
    let field = after.split(|c| c.is_ascii_whitespace()).filter(|f| !f.is_empty()).nth(17);
    let count = field.and_then(|f| core::str::from_utf8(f).ok()).and_then(|f| f.parse().ok());
    count.ok_or(Errno(libc::EINVAL))
}

/// [`for_each_task`] over the directory `dir`.
fn for_each_task_in(dir: &CStr, mut f: impl FnMut(i32)) -> Result<(), Errno> {
    let fd = ReadOnlyFd::open(dir, libc::O_DIRECTORY)?;
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes of dirent records.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd.0, buf.as_mut_ptr(), buf.len()) };
        match n {
            0 => return Ok(()),
            n if n < 0 => return Err(Errno::last()),
            n => for_each_dirent(&buf[..n as usize], &mut f),
        }
    }
}

/// Walks `linux_dirent64` records: `d_ino` u64, `d_off` i64, `d_reclen` u16, `d_type` u8,
/// then the NUL-terminated name. Calls `f` with each name that is a thread id.
fn for_each_dirent(mut records: &[u8], f: &mut impl FnMut(i32)) {
    while records.len() >= 19 {
        let reclen = u16::from_ne_bytes([records[16], records[17]]) as usize;
        if reclen < 19 || reclen > records.len() {
            return;
        }
        let name = &records[19..reclen];
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        if let Some(tid) = parse_tid(&name[..end]) {
            f(tid);
        }
        records = &records[reclen..];
    }
}

/// A thread id from a directory name: decimal digits only (so not `.` nor `..`).
fn parse_tid(name: &[u8]) -> Option<i32> {
    if name.is_empty() || name.len() > 9 || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(name.iter().fold(0i32, |a, d| a * 10 + (d - b'0') as i32))
}

// ---------------------------------------------------------------------------------------
// Signals

mod signal;
pub(crate) use libc::siginfo_t as SigInfo;
pub(crate) use libc::SIGPWR;
#[cfg(test)]
pub(crate) use libc::{SIGPROF, SIGUSR1, SIGUSR2};
pub(crate) use signal::*;

/// Signals a user may name in an option (`profile_signal`): the name without `SIG`, and
/// the number on Linux. Signals the runtime or the leak check rely on (`SEGV`, `KILL`,
/// `STOP`, `PWR`, ...) are left out.
pub(crate) const SIGNAL_NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("CONT", libc::SIGCONT),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("SYS", libc::SIGSYS),
];

/// Zeroes the bytes of `action`'s signal mask beyond the kernel's 64 signals.
///
/// glibc's `sigaction` fills the old action's 128-byte `sigset_t` from a structure on its
/// own stack of which the kernel writes only the first 8 bytes, so the other 120 bytes
/// are whatever that stack held before: often the addresses of heap blocks. Kept in a
/// static (the stop signal's saved action), they would be roots of every later leak
/// check, keeping blocks that are leaked look reachable.
pub(crate) fn clear_unused_mask(action: &mut libc::sigaction) {
    const KERNEL_MASK_BYTES: usize = 8;
    let mask = &mut action.sa_mask as *mut libc::sigset_t as *mut u8;
    let len = core::mem::size_of::<libc::sigset_t>();
    // SAFETY: `mask` points to `action.sa_mask`, `len` bytes long, borrowed mutably here;
    // any bytes are a valid `sigset_t`.
    unsafe { core::ptr::write_bytes(mask.add(KERNEL_MASK_BYTES), 0, len - KERNEL_MASK_BYTES) };
}

/// A signal handler, as `sigaction` takes it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SignalHandler {
    /// A handler of the signal number alone.
    Plain(extern "C" fn(i32)),
    /// An `SA_SIGINFO` handler: the signal, its info, and the interrupted context (a
    /// `ucontext_t`, which `signal_context_registers` reads).
    WithContext(extern "C" fn(i32, *mut SigInfo, *mut c_void)),
}

/// What else is blocked while a handler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockWhileHandling {
    /// Only the handled signal itself.
    Nothing,
    /// Every signal but the synchronous fault signals (`SEGV`, `BUS`, `ILL`, `FPE`,
    /// `ABRT`), which must stay deliverable so that a fault in the handler is not hidden.
    AllButFaults,
}

/// A signal's action as it was before [`set_signal_handler`] replaced it.
#[derive(Clone, Copy)]
pub(crate) struct SavedSignalAction {
    sig: i32,
    action: libc::sigaction,
}

impl core::fmt::Debug for SavedSignalAction {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SavedSignalAction").field("sig", &self.sig).field("handler", &self.previous_handler()).finish()
    }
}

impl SavedSignalAction {
    /// The previous handler's address, or `None` when the action was the default
    /// (`SIG_DFL`) or to ignore the signal (`SIG_IGN`).
    pub(crate) fn previous_handler(&self) -> Option<usize> {
        let h = self.action.sa_sigaction;
        (h != libc::SIG_DFL && h != libc::SIG_IGN).then_some(h)
    }
}

/// `sigaction`: installs `handler` for `sig` with `SA_RESTART` (and `SA_SIGINFO` for
/// [`SignalHandler::WithContext`]), never `SA_ONSTACK`: the handler runs on the
/// interrupted stack and sees the interrupted stack pointer. Returns the previous action.
///
/// # Safety
/// - `handler` is async-signal-safe: it uses only atomics and async-signal-safe calls,
///   never allocates nor takes a lock, and leaves `errno` as it found it.
/// - The program does not rely on the action it had for `sig` (the leak check's own
///   signal, or one the user named in an option).
pub(crate) unsafe fn set_signal_handler(
    sig: i32,
    handler: SignalHandler,
    block: BlockWhileHandling,
) -> Result<SavedSignalAction, Errno> {
    // SAFETY: an all-zero sigaction is a valid starting value (no handler, no flags,
    // an empty mask).
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    (sa.sa_sigaction, sa.sa_flags) = match handler {
        SignalHandler::Plain(h) => (h as usize, libc::SA_RESTART),
        SignalHandler::WithContext(h) => (h as usize, libc::SA_SIGINFO | libc::SA_RESTART),
    };
    fill_mask(&mut sa.sa_mask, block);
    // SAFETY: as for `sa`, all-zero is a valid sigaction for the kernel to overwrite.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: both sigactions are valid; the handler's conduct is the caller's contract.
    ok_or_errno(unsafe { libc::sigaction(sig, &sa, &mut old) }.into())?;
    clear_unused_mask(&mut old);
    Ok(SavedSignalAction { sig, action: old })
}

/// Fills a handler's mask of blocked signals.
fn fill_mask(mask: &mut libc::sigset_t, block: BlockWhileHandling) {
    // SAFETY: `mask` is a valid sigset_t; these calls only set its bits (and cannot fail
    // for valid signal numbers).
    unsafe {
        match block {
            BlockWhileHandling::Nothing => {
                libc::sigemptyset(mask);
            }
            BlockWhileHandling::AllButFaults => {
                libc::sigfillset(mask);
                for s in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT] {
                    libc::sigdelset(mask, s);
                }
            }
        }
    }
}

/// Puts back the action [`set_signal_handler`] replaced. Async-signal-safe.
pub(crate) fn restore_signal_action(saved: &SavedSignalAction) -> Result<(), Errno> {
    // SAFETY: the action is the one the kernel had for this signal: putting it back
    // returns the program to the state it set up itself.
    ok_or_errno(unsafe { libc::sigaction(saved.sig, &saved.action, core::ptr::null_mut()) }.into())
}

/// `SIGRTMAX`: the highest real-time signal number (glibc computes it at run time).
pub(crate) fn rt_signal_max() -> i32 {
    libc::SIGRTMAX()
}

/// Which of the `count` signals `first, first + 1, ...` the calling thread blocks: bit
/// `i` for signal `first + i`. A thread's mask is inherited by the threads it creates
/// (`pthread_create` copies it), which the leak-check scopes use to follow threads.
pub(crate) fn blocked_signal_bits(first: i32, count: u32) -> Result<u32, Errno> {
    debug_assert!(count <= 32 && first > 0);
    // SAFETY: an all-zero sigset is a valid empty set; pthread_sigmask with a null new set
    // only writes the current mask into `cur`.
    let cur = unsafe {
        let mut cur: libc::sigset_t = core::mem::zeroed();
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, core::ptr::null(), &mut cur);
        if rc != 0 {
            return Err(Errno(rc));
        }
        cur
    };
    let mut bits = 0;
    for i in 0..count {
        // SAFETY: `cur` is a valid, initialized set; sigismember only reads it.
        if unsafe { libc::sigismember(&cur, first + i as i32) } == 1 {
            bits |= 1 << i;
        }
    }
    Ok(bits)
}

/// Blocks, in the calling thread, signal `first + i` for each bit `i` of `block`, then
/// unblocks those of `unblock`.
pub(crate) fn change_blocked_signals(first: i32, block: u32, unblock: u32) -> Result<(), Errno> {
    for (how, bits) in [(libc::SIG_BLOCK, block), (libc::SIG_UNBLOCK, unblock)] {
        if bits == 0 {
            continue;
        }
        // SAFETY: an all-zero sigset is valid; sigemptyset/sigaddset fill it; the call
        // changes only this thread's mask, for the signals in the set.
        let rc = unsafe {
            let mut set: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut set);
            for i in 0..32 {
                if bits & (1 << i) != 0 {
                    libc::sigaddset(&mut set, first + i);
                }
            }
            libc::pthread_sigmask(how, &set, core::ptr::null_mut())
        };
        if rc != 0 {
            return Err(Errno(rc));
        }
    }
    Ok(())
}

/// Blocks (`true`) or unblocks `sig` for the calling thread (`pthread_sigmask`).
#[cfg(test)]
pub(crate) fn set_signal_blocked(sig: i32, blocked: bool) {
    let how = if blocked { libc::SIG_BLOCK } else { libc::SIG_UNBLOCK };
    // SAFETY: changing this thread's own signal mask for one signal.
    unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(how, &set, core::ptr::null_mut());
    }
}

// ---------------------------------------------------------------------------------------
// The dynamic loader

pub(crate) use libc::Elf64_Phdr as ProgramHeader;
pub(crate) use libc::{PF_R, PF_W, PT_GNU_EH_FRAME, PT_LOAD, PT_NOTE, PT_TLS};

/// One loaded object (the executable, a shared library, the vDSO), as the dynamic loader
/// describes it to [`for_each_loaded_object`].
#[derive(Debug)]
pub(crate) struct LoadedObject<'a> {
    /// The path it was loaded from; empty for the executable.
    pub(crate) name: &'a CStr,
    /// What was added to its virtual addresses when it was mapped (`dlpi_addr`).
    pub(crate) load_bias: usize,
    /// Its program headers.
    pub(crate) program_headers: &'a [ProgramHeader],
    /// The calling thread's block of its TLS segment, when it has one allocated and the
    /// loader reports it (`dlpi_tls_data`).
    pub(crate) tls_data: Option<usize>,
    /// Objects the loader has loaded and unloaded so far in the process (`dlpi_adds`,
    /// `dlpi_subs`; the same for every object of one walk): a change of either means the
    /// set of loaded objects changed. Zero when the loader does not report them.
    pub(crate) loads: u64,
    pub(crate) unloads: u64,
}

/// `dl_iterate_phdr`: calls `f` for each loaded object, the executable first. Runs under
/// the loader's lock: `f` must not load or unload objects, nor wait for a thread that
/// might (it would deadlock). A panic in `f` aborts the process.
pub(crate) fn for_each_loaded_object<F: FnMut(&LoadedObject<'_>)>(mut f: F) {
    find_loaded_object(|o| {
        f(o);
        None::<()>
    });
}

/// `dl_iterate_phdr` until `f` answers: calls `f` for each loaded object, the executable
/// first, and stops at the first `Some`, which it returns. The loader holds its lock
/// during the whole walk, so no object is unloaded while `f` runs: memory of the object
/// `f` is given (its segments, as its program headers describe them) stays mapped until
/// `f` returns. The rules of [`for_each_loaded_object`] apply.
pub(crate) fn find_loaded_object<R, F: FnMut(&LoadedObject<'_>) -> Option<R>>(f: F) -> Option<R> {
    let mut state = (f, None);
    // SAFETY: `visit::<F, R>` matches the callback type and reads `data` as the
    // `(F, Option<R>)` passed here, which outlives the call; the loader calls it only
    // during the call, on this thread.
    unsafe { libc::dl_iterate_phdr(Some(visit::<F, R>), (&mut state as *mut (F, Option<R>)).cast()) };
    state.1
}

/// The `dl_iterate_phdr` callback: hands one object to the closure behind `data`, and
/// stops the walk (returns 1) once it answered.
///
/// # Safety
/// - `info` points to `size` readable bytes of a `dl_phdr_info` that stays valid during
///   the call, whose `dlpi_phdr` (when not null) points to `dlpi_phnum` headers.
/// - `data` points to an `(F, Option<R>)` that nothing else uses during the call.
unsafe extern "C" fn visit<F: FnMut(&LoadedObject<'_>) -> Option<R>, R>(
    info: *mut libc::dl_phdr_info,
    size: usize,
    data: *mut c_void,
) -> i32 {
    // SAFETY: `data` is the exclusive `&mut (F, Option<R>)` that `find_loaded_object`
    // passed.
    let (f, answer) = unsafe { &mut *data.cast::<(F, Option<R>)>() };
    // SAFETY: the loader's info is valid for the call; these fields come before
    // `dlpi_adds` and so are within `size` bytes on every glibc.
    let (name, addr, phdr, phnum) =
        unsafe { ((*info).dlpi_name, (*info).dlpi_addr, (*info).dlpi_phdr, (*info).dlpi_phnum) };
    let has_counts = size >= core::mem::offset_of!(libc::dl_phdr_info, dlpi_subs) + 8;
    // SAFETY: `size` covers `dlpi_adds` and `dlpi_subs`, which precede `dlpi_subs`'s end
    // (checked just above).
    let (loads, unloads) = if has_counts { unsafe { ((*info).dlpi_adds, (*info).dlpi_subs) } } else { (0, 0) };
    let has_tls_data = size >= core::mem::offset_of!(libc::dl_phdr_info, dlpi_tls_data) + 8;
    // SAFETY: `size` covers `dlpi_tls_data` (checked just above).
    let tls = if has_tls_data { (unsafe { (*info).dlpi_tls_data }) as usize } else { 0 };
    let object = LoadedObject {
        // SAFETY: the loader's name is a NUL-terminated string, valid during the call.
        name: if name.is_null() { c"" } else { unsafe { CStr::from_ptr(name) } },
        load_bias: addr as usize,
        // SAFETY: the loader gives `dlpi_phnum` program headers at `dlpi_phdr`, valid
        // during the call.
        program_headers: if phdr.is_null() { &[] } else { unsafe { core::slice::from_raw_parts(phdr, phnum.into()) } },
        tls_data: (tls != 0).then_some(tls),
        loads,
        unloads,
    };
    *answer = f(&object);
    i32::from(answer.is_some())
}

/// `dladdr`: calls `f` with the path of the loaded object that holds address `addr`, or
/// returns `None` when no object holds it. The path is the loader's, valid while the
/// object stays loaded: `f` should copy what it keeps.
pub(crate) fn dladdr_file_name<R>(addr: usize, f: impl FnOnce(&CStr) -> R) -> Option<R> {
    // SAFETY: Dl_info is plain old data; all-zero is a valid value.
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    // SAFETY: dladdr only reads the loader's tables; any address may be asked about.
    let found = unsafe { libc::dladdr(addr as *const c_void, &mut info) } != 0;
    if !found || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr set dli_fname to a NUL-terminated name owned by the loader, valid
    // while the object stays loaded, and used only during `f`.
    Some(f(unsafe { CStr::from_ptr(info.dli_fname) }))
}

// ---------------------------------------------------------------------------------------
// Process lifecycle: thread exit, fork, exit

/// The thread-exit key once created (a `pthread_key_t`), or [`NO_KEY`].
static THREAD_EXIT_KEY: AtomicU64 = AtomicU64::new(NO_KEY);
const NO_KEY: u64 = u64::MAX;

/// Creates the process's thread-exit key (`pthread_key_create`): when a thread that set a
/// value with [`thread_exit_key_set`] exits, glibc calls `destructor` with that value on
/// the exiting thread, late in its exit: after the destructors of its `thread_local!`s
/// (glibc runs those first). There is one such key: a second call fails with `EEXIST`.
pub(crate) fn thread_exit_key_create(destructor: extern "C" fn(*mut c_void)) -> Result<(), Errno> {
    let key = key_create(destructor)?;
    if THREAD_EXIT_KEY.compare_exchange(NO_KEY, key.into(), Ordering::AcqRel, Ordering::Acquire).is_err() {
        key_delete(key);
        return Err(Errno(libc::EEXIST));
    }
    Ok(())
}

/// Sets the calling thread's value of the thread-exit key (`pthread_setspecific`): the
/// destructor runs with it when the thread exits, if it is not null then. Fails with
/// `EINVAL` before [`thread_exit_key_create`].
///
/// Not tested on its own: in the test binary the key may be the heap's, whose destructor
/// must never see a test's value (`key_set` is tested on a key of its own).
pub(crate) fn thread_exit_key_set(value: *mut c_void) -> Result<(), Errno> {
    match u32::try_from(THREAD_EXIT_KEY.load(Ordering::Acquire)) {
        Ok(key) => key_set(key, value),
        Err(_) => Err(Errno(libc::EINVAL)),
    }
}

/// `pthread_key_create` with `destructor`.
fn key_create(destructor: extern "C" fn(*mut c_void)) -> Result<libc::pthread_key_t, Errno> {
    let mut key: libc::pthread_key_t = 0;
    let dtor: unsafe extern "C" fn(*mut c_void) = destructor;
    // SAFETY: `key` is writable; the destructor is a safe function, sound for any value.
    let rc = unsafe { libc::pthread_key_create(&mut key, Some(dtor)) };
    if rc != 0 {
        return Err(Errno(rc));
    }
    Ok(key)
}

/// `pthread_setspecific(key, value)`.
fn key_set(key: libc::pthread_key_t, value: *mut c_void) -> Result<(), Errno> {
    // SAFETY: the value is opaque to glibc; an invalid key is reported as EINVAL.
    match unsafe { libc::pthread_setspecific(key, value) } {
        0 => Ok(()),
        rc => Err(Errno(rc)),
    }
}

/// `pthread_key_delete(key)`: forgets a key nobody uses (its destructor will not run).
fn key_delete(key: libc::pthread_key_t) {
    // SAFETY: deleting a key only forgets its values; no destructor runs.
    unsafe { libc::pthread_key_delete(key) };
}

/// `pthread_atfork`: `prepare` runs in the forking thread before `fork`, `parent` in the
/// parent and `child` in the child after it, in the order the fork handlers require
/// (prepare handlers in reverse order of registration, the others in order).
///
/// # Safety
/// - `child` does only what is allowed in the child of a multithreaded process: calls
///   that are async-signal-safe, and our own locks it knows no other thread holds (the
///   forking thread took them in `prepare`).
/// - `prepare` leaves every lock `child` and `parent` release held by the forking thread.
pub(crate) unsafe fn atfork(
    prepare: extern "C" fn(),
    parent: extern "C" fn(),
    child: extern "C" fn(),
) -> Result<(), Errno> {
    let (prepare, parent, child): (unsafe extern "C" fn(), unsafe extern "C" fn(), unsafe extern "C" fn()) =
        (prepare, parent, child);
    // SAFETY: per the caller, the handlers behave as fork requires.
    match unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) } {
        0 => Ok(()),
        rc => Err(Errno(rc)),
    }
}

/// `atexit`: `f` runs when the process exits through `exit` (a return from `main`,
/// `std::process::exit`), after Rust's runtime flushed stdout, in reverse order of
/// registration. Fails (`ENOMEM`) when glibc cannot record it.
pub(crate) fn atexit(f: extern "C" fn()) -> Result<(), Errno> {
    // SAFETY: `f` is a safe function without arguments; a panic in it aborts.
    match unsafe { libc::atexit(f) } {
        0 => Ok(()),
        _ => Err(Errno(libc::ENOMEM)),
    }
}

/// `fflush(NULL)`: writes out every C stdio stream's buffer (what the program printed
/// with `printf`, say), so that the allocator's own output follows it.
pub(crate) fn flush_c_stdio() -> Result<(), Errno> {
    // SAFETY: fflush(NULL) flushes every stream; it has no preconditions.
    match unsafe { libc::fflush(core::ptr::null_mut()) } {
        0 => Ok(()),
        _ => Err(Errno::last()),
    }
}

/// `_exit(code)`: ends the process at once, without `atexit` handlers, destructors nor
/// any flushing.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; nothing runs after it.
    unsafe { libc::_exit(code) }
}

mod spawn;
mod written;
pub(crate) use spawn::spawn_detached;
pub(crate) use written::{PageRegion, WriteTracker};

#[cfg(test)]
mod tests;
