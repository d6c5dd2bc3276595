//! The `leak-report` command: every subcommand on the fixtures, and every kind of bad input
//! (exit status 2 with a one-line message naming the file, never a panic).

mod common;

use common::{arg, cmd, fixture, scratch};
use predicates::prelude::*;
use predicates::str::contains;
use std::path::Path;

#[test]
fn help_explains_each_subcommand() {
    let out = cmd().arg("--help").assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for sub in ["show", "html", "flamegraph", "folded", "pprof", "dhat", "diff", "check", "symbolize"] {
        assert!(text.contains(&format!("  {sub}")), "--help lacks {sub}:\n{text}");
    }
    cmd().args(["check", "--help"]).assert().success().stdout(contains("--baseline").and(contains("sarif")));
}

#[test]
fn show_prints_groups_and_profiles_without_colour_off_a_terminal() {
    cmd()
        .args(["show", arg(&fixture("leaks.json"))])
        .assert()
        .success()
        .stdout(contains("Direct leak of 4096 byte(s) in 2 object(s) allocated from:"))
        .stdout(contains("(cyclic: a reference cycle)"))
        .stdout(contains("SUMMARY: HeapSweep: 4344 byte(s) leaked in 10 allocation(s)"))
        .stdout(contains("\x1b[").not());
    cmd()
        .args(["show", "--top", "1", arg(&fixture("profile.json"))])
        .assert()
        .success()
        .stdout(contains("Top sites by live bytes:").and(contains("app::cache::Cache::grow src/cache.rs:40")));
}

#[test]
fn writers_write_their_files() {
    let dir = scratch("writers");
    for (sub, file) in [("html", "out.html"), ("flamegraph", "out.svg"), ("pprof", "out.pb.gz"), ("dhat", "out.json")] {
        for input in ["leaks.json", "profile.json"] {
            let out = dir.join(format!("{input}-{file}"));
            cmd().args([sub, arg(&fixture(input)), "-o", arg(&out)]).assert().success().stdout("");
            let bytes = std::fs::read(&out).unwrap();
            assert!(bytes.len() > 100, "{sub} {input}: {} bytes", bytes.len());
        }
    }
    let html = std::fs::read_to_string(dir.join("leaks.json-out.html")).unwrap();
    assert!(html.contains("id=\"report-data\""));
    for outside in ["<script src", "<link", "src=\"http", "href=\"http", "@import", "fetch("] {
        assert!(!html.contains(outside), "the page loads nothing from outside, but has {outside}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn folded_weights_and_metrics() {
    cmd().args(["folded", arg(&fixture("leaks.json")), "--weight", "blocks"]).assert().success().stdout(contains(
        "app::main;app::cache::Cache::insert;app::cache::Cache::grow;alloc::vec::Vec<T,A>::with_capacity 2\n",
    ));
    cmd()
        .args(["folded", arg(&fixture("profile.json")), "--metric", "total"])
        .assert()
        .success()
        .stdout(contains("app::main;app::parse::read_all;alloc::vec::Vec<T,A>::reserve 1048576\n"));
}

#[test]
fn diff_text_and_json() {
    let (old, new) = (fixture("baseline.json"), fixture("leaks.json"));
    cmd()
        .args(["diff", arg(&old), arg(&new)])
        .assert()
        .success()
        .stdout(contains("GREW direct leak: 1024 -> 4096 byte(s)"));
    let out = cmd().args(["diff", arg(&old), arg(&new), "--format", "json"]).assert().success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let statuses: Vec<&str> = v["entries"].as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["grew", "new", "new", "gone"]);
    cmd()
        .args(["diff", arg(&old), arg(&fixture("profile.json"))])
        .assert()
        .code(2)
        .stderr(contains("cannot compare a leak report with a heap profile"));
}

#[test]
fn check_subcommand_exit_status_and_formats() {
    let (report, base, empty) = (fixture("leaks.json"), fixture("baseline.json"), fixture("empty.json"));
    cmd().args(["check", arg(&empty)]).assert().code(0).stdout(contains("PASS"));
    cmd().args(["check", arg(&report)]).assert().code(1).stdout(contains("FAIL: 4344 leaked bytes"));
    cmd().args(["check", arg(&report), "--max-leaked-bytes", "4344"]).assert().code(0);
    cmd()
        .args(["check", arg(&report), "--baseline", arg(&base)])
        .assert()
        .code(1)
        .stdout(contains("3216 new or grown"));
    cmd().args(["check", arg(&report), "--baseline", arg(&base), "--max-leaked-bytes", "3216"]).assert().code(0);
    cmd()
        .args(["check", arg(&report), "--baseline", arg(&report)])
        .assert()
        .code(0)
        .stdout(contains("PASS: 0 new or grown"));
    cmd()
        .current_dir("/")
        .args(["check", arg(&report), "--format", "github"])
        .assert()
        .code(1)
        .stdout(contains("::error file=src/cache.rs,line=40,title=HeapSweep leak::direct leak of 4096 byte(s)"));
    cmd().args(["check", arg(&report), "--format", "junit"]).assert().code(1).stdout(contains("<failure message="));
    cmd()
        .args(["check", arg(&report), "--format", "sarif"])
        .assert()
        .code(1)
        .stdout(contains("\"version\": \"2.1.0\""));
    cmd()
        .args(["check", arg(&fixture("profile.json"))])
        .assert()
        .code(2)
        .stderr(contains("profile.json: a heap profile, where a leak report was expected"));
}

/// A report whose leak check failed fails `check` in every format, with the failure in
/// the output, however lenient the limits and whatever the baseline; an ok clean report
/// still passes.
#[test]
fn check_subcommand_fails_a_report_whose_leak_check_failed() {
    let (failed, empty) = (fixture("check-failed.json"), fixture("empty.json"));
    let message = "thread 4243 did not stop within 2000 ms";
    let lenient = ["--max-leaked-bytes", "1000000", "--baseline", arg(&failed)];
    for (format, says) in [
        ("text", "FAIL: the leak check could not run to the end (threads_not_stopped): "),
        ("github", "::error title=HeapSweep leak check failed::the leak check could not run to the end"),
        ("junit", "<testcase name=\"leak check\" classname=\"heapsweep\">"),
        ("sarif", "\"executionSuccessful\": false"),
    ] {
        let out = cmd()
            .args(["check", arg(&failed), "--format", format])
            .args(lenient)
            .assert()
            .code(1)
            .stdout(contains(says).and(contains(message)).and(contains("blocks or ignores SIGPWR")));
        let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        match format {
            "junit" => {
                let doc = roxmltree::Document::parse(&stdout).unwrap();
                let failure = doc.descendants().find(|n| n.has_tag_name("failure")).expect("a failing test case");
                assert_eq!(failure.parent().unwrap().attribute("name"), Some("leak check"));
                assert!(failure.attribute("message").unwrap().contains(message));
                let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).unwrap();
                assert_eq!((suite.attribute("tests"), suite.attribute("failures")), (Some("1"), Some("1")));
            }
            "sarif" => {
                let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
                let invocation = &v["runs"][0]["invocations"][0];
                assert_eq!(invocation["executionSuccessful"], false);
                let note = &invocation["toolExecutionNotifications"][0];
                assert_eq!(note["level"], "error");
                assert!(note["message"]["text"].as_str().unwrap().contains(message));
                assert_eq!(note["descriptor"]["id"], v["runs"][0]["tool"]["driver"]["notifications"][0]["id"]);
            }
            _ => {}
        }
        cmd().args(["check", arg(&empty), "--format", format]).assert().code(0).stdout(contains(message).not());
    }
    // With leaks found before the failure, within the allowance: still a failure, the
    // leaks as warnings.
    cmd()
        .args(["check", arg(&fixture("check-failed-leaks.json")), "--format", "github"])
        .args(["--max-leaked-bytes", "4344"])
        .assert()
        .code(1)
        .stdout(contains("::error title=").and(contains("::warning file=src/cache.rs,line=40")));
}

#[test]
fn show_html_and_diff_say_the_leak_check_failed() {
    let failed = fixture("check-failed.json");
    cmd().args(["show", arg(&failed)]).assert().success().stdout(
        contains("==7==ERROR: HeapSweep has encountered a fatal error")
            .and(contains("==7==thread 4243 did not stop within 2000 ms"))
            .and(contains("SUMMARY: HeapSweep: the leak check failed (threads_not_stopped); no leak report."))
            .and(contains("No leaks found").not()),
    );
    let dir = scratch("check-failed");
    let page = dir.join("failed.html");
    cmd().args(["html", arg(&failed), "-o", arg(&page)]).assert().success();
    let html = std::fs::read_to_string(&page).unwrap();
    let banner = &html[html.find("<div class=\"check-failed\"").expect("the banner")..];
    let banner = &banner[..banner.find("</div>").unwrap()];
    assert!(banner.contains("could not run to the end (threads_not_stopped)"), "{banner}");
    assert!(banner.contains("thread 4243 did not stop within 2000 ms") && banner.contains("HINT: threads are stopped"));
    assert!(html.find("id=\"check-failed\"") < html.find("id=\"summary\""), "at the top of the summary");
    let ok_page = dir.join("ok.html");
    cmd().args(["html", arg(&fixture("empty.json")), "-o", arg(&ok_page)]).assert().success();
    assert!(!std::fs::read_to_string(&ok_page).unwrap().contains("check-failed\""));
    std::fs::remove_dir_all(dir).unwrap();

    let (ok, failed_leaks) = (fixture("leaks.json"), fixture("check-failed-leaks.json"));
    cmd().args(["diff", arg(&failed_leaks), arg(&ok)]).assert().success().stdout(
        contains("WARNING: in the old report, the leak check could not run to the end (roots_unreadable)")
            .and(contains("0 changed, 6 unchanged (incomplete: a leak check failed, see above)."))
            .and(contains("in the new report").not()),
    );
    let out = cmd().args(["diff", arg(&ok), arg(&failed_leaks), "--format", "json"]).assert().success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["new_check_failure"]["kind"], "roots_unreadable");
    assert!(v.get("old_check_failure").is_none());
}

#[test]
fn symbolize_without_a_matching_module_warns_and_keeps_frames() {
    // The test's own executable is not a module of the fixture: a warning, no lookups.
    let me = std::env::current_exe().unwrap();
    cmd()
        .args(["symbolize", arg(&fixture("raw.json")), "--binary", arg(&me)])
        .assert()
        .success()
        .stderr(contains("no module of the report is this binary"))
        .stdout(contains("\"format\": \"heapsweep-leaks\""));
    cmd()
        .args(["symbolize", arg(&fixture("raw.json")), "--binary", "/nonexistent/app"])
        .assert()
        .code(2)
        .stderr(contains("/nonexistent/app: cannot read debug information"));
}

/// One bad input: the file's text, and what the error must say.
fn bad(dir: &Path, name: &str, text: &str, message: &str) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    for sub in ["show", "folded"] {
        cmd()
            .args([sub, arg(&path)])
            .assert()
            .code(2)
            .stdout("")
            .stderr(
                contains(format!("leak-report: {}: ", path.display()))
                    .and(contains(message))
                    .and(contains("panicked").not()),
            )
            .stderr(predicate::function(|s: &str| s.lines().count() == 1));
    }
}

#[test]
fn bad_inputs_exit_2_with_one_line_naming_the_file() {
    let dir = scratch("bad");
    let leaks = std::fs::read_to_string(fixture("leaks.json")).unwrap();
    let profile = std::fs::read_to_string(fixture("profile.json")).unwrap();
    bad(&dir, "truncated.json", &leaks[..leaks.len() / 2], "EOF while parsing");
    bad(&dir, "garbage.json", "hello", "not a HeapSweep report or profile");
    bad(&dir, "wrong-format.json", &leaks.replace("heapsweep-leaks", "other-tool"), "format is \"other-tool\"");
    bad(&dir, "no-format.json", "{\"version\": 1}", "no \"format\" field");
    bad(
        &dir,
        "wrong-version.json",
        &leaks.replacen("\"version\": 1", "\"version\": 7", 1),
        "unsupported report version 7",
    );
    bad(
        &dir,
        "wrong-profile-version.json",
        &profile.replacen("\"version\": 1", "\"version\": 2", 1),
        "unsupported profile version 2",
    );
    bad(
        &dir,
        "bad-sum.json",
        &leaks.replacen("\"leaked_bytes\": 4344", "\"leaked_bytes\": 4345", 1),
        "the summary says 4345",
    );
    bad(
        &dir,
        "bad-profile.json",
        &profile.replacen("\"live_bytes\": 36964", "\"live_bytes\": 99", 1),
        "the summary says 99",
    );
    let failed = std::fs::read_to_string(fixture("check-failed.json")).unwrap();
    bad(
        &dir,
        "bad-state.json",
        &failed.replace("\"state\": \"failed\"", "\"state\": \"partial\""),
        "status: unknown variant `partial`",
    );
    bad(
        &dir,
        "bad-kind.json",
        &failed.replace("\"threads_not_stopped\"", "\"cosmic_rays\""),
        "status: unknown variant `cosmic_rays`",
    );
    let latin1 = dir.join("latin1.json");
    std::fs::write(&latin1, b"{\"program\": \"caf\xe9\"}").unwrap();
    cmd().args(["show", arg(&latin1)]).assert().code(2).stderr(contains("latin1.json: not UTF-8 text (byte 16)"));
    let missing = dir.join("missing.json");
    cmd().args(["show", arg(&missing)]).assert().code(2).stderr(contains("missing.json: No such file or directory"));
    cmd().args(["show", arg(&dir)]).assert().code(2).stderr(contains(arg(&dir)));
    std::fs::remove_dir_all(dir).unwrap();
}

/// The library's reader gives the same one-line errors naming the file.
#[test]
fn read_report_errors_name_the_file() {
    let dir = scratch("read-report");
    let missing = dir.join("missing.json");
    assert!(leak_report::read_report(&missing).unwrap_err().contains("missing.json"));
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{ truncated").unwrap();
    let e = leak_report::read_report(&bad).unwrap_err();
    assert!(e.contains("bad.json") && e.contains("not a HeapSweep leak report"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unwritable_output_exits_2() {
    for sub in ["html", "flamegraph", "pprof", "dhat"] {
        cmd().args([sub, arg(&fixture("leaks.json")), "-o", "/nonexistent-dir/out"]).assert().code(2).stderr(
            contains("cannot write /nonexistent-dir/out: No such file or directory").and(contains("panicked").not()),
        );
    }
    cmd()
        .args([
            "symbolize",
            arg(&fixture("raw.json")),
            "--binary",
            arg(&std::env::current_exe().unwrap()),
            "-o",
            "/nonexistent-dir/x",
        ])
        .assert()
        .code(2)
        .stderr(contains("cannot write /nonexistent-dir/x"));
}

#[test]
fn bad_arguments_exit_2() {
    cmd().args(["show"]).assert().code(2).stderr(contains("FILE"));
    cmd().args(["folded", arg(&fixture("leaks.json")), "--weight", "pounds"]).assert().code(2);
}
