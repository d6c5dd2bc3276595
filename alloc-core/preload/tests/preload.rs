//! Programs that do not name HeapSweep, run under `heapsweep run` (the preload library):
//! C programs built here with `cc`, a Rust program without `#[global_allocator]` built
//! with `rustc`, and a crate's test binaries through cargo's runner variable.
//!
//! The scenario programs in `tests/programs/` carry their ground truth in the header
//! format of `test-programs` (`// EXPECT: ...`, `// EXPECT-GROUP: ...`,
//! `// EXPECT-EXIT: ...`), and are compared with that package's own checker: the leaks
//! must match exactly, so a block the C library keeps for itself that the check took for
//! a leak fails the test.
//!
//! ```sh
//! cargo test -p heapsweep-preload --test preload
//! ```

#[allow(dead_code)]
#[path = "../../../test-programs/tests/support/mod.rs"]
mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;
use support::compare::compare;
use support::run::{heapsweep_value, Outcome};

/// The launcher cargo built for this package.
const HEAPSWEEP: &str = env!("CARGO_BIN_EXE_heapsweep");

/// The library cargo built for these tests: beside this test binary, in `deps/` (cargo
/// does not copy it up to `target/debug/` when it builds it only for the tests, so the
/// copy there may be stale).
fn preload_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let lib = exe.with_file_name("libheapsweep_preload.so");
    assert!(lib.is_file(), "the preload library was not built: {}", lib.display());
    lib
}

/// The scenario programs: file names in `tests/programs/`.
const SCENARIOS: [&str; 6] =
    ["c_leaks.c", "c_clean_libc.c", "c_threads.c", "c_api.c", "c_fork_exec.c", "rust_system_alloc.rs"];

fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs")
}

/// A directory of this test binary's own under cargo's scratch space.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("preload-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("cannot create a scratch directory");
    dir
}

/// Builds `tests/programs/<file>` into `out` (C with `cc`, Rust with `rustc`, both with
/// debug info and frame pointers); the executable's path.
fn build(file: &str, out: &Path) -> PathBuf {
    let src = programs_dir().join(file);
    let exe = out.join(file.replace('.', "_"));
    let mut cmd = if file.ends_with(".c") {
        let mut c = Command::new("cc");
        c.args(["-g", "-O0", "-fno-omit-frame-pointer", "-pthread", "-o"]).arg(&exe).arg(&src).arg("-ldl");
        c
    } else {
        let mut c = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
        c.args(["-g", "-C", "force-frame-pointers=yes", "--edition", "2021", "-o"]).arg(&exe).arg(&src);
        c
    };
    let o = cmd.output().unwrap_or_else(|e| panic!("cannot run the compiler for {file} (is `cc` installed?): {e}"));
    assert!(o.status.success(), "{file} does not build:\n{}", String::from_utf8_lossy(&o.stderr));
    exe
}

/// Runs `heapsweep run -- exe args` with `HEAPSWEEP=report=<dir>/<tag>.%p.json,<options>`.
fn run(exe: &Path, args: &[&str], tag: &str, options: &[(String, String)], dir: &Path) -> Outcome {
    let env = heapsweep_value(&dir.join(format!("{tag}.%p.json")), options);
    let started = Instant::now();
    let child = Command::new(HEAPSWEEP)
        .arg("run")
        .arg("--")
        .arg(exe)
        .args(args)
        .env("HEAPSWEEP", env)
        .env("HEAPSWEEP_PRELOAD_LIB", preload_lib())
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start heapsweep");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait failed");
    let expected = format!("{tag}.{pid}.json");
    let report = std::fs::read_to_string(dir.join(&expected))
        .ok()
        .map(|t| serde_json::from_str(&t).map_err(|e| format!("{expected} is not JSON: {e}")));
    Outcome {
        status: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        pid,
        program: exe.display().to_string(),
        report,
        stray_reports: Vec::new(),
        elapsed: started.elapsed(),
    }
}

/// Builds and runs one scenario, and lists its mismatches with the header's expectations.
fn check_scenario(file: &str, dir: &Path) -> Vec<String> {
    let source = std::fs::read_to_string(programs_dir().join(file)).expect("cannot read the program");
    let expect = match support::expect::parse(&source) {
        Ok(e) => e,
        Err(e) => return vec![format!("bad expectations: {e}")],
    };
    let exe = build(file, dir);
    let o = run(&exe, &[], file, &expect.options, dir);
    compare(&expect, &o)
}

#[test]
fn every_program_matches_its_ground_truth() {
    let dir = scratch("scenarios");
    let mut failed = Vec::new();
    for file in SCENARIOS {
        let problems = check_scenario(file, &dir);
        println!("{file:<24} {}", if problems.is_empty() { "ok" } else { "MISMATCH" });
        if !problems.is_empty() {
            failed.push(format!("{file}:\n    {}", problems.join("\n    ")));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// The reports a test wrote, by process id.
fn reports_in(dir: &Path, prefix: &str) -> Vec<(u32, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("cannot list the reports") {
        let name = entry.expect("bad entry").file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(prefix).and_then(|r| r.strip_suffix(".json")) else { continue };
        let text = std::fs::read_to_string(dir.join(&name)).expect("cannot read a report");
        out.push((pid.parse().expect("a pid"), serde_json::from_str(&text).expect("a JSON report")));
    }
    out.sort_by_key(|(pid, _)| *pid);
    out
}

fn leaked_bytes(v: &Value) -> u64 {
    v["summary"]["leaked_bytes"].as_u64().expect("summary.leaked_bytes")
}

#[test]
fn fork_and_exec_are_checked_in_each_process() {
    let dir = scratch("fork");
    let exe = build("c_fork_exec.c", &dir);
    let o = run(&exe, &[], "fe", &[], &dir);
    assert_eq!(o.status, Some(23), "{}", o.stderr);
    let reports = reports_in(&dir, "fe.");
    let mut bytes: Vec<u64> = reports.iter().map(|(_, v)| leaked_bytes(v)).collect();
    bytes.sort_unstable();
    assert_eq!(bytes, [7, 11, 13], "parent, forked child, exec'd child; stderr:\n{}", o.stderr);
    let parent = reports.iter().find(|(pid, _)| *pid == o.pid).expect("the parent's report");
    assert_eq!(leaked_bytes(&parent.1), 7);
    assert_eq!(o.stderr.matches("SUMMARY: HeapSweep:").count(), 3, "{}", o.stderr);
    for (_, v) in &reports {
        assert_eq!(v["summary"]["leaked_blocks"], 1, "{v}");
        let stack = v["leaks"][0]["stack"].to_string();
        assert!(stack.contains("leak_bytes"), "{stack}");
    }
}

#[test]
fn misuse_is_reported_and_foreign_frees_are_ignored() {
    let dir = scratch("misuse");
    let exe = build("c_misuse.c", &dir);
    let foreign = run(&exe, &["foreign"], "foreign", &[], &dir);
    assert_eq!(foreign.status, Some(0), "{}", foreign.stderr);
    assert!(!foreign.stderr.contains("heapsweep"), "{}", foreign.stderr);
    let report = foreign.report.expect("a report").expect("JSON");
    assert_eq!(report["summary"]["leaked_blocks"], 0);
    for (mode, what) in [("double", "double free"), ("interior", "into the middle of a block")] {
        let o = run(&exe, &[mode], mode, &[], &dir);
        assert_eq!(o.status, None, "{mode}: the process must abort; stderr:\n{}", o.stderr);
        assert!(o.stderr.contains("heapsweep: error: free(0x") && o.stderr.contains(what), "{mode}:\n{}", o.stderr);
        assert!(!o.stderr.contains("not reached"));
    }
}

#[test]
fn heapsweep_run_passes_stdio_and_the_exit_status_through() {
    let dir = scratch("stdio");
    let exe = build("c_echo_status.c", &dir);
    for status in [0, 3, 42] {
        let mut child = Command::new(HEAPSWEEP)
            .args(["run", "--"])
            .arg(&exe)
            .arg(status.to_string())
            .env("HEAPSWEEP", format!("report={}/echo.%p.json", dir.display()))
            .env("HEAPSWEEP_PRELOAD_LIB", preload_lib())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start heapsweep");
        use std::io::Write;
        child.stdin.take().expect("piped").write_all(b"hello through\n").expect("write");
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(status));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello through\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "to stderr\n");
        let report = std::fs::read_to_string(dir.join(format!("echo.{}.json", out.status.code().map_or(0, |_| 0))));
        assert!(report.is_err(), "report names use the program's pid, which is heapsweep's (exec)");
    }
    let reports = reports_in(&dir, "echo.");
    assert_eq!(reports.len(), 3, "each run was checked: the program ran under the library");
}

#[test]
fn heapsweep_run_explains_what_it_cannot_do() {
    let out = Command::new(HEAPSWEEP).args(["run", "--", "/nonexistent/program"]).output().expect("run");
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot run /nonexistent/program"));
    let out =
        Command::new(HEAPSWEEP).args(["run", "--lib", "/nonexistent/lib.so", "--", "true"]).output().expect("run");
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/lib.so"));
    let out = Command::new(HEAPSWEEP).arg("lib-path").env_remove("HEAPSWEEP_PRELOAD_LIB").output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lib = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let bin_dir = Path::new(HEAPSWEEP).parent().expect("a directory");
    assert!(lib.parent() == Some(bin_dir) || lib.parent() == Some(&bin_dir.join("deps")), "{}", lib.display());
    assert!(lib.is_file());
    let out =
        Command::new(HEAPSWEEP).arg("lib-path").env("HEAPSWEEP_PRELOAD_LIB", preload_lib()).output().expect("run");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), preload_lib().display().to_string());
    let out = Command::new(HEAPSWEEP).arg("bogus").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

/// A scratch crate with one leaking and one clean test file.
fn write_scratch_crate(dir: &Path) {
    std::fs::create_dir_all(dir.join("src")).expect("mkdir");
    std::fs::create_dir_all(dir.join("tests")).expect("mkdir");
    let files = [
        ("Cargo.toml", "[package]\nname = \"scratch\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n"),
        ("src/lib.rs", "pub fn make(n: usize) -> Vec<u64> { vec![7; n] }\n"),
        (
            "tests/leaky.rs",
            "#[inline(never)]\nfn leak_twelve() { std::mem::forget(scratch::make(12)); }\n\
             #[test]\nfn leaks() { leak_twelve(); let mut b = [0u8; 16384]; std::hint::black_box(&mut b); }\n",
        ),
        ("tests/clean.rs", "#[test]\nfn clean() { assert_eq!(scratch::make(3).len(), 3); }\n"),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write");
    }
}

#[test]
fn cargo_runs_test_binaries_under_heapsweep_through_the_runner_variable() {
    let dir = scratch("cargo");
    let krate = dir.join("crate");
    write_scratch_crate(&krate);
    let reports = dir.join("reports");
    std::fs::create_dir_all(&reports).expect("mkdir");
    let cargo = |test: &str| {
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["test", "--offline", "--test", test])
            .current_dir(&krate)
            .env("CARGO_TARGET_DIR", krate.join("target"))
            .env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER", format!("{HEAPSWEEP} run --"))
            .env("HEAPSWEEP_PRELOAD_LIB", preload_lib())
            .env("HEAPSWEEP", format!("report={}/{test}.%p.json", reports.display()))
            .env_remove("LD_PRELOAD")
            .env_remove("RUSTFLAGS")
            .output()
            .expect("cannot run cargo")
    };
    let clean = cargo("clean");
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stderr));
    let clean_reports = reports_in(&reports, "clean.");
    assert_eq!(clean_reports.len(), 1, "one report, the test binary's: cargo and rustc ran without the library");
    assert_eq!(clean_reports[0].1["summary"]["leaked_blocks"], 0);
    assert!(clean_reports[0].1["program"].as_str().is_some_and(|p| p.contains("clean-")));

    let leaky = cargo("leaky");
    let stderr = String::from_utf8_lossy(&leaky.stderr);
    assert!(!leaky.status.success());
    assert!(stderr.contains("exit status: 23"), "{stderr}");
    let leaky_reports = reports_in(&reports, "leaky.");
    assert_eq!(leaky_reports.len(), 1, "{stderr}");
    let v = &leaky_reports[0].1;
    assert_eq!(v["summary"]["leaked_blocks"], 1, "{v}");
    assert_eq!(v["summary"]["leaked_bytes"], 96, "{v}");
    assert!(v["leaks"][0]["stack"].to_string().contains("leak_twelve"), "{v}");
}
