//! The allocator benchmark driver: every workload under every allocator, each pair in a
//! process of its own, and the table of ns/op, ratio to mimalloc in the same run and peak
//! RSS, printed and written as Markdown to `<target dir>/bench-alloc.md`.
//!
//! ```sh
//! cargo bench -p benches --bench alloc                 # everything (about 100 s on 2 cores)
//! cargo bench -p benches --bench alloc -- --quick      # 10x fewer operations
//! cargo bench -p benches --bench alloc -- --workload larson --only heapsweep
//! ```
//!
//! Cargo builds the package's binaries for its benches; `CARGO_BIN_EXE_<name>` gives their
//! paths. This driver runs under the system allocator; only the children are measured.

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use benches::{Measurement, Workload, WORKLOADS};

/// One column of the comparison: a binary, and the environment it runs with.
struct Allocator {
    /// The name `--only` matches.
    name: &'static str,
    /// The name in the table.
    label: &'static str,
    exe: &'static str,
    /// The `HEAPSWEEP` options, for the HeapSweep binary.
    heapsweep: Option<&'static str>,
    /// Fraction of the operations this allocator runs: dhat is 10-200x slower, and a rate
    /// per operation does not need the full count.
    ops_factor: f64,
}

/// The ratios are to this allocator; it runs whatever `--only` says.
const BASELINE: &str = "mimalloc";

const ALLOCATORS: &[Allocator] = &[
    Allocator {
        name: "system",
        label: "system (glibc)",
        exe: env!("CARGO_BIN_EXE_alloc-system"),
        heapsweep: None,
        ops_factor: 1.0,
    },
    Allocator {
        name: "mimalloc",
        label: "mimalloc",
        exe: env!("CARGO_BIN_EXE_alloc-mimalloc"),
        heapsweep: None,
        ops_factor: 1.0,
    },
    Allocator {
        name: "jemalloc",
        label: "jemalloc",
        exe: env!("CARGO_BIN_EXE_alloc-jemalloc"),
        heapsweep: None,
        ops_factor: 1.0,
    },
    Allocator {
        name: "dhat",
        label: "dhat (heap)",
        exe: env!("CARGO_BIN_EXE_alloc-dhat"),
        heapsweep: None,
        ops_factor: 0.1,
    },
    Allocator {
        name: "heapsweep-nostacks",
        label: "heapsweep stack_depth=0",
        exe: env!("CARGO_BIN_EXE_alloc-heapsweep"),
        heapsweep: Some("stack_depth=0,check_at_exit=0"),
        ops_factor: 1.0,
    },
    Allocator {
        name: "heapsweep",
        label: "heapsweep (32-frame stacks)",
        exe: env!("CARGO_BIN_EXE_alloc-heapsweep"),
        heapsweep: Some("check_at_exit=0"),
        ops_factor: 1.0,
    },
    Allocator {
        name: "heapsweep-sweeps",
        label: "heapsweep + sweep /100 ms",
        exe: env!("CARGO_BIN_EXE_alloc-heapsweep"),
        heapsweep: Some(SWEEP_OPTIONS),
        ops_factor: 1.0,
    },
    Allocator {
        name: "heapsweep-profile",
        label: "heapsweep + heap profile",
        exe: env!("CARGO_BIN_EXE_alloc-heapsweep"),
        heapsweep: Some(PROFILE_OPTIONS),
        ops_factor: 1.0,
    },
];

/// The profiled column writes its profile at exit (untimed) to this path; the driver
/// removes it when the child ends.
const PROFILE_OPTIONS: &str = "check_at_exit=0,profile=/tmp/heapsweep-bench-profile-%p.json";

/// The sweeping column: the 32-frame column's options and a generation-0 leak sweep by
/// the sweeper thread every 100 ms (when the heap grew meanwhile: not in workloads that
/// free all they allocate at once). The child says how many sweeps ran and how many
/// blocks they reported, which must be none (the workloads leak nothing).
const SWEEP_OPTIONS: &str = "check_at_exit=0,sweep_interval_ms=100";

/// The profile a profiled child with this pid wrote.
fn profile_file(pid: u32) -> String {
    format!("/tmp/heapsweep-bench-profile-{pid}.json")
}

const USAGE: &str = "\
usage: cargo bench -p benches --bench alloc [-- OPTIONS]
  --quick            10x fewer operations (a smoke run)
  --only A[,B...]    only these allocators (a name or its prefix; mimalloc always runs)
  --workload W[,..]  only these workloads
  --reps N           repetitions inside each process (default 5; the fastest counts)
  --timeout SECS     kill a child running longer (default 600)
  --against EXE      another build of the alloc-heapsweep child (an earlier commit's, say):
                     each HeapSweep column runs again with it, right after, and the table
                     gets a column `this/EXE`: before/after in one run";

/// The command line.
struct Options {
    scale: f64,
    reps: u32,
    allocators: Vec<&'static Allocator>,
    workloads: Vec<&'static Workload>,
    timeout: Duration,
    /// The other build of the HeapSweep child, with `--against`.
    against: Option<&'static str>,
    args: String,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        scale: 1.0,
        reps: 5,
        allocators: ALLOCATORS.iter().collect(),
        workloads: WORKLOADS.iter().collect(),
        timeout: Duration::from_secs(600),
        against: None,
        args: String::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--bench" => continue, // cargo bench passes it
            "--quick" => o.scale = 0.1,
            "--only" => o.allocators = select_allocators(value()?)?,
            "--workload" => o.workloads = select_workloads(value()?)?,
            "--reps" => o.reps = value()?.parse().map_err(|e| format!("--reps: {e}"))?,
            "--timeout" => o.timeout = Duration::from_secs(value()?.parse().map_err(|e| format!("--timeout: {e}"))?),
            "--against" => o.against = Some(String::leak(value()?.clone())),
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown argument {a:?}")),
        }
    }
    o.args = args.iter().filter(|a| *a != "--bench").cloned().collect::<Vec<_>>().join(" ");
    if let Some(exe) = o.against {
        if !Path::new(exe).is_file() {
            return Err(format!("--against: no file {exe}"));
        }
        o.allocators = with_other_build(&o.allocators, exe);
    }
    Ok(o)
}

/// Suffix of the name of a column that runs the `--against` build.
const OTHER_BUILD: &str = "@against";

/// Each HeapSweep column followed by the same column run with the other build `exe`.
fn with_other_build(allocators: &[&'static Allocator], exe: &'static str) -> Vec<&'static Allocator> {
    let mut out = Vec::new();
    for &a in allocators {
        out.push(a);
        if a.heapsweep.is_some() {
            out.push(&*Box::leak(Box::new(Allocator {
                name: String::leak(format!("{}{OTHER_BUILD}", a.name)),
                label: String::leak(format!("{} [against]", a.label)),
                exe,
                heapsweep: a.heapsweep,
                ops_factor: a.ops_factor,
            })));
        }
    }
    out
}

/// This build's time over the `--against` build's, for a HeapSweep row that has one.
fn ratio_to_other_build(rows: &[Row], r: &Row) -> String {
    let other = format!("{}{OTHER_BUILD}", r.allocator.name);
    let base = rows.iter().find(|b| b.workload.name == r.workload.name && b.allocator.name == other);
    match (base.map(|b| &b.result), &r.result) {
        (Some(Ok(b)), Ok(m)) => format!("{:.2}x", m.min_ns / b.min_ns),
        _ => "".to_string(),
    }
}

fn select_allocators(list: &str) -> Result<Vec<&'static Allocator>, String> {
    let wanted: Vec<&str> = list.split(',').collect();
    if let Some(bad) = wanted.iter().find(|w| !ALLOCATORS.iter().any(|a| a.name.starts_with(**w))) {
        let names: Vec<&str> = ALLOCATORS.iter().map(|a| a.name).collect();
        return Err(format!("no allocator {bad:?}; allocators: {}", names.join(", ")));
    }
    Ok(ALLOCATORS.iter().filter(|a| a.name == BASELINE || wanted.iter().any(|w| a.name.starts_with(w))).collect())
}

fn select_workloads(list: &str) -> Result<Vec<&'static Workload>, String> {
    let wanted: Vec<&str> = list.split(',').collect();
    if let Some(bad) = wanted.iter().find(|w| benches::workload(w).is_none()) {
        let names: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
        return Err(format!("no workload {bad:?}; workloads: {}", names.join(", ")));
    }
    Ok(WORKLOADS.iter().filter(|w| wanted.contains(&w.name)).collect())
}

/// Operations for one pair.
fn ops_for(o: &Options, w: &Workload, a: &Allocator) -> u64 {
    ((w.full_ops as f64 * o.scale * a.ops_factor) as u64).max(1)
}

/// What one child run gave: its measurement, and for a HeapSweep child the leak sweeps
/// that ran per generation.
type ChildResult = Result<(Measurement, Option<[u64; 3]>), String>;

/// Runs one (allocator, workload) pair in a child process.
fn run_child(o: &Options, a: &Allocator, w: &Workload) -> ChildResult {
    let mut cmd = Command::new(a.exe);
    cmd.arg(w.name).arg(ops_for(o, w, a).to_string()).arg(o.reps.to_string());
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    match a.heapsweep {
        Some(v) => cmd.env("HEAPSWEEP", v),
        None => cmd.env_remove("HEAPSWEEP"),
    };
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {}: {e}", a.exe))?;
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + o.timeout;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("killed after {} s", o.timeout.as_secs()));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    if !status.success() {
        return Err(format!("{status}: {}", last_lines(&err, 5)));
    }
    if a.heapsweep == Some(PROFILE_OPTIONS) {
        // The profile proves the column ran with profiling on.
        let file = profile_file(child.id());
        std::fs::remove_file(&file).map_err(|e| format!("no heap profile at {file}: {e}"))?;
    }
    let sweeps = benches::parse_sweeps(&err);
    // (An `--against` build may be older than the lines.)
    if let Some(n) = benches::parse_reported(&err).filter(|&n| n > 0) {
        return Err(format!("the leak sweeps reported {n} blocks of a workload that leaks nothing"));
    }
    let line = out.lines().last().unwrap_or("");
    let m = Measurement::parse(line).map_err(|e| format!("bad output {line:?}: {e}"))?;
    Ok((m, sweeps))
}

/// Reads a child's pipe to the end on a thread of its own (so a full pipe never blocks
/// the child while the driver waits for it).
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut s);
        }
        s
    })
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// The results of one workload, in allocator order.
struct Row {
    workload: &'static Workload,
    allocator: &'static Allocator,
    result: Result<Measurement, String>,
}

fn ratio(rows: &[Row], r: &Row) -> String {
    let base = rows.iter().find(|b| b.workload.name == r.workload.name && b.allocator.name == BASELINE);
    match (base.map(|b| &b.result), &r.result) {
        (Some(Ok(b)), Ok(m)) => format!("{:.2}x", m.min_ns / b.min_ns),
        _ => "-".to_string(),
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn print_table(rows: &[Row]) {
    println!(
        "\n{:<20} {:<28} {:>10} {:>10} {:>8} {:>10} {:>10} {:>11}",
        "workload", "allocator", "ns/op", "median", "ratio", "peak MiB", "after MiB", "ops"
    );
    for r in rows {
        let (w, a) = (r.workload.name, r.allocator.label);
        match &r.result {
            Ok(m) => println!(
                "{w:<20} {a:<28} {:>10.2} {:>10.2} {:>8} {:>10.1} {:>10.1} {:>11}",
                m.min_ns,
                m.median_ns,
                ratio(rows, r),
                mib(m.peak_rss_kib),
                mib(m.rss_after_kib),
                m.ops
            ),
            Err(e) => println!("{w:<20} {a:<28} FAILED: {e}"),
        }
    }
}

fn markdown(o: &Options, rows: &[Row]) -> String {
    let mut md = String::new();
    let cmd = if o.args.is_empty() { String::new() } else { format!(" -- {}", o.args) };
    let _ = writeln!(md, "Run of {} (`cargo bench -p benches --bench alloc{cmd}`{}):\n", today(), commit());
    let _ = writeln!(md, "Machine: {}\n", machine());
    let (other_head, other_rule) = if o.against.is_some() { (" this/against |", " ---: |") } else { ("", "") };
    let _ = writeln!(
        md,
        "| workload | allocator | ns/op | ratio to mimalloc | peak RSS (MiB) | RSS after (MiB) |{other_head}"
    );
    let _ = writeln!(md, "| --- | --- | ---: | ---: | ---: | ---: |{other_rule}");
    for r in rows {
        let (w, a) = (r.workload.name, r.allocator.label);
        let other = if o.against.is_some() { format!(" {} |", ratio_to_other_build(rows, r)) } else { String::new() };
        let _ = match &r.result {
            Ok(m) => {
                let (peak, after) = (mib(m.peak_rss_kib), mib(m.rss_after_kib));
                writeln!(md, "| {w} | {a} | {:.2} | {} | {peak:.1} | {after:.1} |{other}", m.min_ns, ratio(rows, r))
            }
            Err(e) => writeln!(md, "| {w} | {a} | failed: {} | - | - | - |{other}", e.replace('|', "/")),
        };
    }
    if let Some(exe) = o.against {
        let _ = writeln!(
            md,
            "
`[against]` rows ran the child built elsewhere: `{exe}`."
        );
    }
    let ops: Vec<String> = o
        .workloads
        .iter()
        .map(|w| format!("{} {} {}", w.name, thousands((w.full_ops as f64 * o.scale) as u64), w.counts))
        .collect();
    let _ = write!(
        md,
        "\nns/op is the fastest of {} repetitions inside each process (one process per row). Operations per \
         repetition: {}",
        o.reps,
        ops.join(", ")
    );
    if o.allocators.iter().any(|a| a.ops_factor < 1.0) {
        let _ = write!(md, "; dhat runs a tenth of them (at least one whole structure or two larson rounds)");
    }
    let _ = writeln!(md, ".");
    md
}

/// `n` with thousands separators: 20,000,000.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// CPU model, cores, kernel and compiler.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, v)| v.trim());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {}, {}", kernel.trim(), command_line("rustc", &["--version"]))
}

fn commit() -> String {
    let c = command_line("git", &["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short", "HEAD"]);
    if c.is_empty() {
        c
    } else {
        format!(", commit {c}")
    }
}

/// The first line a command prints, or "" if it fails.
fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_string())
        .unwrap_or_default()
}

/// Today's date (UTC) as YYYY-MM-DD, from the days since 1970 (Howard Hinnant's
/// `civil_from_days`).
fn today() -> String {
    let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `<target dir>/bench-alloc.md`: the binaries live in `<target dir>/<profile>/`.
fn markdown_path() -> PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_alloc-system"));
    exe.parent().and_then(Path::parent).unwrap_or(Path::new("target")).join("bench-alloc.md")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(if e.is_empty() { 0 } else { 2 });
        }
    };
    let started = Instant::now();
    let mut rows = Vec::new();
    for &w in &o.workloads {
        for &a in &o.allocators {
            let result = run_child(&o, a, w);
            match &result {
                Ok((m, sweeps)) => eprintln!(
                    "{:<20} {:<28} {:>9.2} ns/op  {:>7.1} MiB{}",
                    w.name,
                    a.label,
                    m.min_ns,
                    mib(m.peak_rss_kib),
                    match sweeps {
                        Some(s) if a.heapsweep == Some(SWEEP_OPTIONS) => format!("  {} sweeps", s[0]),
                        _ => String::new(),
                    }
                ),
                Err(e) => eprintln!("{:<20} {:<28} FAILED: {e}", w.name, a.label),
            }
            rows.push(Row { workload: w, allocator: a, result: result.map(|(m, _)| m) });
        }
    }
    print_table(&rows);
    let md = markdown(&o, &rows);
    let path = markdown_path();
    match std::fs::write(&path, &md) {
        Ok(()) => println!("\nMarkdown table: {} ({:.0} s in all)", path.display(), started.elapsed().as_secs_f64()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
    if rows.iter().any(|r| r.result.is_err()) {
        std::process::exit(1);
    }
}
