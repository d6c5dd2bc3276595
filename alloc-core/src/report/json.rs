//! The JSON rendering of a report, and writing it to `report=PATH` (`%p` becomes the
//! pid): to a temporary file beside it, then renamed, so a reader never sees half a
//! report.
//!
//! # Who calls it
//! `check::run_at_exit`, after the world resumed, with the reentrancy guard set.

use super::model::LeakReport;
use crate::config::FixedPath;
use std::path::{Path, PathBuf};

/// The report as pretty-printed JSON (the schema of the contract).
pub fn to_json(report: &LeakReport) -> String {
    // Serializing plain structs of strings and integers to a String cannot fail.
    super::pretty_json::to_string_pretty(report).unwrap_or_default()
}

/// Writes `report` to the path `template` names, `%p` replaced by `pid`. The error
/// names the path and the cause; the caller prints it as one warning line.
pub(crate) fn write_report(template: &[u8], pid: u32, report: &LeakReport) -> Result<(), String> {
    let template = FixedPath::from_bytes(template)
        .ok_or_else(|| format!("cannot write the report: its path is longer than {} bytes", FixedPath::CAPACITY))?;
    let path = template.expand(pid);
    write_atomically(path.as_path(), pid, (to_json(report) + "\n").as_bytes())
}

/// Writes `bytes` to `path` through a temporary file of the same directory, renamed over
/// `path` once complete.
pub(crate) fn write_atomically(path: &Path, pid: u32, bytes: &[u8]) -> Result<(), String> {
    // The pid in the temporary name keeps processes sharing one report path apart.
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(format!(".{pid}.tmp"));
    std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{
        CheckFailure, CheckStatus, FailureKind, Frame, LeakGroup, LeakKind, RcCounts, RcKind, Summary, SuppressionUse,
    };

    fn empty() -> LeakReport {
        LeakReport {
            modules: Vec::new(),
            format: LeakReport::FORMAT.into(),
            version: 1,
            program: "p".into(),
            pid: 1,
            status: CheckStatus::Ok,
            summary: Summary::default(),
            leaks: vec![],
            suppressions: vec![],
        }
    }

    /// The example of CONTRACT.md, verbatim.
    const CONTRACT_EXAMPLE: &str = r#"{
  "format": "heapsweep-leaks",
  "version": 1,
  "program": "argv[0]",
  "pid": 1234,
  "summary": {
    "leaked_blocks": 3, "leaked_bytes": 96,
    "direct_blocks": 1, "indirect_blocks": 2, "cyclic_blocks": 0,
    "reachable_blocks": 120, "reachable_bytes": 8192,
    "suppressed_blocks": 0
  },
  "leaks": [
    {
      "kind": "direct",
      "cyclic": false,
      "blocks": 1,
      "bytes": 32,
      "stack": [
        { "ip": "0x55d0c0ffee00", "function": "my_crate::make_list", "file": "src/main.rs", "line": 12 }
      ]
    }
  ]
}"#;

    #[test]
    fn the_contract_example_parses() {
        let r = LeakReport::from_json(CONTRACT_EXAMPLE).unwrap();
        assert_eq!((r.program.as_str(), r.pid), ("argv[0]", 1234));
        assert_eq!(r.summary.reachable_bytes, 8192);
        assert_eq!(r.summary.indirect_blocks, 2);
        let g = &r.leaks[0];
        assert_eq!(
            (g.kind, g.cyclic, g.blocks, g.bytes, g.rc, g.stack_id),
            (LeakKind::Direct, false, 1, 32, None, None)
        );
        let f = &g.stack[0];
        assert_eq!(f.ip, "0x55d0c0ffee00");
        assert_eq!(f.function.as_deref(), Some("my_crate::make_list"));
        assert_eq!((f.file.as_deref(), f.line, f.module.as_deref()), (Some("src/main.rs"), Some(12), None));
        assert!(r.suppressions.is_empty());
        assert_eq!(r.status, CheckStatus::Ok, "a report without a status reads as ok");
        assert!(!r.check_failed() && r.failure().is_none());
        assert_eq!(r.leaked_bytes(), 32);
        assert_eq!(r.groups_with_function("make_list").len(), 1);
        assert!(r.groups_with_function("nowhere").is_empty());
    }

    #[test]
    fn wrong_format_version_or_syntax_is_refused() {
        let v9 = CONTRACT_EXAMPLE.replace("\"version\": 1", "\"version\": 9");
        assert!(LeakReport::from_json(&v9).unwrap_err().contains("version 9"));
        let other = CONTRACT_EXAMPLE.replace("heapsweep-leaks", "dhat");
        assert!(LeakReport::from_json(&other).unwrap_err().contains("\"dhat\""));
        assert!(LeakReport::from_json("{").unwrap_err().contains("not a HeapSweep leak report"));
    }

    #[test]
    fn a_full_report_round_trips_and_keeps_contract_nulls() {
        let mut r = empty();
        r.leaks.push(LeakGroup {
            kind: LeakKind::Indirect,
            cyclic: true,
            blocks: 2,
            bytes: 64,
            stack: vec![
                Frame::unresolved(0x1234),
                Frame {
                    ip: "0x10".into(),
                    function: Some("a::b".into()),
                    file: Some("src/a.rs".into()),
                    line: Some(3),
                    module: Some("/bin/a".into()),
                },
            ],
            rc: Some(RcCounts { kind: RcKind::Arc, strong: 1, weak: 1 }),
            stack_id: Some(9),
            reported_by_sweep: 1,
        });
        r.suppressions.push(SuppressionUse { pattern: "x*y".into(), matched_blocks: 1, matched_bytes: 8 });
        let text = to_json(&r);
        assert_eq!(LeakReport::from_json(&text).unwrap(), r);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let raw = &v["leaks"][0]["stack"][0];
        assert_eq!(raw["ip"], "0x1234");
        assert!(raw["function"].is_null() && raw["file"].is_null() && raw["line"].is_null());
        assert!(raw.get("module").is_none());
        assert_eq!(v["leaks"][0]["kind"], "indirect");
        assert_eq!(v["leaks"][0]["rc"]["kind"], "Arc");
        assert_eq!(v["leaks"][0]["reported_by_sweep"], 1);
        assert_eq!(v["suppressions"][0]["matched_bytes"], 8);
        // Extras are left out when empty.
        let bare: serde_json::Value = serde_json::from_str(&to_json(&empty())).unwrap();
        assert!(bare.get("suppressions").is_none());
    }

    fn failure(kind: FailureKind) -> CheckFailure {
        CheckFailure { kind, message: format!("{kind} happened"), hint: "do \"this\"".into() }
    }

    #[test]
    fn the_status_is_always_written_right_after_pid() {
        let text = to_json(&empty());
        assert!(
            text.contains("  \"pid\": 1,\n  \"status\": {\n    \"state\": \"ok\"\n  },\n  \"summary\": {"),
            "{text}"
        );
        let ok: serde_json::Value = serde_json::to_value(CheckStatus::Ok).unwrap();
        assert_eq!(ok.to_string(), r#"{"state":"ok"}"#);
        let mut r = empty();
        r.status = CheckStatus::Failed(failure(FailureKind::ThreadsNotStopped));
        let text = to_json(&r);
        let at = |key: &str| text.find(&format!("\n  \"{key}\": ")).unwrap_or_else(|| panic!("{key}: {text}"));
        assert!(at("pid") < at("status") && at("status") < at("summary"), "{text}");
        assert!(text.contains("\"state\": \"failed\",\n    \"kind\": \"threads_not_stopped\""), "{text}");
    }

    #[test]
    fn every_status_round_trips_in_its_exact_form() {
        assert_eq!(serde_json::to_string(&CheckStatus::Ok).unwrap(), r#"{"state":"ok"}"#);
        assert_eq!(serde_json::from_str::<CheckStatus>(r#"{"state":"ok"}"#).unwrap(), CheckStatus::Ok);
        let names = ["threads_not_listed", "threads_not_stopped", "roots_unreadable", "out_of_memory"];
        for (kind, name) in FailureKind::ALL.into_iter().zip(names) {
            assert_eq!(kind.as_str(), name);
            let status = CheckStatus::Failed(failure(kind));
            let json = serde_json::to_string(&status).unwrap();
            let want =
                format!(r#"{{"state":"failed","kind":"{name}","message":"{name} happened","hint":"do \"this\""}}"#);
            assert_eq!(json, want);
            assert_eq!(serde_json::from_str::<CheckStatus>(&json).unwrap(), status);
            let mut r = empty();
            r.status = status.clone();
            let back = LeakReport::from_json(&to_json(&r)).unwrap();
            assert_eq!(back, r);
            assert!(back.check_failed() && back.is_clean(), "is_clean is about leak groups only");
            assert_eq!(back.failure(), Some(&failure(kind)));
            assert!(!kind.default_hint().is_empty());
            assert_eq!(CheckFailure::new(kind, "m").hint, kind.default_hint());
        }
        let f = failure(FailureKind::OutOfMemory);
        assert_eq!(f.to_string(), "the leak check could not run to the end (out_of_memory): out_of_memory happened");
    }

    #[test]
    fn an_unknown_state_or_kind_is_refused() {
        let with_status =
            |status: &str| CONTRACT_EXAMPLE.replace("\"pid\": 1234,", &format!("\"pid\": 1234, \"status\": {status},"));
        assert!(LeakReport::from_json(&with_status(r#"{"state": "ok"}"#)).is_ok());
        let failed = r#"{"state": "failed", "kind": "out_of_memory", "message": "m", "hint": "h"}"#;
        assert!(LeakReport::from_json(&with_status(failed)).unwrap().check_failed());
        for (status, says) in [
            (r#"{"state": "partial"}"#, "partial"),
            (r#"{"state": "failed", "kind": "cosmic_rays", "message": "m", "hint": "h"}"#, "cosmic_rays"),
            (r#"{"state": "failed", "kind": "out_of_memory"}"#, "message"),
            (r#"{"kind": "out_of_memory"}"#, "state"),
            (r#""ok""#, "expected internally tagged enum"),
        ] {
            let e = LeakReport::from_json(&with_status(status)).unwrap_err();
            assert!(e.contains("status: ") && e.contains(says), "{status}: {e}");
        }
    }

    #[test]
    fn writes_with_the_pid_and_reports_errors_with_the_path() {
        let dir = std::env::temp_dir().join(format!("hs-json-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let template = format!("{}/r-%p.json", dir.display());
        write_report(template.as_bytes(), 42, &empty()).unwrap();
        let text = std::fs::read_to_string(dir.join("r-42.json")).unwrap();
        assert_eq!(LeakReport::from_json(&text).unwrap(), empty());
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["r-42.json"], "no temporary file is left behind");
        let err = write_report(b"/nonexistent-dir/x-%p.json", 7, &empty()).unwrap_err();
        assert!(err.contains("/nonexistent-dir/x-7.json"), "{err}");
        let long = vec![b'a'; FixedPath::CAPACITY + 1];
        assert!(write_report(&long, 1, &empty()).unwrap_err().contains("longer than"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
