//! Threads the allocator starts itself (the leak sweeper), without Rust's `std::thread`,
//! whose bookkeeping would allocate through the allocator being initialized.

use super::Errno;
use core::ffi::c_void;

/// Starts a detached thread running `f(arg)` (`pthread_create` with a 256 KiB stack).
/// glibc's `pthread_create` maps the stack itself and never calls Rust's allocator. The
/// thread does not keep the process alive: `exit` ends it with the others.
pub(crate) fn spawn_detached(f: extern "C" fn(usize), arg: usize) -> Result<(), Errno> {
    extern "C" fn trampoline(packed: *mut c_void) -> *mut c_void {
        // SAFETY: `packed` points to the `(f, arg)` pair leaked below for this thread;
        // taking it back once frees it (libc's heap: `Box` is not used, see below).
        let (f, arg) = unsafe { *(packed as *const (extern "C" fn(usize), usize)) };
        // SAFETY: allocated with `libc::malloc` below, read just above, used no more.
        unsafe { libc::free(packed) };
        f(arg);
        core::ptr::null_mut()
    }
    // The pair goes through libc's heap: Rust's allocator may be the caller's own.
    // SAFETY: malloc has no preconditions; null is handled.
    let packed = unsafe { libc::malloc(core::mem::size_of::<(extern "C" fn(usize), usize)>()) };
    if packed.is_null() {
        return Err(Errno(libc::ENOMEM));
    }
    // SAFETY: `packed` is a fresh allocation of the pair's size, malloc-aligned (16).
    unsafe { (packed as *mut (extern "C" fn(usize), usize)).write((f, arg)) };
    // SAFETY: a zeroed pthread_attr_t is initialized by pthread_attr_init before use; the
    // calls get valid pointers; `trampoline` matches the start routine's type, and owns
    // `packed` once the thread starts (it is freed here if it does not).
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        libc::pthread_attr_setstacksize(&mut attr, 256 << 10);
        let mut tid: libc::pthread_t = 0;
        let rc = libc::pthread_create(&mut tid, &attr, trampoline, packed);
        libc::pthread_attr_destroy(&mut attr);
        if rc != 0 {
            libc::free(packed);
            return Err(Errno(rc));
        }
    }
    Ok(())
}
