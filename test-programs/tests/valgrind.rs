//! A program with HeapSweep as its global allocator, run under Valgrind: the leak check at
//! exit runs to its end and finds the program's leak. Valgrind lists its own memory in the
//! process's `/proc/self/maps`, anonymous mappings it unmaps and maps again as it runs; the
//! check's root scan used to read them, and fault when one was gone (seen under
//! `callgrind`, whose tables grow as the program runs: half the runs of the allocator
//! benchmark's 200,000 small pairs, too slow a program for a test). Under Valgrind the
//! scan now leaves anonymous mappings other than stacks, globals, TLS and libc's heap
//! alone (README.md, "Under Valgrind"); this test checks that a program's leaks are still
//! found, and nothing else reported, with those mappings left out (`--tool=none`: the
//! program as it runs natively, on Valgrind's core). Passes without running anything where
//! Valgrind is not installed.

use std::process::Command;

#[test]
fn the_check_at_exit_runs_under_valgrind_and_finds_the_leak() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("valgrind is not installed: nothing to run");
        return;
    }
    let dir = std::env::temp_dir().join(format!("heapsweep-valgrind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("leak_box_leak.json");
    let _ = std::fs::remove_file(&report);
    let out = Command::new("valgrind")
        .args(["--tool=none", "-q", env!("CARGO_BIN_EXE_leak_box_leak")])
        .env("HEAPSWEEP", format!("report={}", report.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 23: the leak check's exit status when it found leaks (the program's expectation).
    assert_eq!(out.status.code(), Some(23), "stderr:\n{stderr}");
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("no report ({e}); stderr:\n{stderr}"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["summary"]["leaked_blocks"], 1, "{text}");
    assert_eq!(v["summary"]["leaked_bytes"], 64, "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
