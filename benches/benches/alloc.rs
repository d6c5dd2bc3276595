//! Runs every workload under every allocator, one process per pair, and prints ns/op, the
//! ratio to mimalloc in the same run, and peak RSS. Also writes the table as Markdown to
//! `target/bench-alloc.md`.
//!
//! ```sh
//! cargo bench -p benches --bench alloc                 # full run (a few minutes)
//! cargo bench -p benches --bench alloc -- --quick      # 10x fewer operations
//! cargo bench -p benches --bench alloc -- --workload larson --only heapsweep
//! ```

use std::fmt::Write as _;
use std::process::Command;

struct Allocator {
    label: &'static str,
    exe: &'static str,
    heapsweep: Option<&'static str>,
}

const ALLOCATORS: &[Allocator] = &[
    Allocator { label: "system (glibc)", exe: env!("CARGO_BIN_EXE_alloc-system"), heapsweep: None },
    Allocator { label: "mimalloc", exe: env!("CARGO_BIN_EXE_alloc-mimalloc"), heapsweep: None },
    Allocator { label: "jemalloc", exe: env!("CARGO_BIN_EXE_alloc-jemalloc"), heapsweep: None },
    Allocator { label: "dhat (heap)", exe: env!("CARGO_BIN_EXE_alloc-dhat"), heapsweep: None },
    Allocator {
        label: "heapsweep stack_depth=0",
        exe: env!("CARGO_BIN_EXE_alloc-heapsweep"),
        heapsweep: Some("stack_depth=0,check_at_exit=0"),
    },
    Allocator {
        label: "heapsweep (32-frame stacks)",
        exe: env!("CARGO_BIN_EXE_alloc-heapsweep"),
        heapsweep: Some("check_at_exit=0"),
    },
];

struct Row {
    ns: f64,
    rss_kib: u64,
}

fn run(a: &Allocator, workload: &str, scale: f64) -> Option<Row> {
    let mut cmd = Command::new(a.exe);
    cmd.arg(workload).arg(scale.to_string());
    if let Some(v) = a.heapsweep {
        cmd.env("HEAPSWEEP", v);
    }
    let out = cmd.output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    if !out.status.success() || fields.len() < 4 {
        eprintln!("{} {workload}: failed ({}): {}", a.label, out.status, String::from_utf8_lossy(&out.stderr));
        return None;
    }
    Some(Row { ns: fields[1].parse().ok()?, rss_kib: fields[3].parse().ok()? })
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {}, {rustc}", kernel.trim())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let only = value("--only");
    let only_workload = value("--workload");
    let scale = if quick { 0.1 } else { 1.0 };
    let mut md = String::new();
    let _ = writeln!(md, "Machine: {}\n", machine());
    let _ = writeln!(
        md,
        "| workload | allocator | ns/op | ratio to mimalloc | peak RSS (MiB) |\n| --- | --- | ---: | ---: | ---: |"
    );
    for w in benches::WORKLOADS.iter().filter(|w| only_workload.as_deref().is_none_or(|o| o == **w)) {
        let mut rows = Vec::new();
        for a in ALLOCATORS {
            let wanted = only.as_deref().is_none_or(|o| a.label.contains(o) || a.label == "mimalloc");
            if wanted {
                rows.push((a.label, run(a, w, scale)));
            }
        }
        let base = rows.iter().find(|(l, _)| *l == "mimalloc").and_then(|(_, r)| r.as_ref().map(|r| r.ns));
        for (label, r) in &rows {
            let Some(r) = r else { continue };
            let ratio = base.map_or("-".to_string(), |b| format!("{:.2}x", r.ns / b));
            let rss = r.rss_kib as f64 / 1024.0;
            println!("{w:<20} {label:<28} {:>9.2} ns/op {ratio:>8} {rss:>9.1} MiB", r.ns);
            let _ = writeln!(md, "| {w} | {label} | {:.2} | {ratio} | {rss:.1} |", r.ns);
        }
    }
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-alloc.md");
    if std::fs::write(&target, &md).is_ok() {
        println!("\nMarkdown table: {}", target.display());
    }
}
