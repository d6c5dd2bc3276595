//! Stopping the world without ptrace: every other thread is sent a signal whose handler
//! saves the thread's registers, stack pointer and thread pointer, then waits until the
//! check is over.
//!
//! # What it owns
//! The stop signal's handler, the slot table it writes into, and [`StoppedWorld`]. Called
//! by `check` (holding the segment pool's lock), never on an allocation path.
//!
//! # Protocol
//! Each slot holds one word packing `(tid, state)`, so that every transition is a single
//! compare-and-swap and a slot can never be taken over by the wrong thread:
//!
//! ```text
//!  stopper: FREE ──claim──▶ REQUESTED ──(timeout, resume)──▶ FREE      (abandoned)
//!  handler:                 REQUESTED ──▶ ENTERED ──▶ STOPPED ─┐
//!  resume:                               ENTERED|STOPPED ──▶ RELEASED
//!  handler:                                        RELEASED ──▶ DONE
//!  resume:                                             DONE ──▶ FREE
//! ```
//!
//! The handler waits (futex on [`WAKE`], with a short timeout) only while its slot says
//! `STOPPED`; `resume` releases every slot, then bumps and wakes [`WAKE`], then waits for
//! every `DONE`. A thread that received the signal late (it had blocked it, or was slow to
//! be scheduled) either finds its request abandoned and returns at once, or claims it
//! and is released by the same `resume`: a later check never sees its stale state.
//! Only one world is stopped at a time ([`STOPPING`]): two stoppers would stop each other.
//!
//! Threads are found through `/proc/self/task`, read again until no new thread appears,
//! so threads that never allocated are stopped too, and so are threads created while the
//! stop is under way. A thread that does not stop in time (it blocks the signal, say) gets
//! a warning and is marked `stopped: false`: the roots phase then scans its whole stack,
//! which can only hide leaks, never invent them. A thread that exits meanwhile is dropped.
//!
//! Nothing here allocates through the global allocator: the slot table and the world's
//! arrays are mappings of their own, which the roots phase never scans as memory (the
//! saved registers are scanned as roots of their own kind, from the world's copy).
//!
//! # The signal
//! `stop_signal` (`SIGPWR` by default; see `config::StopSignal`). Its handler is
//! installed by `stop` and the program's own action put back by `resume` (`borrow`).
//! A request is sent with a mark, so the handler tells it from the program's signals,
//! which it forwards to the program's action. A thread whose request was taken by a
//! signal of the program's still parks (its request is open), then gets the program's
//! signal forwarded once released. The stopping thread blocks the signal from `stop` to
//! the end of `resume`: the program's signals sent to it then wait until the world runs
//! again, so that the program's handler never runs while other threads are stopped (it
//! might wait for a lock one of them holds).

use super::failure::Failure;
use crate::os::{self, MmapVec};
use crate::platform::{self, SigInfo};
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use std::time::{Duration, Instant};

mod borrow;

/// The stop signal in use: `stop_signal` (SIGPWR unless `HEAPSWEEP` names another).
pub(crate) fn stop_signal() -> i32 {
    crate::config::current().stop_signal.number()
}
/// Most threads a check can stop at once.
pub(crate) const MAX_THREADS: usize = 4096;
/// General registers saved per thread (x86-64 `gregset_t`, `NGREG`).
pub(crate) const REGS: usize = platform::REGISTER_COUNT;

/// Listings in a row that may find nothing new while the thread count says a thread is
/// missing, before the stop fails (threads created and ending without pause keep cutting
/// listings short).
const MAX_RECOUNTS: u32 = 1000;

const FREE: u32 = 0;
const REQUESTED: u32 = 1;
const ENTERED: u32 = 2;
const STOPPED: u32 = 3;
const RELEASED: u32 = 4;
const DONE: u32 = 5;

const fn pack(tid: i32, state: u32) -> u64 {
    ((tid as u32 as u64) << 32) | state as u64
}

const fn tid_of(word: u64) -> i32 {
    (word >> 32) as u32 as i32
}

const fn state_of(word: u64) -> u32 {
    word as u32
}

/// One thread's mailbox. Invariant: `word == 0` (FREE) or its tid is a thread asked to
/// stop by the current (or a just-ended) stop; `sp`, `tp`, `regs` are meaningful only
/// once the state has been `STOPPED`.
struct Slot {
    word: AtomicU64,
    sp: AtomicUsize,
    tp: AtomicUsize,
    regs: [AtomicUsize; REGS],
}

static SLOTS: AtomicPtr<Slot> = AtomicPtr::new(core::ptr::null_mut());
/// Futex word the parked handlers sleep on; `resume` bumps it.
static WAKE: AtomicU32 = AtomicU32::new(0);
/// Held from `stop` to the end of `resume`, and while a late request gives the signal
/// back (`borrow`).
static STOPPING: AtomicBool = AtomicBool::new(false);

fn slots() -> Option<&'static [Slot]> {
    let mut p = SLOTS.load(Acquire);
    if p.is_null() {
        let bytes = os::round_up(MAX_THREADS * core::mem::size_of::<Slot>(), os::OS_PAGE)?;
        let m = os::map(bytes)?.as_ptr();
        os::register_own_mapping(m as usize, bytes);
        p = match SLOTS.compare_exchange(core::ptr::null_mut(), m.cast(), AcqRel, Acquire) {
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
    /// The thread ran the handler: `sp`, `tp` and `regs` are valid. Otherwise they are 0.
    pub(crate) stopped: bool,
    /// The interrupted stack pointer.
    pub(crate) sp: usize,
    /// The thread pointer (`fs` base: glibc's thread control block, with the static TLS
    /// right below it).
    pub(crate) tp: usize,
    /// The interrupted general registers, in `gregset_t` order.
    pub(crate) regs: [usize; REGS],
}

/// The stopped threads; resumes them when dropped.
///
/// Invariants: `used` names the slots this world claimed (released by `resume`);
/// `threads` has one entry per thread that stopped or failed to stop, none for the
/// calling thread nor for threads that exited; `complete` is false when some thread could
/// not even be asked (table full, out of memory), or before the first `stop`;
/// `failure` is the first reason the last `stop` did not stop every other thread, and
/// is `Some` whenever `complete` is false after a `stop` or a thread did not stop.
pub(crate) struct StoppedWorld {
    threads: MmapVec<StoppedThread>,
    used: MmapVec<u16>,
    complete: bool,
    resumed: bool,
    failure: Option<Failure>,
    /// The stop signal this thread blocked in `stop`, to unblock in `resume` (0: none;
    /// `stop` and `resume` run on the same thread).
    blocked: i32,
}

impl StoppedWorld {
    /// A world where nothing is stopped yet: analyzing it scans the calling thread's
    /// stack from its stack pointer, and every other thread stack whole, as if its thread
    /// could not be stopped. Make it before taking any allocator lock, then
    /// [`StoppedWorld::stop`] the other threads.
    pub(crate) fn new() -> StoppedWorld {
        let (mut threads, mut used) = (MmapVec::new(), MmapVec::new());
        // Room for the usual case up front; growing later only maps memory, never allocates.
        let _ = threads.reserve(64) && used.reserve(64);
        StoppedWorld { threads, used, complete: false, resumed: true, failure: None, blocked: 0 }
    }

    /// The other threads of the process.
    pub(crate) fn threads(&self) -> &[StoppedThread] {
        &self.threads
    }

    /// Every other thread stopped: the stacks of threads that exited can be told apart.
    pub(crate) fn all_stopped(&self) -> bool {
        self.complete && self.threads.iter().all(|t| t.stopped)
    }

    /// Why the last [`StoppedWorld::stop`] did not stop every other thread: the threads
    /// could not be listed (threads not listed were neither asked to stop nor are in
    /// [`StoppedWorld::threads`]), some did not stop in time, the stop table was full or
    /// out of memory. A check on such a world cannot be trusted: it fails.
    pub(crate) fn failure(&self) -> Option<Failure> {
        self.failure
    }

    /// Stops every other thread; each gets up to `timeout` to enter the handler.
    pub(crate) fn stop(&mut self, timeout: Duration) {
        self.resume();
        while STOPPING.compare_exchange(false, true, Acquire, Relaxed).is_err() {
            std::thread::sleep(Duration::from_micros(100));
        }
        self.threads.clear();
        self.used.clear();
        (self.complete, self.resumed, self.failure) = (true, false, None);
        let Some(slots) = slots() else {
            self.fail(Failure::OutOfMemory { what: "the stop table" });
            return;
        };
        let sig = borrow::borrow(stop_signal());
        // A signal blocked by the program already stays blocked after `resume`.
        self.blocked = if platform::block_signal(sig) == Ok(false) { sig } else { 0 };
        let (me, pid) = (platform::gettid(), platform::getpid());
        // The mark helper is never stopped (see `leak::helper`).
        let helper = super::helper::tid().unwrap_or(0);
        let mut recounts = 0;
        loop {
            let before = self.used.len();
            let listed = platform::for_each_task(|tid| {
                if tid != me
                    && tid != helper
                    && !self.used.iter().any(|&i| tid_of(slots[i as usize].word.load(Relaxed)) == tid)
                {
                    self.request(slots, tid, sig);
                }
            });
            if let Err(e) = listed {
                self.fail(Failure::ThreadsNotListed { errno: e.0 });
            }
            if self.used.len() == before {
                // Nothing new, or a short list: the kernel's walk of the thread list ends
                // at a thread that exits meanwhile (threads not asked yet still exit), and
                // the threads after it are not listed. The process's thread count says
                // whether one was missed: then list again.
                if !self.some_thread_unknown() {
                    break;
                }
                recounts += 1;
                if recounts > MAX_RECOUNTS {
                    self.fail(Failure::ThreadsNotListed { errno: platform::Errno::TRY_AGAIN.0 });
                    break;
                }
                std::thread::yield_now();
                continue;
            }
            self.collect(slots, pid, before, timeout);
        }
    }

    /// Whether the process has more threads than this one, the mark helper and those
    /// recorded (stopped, or not stopped in time). Threads recorded and gone since only
    /// lower the count.
    fn some_thread_unknown(&self) -> bool {
        // Not counted twice when a stop asked it before it said who it is.
        let helper = super::helper::tid().is_some_and(|h| !self.threads.iter().any(|t| t.tid == h));
        platform::thread_count().is_ok_and(|n| n > self.threads.len() + 1 + usize::from(helper))
    }

    /// Claims a slot for `tid` and sends it the stop signal `sig`, marked.
    fn request(&mut self, slots: &[Slot], tid: i32, sig: i32) {
        let free = pack(0, FREE);
        let claim = |s: &Slot| {
            s.word.load(Relaxed) == free && s.word.compare_exchange(free, pack(tid, REQUESTED), SeqCst, Relaxed).is_ok()
        };
        let Some(i) = slots.iter().position(claim) else {
            self.fail(Failure::TooManyThreads { max: MAX_THREADS });
            return;
        };
        if !self.used.push(i as u16) {
            slots[i].word.store(pack(0, FREE), SeqCst);
            self.fail(Failure::OutOfMemory { what: "the list of stopped threads" });
            return;
        }
        match platform::queue_marked_signal(tid, sig, borrow::MARK) {
            Ok(()) => {}
            Err(e) => {
                // No handler can run for this request.
                self.used.pop();
                slots[i].word.store(pack(0, FREE), SeqCst);
                if e != platform::Errno::NO_SUCH_PROCESS {
                    // The thread lives but the request could not be queued (the limit on
                    // queued signals): it runs on, unstopped.
                    let t = StoppedThread { tid, stopped: false, sp: 0, tp: 0, regs: [0; REGS] };
                    Failure::thread_not_stopped(&mut self.failure, tid, 0);
                    if !self.threads.push(t) {
                        self.fail(Failure::OutOfMemory { what: "the list of stopped threads" });
                    }
                }
            }
        }
    }

    /// Waits for the threads of `used[from..]` and records them.
    fn collect(&mut self, slots: &[Slot], pid: i32, from: usize, timeout: Duration) {
        for k in from..self.used.len() {
            let s = &slots[self.used[k] as usize];
            let tid = tid_of(s.word.load(Relaxed));
            let mut t = StoppedThread { tid, stopped: false, sp: 0, tp: 0, regs: [0; REGS] };
            match wait_stopped(s, pid, tid, timeout) {
                Outcome::Gone => continue,
                Outcome::TimedOut => {
                    // Its request may arrive after `resume`: the signal stays borrowed
                    // until it did.
                    borrow::may_owe();
                    Failure::thread_not_stopped(&mut self.failure, tid, timeout.as_millis() as u64);
                }
                Outcome::Stopped => {
                    t.stopped = true;
                    (t.sp, t.tp) = (s.sp.load(Relaxed), s.tp.load(Relaxed));
                    for (d, r) in t.regs.iter_mut().zip(&s.regs) {
                        *d = r.load(Relaxed);
                    }
                }
            }
            if !self.threads.push(t) {
                self.fail(Failure::OutOfMemory { what: "the list of stopped threads" });
            }
        }
    }

    /// Records why this world is incomplete (the first reason stays).
    fn fail(&mut self, f: Failure) {
        self.complete = false;
        Failure::record(&mut self.failure, f);
    }

    /// Lets every stopped thread run again, and returns only once each has left the
    /// handler (so that the next stop cannot confuse them).
    pub(crate) fn resume(&mut self) {
        if self.resumed {
            return;
        }
        self.resumed = true;
        if let Some(slots) = slots() {
            for &i in self.used.iter() {
                release(&slots[i as usize]);
            }
            WAKE.fetch_add(1, SeqCst);
            platform::futex_wake_all(&WAKE);
            for &i in self.used.iter() {
                wait_done(&slots[i as usize]);
            }
        }
        // Every thread that took a request has left the handler: the program's action can
        // come back, unless a request is still on its way.
        borrow::give_back();
        STOPPING.store(false, Release);
        if self.blocked != 0 {
            // The program's signals sent to this thread meanwhile arrive now.
            let _ = platform::unblock_signal(core::mem::take(&mut self.blocked));
        }
    }
}

impl Drop for StoppedWorld {
    fn drop(&mut self) {
        self.resume();
    }
}

/// Stops every other thread into a fresh world.
#[cfg(test)]
pub(crate) fn stop_the_world(timeout: Duration) -> StoppedWorld {
    let mut world = StoppedWorld::new();
    world.stop(timeout);
    world
}

enum Outcome {
    Stopped,
    TimedOut,
    Gone,
}

fn wait_stopped(s: &Slot, pid: i32, tid: i32, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    for round in 0u32.. {
        if state_of(s.word.load(SeqCst)) == STOPPED {
            return Outcome::Stopped;
        }
        if round < 100 {
            core::hint::spin_loop();
            continue;
        }
        if round % 16 == 0 && platform::tgkill(pid, tid, 0).is_err() {
            return Outcome::Gone;
        }
        if Instant::now() >= deadline {
            return Outcome::TimedOut;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    Outcome::TimedOut
}

/// Abandons a request nobody took, or releases a thread in the handler.
fn release(s: &Slot) {
    loop {
        let w = s.word.load(SeqCst);
        let next = match state_of(w) {
            REQUESTED => pack(0, FREE),
            ENTERED | STOPPED => pack(tid_of(w), RELEASED),
            _ => return,
        };
        if s.word.compare_exchange(w, next, SeqCst, SeqCst).is_ok() {
            return;
        }
    }
}

/// Waits until a released thread acknowledged, then frees its slot. A thread in the
/// handler always gets there: it waits for nothing else, and cannot exit meanwhile.
fn wait_done(s: &Slot) {
    for round in 0u32.. {
        let w = s.word.load(SeqCst);
        match state_of(w) {
            RELEASED if round % 64 == 63 => platform::futex_wake_all(&WAKE),
            RELEASED => std::thread::yield_now(),
            DONE => break,
            _ => return,
        }
    }
    s.word.store(pack(0, FREE), SeqCst);
}

/// The stop signal's handler. Async-signal-safe: atomics and raw syscalls only; errno is
/// preserved. Installed with every signal but the faults blocked, on the interrupted
/// stack (it must see the interrupted stack pointer).
///
/// A marked signal is a request: it parks the thread if its request is open, and is
/// swallowed if it came too late. Any other signal is the program's: it is forwarded to
/// the program's action, after parking if a request is open (the kernel may have merged
/// the two).
extern "C" fn on_stop_signal(sig: i32, info: *mut SigInfo, ctx: *mut c_void) {
    let saved_errno = platform::errno();
    // SAFETY: `info` is this SA_SIGINFO handler's own argument.
    let request = unsafe { platform::marked_value(info) } == Some(borrow::MARK);
    let me = platform::gettid();
    let requested = pack(me, REQUESTED);
    // Loads before each CAS: a failing CAS would still take every slot's cache line.
    let claim = |s: &&Slot| {
        s.word.load(Relaxed) == requested
            && s.word.compare_exchange(requested, pack(me, ENTERED), SeqCst, Relaxed).is_ok()
    };
    let claimed = slots().and_then(|all| all.iter().find(claim));
    if let Some(slot) = claimed {
        if !request {
            // The marked request is still pending here, or the kernel merged it away.
            borrow::may_owe();
        }
        // SAFETY: `ctx` is the third argument of this SA_SIGINFO handler, which has not
        // returned.
        let regs = unsafe { platform::signal_context_registers(ctx) };
        for (dst, &r) in slot.regs.iter().zip(regs.iter()) {
            dst.store(r, Relaxed);
        }
        slot.sp.store(regs[platform::SP_REGISTER], Relaxed);
        slot.tp.store(platform::thread_pointer(), Relaxed);
        if slot.word.compare_exchange(pack(me, ENTERED), pack(me, STOPPED), SeqCst, SeqCst).is_ok() {
            park(slot, me);
        }
        slot.word.store(pack(me, DONE), SeqCst);
    }
    if !request {
        // SAFETY: the arguments are this handler's own.
        unsafe { borrow::forward(sig, info, ctx) };
    } else if claimed.is_none() {
        borrow::give_back_late();
    }
    platform::set_errno(saved_errno);
}

/// Sleeps until `resume` releases the slot. The wake counter is read before the slot, so
/// a release between the two makes the futex wait return at once.
fn park(slot: &Slot, me: i32) {
    loop {
        let seen = WAKE.load(SeqCst);
        if slot.word.load(SeqCst) != pack(me, STOPPED) {
            return;
        }
        platform::futex_wait(&WAKE, seen, Duration::from_millis(50));
    }
}

/// Serializes the tests that stop the world: a test stopping the world while another
/// test's thread blocks the stop signal would wait for it on every stop.
#[cfg(test)]
pub(crate) fn test_serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
