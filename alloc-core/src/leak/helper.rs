//! The mark helper: a thread that marks beside the thread that stopped the world.
//!
//! # What it owns
//! The helper thread's life and the hand-over of one job at a time ([`idle`],
//! [`Helper::assist`]); the job itself is the parallel flood fill (`mark::parallel`).
//!
//! # Why a thread of its own
//! A sweep or check stops every thread of the program, so on a machine with two cores or
//! more all but one core sit idle while the stopping thread marks. No thread can be
//! started then (`pthread_create` takes the C library's locks and allocates, and a
//! stopped thread may hold those locks), so the helper is started beforehand, with the
//! sweeper thread (`runtime::sweep`), and waits on a futex between jobs. It is left out of
//! every stop (`stop::StoppedWorld` skips its thread id and counts it), which is sound
//! because it never touches the program's memory but through a job, and a job runs only
//! while the world is stopped. It never allocates through the global allocator: no heap of its
//! own, so nothing of it is a root but its stack, which holds no program data (and is
//! skipped as the stack of no stopped thread, see `roots`).
//!
//! # Signals
//! It blocks every signal but the stop signal, and that one too while it runs a job: no
//! handler of the program runs on it during a job, where the thread that stopped the
//! world waits for it (a handler could wait for a lock a stopped thread holds). The stop
//! signal stays open between jobs for one case: a stop that listed the threads before
//! the helper said who it is asks it to stop like any thread, and it does. (A program's
//! own use of that signal may then run its handler on the helper between jobs: that
//! delays nobody.)
//!
//! # The hand-over
//! One futex word, [`STATE`]: `IDLE` → `POSTED` (the stopping thread, after writing the
//! job) → `RUNNING` (the helper takes it) → `DONE` → `IDLE` (the stopping thread, once it
//! has the helper's results). A job the helper has not taken when the stopping thread's
//! own part is over is taken back (`POSTED` → `IDLE`); otherwise the stopping thread waits
//! for `DONE`, so the job, which lives on its stack, outlives the helper's use of it.
//!
//! # Fork
//! The child of a `fork` has no helper: [`idle`] and [`tid`] answer only in the process
//! that started it, and the sweeper started again in the child starts another.

use crate::platform;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

const ABSENT: u32 = 0;
const IDLE: u32 = 1;
const POSTED: u32 = 2;
const RUNNING: u32 = 3;
const DONE: u32 = 4;
/// Being started (between `start` and the helper's first store: until then a stop takes
/// it for a thread like any other).
const STARTING: u32 = 5;

/// The hand-over's state (see the module notes).
static STATE: AtomicU32 = AtomicU32::new(ABSENT);
/// The helper's thread and process ids; 0 before it runs.
static TID: AtomicI32 = AtomicI32::new(0);
static PID: AtomicI32 = AtomicI32::new(0);
/// The posted job: an `unsafe fn(*const ())` and its argument.
static JOB_RUN: AtomicUsize = AtomicUsize::new(0);
static JOB_ARG: AtomicUsize = AtomicUsize::new(0);

/// Starts the helper thread unless it runs in this process, or the machine (this
/// process's CPU set) has one core. Allocates (`available_parallelism` reads files):
/// never call it with the world stopped.
pub(crate) fn start() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return;
    }
    let here = PID.load(Ordering::Acquire) == platform::getpid();
    let state = STATE.load(Ordering::Acquire);
    if here && state != ABSENT {
        return;
    }
    if STATE.compare_exchange(state, STARTING, Ordering::AcqRel, Ordering::Relaxed).is_err() {
        return;
    }
    if let Err(e) = platform::spawn_detached(main, 0) {
        STATE.store(ABSENT, Ordering::Release);
        warning!("cannot start the mark helper thread ({}); checks and sweeps mark on one thread", e);
    }
}

/// In the child of `fork`, which has no helper.
pub(crate) fn forget_after_fork() {
    STATE.store(ABSENT, Ordering::Release);
    TID.store(0, Ordering::Relaxed);
}

/// The helper's thread id, when it runs in this process: a stop leaves it alone.
pub(crate) fn tid() -> Option<i32> {
    let state = STATE.load(Ordering::Acquire);
    if state == ABSENT || state == STARTING || PID.load(Ordering::Relaxed) != platform::getpid() {
        return None;
    }
    Some(TID.load(Ordering::Relaxed))
}

/// The helper, when it runs in this process and waits for a job.
pub(crate) fn idle() -> Option<Helper> {
    (STATE.load(Ordering::Acquire) == IDLE && tid().is_some()).then_some(Helper(()))
}

/// The right to post one job (from [`idle`]).
pub(crate) struct Helper(());

impl Helper {
    /// Runs `mine` on this thread while the helper runs `run(arg)`, if it is still idle;
    /// returns once `mine` returned and the helper is done with `arg` (or never took it).
    ///
    /// # Safety
    /// - `run(arg)` may be called, on the helper thread, at any time until this returns.
    pub(crate) unsafe fn assist(self, run: unsafe fn(*const ()), arg: *const (), mine: &mut dyn FnMut()) {
        JOB_RUN.store(run as usize, Ordering::Relaxed);
        JOB_ARG.store(arg as usize, Ordering::Relaxed);
        if STATE.compare_exchange(IDLE, POSTED, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            mine();
            return;
        }
        platform::futex_wake_all(&STATE);
        mine();
        if STATE.compare_exchange(POSTED, IDLE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return;
        }
        let mut round = 0u32;
        while STATE.load(Ordering::Acquire) != DONE {
            round += 1;
            if round < 256 {
                core::hint::spin_loop();
            } else {
                platform::futex_wait(&STATE, RUNNING, Duration::from_millis(1));
            }
        }
        STATE.store(IDLE, Ordering::Release);
    }
}

/// The helper thread: waits for a job, runs it, forever.
extern "C" fn main(_: usize) {
    let stop_signal = super::stop::stop_signal();
    if platform::block_all_signals_but(stop_signal).is_err() {
        // A program's handler could then run here while the world is stopped: no helper.
        STATE.store(ABSENT, Ordering::Release);
        return;
    }
    TID.store(platform::gettid(), Ordering::Relaxed);
    PID.store(platform::getpid(), Ordering::Relaxed);
    // Publishes the ids (release): `tid` reads them after this state (acquire).
    STATE.store(IDLE, Ordering::Release);
    loop {
        platform::futex_wait(&STATE, IDLE, Duration::from_secs(60));
        if STATE.compare_exchange(POSTED, RUNNING, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            continue;
        }
        // Not even the stop signal during a job (see the module notes); a failure leaves
        // it open, which only a program's own use of that signal could notice.
        let blocked = platform::block_signal(stop_signal).is_ok();
        let (run, arg) = (JOB_RUN.load(Ordering::Relaxed), JOB_ARG.load(Ordering::Relaxed));
        // SAFETY: `run` and `arg` were stored by `Helper::assist` before its exchange to
        // POSTED, which this thread's exchange to RUNNING read (acquire): a function of
        // that type and its argument, callable until `assist` returns, which it does only
        // after the DONE below.
        unsafe {
            let run: unsafe fn(*const ()) = core::mem::transmute::<usize, unsafe fn(*const ())>(run);
            run(arg as *const ());
        }
        STATE.store(DONE, Ordering::Release);
        platform::futex_wake_all(&STATE);
        if blocked {
            let _ = platform::unblock_signal(stop_signal);
        }
    }
}
