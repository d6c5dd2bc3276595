//! Runs one scenario program as a subprocess and collects what it did.
//!
//! # Configuration
//! The program runs with `HEAPSWEEP=report=<dir>/<name>.<tag>.%p.json[,<options>]`, from
//! the crate's directory. `%p` is the contract's process-id pattern: the runner reads
//! back `<name>.<tag>.<pid>.json`, so every run also checks that `%p` is expanded. Values
//! of path options (`suppressions`) are made absolute, relative to the crate; a value
//! holding `,` or `:` is double-quoted, as the contract requires.
//!
//! # Limits
//! At most [`jobs`] programs run at once, across every test of the binary (a counting
//! semaphore), and each gets [`TIMEOUT`]: a hang is killed and reported, never a stalled
//! CI job. stderr is drained by a thread of its own, so a long report cannot fill the
//! pipe and block the program.

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long one program may run.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Options whose value is a path, resolved relative to the crate's directory.
const PATH_OPTIONS: [&str; 1] = ["suppressions"];

/// What one run of a program did.
#[derive(Debug)]
pub struct Outcome {
    /// The exit status, or `None` if a signal ended the program.
    pub status: Option<i32>,
    pub stderr: String,
    pub pid: u32,
    /// The program path passed as `argv[0]`.
    pub program: String,
    /// The report file, parsed; `None` when none was written.
    pub report: Option<Result<Value, String>>,
    /// Report files found under another name than the expected one (`%p` not expanded?).
    pub stray_reports: Vec<String>,
    pub elapsed: Duration,
}

/// The crate's directory, where programs run and relative option paths start.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How many programs may run at once: `HEAPSWEEP_SCENARIO_JOBS`, else 3.
pub fn jobs() -> usize {
    std::env::var("HEAPSWEEP_SCENARIO_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(3).clamp(1, 16)
}

/// A counting semaphore over [`jobs`] slots.
static RUNNING: Mutex<usize> = Mutex::new(0);
static SLOT_FREED: Condvar = Condvar::new();

/// Holds one of the [`jobs`] slots while it lives.
struct Slot;

impl Slot {
    fn take() -> Slot {
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= jobs() {
            running = SLOT_FREED.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        SLOT_FREED.notify_one();
    }
}

/// The `HEAPSWEEP` value for a run.
pub fn heapsweep_value(report_pattern: &Path, options: &[(String, String)]) -> String {
    let mut parts = vec![format!("report={}", quote(&report_pattern.display().to_string()))];
    for (key, value) in options {
        let value = if PATH_OPTIONS.contains(&key.as_str()) && Path::new(value).is_relative() {
            crate_dir().join(value).display().to_string()
        } else {
            value.clone()
        };
        parts.push(format!("{key}={}", quote(&value)));
    }
    parts.join(",")
}

/// Double-quotes a value holding a separator.
fn quote(value: &str) -> String {
    if value.contains([',', ':']) {
        format!("\"{value}\"")
    } else {
        value.to_string()
    }
}

/// Runs `exe` once; `tag` tells apart the reports of repeated runs of one program.
pub fn run(exe: &str, name: &str, options: &[(String, String)], dir: &Path, tag: &str) -> Result<Outcome, String> {
    let _slot = Slot::take();
    let prefix = format!("{name}.{tag}.");
    let env = heapsweep_value(&dir.join(format!("{prefix}%p.json")), options);
    let started = Instant::now();
    let mut child = Command::new(exe)
        .env("HEAPSWEEP", env)
        .current_dir(crate_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {exe}: {e}"))?;
    let pid = child.id();
    let mut pipe = child.stderr.take().expect("stderr is piped");
    let drain = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = pipe.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    let status = wait_with_timeout(&mut child)?;
    let stderr = drain.join().unwrap_or_default();
    let (report, stray_reports) = read_report(dir, &prefix, pid);
    Ok(Outcome { status, stderr, pid, program: exe.to_string(), report, stray_reports, elapsed: started.elapsed() })
}

/// Waits for the child; kills it after [`TIMEOUT`].
fn wait_with_timeout(child: &mut std::process::Child) -> Result<Option<i32>, String> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("wait failed: {e}"))? {
            return Ok(status.code());
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {} s and was killed", TIMEOUT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The report `<prefix><pid>.json`, and any other file starting with `prefix`.
fn read_report(dir: &Path, prefix: &str, pid: u32) -> (Option<Result<Value, String>>, Vec<String>) {
    let expected = format!("{prefix}{pid}.json");
    let report = std::fs::read_to_string(dir.join(&expected))
        .ok()
        .map(|text| serde_json::from_str(&text).map_err(|e| format!("{expected} is not JSON: {e}")));
    let stray = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix) && *n != expected)
                .collect()
        })
        .unwrap_or_default();
    (report, stray)
}

/// A fresh directory for one test's reports.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heapsweep-scenarios-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("cannot create the report directory");
    dir
}

/// Runs `f` on every item with up to [`jobs`] worker threads; results keep the items' order.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs().min(items.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().map(|r| r.expect("every item ran")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_joined_quoted_and_resolved() {
        let v = heapsweep_value(
            Path::new("/tmp/r/a.0.%p.json"),
            &[
                ("exitcode".into(), "0".into()),
                ("suppressions".into(), "src/bin/x.supp".into()),
                ("suppressions".into(), "/abs/y.supp".into()),
                ("odd".into(), "a:b".into()),
            ],
        );
        let dir = crate_dir().display().to_string();
        let sup = if dir.contains([',', ':']) {
            format!("\"{dir}/src/bin/x.supp\"")
        } else {
            format!("{dir}/src/bin/x.supp")
        };
        assert_eq!(
            v,
            format!("report=/tmp/r/a.0.%p.json,exitcode=0,suppressions={sup},suppressions=/abs/y.supp,odd=\"a:b\"")
        );
    }

    #[test]
    fn parallel_map_keeps_order_and_runs_everything() {
        let items: Vec<u32> = (0..50).collect();
        assert_eq!(parallel_map(&items, |i| i * 2), items.iter().map(|i| i * 2).collect::<Vec<_>>());
    }
}
