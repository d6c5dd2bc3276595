//! Borrowing a signal from the program: the calls the leak check's stop signal needs to
//! install its handler for the length of a check only and give the signal back.
//!
//! # What it owns
//! - [`STANDARD_SIGNALS`], every Linux signal below the real-time range by name;
//!   [`rt_signal_min`];
//! - sending a signal that carries a mark ([`queue_marked_signal`]) and recognizing it
//!   ([`marked_value`]): the stop signal's handler tells its own requests from the
//!   program's signals by it;
//! - the program's action, kept to forward its signals while the handler is borrowed:
//!   [`SavedSignalAction::forward_target`], [`Forward`], [`forward_to_handler`],
//!   [`resend_with_default_action`], [`current_handler`];
//! - [`thread_has_pending`]: whether a thread still has the signal pending
//!   (`/proc/self/task/TID/status`), so that the action is given back only once no
//!   signal sent for the handler can still arrive.
//!
//! Everything here is async-signal-safe: raw system calls, no allocation, no lock.

use super::{ok_or_errno, Errno, ReadOnlyFd, SavedSignalAction, SigInfo};
use core::ffi::{c_void, CStr};
#[cfg(test)]
pub(crate) use libc::SI_TKILL;

/// Every Linux signal below the real-time range (1..=31), by name without `SIG`.
pub(crate) const STANDARD_SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// `SIGRTMIN`: the lowest real-time signal a program may use (glibc computes it at run
/// time: 34, above the two it keeps for itself).
pub(crate) fn rt_signal_min() -> i32 {
    libc::SIGRTMIN()
}

/// Signals whose default action is to do nothing (`SIGCHLD`, `SIGCONT`, `SIGURG`,
/// `SIGWINCH`); every other catchable one ends the process by default.
pub(crate) fn default_action_ignores(sig: i32) -> bool {
    matches!(sig, libc::SIGCHLD | libc::SIGCONT | libc::SIGURG | libc::SIGWINCH)
}

/// The fields of a `siginfo_t` that `rt_tgsigqueueinfo` and `sigqueue` fill
/// (x86-64 layout), padded to the kernel's 128 bytes.
#[repr(C)]
struct QueuedInfo {
    signo: i32,
    errno: i32,
    code: i32,
    _pad: i32,
    pid: i32,
    uid: u32,
    value: usize,
    _rest: [u64; 12],
}

const _: () = assert!(core::mem::size_of::<QueuedInfo>() == core::mem::size_of::<SigInfo>());

/// `rt_tgsigqueueinfo`: sends `sig` to thread `tid` of this process as `sigqueue` would
/// (`SI_QUEUE`, this process's pid), with `mark` as its value. A standard signal already
/// pending at the thread is not sent twice (the kernel drops the second).
pub(crate) fn queue_marked_signal(tid: i32, sig: i32, mark: usize) -> Result<(), Errno> {
    let pid = super::getpid();
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let info =
        QueuedInfo { signo: sig, errno: 0, code: libc::SI_QUEUE, _pad: 0, pid, uid, value: mark, _rest: [0; 12] };
    // SAFETY: `info` is a readable, fully initialized 128-byte siginfo; a process may
    // queue any code to itself; the receiver's handler is the caller's business.
    ok_or_errno(unsafe { libc::syscall(libc::SYS_rt_tgsigqueueinfo, pid, tid, sig, &info as *const QueuedInfo) })
}

/// The value of a signal sent by [`queue_marked_signal`] (or `sigqueue`) from this very
/// process, or `None` for any other signal (from the kernel, `kill`, another process).
///
/// # Safety
/// `info` is the `siginfo_t` the kernel passed to an `SA_SIGINFO` handler that has not
/// returned.
pub(crate) unsafe fn marked_value(info: *const SigInfo) -> Option<usize> {
    // SAFETY: per the caller `info` points to a whole siginfo, which QueuedInfo's layout
    // matches (same size, x86-64 field offsets).
    let q = unsafe { &*info.cast::<QueuedInfo>() };
    (q.code == libc::SI_QUEUE && q.pid == super::getpid()).then_some(q.value)
}

/// What the program's saved action does with a signal forwarded to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Forward {
    /// `SIG_IGN`, or `SIG_DFL` for a signal whose default is to do nothing.
    Drop,
    /// `SIG_DFL` for a signal whose default ends the process.
    DefaultAction,
    /// A handler at this address; `with_info` when it is an `SA_SIGINFO` one, `once`
    /// when the action was `SA_RESETHAND` (the default comes back after one delivery).
    Handler { address: usize, with_info: bool, once: bool },
}

impl SavedSignalAction {
    /// The signal this action is for.
    pub(crate) fn signal(&self) -> i32 {
        self.sig
    }

    /// What forwarding a signal to this action does.
    pub(crate) fn forward_target(&self) -> Forward {
        match self.previous_handler() {
            Some(address) => Forward::Handler {
                address,
                with_info: self.action.sa_flags & libc::SA_SIGINFO != 0,
                once: self.action.sa_flags & libc::SA_RESETHAND != 0,
            },
            None if self.action.sa_sigaction == libc::SIG_IGN || default_action_ignores(self.sig) => Forward::Drop,
            None => Forward::DefaultAction,
        }
    }

    /// This action with its handler replaced by the default (`SA_RESETHAND` fired while
    /// the signal was borrowed).
    pub(crate) fn reset_to_default(&mut self) {
        self.action.sa_sigaction = libc::SIG_DFL;
        self.action.sa_flags &= !(libc::SA_SIGINFO | libc::SA_RESETHAND);
    }
}

/// Calls the program's handler at `address` for a signal that arrived in a handler of
/// ours, with the same arguments. Async-signal-safe as far as the program's handler is.
///
/// # Safety
/// - `address` is a signal handler of the program, taken from the action installed for
///   `sig` (`Forward::Handler`): a `fn(i32)`, or with `with_info` a
///   `fn(i32, *mut siginfo_t, *mut c_void)`.
/// - `info` and `ctx` are the arguments of the running `SA_SIGINFO` handler for `sig`.
pub(crate) unsafe fn forward_to_handler(
    address: usize,
    with_info: bool,
    sig: i32,
    info: *mut SigInfo,
    ctx: *mut c_void,
) {
    if with_info {
        type WithInfo = extern "C" fn(i32, *mut SigInfo, *mut c_void);
        // SAFETY: per the caller, the address is an SA_SIGINFO handler of this type.
        let h = unsafe { core::mem::transmute::<usize, WithInfo>(address) };
        h(sig, info, ctx);
    } else {
        // SAFETY: per the caller, the address is a plain handler of the signal number.
        let h = unsafe { core::mem::transmute::<usize, extern "C" fn(i32)>(address) };
        h(sig);
    }
}

/// Delivers `sig` to the calling thread under its default action: sets `SIG_DFL`, then
/// sends the signal to this thread. Called from a handler of `sig`, the signal stays
/// pending (the handler blocks it) and its default action (ending the process) happens
/// as the handler returns.
pub(crate) fn resend_with_default_action(sig: i32) -> Result<(), Errno> {
    // SAFETY: an all-zero sigaction is SIG_DFL with no flags and an empty mask.
    let dfl: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: a valid action; the default disposition has no handler to be safe about.
    ok_or_errno(unsafe { libc::sigaction(sig, &dfl, core::ptr::null_mut()) }.into())?;
    super::tgkill(super::getpid(), super::gettid(), sig)
}

/// Blocks `sig` in the calling thread (`pthread_sigmask`); returns whether it was
/// blocked already.
pub(crate) fn block_signal(sig: i32) -> Result<bool, Errno> {
    // SAFETY: zeroed sigsets are valid empty sets; sigaddset fills one; the call changes
    // only this thread's mask and writes the old one into `old`.
    let (rc, old) = unsafe {
        let (mut set, mut old): (libc::sigset_t, libc::sigset_t) = (core::mem::zeroed(), core::mem::zeroed());
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        (libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old), old)
    };
    if rc != 0 {
        return Err(Errno(rc));
    }
    // SAFETY: `old` was written by pthread_sigmask; sigismember only reads it.
    Ok(unsafe { libc::sigismember(&old, sig) } == 1)
}

/// Blocks every signal that can be blocked but `sig` in the calling thread (a thread of
/// the allocator's own, which must never run the program's handlers but may be stopped).
pub(crate) fn block_all_signals_but(sig: i32) -> Result<(), Errno> {
    // SAFETY: sigfillset fills a zeroed set, sigdelset takes one out; the call changes
    // only this thread's mask.
    let rc = unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigdelset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, core::ptr::null_mut())
    };
    if rc != 0 {
        return Err(Errno(rc));
    }
    Ok(())
}

/// Unblocks `sig` in the calling thread: a signal pending for it is delivered now.
pub(crate) fn unblock_signal(sig: i32) -> Result<(), Errno> {
    // SAFETY: a zeroed sigset is a valid empty set; the call changes only this thread's
    // mask.
    let rc = unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut())
    };
    if rc != 0 {
        return Err(Errno(rc));
    }
    Ok(())
}

/// The address of the handler installed now for `sig`, or `None` for `SIG_DFL` and
/// `SIG_IGN`.
pub(crate) fn current_handler(sig: i32) -> Result<Option<usize>, Errno> {
    // SAFETY: an all-zero sigaction is valid storage for the kernel to fill.
    let mut cur: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `cur`.
    ok_or_errno(unsafe { libc::sigaction(sig, core::ptr::null(), &mut cur) }.into())?;
    let h = cur.sa_sigaction;
    Ok((h != libc::SIG_DFL && h != libc::SIG_IGN).then_some(h))
}

/// The action installed now for `sig`, as [`set_signal_handler`](super::set_signal_handler)
/// would save it.
#[cfg(test)]
pub(crate) fn current_action(sig: i32) -> Result<SavedSignalAction, Errno> {
    // SAFETY: an all-zero sigaction is valid storage for the kernel to fill.
    let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: a null new action only reads the current one.
    ok_or_errno(unsafe { libc::sigaction(sig, core::ptr::null(), &mut action) }.into())?;
    super::clear_unused_mask(&mut action);
    Ok(SavedSignalAction { sig, action })
}

#[cfg(test)]
impl SavedSignalAction {
    /// The same handler, flags and mask (signals 1..=64: glibc leaves the rest of a
    /// `sigset_t` it reads back undefined) for the same signal.
    pub(crate) fn same_as(&self, other: &SavedSignalAction) -> bool {
        // SAFETY: both masks are valid sets; sigismember only reads them.
        let member = |a: &SavedSignalAction, s| unsafe { libc::sigismember(&a.action.sa_mask, s) };
        self.sig == other.sig
            && self.action.sa_sigaction == other.action.sa_sigaction
            && self.action.sa_flags == other.action.sa_flags
            && (1..=64).all(|s| member(self, s) == member(other, s))
    }
}

/// Installs `handler` for `sig` as a one-shot action (`SA_RESETHAND`), with `SIGUSR1`
/// blocked while it runs; returns the previous action.
///
/// # Safety
/// As [`set_signal_handler`](super::set_signal_handler).
#[cfg(test)]
pub(crate) unsafe fn set_one_shot_handler(sig: i32, handler: extern "C" fn(i32)) -> Result<SavedSignalAction, Errno> {
    // SAFETY: all-zero is a valid sigaction (and sigset) to fill.
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    sa.sa_sigaction = handler as usize;
    sa.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
    // SAFETY: the mask is a valid sigset_t.
    unsafe { libc::sigaddset(&mut sa.sa_mask, libc::SIGUSR1) };
    // SAFETY: as above, storage for the kernel.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: valid actions; the handler's conduct is the caller's contract.
    ok_or_errno(unsafe { libc::sigaction(sig, &sa, &mut old) }.into())?;
    super::clear_unused_mask(&mut old);
    Ok(SavedSignalAction { sig, action: old })
}

/// Whether thread `tid` of this process has `sig` pending, sent to it alone (`SigPnd`
/// of `/proc/self/task/TID/status`; signals sent to the whole process are not counted).
/// `Ok(false)` when the thread is gone.
pub(crate) fn thread_has_pending(tid: i32, sig: i32) -> Result<bool, Errno> {
    debug_assert!(tid > 0 && (1..=64).contains(&sig));
    let mut path = [0u8; 48];
    let Some(path) = status_path(&mut path, tid) else { return Err(Errno(libc::EINVAL)) };
    let mut fd = match ReadOnlyFd::open(path, 0) {
        Ok(fd) => fd,
        Err(Errno(libc::ENOENT | libc::ESRCH)) => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut buf = [0u8; 4096];
    let mut len = 0;
    while len < buf.len() {
        match fd.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(Errno(libc::ESRCH)) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    let mask = pending_mask(&buf[..len]).ok_or(Errno(libc::EIO))?;
    Ok(mask & (1u64 << (sig - 1)) != 0)
}

/// `/proc/self/task/TID/status`, NUL-terminated, written into `buf`.
fn status_path(buf: &mut [u8; 48], tid: i32) -> Option<&CStr> {
    let mut digits = [0u8; 10];
    let (mut n, mut i) = (u32::try_from(tid).ok()?, digits.len());
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let parts: [&[u8]; 4] = [b"/proc/self/task/", &digits[i..], b"/status", b"\0"];
    let mut at = 0;
    for p in parts {
        buf[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    CStr::from_bytes_with_nul(&buf[..at]).ok()
}

/// The hexadecimal mask of the `SigPnd:` line of a status file.
fn pending_mask(status: &[u8]) -> Option<u64> {
    let start = status.windows(8).position(|w| w == b"\nSigPnd:")? + 8;
    let hex = status[start..].trim_ascii_start();
    let end = hex.iter().position(|c| !c.is_ascii_hexdigit()).unwrap_or(hex.len());
    let digits = core::str::from_utf8(&hex[..end]).ok()?;
    u64::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests;
