//! Comparing two runs: which leak groups (or profile sites) are new, gone, grew or shrank.
//!
//! # What it owns
//! [`diff`] and its result [`Diff`]. Groups are matched by kind, cycle flag and the
//! function/file/line of every frame of their stack, never by raw addresses, which change
//! from run to run (address randomization, rebuilds). A frame without a symbol matches by
//! its module's file name only. Entries with the same key in one run are added up first.
//! For profiles, sites are matched by stack and compared by live bytes.
//!
//! When the leak check of either run could not run to the end, the diff carries that
//! failure (`old_check_failure`, `new_check_failure`) and its text says so first: that
//! run's groups may be incomplete or wrong, so "unchanged" or "gone" may not be true.

use crate::input::Input;
use crate::stacks::{file_name, frame_label, frame_location};
use heapsweep_format::report::{CheckFailure, Frame, LeakKind};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// What happened to a group between two runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffStatus {
    /// Only in the new run.
    New,
    /// More bytes (or blocks) in the new run.
    Grew,
    /// Fewer bytes and blocks in the new run.
    Shrank,
    /// Only in the old run.
    Gone,
}

/// One group or site that changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DiffEntry {
    /// What happened.
    pub status: DiffStatus,
    /// Direct or indirect (leak reports only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<LeakKind>,
    /// On a cycle (leak reports only).
    pub cyclic: bool,
    /// Bytes in the old run (live bytes for profiles).
    pub old_bytes: u64,
    /// Bytes in the new run.
    pub new_bytes: u64,
    /// Blocks in the old run.
    pub old_blocks: u64,
    /// Blocks in the new run.
    pub new_blocks: u64,
    /// The stack, innermost first, from the new run (the old one if gone).
    pub stack: Vec<Frame>,
}

impl DiffEntry {
    /// Bytes added: `new_bytes - old_bytes`, 0 if fewer.
    pub fn growth_bytes(&self) -> u64 {
        self.new_bytes.saturating_sub(self.old_bytes)
    }
}

/// The changes between two runs, largest growth first, gone ones last.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diff {
    /// `"leaks"` or `"profile"`.
    pub input: &'static str,
    /// Total leaked (or live) bytes of the old run.
    pub old_bytes: u64,
    /// Total of the new run.
    pub new_bytes: u64,
    /// Groups that changed.
    pub entries: Vec<DiffEntry>,
    /// Groups present in both with the same counts.
    pub unchanged: usize,
    /// Why the old run's leak check could not run to the end, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_check_failure: Option<CheckFailure>,
    /// Why the new run's leak check could not run to the end, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_check_failure: Option<CheckFailure>,
}

impl Diff {
    /// Whether both runs' leak checks ran to the end (always, for profiles): only then is
    /// the comparison complete.
    pub fn checks_ran_to_the_end(&self) -> bool {
        self.old_check_failure.is_none() && self.new_check_failure.is_none()
    }
}

/// A group's identity across runs.
type Key = (Option<LeakKind>, bool, Vec<(String, String, u32)>);

#[derive(Clone, Default)]
struct Counts {
    bytes: u64,
    blocks: u64,
    stack: Vec<Frame>,
}

/// Compares `old` with `new`; both must be leak reports or both profiles.
pub fn diff(old: &Input, new: &Input) -> Result<Diff, String> {
    let name = match (old, new) {
        (Input::Leaks(_), Input::Leaks(_)) => "leaks",
        (Input::Profile(_), Input::Profile(_)) => "profile",
        _ => return Err("cannot compare a leak report with a heap profile".into()),
    };
    let (a, b) = (keyed(old), keyed(new));
    let mut entries = Vec::new();
    let mut unchanged = 0;
    for (key, n) in &b {
        let o = a.get(key).cloned().unwrap_or_default();
        let status = match a.contains_key(key) {
            false => DiffStatus::New,
            true if n.bytes > o.bytes || n.blocks > o.blocks => DiffStatus::Grew,
            true if n.bytes < o.bytes || n.blocks < o.blocks => DiffStatus::Shrank,
            true => {
                unchanged += 1;
                continue;
            }
        };
        entries.push(entry(status, key, &o, n, &n.stack));
    }
    for (key, o) in a.iter().filter(|(k, _)| !b.contains_key(*k)) {
        entries.push(entry(DiffStatus::Gone, key, o, &Counts::default(), &o.stack));
    }
    entries.sort_by(|x, y| {
        (x.status == DiffStatus::Gone, y.growth_bytes(), x.old_bytes).cmp(&(
            y.status == DiffStatus::Gone,
            x.growth_bytes(),
            y.old_bytes,
        ))
    });
    let total = |i: &Input| keyed(i).values().map(|c| c.bytes).sum();
    let failure = |i: &Input| match i {
        Input::Leaks(r) => r.failure().cloned(),
        Input::Profile(_) => None,
    };
    Ok(Diff {
        input: name,
        old_bytes: total(old),
        new_bytes: total(new),
        entries,
        unchanged,
        old_check_failure: failure(old),
        new_check_failure: failure(new),
    })
}

fn entry(status: DiffStatus, key: &Key, o: &Counts, n: &Counts, stack: &[Frame]) -> DiffEntry {
    DiffEntry {
        status,
        kind: key.0,
        cyclic: key.1,
        old_bytes: o.bytes,
        new_bytes: n.bytes,
        old_blocks: o.blocks,
        new_blocks: n.blocks,
        stack: stack.to_vec(),
    }
}

fn keyed(input: &Input) -> BTreeMap<Key, Counts> {
    let mut map: BTreeMap<Key, Counts> = BTreeMap::new();
    let mut add = |key: Key, bytes: u64, blocks: u64, stack: &[Frame]| {
        let c = map.entry(key).or_insert_with(|| Counts { stack: stack.to_vec(), ..Counts::default() });
        c.bytes += bytes;
        c.blocks += blocks;
    };
    match input {
        Input::Leaks(r) => {
            for g in &r.leaks {
                add((Some(g.kind), g.cyclic, stack_key(&g.stack)), g.bytes, g.blocks, &g.stack);
            }
        }
        Input::Profile(p) => {
            for s in &p.sites {
                add((None, false, stack_key(&s.stack)), s.live_bytes, s.live_blocks, &s.stack);
            }
        }
    }
    map
}

/// function/file/line of each frame; the module's file name for frames without a symbol.
pub fn stack_key(stack: &[Frame]) -> Vec<(String, String, u32)> {
    stack
        .iter()
        .map(|f| match &f.function {
            Some(name) => (name.clone(), f.file.clone().unwrap_or_default(), f.line.unwrap_or(0)),
            None => (String::new(), f.module.as_deref().map(file_name).unwrap_or_default().to_string(), 0),
        })
        .collect()
}

/// The diff as text: one paragraph per change, with its stack.
pub fn render_diff_text(d: &Diff) -> String {
    let mut out = String::new();
    for (run, failure) in [("old", &d.old_check_failure), ("new", &d.new_check_failure)] {
        if let Some(f) = failure {
            let _ = writeln!(out, "WARNING: in the {run} report, {f}\n  HINT: {}", f.hint);
            let _ = writeln!(out, "  Its leak groups may be incomplete or wrong: this comparison may be too.\n");
        }
    }
    let what = if d.input == "leaks" { "leaked" } else { "live" };
    let _ = writeln!(
        out,
        "{what} bytes: {} -> {} ({:+})\n",
        d.old_bytes,
        d.new_bytes,
        d.new_bytes as i128 - d.old_bytes as i128
    );
    for e in &d.entries {
        let status = match e.status {
            DiffStatus::New => "NEW",
            DiffStatus::Grew => "GREW",
            DiffStatus::Shrank => "SHRANK",
            DiffStatus::Gone => "GONE",
        };
        let kind = match e.kind {
            Some(LeakKind::Direct) => "direct leak",
            Some(LeakKind::Indirect) => "indirect leak",
            None => "site",
        };
        let cyc = if e.cyclic { ", cyclic" } else { "" };
        let _ = writeln!(
            out,
            "{status} {kind}{cyc}: {} -> {} byte(s), {} -> {} object(s), allocated from:",
            e.old_bytes, e.new_bytes, e.old_blocks, e.new_blocks
        );
        for (i, f) in e.stack.iter().enumerate() {
            let at = frame_location(f).map(|l| format!(" {l}")).unwrap_or_default();
            let _ = writeln!(out, "    #{i} {}{at}", frame_label(f));
        }
        out.push('\n');
    }
    let incomplete = if d.checks_ran_to_the_end() { "" } else { " (incomplete: a leak check failed, see above)" };
    let _ = writeln!(out, "{} changed, {} unchanged{incomplete}.", d.entries.len(), d.unchanged);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_match_by_function_not_address_and_by_kind() {
        let old = crate::synthetic::leak_report(5, 9);
        let mut new = old.clone();
        for g in &mut new.leaks {
            for f in &mut g.stack {
                f.ip = format!("{}0", f.ip); // every address moved
            }
        }
        new.leaks[0].bytes += 10;
        new.leaks[1].kind = match new.leaks[1].kind {
            LeakKind::Direct => LeakKind::Indirect,
            LeakKind::Indirect => LeakKind::Direct,
        };
        let d = diff(&Input::Leaks(old), &Input::Leaks(new)).unwrap();
        let statuses: Vec<DiffStatus> = d.entries.iter().map(|e| e.status).collect();
        assert_eq!(statuses, [DiffStatus::New, DiffStatus::Grew, DiffStatus::Gone]);
        assert_eq!((d.entries[1].growth_bytes(), d.unchanged), (10, 3));
    }
}
