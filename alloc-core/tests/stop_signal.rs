//! The stop signal is the program's again after every check: a program with its own
//! `SIGPWR` handler keeps it (with its flags and mask) across checks, its signals sent
//! while checks run all reach it, `stop_signal=USR2` stops threads with `SIGUSR2` and
//! leaves `SIGPWR` alone, and a value that cannot serve is refused with a clear warning.

use alloc_core::report::model::{CheckStatus, FailureKind};
use alloc_core::LeakReport;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

mod common;

/// Calls of [`program_handler`], and those that carried a `sigqueue` code (a stop
/// request would): those must never come.
static CALLS: AtomicU32 = AtomicU32::new(0);
static QUEUED: AtomicU32 = AtomicU32::new(0);

extern "C" fn program_handler(_sig: i32, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    // SAFETY: `info` is this SA_SIGINFO handler's own argument.
    if unsafe { (*info).si_code } == libc::SI_QUEUE {
        QUEUED.fetch_add(1, SeqCst);
    }
    CALLS.fetch_add(1, SeqCst);
}

/// Installs [`program_handler`] for `sig` with `SA_RESTART` and `SIGUSR1` in its mask;
/// returns the action as the kernel then reports it.
fn install_program_handler(sig: i32) -> libc::sigaction {
    // SAFETY: zeroed sigactions are valid; the handler only counts with atomics.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = program_handler as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigaddset(&mut sa.sa_mask, libc::SIGUSR1);
        assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
    }
    current_action(sig)
}

fn current_action(sig: i32) -> libc::sigaction {
    // SAFETY: a null new action only reads the current one into valid storage.
    unsafe {
        let mut cur: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(sig, std::ptr::null(), &mut cur), 0);
        cur
    }
}

/// Same handler, flags and mask (signals 1..=64).
fn same_action(a: &libc::sigaction, b: &libc::sigaction) -> bool {
    // SAFETY: both masks are valid sets; sigismember only reads them.
    let member = |x: &libc::sigaction, s| unsafe { libc::sigismember(&x.sa_mask, s) };
    a.sa_sigaction == b.sa_sigaction && a.sa_flags == b.sa_flags && (1..=64).all(|s| member(a, s) == member(b, s))
}

fn tgkill(tid: i32, sig: i32) {
    // SAFETY: tgkill passes no memory.
    assert_eq!(unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, sig) }, 0);
}

fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Threads that sleep in short naps until `quit`, blocking `blocked` (if not 0); their tids.
fn spawn_sleepers(n: usize, blocked: i32, quit: &Arc<AtomicBool>) -> (Vec<std::thread::JoinHandle<()>>, Vec<i32>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let handles = (0..n)
        .map(|_| {
            let (tx, quit) = (tx.clone(), quit.clone());
            std::thread::spawn(move || {
                if blocked != 0 {
                    // SAFETY: a zeroed set with one signal added, applied to this thread.
                    unsafe {
                        let mut set: libc::sigset_t = std::mem::zeroed();
                        libc::sigaddset(&mut set, blocked);
                        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                    }
                }
                tx.send(gettid()).unwrap();
                while !quit.load(SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    let tids = (0..n).map(|_| rx.recv().unwrap()).collect();
    (handles, tids)
}

/// Leaks one 77-byte block, on a thread of its own (which leaves no stale copy of it).
#[inline(never)]
fn leak_77() {
    common::on_thread(|| std::mem::forget(std::hint::black_box(vec![5u8; 77]).into_boxed_slice()));
}

fn assert_ok(r: &LeakReport, what: &str) {
    assert_eq!(r.status, CheckStatus::Ok, "{what}");
}

#[test]
fn a_program_sigpwr_handler_survives_checks_on_every_thread() {
    let _serial = common::serial();
    let installed = install_program_handler(libc::SIGPWR);
    let quit = Arc::new(AtomicBool::new(false));
    let (handles, tids) = spawn_sleepers(4, 0, &quit);
    for round in 0..6 {
        let calls = CALLS.load(SeqCst);
        assert_ok(&alloc_core::check(), "a check with the program's handler in place");
        assert!(same_action(&current_action(libc::SIGPWR), &installed), "round {round}: the action came back changed");
        assert_eq!(CALLS.load(SeqCst), calls, "round {round}: a stop request reached the program's handler");
        // The program's handler runs on every thread, and on the checking one.
        for (k, &tid) in tids.iter().chain([gettid()].iter()).enumerate() {
            tgkill(tid, libc::SIGPWR);
            wait_until("the program's handler runs", || CALLS.load(SeqCst) == calls + k as u32 + 1);
        }
    }
    quit.store(true, SeqCst);
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(QUEUED.load(SeqCst), 0, "a stop request reached the program's handler");
}

#[test]
fn the_program_sigpwr_signals_sent_while_checks_run_all_arrive() {
    let _serial = common::serial();
    let installed = install_program_handler(libc::SIGPWR);
    const SENT: u32 = 200;
    let base = CALLS.load(SeqCst);
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    // Signals to the whole process, one at a time (a standard signal does not queue: the
    // next is sent once the last arrived), while the main thread runs checks.
    let sender = std::thread::spawn(move || {
        for i in 0..SENT {
            // SAFETY: kill passes no memory.
            assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGPWR) }, 0);
            wait_until("the program's signal arrives", || CALLS.load(SeqCst) == base + i + 1);
        }
        d.store(true, SeqCst);
    });
    let mut checks = 0;
    while !done.load(SeqCst) {
        assert_ok(&alloc_core::check(), "a check while the program's signals arrive");
        checks += 1;
    }
    sender.join().unwrap();
    assert!(checks > 0);
    assert_eq!(CALLS.load(SeqCst), base + SENT);
    assert_eq!(QUEUED.load(SeqCst), 0, "a stop request reached the program's handler");
    assert!(same_action(&current_action(libc::SIGPWR), &installed));
}

/// Prints the report of a check as one JSON line on stdout, for the parent to read.
fn print_report(r: &LeakReport) {
    println!("\nREPORT {}", r.to_json().replace('\n', " "));
}

fn reports(stdout: &str) -> Vec<LeakReport> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("REPORT "))
        .map(|j| serde_json::from_str::<LeakReport>(j).unwrap())
        .collect()
}

/// The children: which one runs is chosen by `STOP_SIGNAL_CASE`.
#[test]
fn stop_signal_child_entry() {
    let Ok(case) = std::env::var("STOP_SIGNAL_CASE") else { return };
    let quit = Arc::new(AtomicBool::new(false));
    match case.as_str() {
        // Run with stop_signal=USR2: threads blocking SIGPWR stop, one blocking SIGUSR2
        // does not.
        "usr2" => {
            let installed = install_program_handler(libc::SIGPWR);
            let (handles, _) = spawn_sleepers(3, libc::SIGPWR, &quit);
            leak_77();
            print_report(&alloc_core::check());
            println!("\nSIGPWR UNCHANGED {}", same_action(&current_action(libc::SIGPWR), &installed));
            let (more, _) = spawn_sleepers(1, libc::SIGUSR2, &quit);
            print_report(&alloc_core::check());
            quit.store(true, SeqCst);
            handles.into_iter().chain(more).for_each(|h| h.join().unwrap());
            println!("\nSIGPWR CALLS {}", CALLS.load(SeqCst));
        }
        // Run with a stop_signal that is refused: the default stops the threads.
        "refused" => {
            let (handles, _) = spawn_sleepers(2, 0, &quit);
            leak_77();
            print_report(&alloc_core::check());
            let (more, _) = spawn_sleepers(1, libc::SIGPWR, &quit);
            print_report(&alloc_core::check());
            quit.store(true, SeqCst);
            handles.into_iter().chain(more).for_each(|h| h.join().unwrap());
        }
        other => panic!("unknown case {other}"),
    }
}

fn child(case: &str, heapsweep: &str) -> (Vec<LeakReport>, String, String) {
    let out = common::run_child("stop_signal_child_entry", &[("STOP_SIGNAL_CASE", case), ("HEAPSWEEP", heapsweep)]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    (reports(&stdout), stdout.into_owned(), stderr.into_owned())
}

fn has_leak_of(r: &LeakReport, bytes: u64) -> bool {
    r.leaks.iter().any(|g| g.bytes == bytes && g.blocks == 1)
}

fn failure_kind(r: &LeakReport) -> Option<FailureKind> {
    match &r.status {
        CheckStatus::Failed(f) => Some(f.kind),
        CheckStatus::Ok => None,
    }
}

#[test]
fn stop_signal_usr2_stops_threads_with_usr2_and_leaves_sigpwr_alone() {
    let (r, stdout, stderr) = child("usr2", "stop_signal=USR2,check_at_exit=0");
    assert_eq!(r.len(), 2, "{stdout}\n{stderr}");
    assert_ok(&r[0], "threads that block SIGPWR stop with SIGUSR2");
    assert!(has_leak_of(&r[0], 77), "{:?}", r[0].leaks);
    assert!(stdout.contains("SIGPWR UNCHANGED true"), "{stdout}");
    assert!(stdout.contains("SIGPWR CALLS 0"), "{stdout}");
    assert_eq!(failure_kind(&r[1]), Some(FailureKind::ThreadsNotStopped), "a thread blocking SIGUSR2 cannot stop");
    let CheckStatus::Failed(f) = &r[1].status else { unreachable!() };
    assert!(f.hint.contains("SIGUSR2") && !f.hint.contains("SIGPWR"), "{}", f.hint);
}

#[test]
fn a_stop_signal_that_cannot_serve_is_refused_and_sigpwr_used() {
    for (value, why) in [
        ("KILL", "a signal that cannot be caught"),
        ("SIGSEGV", "a fault signal, which must reach the program"),
        ("RTMAX", "one of the 13 highest real-time signals, which leak-check scopes use"),
        ("PWRR", ""),
    ] {
        let (r, stdout, stderr) = child("refused", &format!("stop_signal={value},check_at_exit=0"));
        let warning = format!("HEAPSWEEP: bad value '{value}' for stop_signal: {why}");
        assert!(stderr.contains(&warning), "{value}: {stderr}");
        assert!(stderr.contains("expected a catchable signal such as PWR, XCPU, SYS or USR2"), "{stderr}");
        assert!(stderr.contains("; using PWR"), "{stderr}");
        assert_eq!(r.len(), 2, "{stdout}\n{stderr}");
        assert_ok(&r[0], "the check runs with SIGPWR");
        assert!(has_leak_of(&r[0], 77), "{:?}", r[0].leaks);
        assert_eq!(failure_kind(&r[1]), Some(FailureKind::ThreadsNotStopped), "{value}: SIGPWR is the stop signal");
    }
}

#[test]
fn a_real_time_stop_signal_works() {
    let (r, stdout, stderr) = child("refused", "stop_signal=RTMIN+3,check_at_exit=0");
    assert!(!stderr.contains("HEAPSWEEP:"), "{stderr}");
    assert_eq!(r.len(), 2, "{stdout}\n{stderr}");
    assert_ok(&r[0], "stopped with SIGRTMIN+3");
    assert_ok(&r[1], "a thread blocking SIGPWR stops with SIGRTMIN+3");
}
