//! Stopping the world without ptrace: every other thread is sent a signal whose handler
//! saves the thread's registers and stack pointer, then waits until the check is over.
//!
//! # Protocol
//! The stopper claims a slot per thread (`tid`, state `REQUESTED`), sends the signal with
//! `tgkill`, and waits for the state to become `STOPPED`. The handler reads the resume
//! epoch *before* publishing `STOPPED`, so it cannot miss the wake-up; it then waits on
//! the epoch (futex, with a short timeout so that a handler arriving after its slot was
//! given up never waits for long), and acknowledges with `DONE`. `resume` bumps the epoch,
//! wakes everyone and waits for every acknowledgement before freeing the slots.
//!
//! Threads are found through `/proc/self/task`, read again until no new thread appears,
//! so threads that never allocated are stopped too. A thread that does not stop in time
//! (it blocks the signal, say) gets a warning and is marked `stopped: false`: the roots
//! phase then scans its whole stack, which can only hide leaks, never invent them.
//!
//! Nothing here allocates; the slot table lives in its own mapping (so the roots phase
//! does not see stale register copies as globals).

use crate::os;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The stop signal. SIGPWR, as the Boehm collector uses on Linux: programs rarely use it.
pub(crate) const STOP_SIGNAL: i32 = libc::SIGPWR;
/// Most threads a check can stop at once.
pub(crate) const MAX_THREADS: usize = 4096;
/// General registers saved per thread (x86-64 `gregset_t`).
pub(crate) const REGS: usize = 23;

const FREE: u32 = 0;
const REQUESTED: u32 = 1;
const STOPPED: u32 = 2;
const DONE: u32 = 3;

struct Slot {
    tid: AtomicI32,
    state: AtomicU32,
    sp: AtomicUsize,
    regs: [AtomicUsize; REGS],
}

static SLOTS: AtomicPtr<Slot> = AtomicPtr::new(core::ptr::null_mut());
static EPOCH: AtomicU32 = AtomicU32::new(0);
static INSTALLED: AtomicU32 = AtomicU32::new(0);

fn slots() -> Option<&'static [Slot]> {
    let mut p = SLOTS.load(Ordering::Acquire);
    if p.is_null() {
        let bytes = os::round_up(MAX_THREADS * core::mem::size_of::<Slot>(), os::OS_PAGE)?;
        let m = os::map(bytes)?.as_ptr();
        os::register_own_mapping(m as usize, bytes);
        p = match SLOTS.compare_exchange(core::ptr::null_mut(), m.cast(), Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => m.cast(),
            Err(other) => other,
        };
    }
    // SAFETY: the table maps MAX_THREADS zeroed slots (all FREE) and is never unmapped;
    // every field is atomic.
    Some(unsafe { core::slice::from_raw_parts(p, MAX_THREADS) })
}

/// One thread as the check saw it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StoppedThread {
    /// Kernel thread id.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) tid: i32,
    /// The thread ran the handler: `sp` and `regs` are valid.
    pub(crate) stopped: bool,
    pub(crate) sp: usize,
    pub(crate) regs: [usize; REGS],
}

/// The stopped threads; resumes them when dropped.
pub(crate) struct StoppedWorld {
    threads: [StoppedThread; MAX_THREADS],
    len: usize,
    /// Slot indexes in use, to release on resume.
    used: [u16; MAX_THREADS],
    used_len: usize,
    resumed: bool,
}

impl StoppedWorld {
    /// An empty world: nothing stopped yet. Make it BEFORE taking any allocator lock (it
    /// is allocated; about 800 KiB), then [`StoppedWorld::stop`] the threads.
    pub(crate) fn new() -> Box<StoppedWorld> {
        let t = StoppedThread { tid: 0, stopped: false, sp: 0, regs: [0; REGS] };
        Box::new(StoppedWorld { threads: [t; MAX_THREADS], len: 0, used: [0; MAX_THREADS], used_len: 0, resumed: true })
    }

    /// The other threads of the process.
    pub(crate) fn threads(&self) -> &[StoppedThread] {
        &self.threads[..self.len]
    }

    /// Lets every stopped thread run again, and waits until each has left the handler.
    pub(crate) fn resume(&mut self) {
        if self.resumed {
            return;
        }
        self.resumed = true;
        let Some(slots) = slots() else { return };
        EPOCH.fetch_add(1, Ordering::Release);
        futex_wake(&EPOCH);
        let deadline = Instant::now() + Duration::from_secs(2);
        for &i in &self.used[..self.used_len] {
            let s = &slots[i as usize];
            while s.state.load(Ordering::Acquire) == STOPPED && Instant::now() < deadline {
                futex_wake(&EPOCH);
                std::thread::yield_now();
            }
            s.tid.store(0, Ordering::Release);
            s.state.store(FREE, Ordering::Release);
        }
    }
}

impl Drop for StoppedWorld {
    fn drop(&mut self) {
        self.resume();
    }
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a valid, aligned u32 has no other preconditions.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, i32::MAX) };
}

fn futex_wait_ms(word: &AtomicU32, expected: u32, ms: i64) {
    let ts = libc::timespec { tv_sec: 0, tv_nsec: ms * 1_000_000 };
    // SAFETY: FUTEX_WAIT on a valid, aligned u32 with a valid relative timeout.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG, expected, &ts)
    };
}

fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

extern "C" fn on_stop_signal(_sig: i32, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is thread-local; we restore it before returning.
    let saved_errno = unsafe { *libc::__errno_location() };
    let me = gettid();
    if let Some(slots) = slots() {
        if let Some(slot) =
            slots.iter().find(|s| s.tid.load(Ordering::Acquire) == me && s.state.load(Ordering::Acquire) == REQUESTED)
        {
            let epoch = EPOCH.load(Ordering::Acquire);
            // SAFETY: for SA_SIGINFO handlers the third argument is the interrupted
            // context, a valid ucontext_t for the duration of the handler.
            let gregs = unsafe { (*ctx.cast::<libc::ucontext_t>()).uc_mcontext.gregs };
            for (dst, &r) in slot.regs.iter().zip(gregs.iter()) {
                dst.store(r as usize, Ordering::Relaxed);
            }
            slot.sp.store(gregs[libc::REG_RSP as usize] as usize, Ordering::Relaxed);
            slot.state.store(STOPPED, Ordering::Release);
            while EPOCH.load(Ordering::Acquire) == epoch && slot.tid.load(Ordering::Acquire) == me {
                futex_wait_ms(&EPOCH, epoch, 10);
            }
            slot.state.store(DONE, Ordering::Release);
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

fn install_handler() -> bool {
    if INSTALLED.load(Ordering::Acquire) == 1 {
        return true;
    }
    // SAFETY: a zeroed sigaction with our handler, SA_SIGINFO | SA_RESTART, and every
    // signal blocked while it runs except the fatal ones.
    let ok = unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_stop_signal as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigfillset(&mut sa.sa_mask);
        for s in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT] {
            libc::sigdelset(&mut sa.sa_mask, s);
        }
        libc::sigaction(STOP_SIGNAL, &sa, core::ptr::null_mut()) == 0
    };
    if ok {
        INSTALLED.store(1, Ordering::Release);
    }
    ok
}

/// Calls `f(tid)` for each thread of the process (`/proc/self/task`), without allocating.
pub(crate) fn for_each_task(mut f: impl FnMut(i32)) {
    // SAFETY: open/getdents64/close on a NUL-terminated path and a stack buffer; the
    // kernel writes at most `buf.len()` bytes of dirent records.
    unsafe {
        let fd = libc::open(c"/proc/self/task".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC);
        if fd < 0 {
            return;
        }
        let mut buf = [0u8; 4096];
        loop {
            let n = libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len());
            if n <= 0 {
                break;
            }
            let mut off = 0usize;
            while off < n as usize {
                let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
                let name = &buf[off + 19..off + reclen];
                let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
                if let Some(tid) = parse_tid(&name[..end]) {
                    f(tid);
                }
                off += reclen;
            }
        }
        libc::close(fd);
    }
}

fn parse_tid(name: &[u8]) -> Option<i32> {
    if name.is_empty() || name.len() > 9 || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(name.iter().fold(0i32, |a, d| a * 10 + (d - b'0') as i32))
}

impl StoppedWorld {
    /// Stops every other thread (each gets up to `timeout`). Allocates nothing.
    pub(crate) fn stop(&mut self, timeout: Duration) {
        self.len = 0;
        self.used_len = 0;
        self.resumed = false;
        stop_into(self, timeout);
    }
}

/// Stops every other thread into a fresh world.
#[cfg(test)]
pub(crate) fn stop_the_world(timeout: Duration) -> Box<StoppedWorld> {
    let mut world = StoppedWorld::new();
    world.stop(timeout);
    world
}

fn stop_into(world: &mut StoppedWorld, timeout: Duration) {
    let Some(slots) = slots() else { return };
    if !install_handler() {
        warning!("cannot install the stop signal handler; checking without stopping threads");
        return;
    }
    let me = gettid();
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    loop {
        let before = world.used_len;
        for_each_task(|tid| {
            if tid == me
                || world.used[..world.used_len].iter().any(|&i| slots[i as usize].tid.load(Ordering::Relaxed) == tid)
            {
                return;
            }
            let Some(i) = slots
                .iter()
                .position(|s| s.state.compare_exchange(FREE, REQUESTED, Ordering::AcqRel, Ordering::Relaxed).is_ok())
            else {
                return;
            };
            slots[i].tid.store(tid, Ordering::Release);
            // Re-publish REQUESTED after the tid, so the handler sees both.
            slots[i].state.store(REQUESTED, Ordering::Release);
            // SAFETY: tgkill to a thread of our own process.
            if unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, STOP_SIGNAL) } != 0 {
                slots[i].tid.store(0, Ordering::Release);
                slots[i].state.store(FREE, Ordering::Release);
                return;
            }
            if world.used_len < MAX_THREADS {
                world.used[world.used_len] = i as u16;
                world.used_len += 1;
            }
        });
        wait_for_stops(world, slots, before, timeout);
        if world.used_len == before {
            break;
        }
    }
}

fn wait_for_stops(world: &mut StoppedWorld, slots: &[Slot], from: usize, timeout: Duration) {
    for k in from..world.used_len {
        let s = &slots[world.used[k] as usize];
        let deadline = Instant::now() + timeout;
        let mut spins = 0u32;
        while s.state.load(Ordering::Acquire) != STOPPED && Instant::now() < deadline {
            spins += 1;
            if spins < 100 {
                core::hint::spin_loop();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        let tid = s.tid.load(Ordering::Relaxed);
        let stopped = s.state.load(Ordering::Acquire) == STOPPED;
        if !stopped && tid_alive(tid) {
            warning!("thread {} did not stop for the leak check (signal blocked?); scanning its whole stack", tid);
        }
        let mut regs = [0usize; REGS];
        for (d, r) in regs.iter_mut().zip(&s.regs) {
            *d = r.load(Ordering::Relaxed);
        }
        let t = StoppedThread { tid, stopped, sp: s.sp.load(Ordering::Relaxed), regs };
        world.threads[world.len] = t;
        world.len += 1;
    }
}

fn tid_alive(tid: i32) -> bool {
    let mut alive = false;
    for_each_task(|t| alive |= t == tid);
    alive
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::sync::Arc;

    #[test]
    fn stops_spinning_sleeping_and_blocked_threads_then_resumes_them() {
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let mut handles = Vec::new();
        for kind in 0..3 {
            let (stop, progress) = (stop.clone(), progress.clone());
            handles.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match kind {
                        0 => {
                            progress.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
            }));
        }
        handles.push(std::thread::spawn(move || {
            let _ = rx.recv();
        }));
        std::thread::sleep(Duration::from_millis(20));
        for _ in 0..20 {
            let world = stop_the_world(Duration::from_secs(2));
            assert!(world.threads().len() >= 4, "{} threads", world.threads().len());
            for t in world.threads() {
                assert!(t.stopped, "thread {} not stopped", t.tid);
                assert!(t.sp != 0);
            }
            let frozen = progress.load(Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
            assert_eq!(progress.load(Ordering::Relaxed), frozen, "a stopped thread ran");
            drop(world);
            // Resumed: the spinning thread makes progress again (polled, not timed: a
            // loaded machine may take a while to schedule it).
            let before = progress.load(Ordering::Relaxed);
            let deadline = Instant::now() + Duration::from_secs(30);
            while progress.load(Ordering::Relaxed) == before && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(progress.load(Ordering::Relaxed) > before, "a resumed thread does not run");
        }
        stop.store(true, Ordering::Relaxed);
        drop(tx);
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn a_thread_blocking_the_signal_is_reported_unstopped_without_hanging() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<i32>();
        let h = std::thread::spawn(move || {
            // SAFETY: blocking one signal for this thread only.
            unsafe {
                let mut set: libc::sigset_t = core::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, STOP_SIGNAL);
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut());
            }
            ready_tx.send(gettid()).unwrap();
            let _ = rx.recv();
        });
        let tid = ready_rx.recv().unwrap();
        // The stop gives up on the thread after its timeout instead of waiting forever.
        let mut world = stop_the_world(Duration::from_millis(100));
        let me = world.threads().iter().find(|t| t.tid == tid).copied().unwrap();
        assert!(!me.stopped);
        world.resume();
        drop(tx);
        h.join().unwrap();
    }

    #[test]
    fn tasks_include_the_calling_thread() {
        let me = gettid();
        let mut seen = false;
        for_each_task(|t| seen |= t == me);
        assert!(seen);
    }
}
