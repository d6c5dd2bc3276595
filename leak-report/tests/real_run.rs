//! End to end: a real run under HeapSweep (this test binary, re-run as a child with
//! `HEAPSWEEP=report=...,profile=...`) writes a leak report and a heap profile; every
//! renderer of `leak_report` takes both, and what they say agrees with what the child did.

mod common;

use leak_report::{Input, Measure, Metric, Weight};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

const LEAKED: usize = 5;
const LEAKED_SIZE: usize = 3000;

#[inline(never)]
fn leak_some_buffers() {
    for _ in 0..LEAKED {
        std::mem::forget(black_box(vec![0x11u8; LEAKED_SIZE]));
    }
}

#[inline(never)]
fn churn() {
    for i in 0..1000 {
        black_box(vec![i as u8; 100]);
    }
}

#[test]
fn real_run_child_entry() {
    if std::env::var_os("REAL_RUN_CHILD").is_some() {
        // On a thread that then ends, so no stale copy of the addresses stays on a
        // stack the at-exit check scans.
        std::thread::spawn(|| {
            leak_some_buffers();
            churn();
        })
        .join()
        .unwrap();
    }
}

fn run_child(dir: &Path) -> (PathBuf, PathBuf) {
    let (report, profile) = (dir.join("leaks.json"), dir.join("heap.json"));
    let value = format!("report=\"{}\",profile=\"{}\",exitcode=0", report.display(), profile.display());
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "real_run_child_entry", "--nocapture", "--test-threads=1"])
        .env("REAL_RUN_CHILD", "1")
        .env("HEAPSWEEP", value)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (report, profile)
}

#[test]
fn a_real_report_and_profile_go_through_every_renderer() {
    let dir = common::scratch("real-run");
    let (report_path, profile_path) = run_child(&dir);
    let report = leak_report::read_input(&report_path).unwrap();
    let profile = leak_report::read_input(&profile_path).unwrap();
    let Input::Leaks(r) = &report else { panic!("not a leak report") };
    let Input::Profile(p) = &profile else { panic!("not a profile") };

    // The leak report holds the buffers, at their allocation site.
    let ours: Vec<_> = r.groups_with_function("leak_some_buffers");
    assert_eq!(ours.iter().map(|g| g.bytes).sum::<u64>(), (LEAKED * LEAKED_SIZE) as u64, "{:#?}", r.leaks);
    // The profile counts them as live, and the churn as allocated and freed.
    let site_of = |name: &str| {
        p.sites
            .iter()
            .filter(|s| s.stack.iter().any(|f| f.function.as_deref().is_some_and(|n| n.contains(name))))
            .collect::<Vec<_>>()
    };
    let leaked: u64 = site_of("leak_some_buffers").iter().map(|s| s.live_bytes).sum();
    assert_eq!(leaked, (LEAKED * LEAKED_SIZE) as u64);
    let churn: Vec<_> = site_of("churn");
    assert_eq!(churn.iter().map(|s| s.total_blocks).sum::<u64>(), 1000);
    assert_eq!(churn.iter().map(|s| s.live_blocks).sum::<u64>(), 0);

    for input in [&report, &profile] {
        let text = leak_report::render_text(input, &leak_report::TextOptions::default());
        assert!(text.contains("leak_some_buffers"), "{text}");
        let html = leak_report::render_html(input);
        assert!(html.contains("leak_some_buffers") && html.starts_with("<!DOCTYPE html>"));
        for metric in [Metric::Live, Metric::Total, Metric::Peak] {
            let m = Measure { weight: Weight::Bytes, metric };
            let folded = leak_report::to_folded(input, m);
            assert!(folded.lines().any(|l| l.contains("leak_some_buffers")), "{folded}");
            let svg = leak_report::to_flamegraph_svg(input, m).unwrap();
            assert!(String::from_utf8(svg).unwrap().contains("leak_some_buffers"));
        }
        let pprof = leak_report::pprof::decode_pprof(&leak_report::to_pprof(input).unwrap()).unwrap();
        let inuse_space: i64 = pprof.sample.iter().map(|s| s.value[3]).sum();
        let expected = match input {
            Input::Leaks(r) => r.summary.leaked_bytes,
            Input::Profile(p) => p.summary.live_bytes,
        };
        assert_eq!(inuse_space as u64, expected);
        let dhat: serde_json::Value = serde_json::from_str(&leak_report::to_dhat(input)).unwrap();
        assert_eq!(dhat["dhatFileVersion"], 2);
        let same = leak_report::diff(input, input).unwrap();
        assert!(same.entries.is_empty(), "a run compared with itself changed: {:?}", same.entries.len());
    }
    let opts =
        leak_report::GateOptions { baseline: None, max_leaked_bytes: 0, workdir: std::env::current_dir().unwrap() };
    let outcome = leak_report::gate(r, &opts);
    assert!(!outcome.passed && outcome.counted_bytes >= (LEAKED * LEAKED_SIZE) as u64);
    let allowed = leak_report::GateOptions { baseline: Some(r.clone()), ..opts };
    assert!(leak_report::gate(r, &allowed).passed, "a run against itself as baseline passes");
    std::fs::remove_dir_all(dir).unwrap();
}
