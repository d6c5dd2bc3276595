//! The CI gate behind `leak-report check`: does a leak report hold more leaks than allowed?
//! ("Check" alone, in this crate, is the leak check that wrote the report.)
//!
//! # What it owns
//! [`gate`], which counts the leaked bytes that matter (all of them, or with a baseline
//! only what is new or grew relative to it, matched as [`crate::diff()`] does) against
//! [`GateOptions::max_leaked_bytes`], and lists each such group as a [`Finding`] anchored
//! at the innermost frame of the user's own code ([`user_frame`]). [`formats`] renders the
//! outcome as text, GitHub annotations, JUnit XML or SARIF 2.1.0.
//!
//! A report whose leak check could not run to the end ([`LeakReport::failure`]) fails the
//! gate whatever the limit and the baseline say: its list of leaks may be incomplete, so
//! "no leaks over the limit" would be a guess. Its findings are still listed, as what the
//! check found before it failed.

pub mod formats;

use crate::diff::{diff, DiffStatus};
use crate::input::Input;
use heapsweep_format::report::{CheckFailure, Frame, LeakKind, LeakReport};
use std::path::{Path, PathBuf};

pub use formats::{render_gate, GateFormat};

/// What is allowed.
#[derive(Clone, Debug, Default)]
pub struct GateOptions {
    /// Only leaks new or grown relative to this report count.
    pub baseline: Option<LeakReport>,
    /// Leaked bytes allowed (default 0: any leak fails).
    pub max_leaked_bytes: u64,
    /// The user's working directory: files under it are the user's code.
    pub workdir: PathBuf,
}

/// Why a group counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindingStatus {
    /// A leak (no baseline given).
    Leak,
    /// Not in the baseline.
    New,
    /// More than in the baseline.
    Grew,
}

/// A leak group that counts against the limit.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// Why it counts.
    pub status: FindingStatus,
    /// Direct or indirect.
    pub kind: LeakKind,
    /// On a cycle.
    pub cyclic: bool,
    /// Leaked bytes now.
    pub bytes: u64,
    /// Leaked blocks now.
    pub blocks: u64,
    /// Bytes that count: all of them, or the growth over the baseline.
    pub counted_bytes: u64,
    /// The allocation stack, innermost first.
    pub stack: Vec<Frame>,
    /// The innermost frame in the user's code, if any: (relative file, line, function).
    pub anchor: Option<Anchor>,
}

/// Where a finding points: a frame in the user's own code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// File, relative to the working directory.
    pub file: String,
    /// Line (1 when unknown).
    pub line: u32,
    /// Function, when known.
    pub function: Option<String>,
}

/// The verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct GateOutcome {
    /// Counted bytes within the limit, and the leak check ran to the end.
    pub passed: bool,
    /// Why the report's leak check could not run to the end, when it could not: the gate
    /// fails, and the findings are only what was found before the failure.
    pub check_failure: Option<CheckFailure>,
    /// Bytes that count.
    pub counted_bytes: u64,
    /// The limit.
    pub max_leaked_bytes: u64,
    /// Whether a baseline was used.
    pub with_baseline: bool,
    /// The groups that count, most counted bytes first.
    pub findings: Vec<Finding>,
    /// The program the report is about.
    pub program: String,
}

/// Judges `report` against `opts`.
pub fn gate(report: &LeakReport, opts: &GateOptions) -> GateOutcome {
    let mut findings: Vec<Finding> = match &opts.baseline {
        None => report
            .leaks
            .iter()
            .map(|g| finding(FindingStatus::Leak, (g.kind, g.cyclic, g.bytes, g.blocks), g.bytes, &g.stack, opts))
            .collect(),
        Some(base) => {
            let d = diff(&Input::Leaks(base.clone()), &Input::Leaks(report.clone()));
            d.map(|d| d.entries)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| {
                    let status = match e.status {
                        DiffStatus::New => FindingStatus::New,
                        DiffStatus::Grew => FindingStatus::Grew,
                        DiffStatus::Shrank | DiffStatus::Gone => return None,
                    };
                    let kind = e.kind.unwrap_or(LeakKind::Direct);
                    Some(finding(status, (kind, e.cyclic, e.new_bytes, e.new_blocks), e.growth_bytes(), &e.stack, opts))
                })
                .collect()
        }
    };
    findings.sort_by_key(|f| std::cmp::Reverse(f.counted_bytes));
    let counted_bytes = findings.iter().map(|f| f.counted_bytes).sum();
    let check_failure = report.failure().cloned();
    GateOutcome {
        passed: counted_bytes <= opts.max_leaked_bytes && check_failure.is_none(),
        check_failure,
        counted_bytes,
        max_leaked_bytes: opts.max_leaked_bytes,
        with_baseline: opts.baseline.is_some(),
        findings,
        program: report.program.clone(),
    }
}

impl GateOutcome {
    /// Whether the counted bytes exceed the limit (the leaks alone would fail the gate).
    pub fn over_limit(&self) -> bool {
        self.counted_bytes > self.max_leaked_bytes
    }
}

/// A finding for a group's counts; `counted_bytes` is what counts against the limit.
fn finding(
    status: FindingStatus,
    group: (LeakKind, bool, u64, u64),
    counted_bytes: u64,
    stack: &[Frame],
    opts: &GateOptions,
) -> Finding {
    let (kind, cyclic, bytes, blocks) = group;
    let anchor = user_frame(stack, &opts.workdir);
    Finding { status, kind, cyclic, bytes, blocks, counted_bytes, stack: stack.to_vec(), anchor }
}

/// The innermost frame whose file is the user's code: not the standard library (`/rustc/`,
/// `library/std|core|alloc/`, a `rustlib` path), not a dependency (`~/.cargo/registry`,
/// `~/.cargo/git`), and not an absolute path outside `workdir`.
pub fn user_frame(stack: &[Frame], workdir: &Path) -> Option<Anchor> {
    stack.iter().find_map(|f| {
        let file = user_file(f.file.as_deref()?, workdir)?;
        Some(Anchor { file, line: f.line.unwrap_or(1).max(1), function: f.function.clone() })
    })
}

/// Whether `file` is the standard library's or a dependency's source.
pub fn is_library_file(file: &str) -> bool {
    const LIBRARY: [&str; 3] = ["library/std/", "library/core/", "library/alloc/"];
    file.starts_with("/rustc/")
        || file.contains("/.cargo/registry/")
        || file.contains("/.cargo/git/")
        || file.contains("/rustlib/")
        || LIBRARY.iter().any(|l| file.starts_with(l) || file.contains(&format!("/{l}")))
}

/// `file` relative to `workdir` when it is the user's code.
fn user_file(file: &str, workdir: &Path) -> Option<String> {
    if is_library_file(file) {
        return None;
    }
    let path = Path::new(file);
    if path.is_absolute() {
        let rel = path.strip_prefix(workdir).ok()?;
        return Some(rel.to_string_lossy().into_owned());
    }
    Some(file.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, file: &str, line: u32) -> Frame {
        Frame {
            ip: "0x1".into(),
            function: Some(function.into()),
            file: Some(file.into()),
            line: Some(line),
            module: None,
        }
    }

    #[test]
    fn the_anchor_is_the_innermost_frame_of_the_users_code() {
        let stack = vec![
            frame("alloc::vec::Vec<T>::push", "/rustc/abc/library/alloc/src/vec/mod.rs", 1),
            frame("hashbrown::raw::insert", "/home/u/.cargo/registry/src/x/hashbrown/src/raw.rs", 2),
            frame("std::thread::spawn", "library/std/src/thread/mod.rs", 3),
            frame("other::thing", "/usr/src/other/lib.rs", 4),
            frame("app::store", "/home/dev/app/src/store.rs", 40),
            frame("app::main", "src/main.rs", 7),
        ];
        let a = user_frame(&stack, Path::new("/home/dev/app")).unwrap();
        assert_eq!((a.file.as_str(), a.line, a.function.as_deref()), ("src/store.rs", 40, Some("app::store")));
        let a = user_frame(&stack, Path::new("/elsewhere")).unwrap();
        assert_eq!((a.file.as_str(), a.line), ("src/main.rs", 7));
        assert_eq!(user_frame(&stack[..4], Path::new("/home/dev/app")), None);
    }
}
