//! The gate's outcome as text, GitHub workflow annotations, JUnit XML or SARIF 2.1.0.
//!
//! # What it owns
//! [`render_gate`]. Each format points every finding at its [`Anchor`] (the innermost
//! frame in the user's code). GitHub keeps at most 10 error annotations per step, so only
//! the 10 largest findings are annotated (9 when the failed leak check takes one), followed
//! by a notice saying how many were left out. Findings over the allowance are errors; findings within it, warnings.
//!
//! A report whose leak check failed gets, in every format, an error of its own naming the
//! failure and its hint, before the findings: a line of text, a GitHub `::error`, a failing
//! JUnit test case named `leak check`, and in SARIF an invocation with
//! `executionSuccessful: false` and an error in its `toolExecutionNotifications` (what the
//! SARIF specification tells consumers to read as an incomplete set of results).

use super::{Anchor, Finding, FindingStatus, GateOutcome};
use crate::stacks::{frame_label, frame_location};
use heapsweep_format::report::{CheckFailure, LeakKind};
use serde_json::json;
use std::fmt::Write;

/// An output format of `leak-report check`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum GateFormat {
    /// A verdict line and one paragraph per finding.
    #[default]
    Text,
    /// GitHub Actions workflow commands (`::error file=...,line=...::message`).
    Github,
    /// JUnit XML: one test case per finding.
    Junit,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
}

/// GitHub shows at most this many error annotations per step.
const GITHUB_MAX: usize = 10;

/// Renders `o` in format `f`.
pub fn render_gate(o: &GateOutcome, f: GateFormat) -> String {
    match f {
        GateFormat::Text => text(o),
        GateFormat::Github => github(o),
        GateFormat::Junit => junit(o),
        GateFormat::Sarif => sarif(o),
    }
}

/// The id of the failed leak check, in SARIF and as the JUnit failure's type.
const CHECK_FAILED: &str = "heapsweep/check-failed";

/// `PASS: ...` or `FAIL: ...`: the counted bytes against the limit. When the leak check
/// failed, the line says so first, and that the counts are what was found before.
fn verdict(o: &GateOutcome) -> String {
    let what = if o.with_baseline { "new or grown leaked bytes" } else { "leaked bytes" };
    let word = if o.passed { "PASS" } else { "FAIL" };
    let (failed, before) = match o.check_failure {
        Some(_) => ("the leak check failed; ", " found before it failed"),
        None => ("", ""),
    };
    let (bytes, groups, allowed) = (o.counted_bytes, o.findings.len(), o.max_leaked_bytes);
    format!("{word}: {failed}{bytes} {what} in {groups} group(s){before}, {allowed} allowed")
}

/// The failure's hint, as LeakSanitizer prints it.
fn hint_line(f: &CheckFailure) -> String {
    format!("HINT: {}", f.hint)
}

/// One line describing a finding: "new direct leak of 100 byte(s) in 1 object(s) ...".
pub fn headline(f: &Finding) -> String {
    let status = match f.status {
        FindingStatus::Leak => "",
        FindingStatus::New => "new ",
        FindingStatus::Grew => "grown ",
    };
    let kind = match f.kind {
        LeakKind::Direct => "direct",
        LeakKind::Indirect => "indirect",
    };
    let cyc = if f.cyclic { " (cyclic)" } else { "" };
    let grew = if f.status == FindingStatus::Grew {
        format!(" (+{} byte(s) over the baseline)", f.counted_bytes)
    } else {
        String::new()
    };
    let place = match &f.anchor {
        Some(Anchor { function: Some(func), .. }) => format!(" allocated in {func}"),
        _ => String::new(),
    };
    format!("{status}{kind} leak{cyc} of {} byte(s) in {} object(s){place}{grew}", f.bytes, f.blocks)
}

fn stack_lines(f: &Finding) -> Vec<String> {
    f.stack
        .iter()
        .enumerate()
        .map(|(i, fr)| {
            let at = frame_location(fr).map(|l| format!(" {l}")).unwrap_or_default();
            format!("#{i} {}{at}", frame_label(fr))
        })
        .collect()
}

fn text(o: &GateOutcome) -> String {
    let mut out = String::new();
    if let Some(f) = &o.check_failure {
        let _ = writeln!(out, "FAIL: {f}\n{}", hint_line(f));
    }
    let _ = writeln!(out, "{}", verdict(o));
    for f in &o.findings {
        let at = f.anchor.as_ref().map(|a| format!("{}:{}: ", a.file, a.line)).unwrap_or_default();
        let _ = writeln!(out, "\n{at}{}", headline(f));
        for l in stack_lines(f) {
            let _ = writeln!(out, "    {l}");
        }
    }
    out
}

fn github(o: &GateOutcome) -> String {
    let level = if o.over_limit() { "error" } else { "warning" };
    let mut out = String::new();
    if let Some(f) = &o.check_failure {
        let title = escape_property("HeapSweep leak check failed");
        let _ = writeln!(out, "::error title={title}::{}", escape_data(&format!("{f}\n{}", hint_line(f))));
    }
    let room = GITHUB_MAX - usize::from(o.check_failure.is_some());
    for f in o.findings.iter().take(room) {
        let message = format!("{}\n{}", headline(f), stack_lines(f).join("\n"));
        let mut props = vec![format!("title={}", escape_property("HeapSweep leak"))];
        if let Some(a) = &f.anchor {
            props.insert(0, format!("file={},line={}", escape_property(&a.file), a.line));
        }
        let _ = writeln!(out, "::{level} {}::{}", props.join(","), escape_data(&message));
    }
    if o.findings.len() > room {
        let more = o.findings.len() - room;
        let _ = writeln!(out, "::notice::{}", escape_data(&format!("{more} more leak group(s) not annotated")));
    }
    let _ = writeln!(out, "{}", verdict(o));
    out
}

/// Workflow-command data escaping: `%`, CR, LF.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Property escaping: data escaping plus `:` and `,`.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn junit(o: &GateOutcome) -> String {
    let failed_check = usize::from(o.check_failure.is_some());
    let failures = if o.over_limit() { o.findings.len() } else { 0 } + failed_check;
    let tests = (o.findings.len() + failed_check).max(1);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"heapsweep\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">");
    let suite = xml(&format!("leak check of {}", o.program));
    let _ = writeln!(out, "  <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">");
    if let Some(f) = &o.check_failure {
        let _ = writeln!(
            out,
            "    <testcase name=\"leak check\" classname=\"heapsweep\">\n      \
             <failure message=\"{}\" type=\"{CHECK_FAILED}\">{}</failure>\n    </testcase>",
            xml(&f.to_string()),
            xml(&hint_line(f))
        );
    } else if o.findings.is_empty() {
        let _ = writeln!(out, "    <testcase name=\"no leaks\" classname=\"heapsweep\"/>");
    }
    for f in &o.findings {
        let class = f.anchor.as_ref().map_or("heapsweep".to_string(), |a| format!("{}:{}", a.file, a.line));
        let _ = write!(out, "    <testcase name=\"{}\" classname=\"{}\"", xml(&headline(f)), xml(&class));
        if !o.over_limit() {
            let _ = writeln!(out, "/>");
        } else {
            let body = xml(&stack_lines(f).join("\n"));
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\" type=\"leak\">{body}</failure>\n    </testcase>",
                xml(&headline(f))
            );
        }
    }
    let _ = writeln!(out, "    <system-out>{}</system-out>", xml(&verdict(o)));
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn sarif(o: &GateOutcome) -> String {
    let level = if o.over_limit() { "error" } else { "warning" };
    let rule = |id: &str, text: &str| json!({"id": id, "name": id, "shortDescription": {"text": text}});
    let results: Vec<_> = o.findings.iter().map(|f| sarif_result(f, level)).collect();
    let mut doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "HeapSweep",
                "rules": [
                    rule("heapsweep/direct-leak", "Memory allocated here is never freed and nothing points to it"),
                    rule("heapsweep/indirect-leak", "Memory allocated here is only reachable from leaked memory"),
                ],
            }},
            "results": results,
        }],
    });
    if let Some(f) = &o.check_failure {
        // SARIF 2.1.0, appendix "Detecting incomplete result sets": an unsuccessful
        // invocation, and an error-level tool execution notification.
        let run = &mut doc["runs"][0];
        run["tool"]["driver"]["notifications"] = json!([{
            "id": CHECK_FAILED,
            "name": "LeakCheckFailed",
            "shortDescription": {"text": "The leak check could not run to the end: its results may be incomplete"},
        }]);
        run["invocations"] = json!([{
            "executionSuccessful": false,
            "toolExecutionNotifications": [{
                "level": "error",
                "message": {"text": format!("{f}\n{}", hint_line(f))},
                "descriptor": {"id": CHECK_FAILED, "index": 0},
                "properties": {"kind": f.kind.as_str()},
            }],
        }]);
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn sarif_result(f: &Finding, level: &str) -> serde_json::Value {
    let rule = match f.kind {
        LeakKind::Direct => "heapsweep/direct-leak",
        LeakKind::Indirect => "heapsweep/indirect-leak",
    };
    let locations: Vec<_> = f
        .anchor
        .iter()
        .map(|a| json!({"physicalLocation": {"artifactLocation": {"uri": a.file}, "region": {"startLine": a.line}}}))
        .collect();
    let key = crate::diff::stack_key(&f.stack);
    let fingerprint = format!("{:016x}", fnv1a(format!("{rule}{}{key:?}", f.cyclic).as_bytes()));
    json!({
        "ruleId": rule,
        "level": level,
        "message": {"text": format!("{}\n{}", headline(f), stack_lines(f).join("\n"))},
        "locations": locations,
        "partialFingerprints": {"heapsweepStack/v1": fingerprint},
    })
}

/// FNV-1a: a stable hash (std's hasher may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
