//! A leak check that cannot run to the end says so: the report's status names what
//! failed, the text report prints it as LeakSanitizer prints its fatal error, and the
//! at-exit check exits with `failure_exitcode` (24) instead of passing for clean.
//!
//! Each failure is made to happen for real, in a child process: a thread that blocks the
//! stop signal, a process with no file descriptor left (its threads cannot be listed),
//! and an address-space limit that leaves the check no memory for its tables. (A root
//! list that cannot be read is made to happen in the leak phases' own tests.)

use alloc_core::report::model::{CheckStatus, FailureKind};
use alloc_core::LeakReport;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

mod common;

/// A thread that blocks every signal the check could stop it with, and runs until told.
fn spawn_unstoppable(quit: &'static AtomicBool) -> (std::thread::JoinHandle<()>, i32) {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        // SAFETY: a zeroed sigset filled by sigfillset, then applied to this thread only.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
        }
        // SAFETY: gettid has no preconditions.
        tx.send(unsafe { libc::gettid() }).unwrap();
        while !quit.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    (h, rx.recv().unwrap())
}

/// Prints the report of a check as one JSON line on stdout, for the parent to read.
fn print_report(r: &LeakReport) {
    println!("\nREPORT {}", r.to_json().replace('\n', " "));
}

fn report_from(stdout: &str) -> LeakReport {
    let line = stdout.lines().find_map(|l| l.strip_prefix("REPORT ")).expect("the child printed its report");
    common::read_report(line).unwrap()
}

/// The children: which one runs is chosen by `CHECK_FAILURE_CASE`.
#[test]
fn check_failure_child_entry() {
    let Ok(case) = std::env::var("CHECK_FAILURE_CASE") else { return };
    static QUIT: AtomicBool = AtomicBool::new(false);
    match case.as_str() {
        "unstoppable" => {
            let (h, tid) = spawn_unstoppable(&QUIT);
            println!("\nTID {tid}");
            print_report(&alloc_core::check());
            QUIT.store(true, Ordering::SeqCst);
            h.join().unwrap();
            // The next check, with the thread gone, is whole again.
            print_report(&alloc_core::check());
        }
        "unstoppable_at_exit" => {
            let (_h, tid) = spawn_unstoppable(&QUIT);
            println!("\nTID {tid}");
            // Returning ends the process with the thread still running: the at-exit check
            // cannot stop it.
        }
        "no_descriptors" => {
            alloc_core::check(); // warm up: symbolization caches, the stop table
            exhaust_descriptors();
            let r = alloc_core::check();
            print_report(&r);
        }
        "out_of_memory" => {
            alloc_core::check(); // warm up
            let keep: Vec<Box<[u64; 4]>> = (0..200_000).map(|i| Box::new([i; 4])).collect();
            limit_address_space();
            let r = alloc_core::check();
            unlimit_address_space();
            std::hint::black_box(&keep);
            print_report(&r);
        }
        other => panic!("unknown case {other}"),
    }
}

/// Opens descriptors until none is left (the soft limit lowered first, so that this takes
/// few of them).
fn exhaust_descriptors() {
    // SAFETY: getrlimit/setrlimit with a valid struct; dup of stderr.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_cur.min(256);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        while libc::dup(2) >= 0 {}
    }
}

/// The address-space size now, from `/proc/self/status` (`VmSize`, in KiB).
fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Leaves 1 MiB of address space (room for the stack to grow), not enough for the
/// check's mapping list (2 MiB).
fn limit_address_space() {
    let lim = libc::rlimit { rlim_cur: vm_size() + (1 << 20), rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit with a valid struct.
    unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) };
}

fn unlimit_address_space() {
    let lim = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit with a valid struct.
    unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) };
}

fn child(case: &str, heapsweep: &str) -> std::process::Output {
    common::run_child("check_failure_child_entry", &[("CHECK_FAILURE_CASE", case), ("HEAPSWEEP", heapsweep)])
}

fn failure_of(r: &LeakReport) -> (FailureKind, String) {
    match &r.status {
        CheckStatus::Failed(f) => (f.kind, f.message.clone()),
        CheckStatus::Ok => panic!("the check passed for complete: {r:?}"),
    }
}

#[test]
fn a_thread_that_never_stops_fails_the_check_and_names_the_thread() {
    let out = child("unstoppable", "check_at_exit=0");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let tid = stdout.lines().find_map(|l| l.strip_prefix("TID ")).unwrap();
    let reports: Vec<LeakReport> =
        stdout.lines().filter_map(|l| l.strip_prefix("REPORT ")).map(|j| common::read_report(j).unwrap()).collect();
    let (kind, message) = failure_of(&reports[0]);
    assert_eq!(kind, FailureKind::ThreadsNotStopped);
    assert!(message.contains(&format!("thread {tid} did not stop")), "{message}");
    assert!(reports[0].check_failed());
    assert_eq!(reports[1].status, CheckStatus::Ok, "once the thread is gone the check is whole again");
}

#[test]
fn at_exit_a_failed_check_prints_the_fatal_error_and_exits_24() {
    let dir = common::scratch_dir("check-failure-at-exit");
    let json = dir.join("report.json");
    let out = child("unstoppable_at_exit", &format!("report=\"{}\"", json.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(24), "{stderr}");
    assert!(stderr.contains("HeapSweep has encountered a fatal error"), "{stderr}");
    assert!(stderr.contains("threads_not_stopped") && stderr.contains("HINT:"), "{stderr}");
    let r = common::read_report(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(failure_of(&r).0, FailureKind::ThreadsNotStopped);
    // failure_exitcode=0 keeps the program's status, and still says what happened.
    let out = child("unstoppable_at_exit", "failure_exitcode=0");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fatal error"));
}

#[test]
fn with_no_descriptor_left_the_threads_cannot_be_listed() {
    let out = child("no_descriptors", "check_at_exit=0");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let (kind, message) = failure_of(&report_from(&stdout));
    assert_eq!(kind, FailureKind::ThreadsNotListed);
    assert!(message.contains("/proc/self/task") && message.contains("Too many open files"), "{message}");
}

#[test]
fn out_of_memory_during_the_check_fails_it_instead_of_reporting_nothing() {
    let out = child("out_of_memory", "check_at_exit=0");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let r = report_from(&stdout);
    let (kind, message) = failure_of(&r);
    assert_eq!(kind, FailureKind::OutOfMemory);
    assert!(message.starts_with("out of memory for "), "{message}");
    assert!(r.leaks.is_empty(), "nothing is reported from a check that could not run");
}
