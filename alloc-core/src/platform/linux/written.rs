//! The kernel's record of written pages: userfaultfd write protection in asynchronous
//! mode, read back and re-armed with the `PAGEMAP_SCAN` ioctl of `/proc/self/pagemap`.
//!
//! # How
//! A userfaultfd opened with `UFFD_USER_MODE_ONLY` (allowed without privileges whatever
//! `vm.unprivileged_userfaultfd` says) and the features `UFFD_FEATURE_WP_ASYNC` (a write
//! to a protected page just clears its protection in the kernel: no fault reaches us)
//! and `UFFD_FEATURE_WP_UNPOPULATED` (pages not yet touched count as protected). A range
//! is registered for write protection ([`WriteTracker::register`]) and protected
//! ([`WriteTracker::protect`]); later `PAGEMAP_SCAN` with `PM_SCAN_WP_MATCHING` lists the
//! pages written since (category `PAGE_IS_WRITTEN`) and protects them again in the same
//! call ([`WriteTracker::take_written`]). With asynchronous mode any memory type may be
//! registered (Linux 6.7 and later); `PM_SCAN_CHECK_WPASYNC` makes the scan fail, rather
//! than report nothing, on a mapping that is not registered.

use super::Errno;
use core::ffi::c_void;

const UFFD_USER_MODE_ONLY: i32 = 1;
const UFFD_API: u64 = 0xAA;
const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
const UFFDIO_API: u64 = 0xC018_AA3F;
const UFFDIO_REGISTER: u64 = 0xC020_AA00;
const UFFDIO_WRITEPROTECT: u64 = 0xC018_AA06;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1;
const PAGEMAP_SCAN: u64 = 0xC060_6610;
const PM_SCAN_WP_MATCHING: u64 = 1;
const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;
const PAGE_IS_WRITTEN: u64 = 1 << 1;

#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioRange {
    start: u64,
    len: u64,
}

#[repr(C)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioWriteprotect {
    range: UffdioRange,
    mode: u64,
}

#[repr(C)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// One run of written pages `[start, end)`, as `PAGEMAP_SCAN` returns it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PageRegion {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) categories: u64,
}

/// A userfaultfd set up for asynchronous write protection, and `/proc/self/pagemap`.
/// Both descriptors are closed on drop.
#[derive(Debug)]
pub(crate) struct WriteTracker {
    uffd: i32,
    pagemap: i32,
}

impl WriteTracker {
    /// Opens both descriptors and negotiates the features; fails where the kernel lacks
    /// them (before 6.7) or refuses userfaultfd (seccomp, a kernel built without it).
    pub(crate) fn open() -> Result<WriteTracker, Errno> {
        let flags = libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY;
        // SAFETY: the userfaultfd system call takes one integer argument.
        let uffd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) } as i32;
        if uffd < 0 {
            return Err(Errno::last());
        }
        // SAFETY: a NUL-terminated path; no other precondition.
        let pagemap = unsafe { libc::open(c"/proc/self/pagemap".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        let tracker = WriteTracker { uffd, pagemap };
        if pagemap < 0 {
            return Err(Errno::last());
        }
        let mut api =
            UffdioApi { api: UFFD_API, features: UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED, ioctls: 0 };
        tracker.ioctl(uffd, UFFDIO_API, &mut api as *mut UffdioApi as *mut c_void)?;
        Ok(tracker)
    }

    fn ioctl(&self, fd: i32, request: u64, arg: *mut c_void) -> Result<i64, Errno> {
        // SAFETY: callers pass a request with the argument struct it reads and writes,
        // of the size encoded in the request.
        let rc = unsafe { libc::ioctl(fd, request, arg) };
        if rc < 0 {
            Err(Errno::last())
        } else {
            Ok(rc as i64)
        }
    }

    /// Registers `[start, start + len)` (page-aligned, wholly mapped) for write
    /// protection.
    pub(crate) fn register(&self, start: usize, len: usize) -> Result<(), Errno> {
        let mut r = UffdioRegister {
            range: UffdioRange { start: start as u64, len: len as u64 },
            mode: UFFDIO_REGISTER_MODE_WP,
            ioctls: 0,
        };
        self.ioctl(self.uffd, UFFDIO_REGISTER, &mut r as *mut UffdioRegister as *mut c_void).map(drop)
    }

    /// Write-protects every page of `[start, start + len)`, a registered range: none
    /// counts as written until the program writes it.
    pub(crate) fn protect(&self, start: usize, len: usize) -> Result<(), Errno> {
        let mut w = UffdioWriteprotect {
            range: UffdioRange { start: start as u64, len: len as u64 },
            mode: UFFDIO_WRITEPROTECT_MODE_WP,
        };
        self.ioctl(self.uffd, UFFDIO_WRITEPROTECT, &mut w as *mut UffdioWriteprotect as *mut c_void).map(drop)
    }

    /// Removes the write protection of every page of `[start, start + len)`, a registered
    /// range: the program's writes there take no fault, and every page reads as written
    /// until [`WriteTracker::protect`] protects them again.
    pub(crate) fn unprotect(&self, start: usize, len: usize) -> Result<(), Errno> {
        let mut w = UffdioWriteprotect { range: UffdioRange { start: start as u64, len: len as u64 }, mode: 0 };
        self.ioctl(self.uffd, UFFDIO_WRITEPROTECT, &mut w as *mut UffdioWriteprotect as *mut c_void).map(drop)
    }

    /// Lists into `out` the runs of pages of `[start, end)` written since they were last
    /// protected, and protects them again. Returns how many runs it wrote and where the
    /// walk stopped (`end` unless `out` filled up: call again from there). Fails with
    /// `EPERM` when part of the range is not registered.
    pub(crate) fn take_written(
        &self,
        start: usize,
        end: usize,
        out: &mut [PageRegion],
    ) -> Result<(usize, usize), Errno> {
        let mut arg = PmScanArg {
            size: core::mem::size_of::<PmScanArg>() as u64,
            flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
            start: start as u64,
            end: end as u64,
            walk_end: 0,
            vec: out.as_mut_ptr() as u64,
            vec_len: out.len() as u64,
            max_pages: 0,
            category_inverted: 0,
            category_mask: PAGE_IS_WRITTEN,
            category_anyof_mask: 0,
            return_mask: PAGE_IS_WRITTEN,
        };
        let n = self.ioctl(self.pagemap, PAGEMAP_SCAN, &mut arg as *mut PmScanArg as *mut c_void)?;
        Ok((n as usize, arg.walk_end as usize))
    }
}

impl Drop for WriteTracker {
    fn drop(&mut self) {
        for fd in [self.uffd, self.pagemap] {
            if fd >= 0 {
                // SAFETY: our own descriptor, closed once.
                unsafe { libc::close(fd) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An anonymous mapping of `pages` pages, unmapped on drop.
    struct Anon(*mut u8, usize);
    impl Drop for Anon {
        fn drop(&mut self) {
            // SAFETY: mapped below with this length, used no more.
            unsafe { libc::munmap(self.0.cast(), self.1) };
        }
    }
    fn anon(pages: usize) -> Anon {
        let len = pages * 4096;
        // SAFETY: an anonymous private mapping; no precondition.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        Anon(p.cast(), len)
    }

    fn written(t: &WriteTracker, m: &Anon) -> Vec<(usize, usize)> {
        let mut out = [PageRegion::default(); 16];
        let (n, walk_end) = t.take_written(m.0 as usize, m.0 as usize + m.1, &mut out).unwrap();
        assert_eq!(walk_end, m.0 as usize + m.1);
        out[..n]
            .iter()
            .map(|r| ((r.start as usize - m.0 as usize) / 4096, (r.end as usize - m.0 as usize) / 4096))
            .collect()
    }

    #[test]
    fn written_pages_are_listed_once_then_protected_again() {
        let t = match WriteTracker::open() {
            Ok(t) => t,
            Err(e) => return eprintln!("no userfaultfd write protection here ({e}); skipped"),
        };
        let m = anon(8);
        // SAFETY: in bounds of the mapping.
        unsafe { m.0.add(4096).write(1) }; // populated before registration
        t.register(m.0 as usize, m.1).unwrap();
        t.protect(m.0 as usize, m.1).unwrap();
        assert_eq!(written(&t, &m), []);
        // SAFETY: in bounds of the mapping.
        unsafe {
            m.0.add(2 * 4096 + 8).write(7);
            m.0.add(3 * 4096).write(7);
            m.0.add(6 * 4096 + 100).write(7);
        }
        assert_eq!(written(&t, &m), [(2, 4), (6, 7)]);
        assert_eq!(written(&t, &m), [], "the scan protected them again");
        // SAFETY: in bounds of the mapping.
        unsafe { m.0.add(4096).write(2) };
        assert_eq!(written(&t, &m), [(1, 2)]);
        // Unprotected, a page's writes are not recorded (no fault): it reads as written
        // until protected again, and once protected only later writes count.
        t.unprotect(m.0 as usize, m.1).unwrap();
        // SAFETY: in bounds of the mapping.
        unsafe { m.0.add(5 * 4096).write(3) };
        let unprotected = written(&t, &m);
        assert!(unprotected.iter().any(|&(a, b)| a <= 5 && 5 < b), "{unprotected:?}");
        t.unprotect(m.0 as usize, m.1).unwrap();
        t.protect(m.0 as usize, m.1).unwrap();
        assert_eq!(written(&t, &m), [], "protected again: nothing written since");
        // SAFETY: in bounds of the mapping.
        unsafe { m.0.add(7 * 4096).write(4) };
        assert_eq!(written(&t, &m), [(7, 8)]);
        let other = anon(2);
        let mut out = [PageRegion::default(); 4];
        let r = t.take_written(other.0 as usize, other.0 as usize + other.1, &mut out);
        assert_eq!(r.err(), Some(Errno(libc::EPERM)), "an unregistered mapping is an error, not a clean one");
    }
}
