//! The child side of a benchmark run: one workload in one process, one line of JSON out.
//!
//! # Protocol
//! The driver (`benches/alloc.rs`) runs `alloc-<allocator> <workload> [ops] [reps]`; the
//! child runs the workload ([`crate::Workload::measure`]) and prints one line, a flat JSON
//! object that [`Measurement::parse`] reads back:
//!
//! ```text
//! {"workload":"small-pairs","min_ns":5.812,"median_ns":6.020,"ops":20000000,"reps":5,"checksum":2640000000,"peak_rss_kib":2816,"rss_after_kib":2560}
//! ```
//!
//! `peak_rss_kib` is the process's peak resident set size (`getrusage`'s `ru_maxrss`),
//! read after the workload and before any at-exit work (dhat's profile writing), so it is
//! the peak of this one workload under this one allocator; `rss_after_kib` its resident
//! set size at that moment (`/proc/self/statm`): what the allocator kept of the workload's
//! memory once the workload freed it (the `burst` workload keeps 1% of its blocks).

use crate::workloads::{workload, WORKLOADS};

/// What a child reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// The workload's name.
    pub workload: String,
    /// Nanoseconds per operation, fastest repetition.
    pub min_ns: f64,
    /// Nanoseconds per operation, median repetition.
    pub median_ns: f64,
    /// Operations per repetition.
    pub ops: u64,
    /// Repetitions.
    pub reps: u32,
    /// The workload's checksum.
    pub checksum: u64,
    /// Peak resident set size of the process, KiB.
    pub peak_rss_kib: u64,
    /// Resident set size after the workload, KiB (0 when unknown).
    pub rss_after_kib: u64,
}

impl Measurement {
    /// The one-line JSON form.
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"workload":"{}","min_ns":{:.3},"median_ns":{:.3},"ops":{},"reps":{},"checksum":{},"peak_rss_kib":{},"rss_after_kib":{}}}"#,
            self.workload,
            self.min_ns,
            self.median_ns,
            self.ops,
            self.reps,
            self.checksum,
            self.peak_rss_kib,
            self.rss_after_kib
        )
    }

    /// Reads the form [`Measurement::to_json`] writes: a flat object whose only string
    /// value, the workload name, has no escapes or commas.
    pub fn parse(line: &str) -> Result<Measurement, String> {
        let body = line.trim().strip_prefix('{').and_then(|s| s.strip_suffix('}')).ok_or("not a JSON object")?;
        let fields: Vec<(&str, &str)> = body
            .split(',')
            .map(|kv| kv.split_once(':').map(|(k, v)| (k.trim().trim_matches('"'), v.trim())))
            .collect::<Option<_>>()
            .ok_or("a field without ':'")?;
        let get = |key: &str| fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v).ok_or(format!("no {key:?}"));
        let num = |key: &str| get(key).and_then(|v| v.parse::<f64>().map_err(|e| format!("{key}: {e}")));
        let int = |key: &str| get(key).and_then(|v| v.parse::<u64>().map_err(|e| format!("{key}: {e}")));
        Ok(Measurement {
            workload: get("workload")?.trim_matches('"').to_string(),
            min_ns: num("min_ns")?,
            median_ns: num("median_ns")?,
            ops: int("ops")?,
            reps: u32::try_from(int("reps")?).map_err(|e| e.to_string())?,
            checksum: int("checksum")?,
            peak_rss_kib: int("peak_rss_kib")?,
            // Optional: children built before it was added do not print it.
            rss_after_kib: if get("rss_after_kib").is_ok() { int("rss_after_kib")? } else { 0 },
        })
    }
}

/// Resident set size of this process now, in KiB (`/proc/self/statm`); 0 when unknown.
pub fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no memory preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64;
    pages * page / 1024
}

/// The start of the line the HeapSweep child writes last on stderr: the leak sweeps that
/// ran, per generation, as `[g0, g1, g2]`.
pub const SWEEPS_LINE: &str = "heapsweep leak sweeps per generation: ";

/// The start of the HeapSweep child's stderr line that counts the blocks its leak sweeps
/// reported (the workloads leak nothing: it must say 0).
pub const REPORTED_LINE: &str = "heapsweep blocks reported by leak sweeps: ";

/// The count after [`REPORTED_LINE`] in a HeapSweep child's stderr.
pub fn parse_reported(stderr: &str) -> Option<u64> {
    stderr.lines().rev().find_map(|l| l.strip_prefix(REPORTED_LINE)).and_then(|n| n.trim().parse().ok())
}

/// The sweeps per generation from a HeapSweep child's stderr (the [`SWEEPS_LINE`]).
pub fn parse_sweeps(stderr: &str) -> Option<[u64; 3]> {
    let line = stderr.lines().rev().find_map(|l| l.strip_prefix(SWEEPS_LINE))?;
    let inner = line.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut counts = inner.split(',').map(|n| n.trim().parse::<u64>().ok());
    let out = [counts.next()??, counts.next()??, counts.next()??];
    counts.next().is_none().then_some(out)
}

/// Peak resident set size of this process so far, in KiB.
pub fn peak_rss_kib() -> u64 {
    // SAFETY: `rusage` is plain old data; all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage` for the call to fill.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0;
    }
    let max = usage.ru_maxrss.max(0) as u64;
    // Linux reports KiB, macOS bytes.
    if cfg!(target_os = "macos") {
        max / 1024
    } else {
        max
    }
}

/// The `main` of each per-allocator binary: `<bin> <workload> [ops] [reps]`. `ops`
/// defaults to the workload's full-run count, `reps` to 5.
pub fn child_main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
    let Some(w) = args.first().and_then(|name| workload(name)) else {
        eprintln!("usage: <bin> <workload> [ops] [reps]; workloads: {}", names.join(", "));
        std::process::exit(2);
    };
    let number = |i: usize, default: u64| match args.get(i).map(|s| s.parse::<u64>()) {
        None => default,
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            eprintln!("argument {i} ({:?}): {e}", args[i]);
            std::process::exit(2);
        }
    };
    let (ops, reps) = (number(1, w.full_ops), number(2, 5));
    let o = w.measure(ops, u32::try_from(reps).unwrap_or(u32::MAX));
    let m = Measurement {
        workload: w.name.to_string(),
        min_ns: o.min_ns,
        median_ns: o.median_ns,
        ops: o.ops,
        reps: o.reps,
        checksum: o.checksum,
        peak_rss_kib: peak_rss_kib(),
        rss_after_kib: rss_kib(),
    };
    println!("{}", m.to_json());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_reads_back() {
        let m = Measurement {
            workload: "larson".into(),
            min_ns: 21.125,
            median_ns: 22.5,
            ops: 4_000_000,
            reps: 5,
            checksum: u64::MAX,
            peak_rss_kib: 17_408,
            rss_after_kib: 9_000,
        };
        assert_eq!(Measurement::parse(&m.to_json()), Ok(m));
    }

    #[test]
    fn bad_lines_are_errors() {
        assert!(Measurement::parse("small-pairs 5.0 100").is_err());
        assert!(Measurement::parse(r#"{"workload":"x","min_ns":1}"#).unwrap_err().contains("median_ns"));
        let bad = r#"{"workload":"x","min_ns":1,"median_ns":1,"ops":-1,"reps":1,"checksum":1,"peak_rss_kib":1}"#;
        assert!(Measurement::parse(bad).unwrap_err().starts_with("ops"));
    }

    #[test]
    fn the_sweeps_line_reads_back() {
        let err = format!("a warning\n{SWEEPS_LINE}{:?}\n", [12u64, 0, 3]);
        assert_eq!(parse_sweeps(&err), Some([12, 0, 3]));
        assert_eq!(parse_sweeps("nothing"), None);
        assert_eq!(parse_sweeps(&format!("{SWEEPS_LINE}[1, 2]")), None);
        assert_eq!(parse_sweeps(&format!("{SWEEPS_LINE}[1, 2, x]")), None);
        assert_eq!(parse_reported(&format!("{REPORTED_LINE}7\n")), Some(7));
        assert_eq!(parse_reported("nothing"), None);
    }

    #[test]
    fn peak_rss_grows_with_touched_memory() {
        let before = peak_rss_kib();
        assert!(before > 0);
        let v = std::hint::black_box(vec![1u8; 64 << 20]);
        assert!(peak_rss_kib() >= before.max(64 << 10), "{before} KiB, then {} KiB", peak_rss_kib());
        drop(v);
    }
}
