//! Allocation stacks do not depend on frame pointers: `stacks_deep_chain` built in
//! release with them and without them reports the same frames for its leaks, and so does
//! the build without them under the DWARF walk (`fast_unwind=0`).
//!
//! The two builds go to target directories of their own under the workspace's `target/`
//! (`frame-pointer-builds/with`, `.../without`), reused from run to run: the first run of
//! this test builds the program's dependencies twice in release, later runs only relink
//! what changed.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const PROGRAM: &str = "stacks_deep_chain";

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// Builds the program in release, with or without frame pointers; returns its path.
fn build(frame_pointers: bool) -> PathBuf {
    let root = workspace_dir();
    let flavour = if frame_pointers { "with" } else { "without" };
    let target = root.join("target/frame-pointer-builds").join(flavour);
    let flags = format!("-C force-frame-pointers={}", if frame_pointers { "yes" } else { "no" });
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "-p", "test-programs", "--bin", PROGRAM])
        .env("CARGO_TARGET_DIR", &target)
        .env("RUSTFLAGS", flags)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .current_dir(&root)
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "building {flavour} frame pointers: {}", String::from_utf8_lossy(&out.stderr));
    target.join("release").join(PROGRAM)
}

/// Runs the program with `options` added to `HEAPSWEEP`; returns its report.
fn report(exe: &Path, tag: &str, options: &str) -> Value {
    let dir = workspace_dir().join("target/frame-pointer-builds");
    let path = dir.join(format!("{PROGRAM}.{tag}.{}.json", std::process::id()));
    let out = Command::new(exe)
        .env("HEAPSWEEP", format!("report={},stack_depth=64{options}", path.display()))
        .output()
        .expect("the program runs");
    assert_eq!(out.status.code(), Some(23), "{tag}: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("disagrees"), "{tag}: {stderr}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{tag}: {}: {e}", path.display()));
    let _ = std::fs::remove_file(&path);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{tag}: {e}"))
}

/// The function names of each leak group's stack, the groups sorted.
fn leak_stacks(report: &Value) -> Vec<Vec<String>> {
    let mut stacks: Vec<Vec<String>> = report["leaks"]
        .as_array()
        .expect("leaks")
        .iter()
        .map(|group| {
            let frames = group["stack"].as_array().expect("a stack");
            frames.iter().map(|f| f["function"].as_str().unwrap_or("?").to_string()).collect()
        })
        .collect();
    stacks.sort();
    stacks
}

#[test]
fn stacks_are_the_same_with_and_without_frame_pointers() {
    let with = build(true);
    let without = build(false);
    let reference = leak_stacks(&report(&with, "fp", ""));
    assert_eq!(reference.len(), 3, "one group per leaking site: {reference:#?}");
    for stack in &reference {
        let count = |name: &str| stack.iter().filter(|f| f.ends_with(name)).count();
        assert!(count("::recurse") >= 12, "the recursion is there: {stack:#?}");
        for f in ["::leaf", "::large", "::through_dyn", "::sized", "::run_at", "stacks_deep_chain::main"] {
            assert!(count(f) >= 1, "{f} is there: {stack:#?}");
        }
    }
    for (tag, options) in [("cached", ""), ("dwarf", ",fast_unwind=0")] {
        let stacks = leak_stacks(&report(&without, tag, options));
        assert_eq!(stacks, reference, "without frame pointers, {tag}");
    }
}
