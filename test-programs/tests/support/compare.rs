//! Compares one run of a scenario with its expectations.
//!
//! # What is checked
//! 1. The exit status (`EXPECT-EXIT`).
//! 2. The report exists (or, for `no-report`, does not), under the `%p`-expanded name.
//! 3. Its shape: `format`, `version`, `program` (the path the runner started), `pid`
//!    (the child's), every summary field a number, every group's fields typed.
//! 4. The leak check ran to the end: `status` is `{"state": "ok"}` (a failed check's
//!    report may miss leaks, so it matches no expectation, clean ones least of all).
//! 5. The contract's own rules, for every scenario: the report reads as the model and
//!    passes its `validate()` (the one place those rules live: the groups' blocks and bytes
//!    add up to the summary's leak counts, by kind and for cycles; no empty group), and
//!    groups come sorted by bytes, largest first (what the allocator writes).
//! 6. The `EXPECT:` summary fields, and `clean`.
//! 7. The `EXPECT-GROUP` lines match the report's groups one to one (a multiset
//!    match: each line claims a different group, and no group is left over).
//! 8. stderr: a run that reports leaks prints `SUMMARY: HeapSweep:`; a run without
//!    leaks prints nothing that names heapsweep.

use super::expect::{Cmp, Expectation, GroupSpec, SUMMARY_KEYS};
use super::run::Outcome;
use serde_json::Value;

/// One group of a report, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub kind: String,
    pub cyclic: bool,
    pub blocks: u64,
    pub bytes: u64,
    pub functions: Vec<Option<String>>,
}

impl Group {
    fn read(v: &Value) -> Result<Group, String> {
        let field = |k: &str| v.get(k).ok_or_else(|| format!("a group has no `{k}`: {v}"));
        let number = |k: &str| field(k)?.as_u64().ok_or_else(|| format!("group `{k}` is not a count: {v}"));
        let kind = field("kind")?.as_str().filter(|k| *k == "direct" || *k == "indirect");
        let stack = field("stack")?.as_array().ok_or_else(|| format!("group `stack` is not an array: {v}"))?;
        let functions = stack.iter().map(read_frame).collect::<Result<_, _>>()?;
        Ok(Group {
            kind: kind.ok_or_else(|| format!("group `kind` is not direct/indirect: {v}"))?.to_string(),
            cyclic: field("cyclic")?.as_bool().ok_or_else(|| format!("group `cyclic` is not a bool: {v}"))?,
            blocks: number("blocks")?,
            bytes: number("bytes")?,
            functions,
        })
    }

    fn matches(&self, s: &GroupSpec) -> bool {
        self.kind == s.kind
            && self.cyclic == s.cyclic
            && s.blocks.is_none_or(|b| b == self.blocks)
            && s.bytes.is_none_or(|b| b == self.bytes)
            && s.frames.is_none_or(|n| n == self.functions.len())
            && s.function.as_ref().is_none_or(|f| self.functions.iter().flatten().any(|n| n.contains(f.as_str())))
    }

    /// `kind=... cyclic=... blocks=... bytes=... frames=N [f1 < f2 < ...]`.
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self.functions.iter().take(8).map(|f| f.as_deref().unwrap_or("?")).collect();
        format!(
            "kind={} cyclic={} blocks={} bytes={} frames={} [{}]",
            self.kind,
            self.cyclic,
            self.blocks,
            self.bytes,
            self.functions.len(),
            names.join(" < ")
        )
    }
}

/// A frame's `function`, checking the other fields' types.
fn read_frame(f: &Value) -> Result<Option<String>, String> {
    let ok = f.get("ip").is_some_and(Value::is_string)
        && f.get("function").is_some_and(|v| v.is_string() || v.is_null())
        && f.get("file").is_some_and(|v| v.is_string() || v.is_null())
        && f.get("line").is_some_and(|v| v.is_u64() || v.is_null());
    if !ok {
        return Err(format!("a frame lacks ip/function/file/line of the right types: {f}"));
    }
    Ok(f["function"].as_str().map(str::to_string))
}

/// A report read into the parts the checks need.
#[derive(Debug)]
pub struct Report {
    pub summary: Vec<(&'static str, u64)>,
    pub groups: Vec<Group>,
}

impl Report {
    pub fn get(&self, key: &str) -> u64 {
        self.summary.iter().find(|(k, _)| *k == key).map_or(0, |(_, v)| *v)
    }
}

/// Reads and checks the shape of a report written by the run `o`.
pub fn read_report(v: &Value, o: &Outcome) -> Result<Report, String> {
    if v["format"] != "heapsweep-leaks" || v["version"] != 1 {
        return Err(format!("format/version are {} / {}", v["format"], v["version"]));
    }
    if v["pid"].as_u64() != Some(u64::from(o.pid)) {
        return Err(format!("pid is {}, the program's was {}", v["pid"], o.pid));
    }
    if v["program"].as_str() != Some(o.program.as_str()) {
        return Err(format!("program is {}, argv[0] was {:?}", v["program"], o.program));
    }
    let mut summary = Vec::new();
    for key in SUMMARY_KEYS {
        let n = v["summary"][key].as_u64().ok_or_else(|| format!("summary.{key} is {}", v["summary"][key]))?;
        summary.push((key, n));
    }
    let leaks = v["leaks"].as_array().ok_or("`leaks` is not an array")?;
    let groups = leaks.iter().map(Group::read).collect::<Result<_, _>>()?;
    Ok(Report { summary, groups })
}

/// Every mismatch between the run `o` and the expectations `e`; empty when it matched.
pub fn compare(e: &Expectation, o: &Outcome) -> Vec<String> {
    let mut bad = Vec::new();
    if o.status != Some(e.exit) {
        bad.push(format!("exit status {}, expected {}{}", status_text(o.status), e.exit, stderr_tail(o)));
    }
    if e.no_report {
        if o.report.is_some() || !o.stray_reports.is_empty() {
            bad.push("a report was written; expected none".into());
        }
        bad.extend(check_quiet_stderr(o));
        return bad;
    }
    let report = match &o.report {
        None => {
            let stray = if o.stray_reports.is_empty() {
                String::new()
            } else {
                format!(" (found {:?} instead: `%p` not expanded to the pid?)", o.stray_reports)
            };
            bad.push(format!("no report written{stray}{}", stderr_tail(o)));
            return bad;
        }
        Some(Err(e)) => {
            bad.push(e.clone());
            return bad;
        }
        Some(Ok(v)) => match read_report(v, o) {
            Ok(r) => r,
            Err(msg) => {
                bad.push(format!("malformed report: {msg}"));
                return bad;
            }
        },
    };
    if let Some(Ok(v)) = &o.report {
        bad.extend(check_status(v));
        bad.extend(check_model(v));
    }
    bad.extend(check_order(&report));
    bad.extend(check_summary(e, &report));
    bad.extend(check_groups(&e.groups, &report.groups));
    bad.extend(check_stderr(&report, o));
    bad
}

fn status_text(status: Option<i32>) -> String {
    status.map_or_else(|| "none (killed by a signal)".to_string(), |c| c.to_string())
}

/// The last lines of stderr, for a message.
fn stderr_tail(o: &Outcome) -> String {
    let lines: Vec<&str> = o.stderr.lines().collect();
    if lines.is_empty() {
        return "; stderr empty".into();
    }
    let tail = &lines[lines.len().saturating_sub(12)..];
    format!("; stderr ends:\n        {}", tail.join("\n        "))
}

/// The report says its leak check ran to the end.
fn check_status(v: &Value) -> Vec<String> {
    let Some(status) = v.get("status") else {
        return vec!["the report has no `status`".into()];
    };
    let text = |key: &str| status[key].as_str().unwrap_or("?").to_string();
    match status["state"].as_str() {
        Some("ok") => Vec::new(),
        Some("failed") => vec![format!(
            "the leak check could not run to the end ({}): {} (HINT: {})",
            text("kind"),
            text("message"),
            text("hint")
        )],
        _ => vec![format!("`status` is neither ok nor failed: {status}")],
    }
}

/// The report read as the model (`alloc_core::LeakReport`) and checked by the model's own
/// rules, as `leak-report` checks every report it reads.
fn check_model(v: &Value) -> Vec<String> {
    match serde_json::from_value::<alloc_core::LeakReport>(v.clone()) {
        Ok(model) => {
            model.validate().err().map(|e| format!("the report breaks the format's rules: {e}")).into_iter().collect()
        }
        Err(e) => vec![format!("the report does not read as a LeakReport: {e}")],
    }
}

/// The groups come sorted by bytes, largest first, as the contract says they are written.
fn check_order(r: &Report) -> Vec<String> {
    if r.groups.windows(2).any(|w| w[0].bytes < w[1].bytes) {
        let order: Vec<u64> = r.groups.iter().map(|g| g.bytes).collect();
        return vec![format!("groups are not sorted by bytes, largest first: {order:?}")];
    }
    Vec::new()
}

fn check_summary(e: &Expectation, r: &Report) -> Vec<String> {
    let mut bad = Vec::new();
    for c in &e.summary {
        let got = r.get(&c.key);
        let ok = match c.cmp {
            Cmp::Eq => got == c.value,
            Cmp::AtLeast => got >= c.value,
        };
        if !ok {
            bad.push(format!("summary.{} is {got}, expected {c}", c.key));
        }
    }
    if e.clean && (r.get("leaked_blocks") != 0 || !r.groups.is_empty()) {
        bad.push(format!("expected clean, got {} leaked block(s){}", r.get("leaked_blocks"), list_groups(&r.groups)));
    }
    bad
}

/// The `EXPECT-GROUP` lines and the report's groups, matched one to one.
fn check_groups(specs: &[GroupSpec], groups: &[Group]) -> Vec<String> {
    if specs.is_empty() && groups.is_empty() || perfect_matching(specs, groups) {
        return Vec::new();
    }
    let mut msg = format!("leak groups do not match ({} expected, {} reported)", specs.len(), groups.len());
    for s in specs {
        let marker = if groups.iter().any(|g| g.matches(s)) { "   " } else { "!! " };
        msg.push_str(&format!("\n      expected {marker}{}", s.text));
    }
    msg.push_str(&list_groups(groups));
    vec![msg]
}

fn list_groups(groups: &[Group]) -> String {
    groups.iter().map(|g| format!("\n      reported    {}", g.describe())).collect()
}

/// Whether every spec can claim a group of its own with none left over (Kuhn's
/// augmenting paths; a scenario has a handful of groups).
fn perfect_matching(specs: &[GroupSpec], groups: &[Group]) -> bool {
    if specs.len() != groups.len() {
        return false;
    }
    let mut owner: Vec<Option<usize>> = vec![None; groups.len()];
    (0..specs.len()).all(|s| augment(s, specs, groups, &mut owner, &mut vec![false; groups.len()]))
}

fn augment(s: usize, specs: &[GroupSpec], groups: &[Group], owner: &mut [Option<usize>], seen: &mut [bool]) -> bool {
    for g in 0..groups.len() {
        if seen[g] || !groups[g].matches(&specs[s]) {
            continue;
        }
        seen[g] = true;
        if owner[g].is_none_or(|other| augment(other, specs, groups, owner, seen)) {
            owner[g] = Some(s);
            return true;
        }
    }
    false
}

fn check_stderr(r: &Report, o: &Outcome) -> Vec<String> {
    if r.groups.is_empty() {
        return check_quiet_stderr(o);
    }
    if o.stderr.contains("SUMMARY: HeapSweep:") {
        Vec::new()
    } else {
        vec![format!("leaks were reported but stderr has no `SUMMARY: HeapSweep:` line{}", stderr_tail(o))]
    }
}

fn check_quiet_stderr(o: &Outcome) -> Vec<String> {
    if o.stderr.to_lowercase().contains("heapsweep") {
        vec![format!("no leak, yet heapsweep printed{}", stderr_tail(o))]
    } else {
        Vec::new()
    }
}

/// What must not vary between runs of one program: its exit status, the leak counts, and
/// each group's kind, cycle flag, size and stack functions (groups sorted, as ties in
/// bytes may come in any order). Reachable counts may vary and are left out.
pub fn fingerprint(o: &Outcome) -> String {
    let report = match &o.report {
        Some(Ok(v)) => read_report(v, o).map_err(|e| format!("malformed report: {e}")),
        Some(Err(e)) => Err(e.clone()),
        None => Err("no report".into()),
    };
    let body = match report {
        Ok(r) => {
            let counts: Vec<String> = r.summary.iter().take(5).map(|(k, v)| format!("{k}={v}")).collect();
            let mut groups: Vec<String> = r.groups.iter().map(Group::describe).collect();
            groups.sort();
            format!("{} | {}", counts.join(" "), groups.join(" | "))
        }
        Err(e) => e,
    };
    format!("exit {} | {body}", status_text(o.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(kind: &str, cyclic: bool, blocks: u64, bytes: u64, f: &str) -> Group {
        Group { kind: kind.into(), cyclic, blocks, bytes, functions: vec![Some(f.into()), None] }
    }

    fn spec(kind: &str, cyclic: bool, blocks: Option<u64>, function: Option<&str>) -> GroupSpec {
        GroupSpec {
            kind: kind.into(),
            cyclic,
            blocks,
            bytes: None,
            function: function.map(Into::into),
            frames: None,
            text: String::new(),
        }
    }

    #[test]
    fn groups_match_as_a_multiset() {
        let groups = [group("direct", true, 1, 16, "p::leak"), group("direct", true, 1, 16, "p::leak")];
        let one = spec("direct", true, Some(1), Some("leak"));
        assert!(perfect_matching(&[one.clone(), one.clone()], &groups));
        assert!(!perfect_matching(std::slice::from_ref(&one), &groups), "a group left over");
        assert!(!perfect_matching(&[one.clone(), one.clone(), one.clone()], &groups), "a line left over");
    }

    #[test]
    fn matching_looks_past_a_greedy_first_choice() {
        // The loose spec could take either group; the strict one only the first.
        let groups = [group("direct", false, 1, 8, "a::x"), group("direct", false, 9, 72, "a::y")];
        let loose = spec("direct", false, None, None);
        let strict = spec("direct", false, Some(1), Some("a::x"));
        assert!(perfect_matching(&[loose, strict], &groups));
    }

    #[test]
    fn every_field_of_a_spec_is_checked() {
        let g = group("indirect", false, 3, 24, "m::f");
        assert!(g.matches(&spec("indirect", false, Some(3), Some("m::"))));
        assert!(!g.matches(&spec("direct", false, None, None)));
        assert!(!g.matches(&spec("indirect", true, None, None)));
        assert!(!g.matches(&spec("indirect", false, Some(4), None)));
        assert!(!g.matches(&spec("indirect", false, None, Some("other"))));
        let frames = GroupSpec { frames: Some(0), ..spec("indirect", false, None, None) };
        assert!(!g.matches(&frames));
        let bytes = GroupSpec { bytes: Some(25), ..spec("indirect", false, None, None) };
        assert!(!g.matches(&bytes));
    }

    #[test]
    fn a_failed_or_missing_status_is_a_mismatch() {
        let with = |status: &str| -> Value { serde_json::from_str(&format!("{{\"status\": {status}}}")).unwrap() };
        assert!(check_status(&with(r#"{"state": "ok"}"#)).is_empty());
        let failed = with(r#"{"state": "failed", "kind": "out_of_memory", "message": "no room", "hint": "h"}"#);
        let bad = check_status(&failed);
        assert!(bad.len() == 1 && bad[0].contains("(out_of_memory): no room"), "{bad:?}");
        assert!(check_status(&with(r#"{"state": "odd"}"#))[0].contains("neither ok nor failed"));
        assert!(check_status(&serde_json::json!({}))[0].contains("no `status`"));
    }

    #[test]
    fn unsorted_groups_are_caught() {
        let mut r = Report { summary: vec![], groups: vec![group("direct", false, 1, 16, "f")] };
        assert!(check_order(&r).is_empty());
        r.groups.push(group("indirect", false, 1, 24, "f"));
        let bad = check_order(&r);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(bad[0].contains("not sorted"));
    }

    #[test]
    fn reports_that_break_the_models_rules_are_caught() {
        let report = |leaked_blocks: u64, kind: &str| {
            serde_json::json!({
                "format": "heapsweep-leaks", "version": 1, "program": "p", "pid": 1,
                "summary": {
                    "leaked_blocks": leaked_blocks, "leaked_bytes": 24, "direct_blocks": 1,
                    "indirect_blocks": leaked_blocks - 1, "cyclic_blocks": 0,
                    "reachable_blocks": 0, "reachable_bytes": 0, "suppressed_blocks": 0
                },
                "leaks": [
                    { "kind": "direct", "cyclic": false, "blocks": 1, "bytes": 16, "stack": [] },
                    { "kind": kind, "cyclic": false, "blocks": 1, "bytes": 8, "stack": [] }
                ]
            })
        };
        assert_eq!(check_model(&report(2, "indirect")), Vec::<String>::new());
        let bad = check_model(&report(3, "indirect"));
        assert_eq!(
            bad,
            ["the report breaks the format's rules: the leak groups add up to 2 leaked_blocks, the summary says 3"]
        );
        let bad = check_model(&report(2, "direct"));
        assert!(bad.len() == 1 && bad[0].contains("2 direct_blocks, the summary says 1"), "{bad:?}");
        let bad = check_model(&report(2, "sideways"));
        assert!(bad.len() == 1 && bad[0].contains("does not read as a LeakReport"), "{bad:?}");
    }
}
