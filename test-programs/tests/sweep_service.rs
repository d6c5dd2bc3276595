//! Runs `sweep_service` (a program that leaks one 3333-byte block per request, every
//! 50 ms) under background leak sweeps, and checks that each leak is reported exactly
//! once while it runs, that nothing reachable is ever reported, and that the at-exit
//! report marks what the sweeps already reported.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const EXE: &str = env!("CARGO_BIN_EXE_sweep_service");
const REQUESTS: u64 = 10;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heapsweep-sweep-service-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the service with `options` (and `report=` in a fresh directory); returns its
/// stdout, the JSON lines of its sweeps and its at-exit report.
fn run(name: &str, options: &str) -> (String, Vec<serde_json::Value>, serde_json::Value) {
    let dir = temp_dir(name);
    let report = dir.join("report.json");
    let child = Command::new(EXE)
        .arg(REQUESTS.to_string())
        .args(name.ends_with("churn").then_some("churn"))
        .env("HEAPSWEEP", format!("{options}:report={}", report.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if options.contains("sweep_signal=USR1") {
        signal_until_exit(&child);
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(23), "the at-exit check finds the leaks\n{stdout}\n{stderr}");
    let lines_path = dir.join("report.json.sweeps.jsonl");
    let text = std::fs::read_to_string(&lines_path).unwrap_or_else(|e| panic!("{lines_path:?}: {e}\n{stderr}"));
    let lines = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let at_exit = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (stdout, lines, at_exit)
}

/// Sends `SIGUSR1` to `child` every 100 ms until it exits (the allocator installs the
/// handler at its first allocation, before `main`; the first signal waits 100 ms).
fn signal_until_exit(child: &Child) {
    let pid = child.id() as i32;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: kill has no memory preconditions. The child is ours and not reaped
        // (only `wait_with_output` reaps it), so `pid` still names it, or its zombie.
        let _ = unsafe { libc::kill(pid, libc::SIGUSR1) };
        // Exited (a zombie): /proc/PID/stat says state Z.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')) {
            return;
        }
    }
}

fn check(name: &str, options: &str) -> Vec<serde_json::Value> {
    let (stdout, lines, at_exit) = run(name, options);
    // The churning run leaks one more block, on the main thread.
    let expected = REQUESTS + u64::from(name.ends_with("churn"));
    assert!(stdout.contains(&format!("leaks reported by the callback: {expected}\n")), "{stdout}");
    assert!(stdout.contains("told before their line was written: 0\n"), "{stdout}");
    let mut reported = 0;
    for line in &lines {
        assert_eq!(line["format"], "heapsweep-sweep");
        assert!(line["pause_us"].is_u64() && line["generation"].is_u64(), "{line}");
        for g in line["leaks"].as_array().unwrap() {
            let (bytes, blocks) = (g["bytes"].as_u64().unwrap(), g["blocks"].as_u64().unwrap());
            assert_eq!(bytes, blocks * 3333, "only the leaks are reported, never a reachable block: {g}");
            reported += blocks;
        }
    }
    assert_eq!(reported, expected, "each leak reported exactly once by the sweeps: {lines:?}");
    let groups = at_exit["leaks"].as_array().unwrap();
    let leaks: Vec<_> = groups.iter().filter(|g| g["bytes"] == g["blocks"].as_u64().unwrap() * 3333).collect();
    let blocks: u64 = leaks.iter().map(|g| g["blocks"].as_u64().unwrap()).sum();
    let marked: u64 = leaks.iter().map(|g| g["reported_by_sweep"].as_u64().unwrap_or(0)).sum();
    assert_eq!((blocks, marked), (expected, expected), "the at-exit report has them all, marked: {at_exit}");
    assert_eq!(groups.len(), leaks.len(), "nothing else leaked: {at_exit}");
    lines
}

#[test]
fn thresholds_sweep_in_the_background_and_report_each_leak_once() {
    check("thresholds", "sweep=100/10/10");
}

#[test]
fn thresholds_on_the_fallback_path_give_the_same_answers() {
    check("fallback", "sweep=100/10/10:sweep_young=fallback");
}

#[test]
fn a_timed_sweep_alone_reports_each_leak_once() {
    check("interval", "sweep=0:sweep_interval_ms=30");
}

#[test]
fn timed_sweeps_run_while_the_program_frees_as_much_as_it_allocates() {
    // After the last request the program allocates and frees the same: timed sweeps
    // must still run (they did only when a heap's net count grew by a step, before).
    check("interval-churn", "sweep=0:sweep_interval_ms=30");
}

#[test]
fn the_sweep_signal_alone_runs_full_sweeps_that_report_each_leak_once() {
    let lines = check("signal", "sweep=0:sweep_signal=USR1");
    assert!(lines.iter().all(|l| l["generation"] == 2), "signalled sweeps are full: {lines:?}");
}
