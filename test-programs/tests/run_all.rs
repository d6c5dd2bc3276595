//! Runs every scenario program of `src/bin/` as a subprocess and compares what it did
//! (exit status, JSON report, stderr) with the expectations written at its top; see
//! `README.md` for the syntax and `support/` for the parts.
//!
//! Cargo builds the package's programs for its integration tests; `CARGO_BIN_EXE_<name>`
//! gives their paths, so every scenario must be listed in [`scenarios!`] below (a test
//! checks that the list and `src/bin/` agree).
//!
//! ```sh
//! cargo test -p test-programs --test run_all -- --nocapture    # one line per scenario
//! HEAPSWEEP_SCENARIOS=leak_linked_list,clean_oncelock cargo test -p test-programs --test run_all
//! HEAPSWEEP_SCENARIO_JOBS=1 cargo test -p test-programs --test run_all   # one at a time
//! ```

mod support;

use std::time::Duration;
use support::compare::{compare, fingerprint};
use support::expect::{self, Expectation};
use support::run::{self, crate_dir, parallel_map, Outcome};

macro_rules! scenarios {
    ($($name:ident)*) => {
        /// Every scenario program: its name, and where cargo built it.
        const SCENARIOS: &[(&str, &str)] =
            &[$((stringify!($name), env!(concat!("CARGO_BIN_EXE_", stringify!($name))))),*];
    };
}

scenarios! {
    clean_arc_into_raw clean_churn clean_detached_thread clean_disabled clean_freed_everything
    clean_ignored clean_interior_pointer clean_lazylock clean_million_blocks clean_named_thread
    clean_oncelock clean_process_exit_locals clean_rc_weak_backlink clean_register_root
    clean_static_hashmap clean_tagged_pointer clean_thread_blocked_on_channel
    clean_thread_local_main clean_thread_local_running clean_thread_parked
    leak_64mib leak_arc_two_cycle leak_box_leak leak_box_pair_cycle leak_cycle_off_head
    leak_forget_box leak_from_exited_thread leak_hashmap leak_interior_indirect leak_linked_list
    leak_many_small leak_overaligned_huge leak_overaligned_page leak_rc_hundred_cycle
    leak_rc_self_cycle leak_rc_two_cycle leak_realloc_grown leak_several_sites leak_stale_self_address leak_string
    leak_then_process_exit leak_vec_capacity leak_vec_of_boxes
    opt_baseline_known opt_baseline_new opt_check_at_exit_off opt_exitcode_zero opt_partly_suppressed opt_stack_depth_zero
    opt_suppressed_leak
}

/// Programs in `src/bin/` that are not scenarios.
const NOT_SCENARIOS: &[&str] = &["demo", "stacks_deep_chain", "sweep_service"];

/// The scenarios `repeated_runs_agree` runs three times each: a leak with both kinds and
/// a cycle, a leak made on a thread that has exited, and a clean program whose blocks a
/// running thread holds.
const REPEATED: [&str; 3] = ["leak_cycle_off_head", "leak_from_exited_thread", "clean_thread_blocked_on_channel"];

/// A scenario, ready to run.
struct Scenario {
    name: &'static str,
    exe: &'static str,
    expect: Result<Expectation, String>,
}

fn load(name: &'static str, exe: &'static str) -> Scenario {
    let path = crate_dir().join("src/bin").join(format!("{name}.rs"));
    let expect = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
        .and_then(|source| expect::parse(&source).map_err(|e| format!("bad expectations: {e}")));
    Scenario { name, exe, expect }
}

/// The listed scenarios, narrowed by `HEAPSWEEP_SCENARIOS` (names separated by commas).
fn selected() -> Vec<Scenario> {
    let only = std::env::var("HEAPSWEEP_SCENARIOS").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o.split(',').any(|w| w.trim() == name));
    SCENARIOS.iter().filter(|(name, _)| wanted(name)).map(|&(name, exe)| load(name, exe)).collect()
}

/// Runs one scenario once and returns its mismatches.
fn check(s: &Scenario, dir: &std::path::Path, tag: &str) -> (Vec<String>, Option<Outcome>) {
    let e = match &s.expect {
        Ok(e) => e,
        Err(msg) => return (vec![msg.clone()], None),
    };
    match run::run(s.exe, s.name, &e.options, dir, tag) {
        Ok(o) => (compare(e, &o), Some(o)),
        Err(msg) => (vec![msg], None),
    }
}

/// One line for the per-scenario summary.
fn summary_line(s: &Scenario, problems: &[String], o: Option<&Outcome>) -> String {
    let verdict = if problems.is_empty() { "ok" } else { "MISMATCH" };
    let time = o.map_or(Duration::ZERO, |o| o.elapsed).as_secs_f64();
    let what = match o.and_then(|o| o.report.as_ref()) {
        Some(Ok(v)) => format!(
            "{} leaked block(s), {} byte(s), {} group(s); {} reachable",
            v["summary"]["leaked_blocks"],
            v["summary"]["leaked_bytes"],
            v["leaks"].as_array().map_or(0, Vec::len),
            v["summary"]["reachable_blocks"]
        ),
        Some(Err(_)) => "unreadable report".into(),
        None => "no report".into(),
    };
    let status = o.and_then(|o| o.status).map_or("-".to_string(), |c| c.to_string());
    format!("scenario {:<34} {verdict:<8} {time:>6.2} s  exit {status:<3} {what}", s.name)
}

#[test]
fn every_scenario_matches_its_expectations() {
    let scenarios = selected();
    let dir = run::scratch_dir("all");
    let results = parallel_map(&scenarios, |s| {
        let (problems, outcome) = check(s, &dir, "run");
        println!("{}", summary_line(s, &problems, outcome.as_ref()));
        problems
    });
    let mut failures = Vec::new();
    for (s, problems) in scenarios.iter().zip(&results) {
        if !problems.is_empty() {
            failures.push(format!("{}:\n  - {}", s.name, problems.join("\n  - ")));
        }
    }
    if failures.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenario(s) did not match (reports kept in {}):\n\n{}\n",
        failures.len(),
        scenarios.len(),
        dir.display(),
        failures.join("\n\n")
    );
}

#[test]
fn repeated_runs_agree() {
    let scenarios: Vec<Scenario> = REPEATED
        .iter()
        .map(|name| {
            let &(name, exe) = SCENARIOS.iter().find(|(n, _)| n == name).expect("a listed scenario");
            load(name, exe)
        })
        .collect();
    let runs: Vec<(usize, usize)> = (0..scenarios.len()).flat_map(|s| (0..3).map(move |i| (s, i))).collect();
    let dir = run::scratch_dir("repeat");
    let outcomes = parallel_map(&runs, |&(s, i)| check(&scenarios[s], &dir, &i.to_string()));
    let mut failures = Vec::new();
    for (s, scenario) in scenarios.iter().enumerate() {
        let mine: Vec<_> = runs.iter().zip(&outcomes).filter(|((n, _), _)| *n == s).map(|(_, r)| r).collect();
        let prints: Vec<String> =
            mine.iter().map(|(_, o)| o.as_ref().map_or_else(|| "did not run".into(), fingerprint)).collect();
        if prints.iter().any(|p| *p != prints[0]) {
            failures.push(format!("{}: runs differ:\n    {}", scenario.name, prints.join("\n    ")));
        }
        if let Some((problems, _)) = mine.iter().find(|(p, _)| !p.is_empty()) {
            failures.push(format!("{}: a run did not match:\n  - {}", scenario.name, problems.join("\n  - ")));
        }
    }
    if failures.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every program of `src/bin/` is listed, so none is silently left out.
#[test]
fn every_program_is_listed() {
    let mut on_disk: Vec<String> = std::fs::read_dir(crate_dir().join("src/bin"))
        .expect("src/bin")
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".rs").map(str::to_string))
        .filter(|n| !NOT_SCENARIOS.contains(&n.as_str()))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = SCENARIOS.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "src/bin/ and the scenarios! list differ");
    assert!(listed.len() >= 32, "only {} scenarios", listed.len());
}
