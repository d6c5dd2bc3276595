//! Golden tests: every renderer on the checked-in fixtures, compared with the checked-in
//! outputs under `tests/golden/` (`UPDATE_GOLDEN=1 cargo test -p leak-report` rewrites
//! them after a deliberate change).

mod common;

use common::{golden, input};
use leak_report::gate::{render_gate, GateFormat, GateOptions};
use leak_report::{Input, Measure, Metric, TextOptions, Weight};
use std::path::PathBuf;

const INPUTS: [&str; 5] = ["leaks", "empty", "profile", "raw", "cycles"];

#[test]
fn text() {
    for name in INPUTS {
        let out = leak_report::render_text(&input(&format!("{name}.json")), &TextOptions { color: false, top: 10 });
        golden(&format!("{name}.txt"), &out);
    }
    // A profile written with verbosity=2: why its largest sites are alive.
    let out = leak_report::render_text(&input("profile-retention.json"), &TextOptions { color: false, top: 10 });
    golden("profile-retention.txt", &out);
    let colored = leak_report::render_text(&input("leaks.json"), &TextOptions { color: true, top: 2 });
    golden("leaks-color-top2.txt", &colored);
    // A leak check that failed: with no group found, and with the groups found before.
    for name in ["check-failed", "check-failed-leaks"] {
        let out = leak_report::render_text(&input(&format!("{name}.json")), &TextOptions { color: false, top: 10 });
        golden(&format!("{name}.txt"), &out);
    }
}

#[test]
fn folded() {
    let measures = [
        ("bytes", Measure { weight: Weight::Bytes, metric: Metric::Live }),
        ("blocks", Measure { weight: Weight::Blocks, metric: Metric::Live }),
        ("total-bytes", Measure { weight: Weight::Bytes, metric: Metric::Total }),
        ("peak-bytes", Measure { weight: Weight::Bytes, metric: Metric::Peak }),
    ];
    for name in INPUTS {
        for (m, measure) in measures {
            // A leak report has one metric: leaked.
            if !name.starts_with("profile") && m.contains('-') {
                continue;
            }
            golden(&format!("{name}-{m}.folded"), &leak_report::to_folded(&input(&format!("{name}.json")), measure));
        }
    }
}

#[test]
fn flamegraph() {
    for name in ["leaks", "empty", "profile"] {
        let svg = leak_report::to_flamegraph_svg(&input(&format!("{name}.json")), Measure::default()).unwrap();
        golden(&format!("{name}.svg"), &String::from_utf8(svg).unwrap());
    }
}

#[test]
fn dhat() {
    for name in ["leaks", "empty", "profile"] {
        golden(&format!("{name}.dhat.json"), &leak_report::to_dhat(&input(&format!("{name}.json"))));
    }
}

#[test]
fn pprof() {
    for name in ["leaks", "profile"] {
        let p = leak_report::pprof::build_profile(&input(&format!("{name}.json")));
        golden(&format!("{name}.pprof.txt"), &format!("{p:#?}\n"));
    }
}

#[test]
fn html_data() {
    for name in ["leaks", "empty", "profile", "profile-retention"] {
        golden(&format!("{name}.html-data.json"), &leak_report::html::data::page_data(&input(&format!("{name}.json"))));
    }
}

#[test]
fn diff() {
    let d = leak_report::diff(&input("baseline.json"), &input("leaks.json")).unwrap();
    golden("diff.txt", &leak_report::diff::render_diff_text(&d));
    golden("diff.json", &serde_json::to_string_pretty(&d).unwrap());
    let d = leak_report::diff(&input("baseline.json"), &input("check-failed-leaks.json")).unwrap();
    golden("diff-check-failed.txt", &leak_report::diff::render_diff_text(&d));
}

#[test]
fn check_subcommand() {
    let Input::Leaks(report) = input("leaks.json") else { panic!("a leak report") };
    let Input::Leaks(baseline) = input("baseline.json") else { panic!("a leak report") };
    let plain = GateOptions { baseline: None, max_leaked_bytes: 0, workdir: PathBuf::from("/home/dev/app") };
    let based = GateOptions { baseline: Some(baseline), max_leaked_bytes: 100, ..plain.clone() };
    // The leak check failed: the gate fails though its leaks are within the allowance.
    let Input::Leaks(failed) = input("check-failed-leaks.json") else { panic!("a leak report") };
    let lenient = GateOptions { max_leaked_bytes: 4344, ..plain.clone() };
    for (name, format) in [
        ("text", GateFormat::Text),
        ("github", GateFormat::Github),
        ("junit", GateFormat::Junit),
        ("sarif", GateFormat::Sarif),
    ] {
        golden(&format!("check.{name}"), &render_gate(&leak_report::gate(&report, &plain), format));
        golden(&format!("check-baseline.{name}"), &render_gate(&leak_report::gate(&report, &based), format));
        golden(&format!("check-failed.{name}"), &render_gate(&leak_report::gate(&failed, &lenient), format));
    }
}
