//! Helpers shared by alloc-core's integration tests. Each test file is its own binary and
//! includes this module with `mod common;`, using its own part of it.

#![allow(dead_code)] // each test file uses its own part of it

pub mod nodes;
pub mod smaps;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

/// Serializes the tests of one binary that look at the whole process (leak checks, heap
/// statistics): they must not see each other's blocks.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on a thread of its own and returns its result. A leak made on a thread that
/// ends leaves no stale copy of its pointers in a live stack frame or register.
pub fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().unwrap()
}

/// A fresh, empty directory for one test, unique to this process.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heapsweep-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs this test binary again with only the test `entry`, with `env` set: a child
/// process for what must not happen in the test process itself (aborts, at-exit reports,
/// process-wide options).
pub fn run_child(entry: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", entry, "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// A leak report read back from JSON and checked, as `leak-report` reads one.
pub fn read_report(text: &str) -> Result<alloc_core::LeakReport, String> {
    let r: alloc_core::LeakReport = serde_json::from_str(text).map_err(|e| e.to_string())?;
    r.validate()?;
    Ok(r)
}

/// A heap profile read back from JSON and checked, as `leak-report` reads one.
pub fn read_profile(text: &str) -> Result<alloc_core::profile::HeapProfile, String> {
    let p: alloc_core::profile::HeapProfile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    p.validate()?;
    Ok(p)
}
