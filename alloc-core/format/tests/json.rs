//! The report's JSON both ways: the contract's example reads, every field and status
//! round-trips in its exact form, and what a reader must refuse is refused (read with
//! `serde_json` and checked with `validate()`, as `leak-report` reads).

use heapsweep_format::profile::HeapProfile;
use heapsweep_format::report::{
    CheckFailure, CheckStatus, FailureKind, Frame, LeakGroup, LeakKind, LeakReport, RcCounts, RcKind, Summary,
    SuppressionUse,
};

/// The text read as a report, without the checks of `validate()`.
fn parse(text: &str) -> Result<LeakReport, String> {
    serde_json::from_str(text).map_err(|e| format!("not a HeapSweep leak report: {e}"))
}

/// What `leak-report` does with a file's text.
fn read(text: &str) -> Result<LeakReport, String> {
    let r = parse(text)?;
    r.validate()?;
    Ok(r)
}

fn empty() -> LeakReport {
    LeakReport::empty("p", 1)
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
    let r = parse(CONTRACT_EXAMPLE).unwrap();
    // Its numbers only illustrate: its one group does not add up to its summary.
    assert_eq!(r.validate(), Err("the leak groups add up to 1 leaked_blocks, the summary says 3".into()));
    assert_eq!((r.program.as_str(), r.pid), ("argv[0]", 1234));
    assert_eq!(r.summary.reachable_bytes, 8192);
    assert_eq!(r.summary.indirect_blocks, 2);
    let g = &r.leaks[0];
    assert_eq!((g.kind, g.cyclic, g.blocks, g.bytes, g.rc, g.stack_id), (LeakKind::Direct, false, 1, 32, None, None));
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
    assert!(read(&v9).unwrap_err().contains("version 9"));
    let other = CONTRACT_EXAMPLE.replace("heapsweep-leaks", "dhat");
    assert!(read(&other).unwrap_err().contains("\"dhat\""));
    assert!(read("{").unwrap_err().contains("not a HeapSweep leak report"));
    assert!(read("[]").unwrap_err().contains("not a HeapSweep leak report"));
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
        in_baseline: false,
    });
    r.suppressions.push(SuppressionUse { pattern: "x*y".into(), matched_blocks: 1, matched_bytes: 8 });
    r.summary = Summary {
        leaked_blocks: 2,
        leaked_bytes: 64,
        indirect_blocks: 2,
        cyclic_blocks: 2,
        suppressed_blocks: 1,
        ..Summary::default()
    };
    let text = r.to_json();
    assert_eq!(read(&text).unwrap(), r);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let raw = &v["leaks"][0]["stack"][0];
    assert_eq!(raw["ip"], "0x1234");
    assert!(raw["function"].is_null() && raw["file"].is_null() && raw["line"].is_null());
    assert!(raw.get("module").is_none());
    assert_eq!(v["leaks"][0]["kind"], "indirect");
    assert_eq!(v["leaks"][0]["rc"]["kind"], "Arc");
    assert_eq!(v["suppressions"][0]["matched_bytes"], 8);
    // Extras are left out when empty.
    let bare: serde_json::Value = serde_json::from_str(&empty().to_json()).unwrap();
    assert!(bare.get("suppressions").is_none());
}

fn failure(kind: FailureKind) -> CheckFailure {
    CheckFailure { kind, message: format!("{kind} happened"), hint: "do \"this\"".into() }
}

#[test]
fn the_status_is_always_written_right_after_pid() {
    let text = empty().to_json();
    assert!(text.contains("  \"pid\": 1,\n  \"status\": {\n    \"state\": \"ok\"\n  },\n  \"summary\": {"), "{text}");
    let ok: serde_json::Value = serde_json::to_value(CheckStatus::Ok).unwrap();
    assert_eq!(ok.to_string(), r#"{"state":"ok"}"#);
    let mut r = empty();
    r.status = CheckStatus::Failed(failure(FailureKind::ThreadsNotStopped));
    let text = r.to_json();
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
        let want = format!(r#"{{"state":"failed","kind":"{name}","message":"{name} happened","hint":"do \"this\""}}"#);
        assert_eq!(json, want);
        assert_eq!(serde_json::from_str::<CheckStatus>(&json).unwrap(), status);
        let mut r = empty();
        r.status = status.clone();
        let back = read(&r.to_json()).unwrap();
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
    assert!(parse(&with_status(r#"{"state": "ok"}"#)).is_ok());
    let failed = r#"{"state": "failed", "kind": "out_of_memory", "message": "m", "hint": "h"}"#;
    assert!(parse(&with_status(failed)).unwrap().check_failed());
    for (status, says) in [
        (r#"{"state": "partial"}"#, "partial"),
        (r#"{"state": "failed", "kind": "cosmic_rays", "message": "m", "hint": "h"}"#, "cosmic_rays"),
        (r#"{"state": "failed", "kind": "out_of_memory"}"#, "message"),
        (r#"{"kind": "out_of_memory"}"#, "state"),
        (r#""ok""#, "expected internally tagged enum"),
    ] {
        let e = parse(&with_status(status)).unwrap_err();
        assert!(e.contains("status: ") && e.contains(says), "{status}: {e}");
        // One position, where the status ends.
        assert_eq!(e.matches(" at line ").count(), 1, "{e}");
        assert!(e.contains(" at line 5 column "), "{e}");
    }
}

fn group(kind: LeakKind, cyclic: bool, blocks: u64, bytes: u64) -> LeakGroup {
    LeakGroup {
        kind,
        cyclic,
        blocks,
        bytes,
        stack: vec![Frame::unresolved(0x10)],
        rc: None,
        stack_id: None,
        reported_by_sweep: 0,
        in_baseline: false,
    }
}

/// A report whose summary agrees with its groups.
fn consistent() -> LeakReport {
    let mut r = empty();
    r.leaks = vec![
        group(LeakKind::Direct, true, 2, 64),
        group(LeakKind::Indirect, false, 3, 48),
        group(LeakKind::Direct, false, 1, 48),
    ];
    r.summary = Summary {
        leaked_blocks: 6,
        leaked_bytes: 160,
        direct_blocks: 3,
        indirect_blocks: 3,
        cyclic_blocks: 2,
        ..Summary::default()
    };
    r
}

#[test]
fn validate_names_the_first_broken_rule() {
    assert_eq!(consistent().validate(), Ok(()));
    assert_eq!(empty().validate(), Ok(()));
    let broken = |change: fn(&mut LeakReport)| {
        let mut r = consistent();
        change(&mut r);
        r.validate().unwrap_err()
    };
    assert!(broken(|r| r.format = "dhat".into()).contains("format is \"dhat\""));
    assert!(broken(|r| r.version = 2).contains("unsupported report version 2"));
    assert!(broken(|r| r.summary.direct_blocks = 4).contains("differ from leaked_blocks 6"));
    let e = broken(|r| r.leaks[0].bytes = 65);
    assert_eq!(e, "the leak groups add up to 161 leaked_bytes, the summary says 160");
    let e = broken(|r| r.leaks[0].kind = LeakKind::Indirect);
    assert_eq!(e, "the leak groups add up to 1 direct_blocks, the summary says 3");
    let e = broken(|r| r.leaks[1].cyclic = true);
    assert_eq!(e, "the leak groups add up to 5 cyclic_blocks, the summary says 2");
    let mut unsorted = consistent();
    unsorted.leaks.swap(0, 1);
    assert_eq!(unsorted.validate(), Ok(()), "any order of the groups reads");
    let e = broken(|r| {
        r.leaks.push(group(LeakKind::Direct, false, 0, 0));
    });
    assert_eq!(e, "leak group 3 has no blocks");
    // Counts near u64::MAX cannot overflow the sums into agreement.
    let e = broken(|r| {
        r.leaks[0].blocks = u64::MAX;
        r.leaks[1].blocks = 2;
    });
    assert!(e.contains("leaked_blocks"), "{e}");
}

#[test]
fn a_profile_is_checked_for_format_and_version_too() {
    let mut p = HeapProfile {
        format: HeapProfile::FORMAT.into(),
        version: 1,
        program: "p".into(),
        pid: 1,
        time_us: 0,
        summary: Default::default(),
        sites: vec![],
        timeline: vec![],
        modules: vec![],
        retention: vec![],
    };
    assert_eq!(p.validate(), Ok(()));
    let back: HeapProfile = serde_json::from_str(&p.to_json()).unwrap();
    assert_eq!(back, p);
    p.version = 3;
    assert!(p.validate().unwrap_err().contains("unsupported profile version 3"));
    p.version = 1;
    p.format = LeakReport::FORMAT.into();
    assert!(p.validate().unwrap_err().contains("expected \"heapsweep-profile\""));
}

#[test]
fn a_profiles_retention_chains_are_optional_read_back_and_checked() {
    use heapsweep_format::profile::{RetentionChain, RetentionRoot, RetentionStep, Site, SiteRetention};
    let site = Site {
        stack_id: Some(7),
        stack: vec![],
        total_blocks: 1,
        total_bytes: 64,
        live_blocks: 1,
        live_bytes: 64,
        peak_blocks: 1,
        peak_bytes: 64,
        max_live_bytes: 64,
        max_live_blocks: 1,
        lifetime_us: 0,
    };
    let mut p = HeapProfile {
        format: HeapProfile::FORMAT.into(),
        version: 1,
        program: "p".into(),
        pid: 1,
        time_us: 0,
        summary: heapsweep_format::profile::ProfileSummary::of_sites(std::slice::from_ref(&site), 0),
        sites: vec![site],
        timeline: vec![],
        modules: vec![],
        retention: vec![],
    };
    let without = p.to_json();
    assert!(!without.contains("retention"), "absent when empty: {without}");
    let root = RetentionRoot {
        kind: "globals".into(),
        start: "0x1000".into(),
        end: "0x2000".into(),
        word: Some("0x1010".into()),
        symbol: Some("app::CACHE+0x10".into()),
        stack: vec![],
    };
    let step = |address: &str, next_offset| RetentionStep {
        address: address.into(),
        size: 64,
        next_offset,
        stack: vec![Frame { function: Some("app::grow".into()), ..Frame::unresolved(0x55) }],
    };
    p.retention.push(SiteRetention {
        stack_id: 7,
        address: "0x7f00".into(),
        size: 64,
        chain: Some(RetentionChain { root, steps: vec![step("0x7e00", Some(8)), step("0x7f00", None)] }),
        note: None,
    });
    assert_eq!(p.validate(), Ok(()));
    let back: HeapProfile = serde_json::from_str(&p.to_json()).unwrap();
    assert_eq!(back, p);
    // A profile without the field (an older writer's) reads as before.
    let old: HeapProfile = serde_json::from_str(&without).unwrap();
    assert!(old.retention.is_empty());
    p.retention[0].stack_id = 8;
    assert!(p.validate().unwrap_err().contains("no site has stack_id 8"));
}
