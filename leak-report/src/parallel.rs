//! Parsing large leak reports on every core.
//!
//! # Why
//! A report of 100,000 leak groups is about 200 MB of JSON; parsing it into the model's
//! owned strings is most of what `leak-report html` spends on it. The groups are
//! independent, so: one pass finds each group's text without building anything (serde's
//! `RawValue`, borrowed), then threads parse slices of the groups at once.
//!
//! # Errors
//! Any error sends the caller back to the one-thread parse of the whole text
//! ([`parse_report`](crate::input::parse_report)), whose messages carry line and column in the file: this
//! path only ever returns a report, never an error of its own.

use heapsweep_format::report::{CheckStatus, LeakCycle, LeakGroup, LeakReport, Module, Summary, SuppressionUse};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Inputs smaller than this are parsed on one thread: threads cost more than they save.
pub const MIN_PARALLEL_BYTES: usize = 4 << 20;

/// The report with its groups left as text.
#[derive(Deserialize)]
struct Skeleton<'a> {
    format: String,
    version: u32,
    program: String,
    pid: u32,
    #[serde(default)]
    status: CheckStatus,
    summary: Summary,
    #[serde(borrow)]
    leaks: Vec<&'a RawValue>,
    #[serde(default)]
    suppressions: Vec<SuppressionUse>,
    #[serde(default)]
    modules: Vec<Module>,
    #[serde(default)]
    cycles: Vec<LeakCycle>,
}

/// The report parsed with `threads` threads, or `None` when anything is wrong with it
/// (then the caller's one-thread parse reports what).
pub fn parse_leak_report(text: &str, threads: usize) -> Option<LeakReport> {
    let skeleton: Skeleton = serde_json::from_str(text).ok()?;
    if skeleton.format != LeakReport::FORMAT || skeleton.version != LeakReport::VERSION {
        return None;
    }
    let threads = threads.clamp(1, 16);
    let chunk = skeleton.leaks.len().div_ceil(threads).max(1);
    let parsed: Vec<Option<Vec<LeakGroup>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = skeleton
            .leaks
            .chunks(chunk)
            .map(|raws| scope.spawn(move || raws.iter().map(|raw| serde_json::from_str(raw.get()).ok()).collect()))
            .collect();
        workers.into_iter().map(|w| w.join().ok().flatten()).collect()
    });
    let mut leaks = Vec::with_capacity(skeleton.leaks.len());
    for part in parsed {
        leaks.extend(part?);
    }
    Some(LeakReport {
        format: skeleton.format,
        version: skeleton.version,
        program: skeleton.program,
        pid: skeleton.pid,
        status: skeleton.status,
        summary: skeleton.summary,
        leaks,
        suppressions: skeleton.suppressions,
        modules: skeleton.modules,
        cycles: skeleton.cycles,
    })
}

/// Threads to parse with: the cores this process may use.
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../tests/fixtures/leaks.json");

    #[test]
    fn the_parallel_parse_equals_the_one_thread_parse() {
        let one = crate::input::parse_report(FIXTURE).unwrap();
        for threads in [1, 2, 3, 7] {
            assert_eq!(parse_leak_report(FIXTURE, threads).as_ref(), Some(&one), "{threads} threads");
        }
        let mut big = crate::synthetic::leak_report(2_000, 7);
        let text = big.to_json();
        assert_eq!(parse_leak_report(&text, 2), Some(big.clone()));
        let failure = heapsweep_format::report::CheckFailure::new(
            heapsweep_format::report::FailureKind::ThreadsNotListed,
            "cannot open /proc/self/task: ENOENT",
        );
        big.status = CheckStatus::Failed(failure);
        assert_eq!(parse_leak_report(&big.to_json(), 2), Some(big), "the status is read on this path too");
    }

    #[test]
    fn large_inputs_take_the_parallel_path_and_errors_still_name_line_and_column() {
        let big = crate::synthetic::leak_report(3_000, 11);
        let text = big.to_json();
        assert!(text.len() >= MIN_PARALLEL_BYTES, "{} bytes", text.len());
        assert_eq!(crate::input::parse_input(&text), Ok(crate::input::Input::Leaks(big)));
        let broken = text.replacen("\"bytes\": ", "\"bytes\": -", 1);
        let e = crate::input::parse_input(&broken).unwrap_err();
        assert!(e.contains("line") && e.contains("column"), "{e}");
    }

    #[test]
    fn anything_wrong_gives_none_for_the_one_thread_parse_to_explain() {
        let one = crate::input::parse_report(FIXTURE).unwrap();
        let bad_group = FIXTURE.replacen("\"kind\": \"direct\"", "\"kind\": \"sideways\"", 1);
        assert_ne!(bad_group, FIXTURE);
        assert_eq!(parse_leak_report(&bad_group, 2), None);
        assert_eq!(parse_leak_report(&FIXTURE[..FIXTURE.len() / 2], 2), None);
        let v2 = FIXTURE.replacen("\"version\": 1", "\"version\": 2", 1);
        assert_eq!(parse_leak_report(&v2, 2), None);
        let odd_status = FIXTURE.replacen("\"pid\": 4242,", "\"pid\": 4242, \"status\": {\"state\": \"odd\"},", 1);
        assert_ne!(odd_status, FIXTURE);
        assert_eq!(parse_leak_report(&odd_status, 2), None);
        assert!(parse_leak_report(FIXTURE, 2).is_some_and(|r| r == one));
    }
}
