//! The stop signal is borrowed for a stop only: the program's handler comes back after
//! each `resume` (with its flags and mask), a late request never reaches it, and its own
//! signals arriving during a stop are forwarded to it. Each test installs a handler of
//! the program's for the stop signal and holds `test_serial` while it is installed.

use super::super::{stop_signal, stop_the_world, test_serial};
use super::*;
use crate::platform::{getpid, gettid, set_signal_blocked, tgkill};
use core::sync::atomic::AtomicU32;
use std::sync::atomic::AtomicI32;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Calls of [`program_handler`], and the `si_code` of the last one.
static CALLS: AtomicU32 = AtomicU32::new(0);
static LAST_CODE: AtomicI32 = AtomicI32::new(0);
/// Calls that carried a stop request's mark: must stay 0.
static MARKED: AtomicU32 = AtomicU32::new(0);

/// The program's handler: counts, never allocates.
extern "C" fn program_handler(_sig: i32, info: *mut SigInfo, _ctx: *mut c_void) {
    // SAFETY: `info` is this SA_SIGINFO handler's own argument.
    if unsafe { platform::marked_value(info) } == Some(MARK) {
        MARKED.fetch_add(1, SeqCst);
    }
    // SAFETY: as above; si_code is the header's third field.
    LAST_CODE.store(unsafe { (*info).si_code }, SeqCst);
    CALLS.fetch_add(1, SeqCst);
}

static ONE_SHOT_CALLS: AtomicU32 = AtomicU32::new(0);

extern "C" fn one_shot(_sig: i32) {
    ONE_SHOT_CALLS.fetch_add(1, SeqCst);
}

/// Installs [`program_handler`] for the stop signal; returns the action as installed and
/// the one before, to put back.
fn install_program_handler() -> (SavedSignalAction, SavedSignalAction) {
    let handler = SignalHandler::WithContext(program_handler);
    // SAFETY: the handler only reads its siginfo and counts with atomics.
    let before = unsafe { platform::set_signal_handler(stop_signal(), handler, BlockWhileHandling::Nothing) };
    (platform::current_action(stop_signal()).unwrap(), before.unwrap())
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// A thread that runs until `quit`, blocking the stop signal while `block` says so; its
/// tid is returned once it runs.
fn helper(quit: &Arc<AtomicU32>, block: bool) -> (std::thread::JoinHandle<()>, i32) {
    let (q, tid) = (quit.clone(), Arc::new(AtomicI32::new(0)));
    let t = tid.clone();
    let h = std::thread::spawn(move || {
        set_signal_blocked(stop_signal(), block);
        t.store(gettid(), SeqCst);
        while q.load(SeqCst) == 0 {
            std::thread::sleep(Duration::from_micros(500));
        }
        // Phase 1: take whatever is pending, then run on until phase 2.
        set_signal_blocked(stop_signal(), false);
        while q.load(SeqCst) < 2 {
            std::thread::sleep(Duration::from_micros(500));
        }
    });
    wait_until("the helper runs", || tid.load(SeqCst) != 0);
    (h, tid.load(SeqCst))
}

#[test]
fn the_program_handler_is_back_after_every_stop_and_still_runs() {
    let _serial = test_serial();
    let (installed, before) = install_program_handler();
    let quit = Arc::new(AtomicU32::new(0));
    let helpers: Vec<_> = (0..3).map(|_| helper(&quit, false)).collect();
    let calls = CALLS.load(SeqCst);
    for round in 0..5u32 {
        let mut world = stop_the_world(Duration::from_secs(10));
        let stopped = world.all_stopped();
        world.resume();
        assert!(stopped, "round {round}");
        let now = platform::current_action(stop_signal()).unwrap();
        assert!(now.same_as(&installed), "round {round}: {now:?} is not the program's {installed:?}");
        assert_eq!(CALLS.load(SeqCst), calls + round, "round {round}: the stop requests reached the program");
        let (_, tid) = helpers[round as usize % 3];
        tgkill(getpid(), tid, stop_signal()).unwrap();
        wait_until("the program's handler runs", || CALLS.load(SeqCst) == calls + round + 1);
    }
    quit.store(2, SeqCst);
    helpers.into_iter().for_each(|(h, _)| h.join().unwrap());
    assert_eq!(MARKED.load(SeqCst), 0);
    platform::restore_signal_action(&before).unwrap();
}

#[test]
fn a_late_request_is_swallowed_then_the_program_handler_comes_back() {
    let _serial = test_serial();
    let (installed, before) = install_program_handler();
    let calls = CALLS.load(SeqCst);
    let quit = Arc::new(AtomicU32::new(0));
    let (h, tid) = helper(&quit, true);
    let mut world = stop_the_world(Duration::from_millis(50));
    let stopped = world.all_stopped();
    world.resume();
    assert!(!stopped, "the helper blocks the stop signal");
    // Its request is still pending: the handler stays ours, so that it cannot reach the
    // program's.
    assert_eq!(platform::thread_has_pending(tid, stop_signal()), Ok(true));
    assert_eq!(platform::current_handler(stop_signal()), Ok(Some(ours())));
    quit.store(1, SeqCst);
    wait_until("the late request is taken and the action given back", || {
        platform::current_action(stop_signal()).unwrap().same_as(&installed)
    });
    assert_eq!(CALLS.load(SeqCst), calls, "the late request reached the program's handler");
    tgkill(getpid(), tid, stop_signal()).unwrap();
    wait_until("the program's handler runs", || CALLS.load(SeqCst) == calls + 1);
    quit.store(2, SeqCst);
    h.join().unwrap();
    assert_eq!(MARKED.load(SeqCst), 0);
    platform::restore_signal_action(&before).unwrap();
}

#[test]
fn the_program_signals_during_a_stop_are_forwarded() {
    let _serial = test_serial();
    let (installed, before) = install_program_handler();
    let calls = CALLS.load(SeqCst);
    let quit = Arc::new(AtomicU32::new(0));
    let (h, tid) = helper(&quit, false);
    let mut world = stop_the_world(Duration::from_secs(10));
    // To this thread, which is not stopped, and to the stopped helper: both wait until
    // the world runs again (the program's handler never runs while threads are stopped).
    let to_me = tgkill(getpid(), gettid(), stop_signal());
    let to_helper = tgkill(getpid(), tid, stop_signal());
    let during = CALLS.load(SeqCst);
    let stopped = world.all_stopped();
    world.resume();
    assert_eq!((to_me, to_helper, stopped), (Ok(()), Ok(()), true));
    assert_eq!(during, calls, "the program's handler ran while the world was stopped");
    wait_until("both signals are handled", || CALLS.load(SeqCst) == calls + 2);
    assert_eq!(LAST_CODE.load(SeqCst), platform::SI_TKILL, "the program's siginfo is passed on");
    assert!(platform::current_action(stop_signal()).unwrap().same_as(&installed));
    quit.store(2, SeqCst);
    h.join().unwrap();
    assert_eq!(MARKED.load(SeqCst), 0);
    platform::restore_signal_action(&before).unwrap();
}

#[test]
fn a_one_shot_handler_forwarded_once_leaves_the_default_action() {
    let _serial = test_serial();
    // SAFETY: the handler only counts with an atomic.
    let before = unsafe { platform::set_one_shot_handler(stop_signal(), one_shot) }.unwrap();
    let calls = ONE_SHOT_CALLS.load(SeqCst);
    let quit = Arc::new(AtomicU32::new(0));
    let (h, _) = helper(&quit, true);
    // The helper blocks the signal: its request is late, the handler stays borrowed.
    let mut world = stop_the_world(Duration::from_millis(50));
    world.resume();
    assert_eq!(platform::current_handler(stop_signal()), Ok(Some(ours())));
    // The program's signal, meanwhile, goes through the borrowed handler to its own.
    tgkill(getpid(), gettid(), stop_signal()).unwrap();
    assert_eq!(ONE_SHOT_CALLS.load(SeqCst), calls + 1, "forwarded before tgkill returned");
    quit.store(1, SeqCst);
    // Once the late request arrived, the action given back is the default, as the kernel
    // would have left it after one delivery.
    wait_until("the action is given back", || platform::current_handler(stop_signal()) == Ok(None));
    assert_eq!(ONE_SHOT_CALLS.load(SeqCst), calls + 1);
    quit.store(2, SeqCst);
    h.join().unwrap();
    platform::restore_signal_action(&before).unwrap();
}
