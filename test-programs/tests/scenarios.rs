//! Runs every scenario program of `src/bin/` as a subprocess with
//! `HEAPSWEEP=report=<tmp>/<name>.json[,<OPTIONS>]` and compares the JSON report, the exit
//! status and stderr with the expectations written at the top of the program.
//!
//! Expectation lines (comments at the top of each program):
//! - `// EXPECT: key=value ...` — summary fields, exact; `clean` means no leak at all;
//!   `key>=value` a lower bound; `no-report` means no report file may be written.
//! - `// EXPECT-GROUP: kind=direct cyclic=false blocks=N bytes=N function~=TEXT` — the
//!   leak groups matching `kind`, `cyclic` and (if given) having a frame whose function
//!   contains TEXT, summed, have these `blocks` and `bytes` (a loop the compiler unrolls
//!   may split one site into several groups; the sum is what the program leaked).
//! - `// EXPECT-ORDER: B1 B2 ...` — the first groups' `bytes`, in order.
//! - `// EXPECT-EXIT: N` — the exit status.
//! - `// OPTIONS: k=v,...` — more `HEAPSWEEP` keys (paths relative to this crate).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

struct Scenario {
    name: String,
    lines: Vec<String>,
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scenarios() -> Vec<Scenario> {
    let mut v: Vec<Scenario> = std::fs::read_dir(crate_dir().join("src/bin"))
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_stem()?.to_str()?.to_string();
            if p.extension()? != "rs" || name == "demo" {
                return None;
            }
            let text = std::fs::read_to_string(&p).ok()?;
            let lines = text
                .lines()
                .take_while(|l| l.starts_with("//"))
                .filter_map(|l| l.strip_prefix("// "))
                .map(String::from)
                .collect();
            Some(Scenario { name, lines })
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

fn exe(name: &str) -> PathBuf {
    // Integration tests run from target/<profile>/deps; the package's binaries are built
    // into target/<profile>.
    let me = std::env::current_exe().unwrap();
    me.parent().unwrap().parent().unwrap().join(name)
}

fn directive<'a>(s: &'a Scenario, key: &str) -> Vec<&'a str> {
    s.lines.iter().filter_map(|l| l.strip_prefix(key)).map(str::trim).collect()
}

struct Outcome {
    status: Option<i32>,
    stderr: String,
    report: Option<Value>,
}

fn run(s: &Scenario, dir: &Path, tag: &str) -> Result<Outcome, String> {
    let report = dir.join(format!("{}-{tag}.json", s.name));
    let _ = std::fs::remove_file(&report);
    let mut env = format!("report={}", report.display());
    for o in directive(s, "OPTIONS:") {
        env.push(',');
        env.push_str(o);
    }
    let mut child = Command::new(exe(&s.name))
        .env("HEAPSWEEP", env)
        .current_dir(crate_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    let started = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            return Err("timed out after 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    use std::io::Read;
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    let report = std::fs::read_to_string(&report)
        .ok()
        .map(|t| serde_json::from_str(&t).map_err(|e| format!("report is not JSON: {e}")))
        .transpose()?;
    Ok(Outcome { status: status.code(), stderr, report })
}

fn groups_matching<'a>(report: &'a Value, filters: &[(String, String)]) -> Vec<&'a Value> {
    report["leaks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|g| {
                    filters.iter().all(|(k, v)| match k.as_str() {
                        "kind" => g["kind"] == *v.as_str(),
                        "cyclic" => g["cyclic"].as_bool().map(|b| b.to_string()) == Some(v.clone()),
                        "function~" => g["stack"].as_array().is_some_and(|st| {
                            st.iter().any(|f| f["function"].as_str().is_some_and(|n| n.contains(v.as_str())))
                        }),
                        _ => true,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pairs(spec: &str) -> Vec<(String, String)> {
    spec.split_whitespace().filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))).collect()
}

/// Compares one run with the expectations; returns the mismatches.
fn compare(s: &Scenario, o: &Outcome) -> Vec<String> {
    let mut bad = Vec::new();
    for e in directive(s, "EXPECT-EXIT:") {
        if o.status.map(|c| c.to_string()).as_deref() != Some(e) {
            bad.push(format!("exit status {:?}, expected {e}", o.status));
        }
    }
    let expect = directive(s, "EXPECT:").join(" ");
    if expect.contains("no-report") {
        if o.report.is_some() {
            bad.push("a report was written".into());
        }
        return bad;
    }
    let Some(r) = &o.report else {
        bad.push(format!("no report written; stderr: {}", o.stderr));
        return bad;
    };
    let summary = &r["summary"];
    for word in expect.split_whitespace() {
        if word == "clean" {
            if r["leaks"].as_array().is_none_or(|a| !a.is_empty()) {
                bad.push(format!("expected no leak, got {}", r["leaks"]));
            }
        } else if let Some((k, v)) = word.split_once(">=") {
            let got = summary[k].as_u64().unwrap_or(0);
            if got < v.parse().unwrap_or(u64::MAX) {
                bad.push(format!("summary.{k} = {got}, expected >= {v}"));
            }
        } else if let Some((k, v)) = word.split_once('=') {
            if summary[k].as_u64().map(|g| g.to_string()).as_deref() != Some(v) {
                bad.push(format!("summary.{k} = {}, expected {v}", summary[k]));
            }
        }
    }
    for spec in directive(s, "EXPECT-GROUP:") {
        let all = pairs(spec);
        let filters: Vec<_> =
            all.iter().filter(|(k, _)| matches!(k.as_str(), "kind" | "cyclic" | "function~")).cloned().collect();
        let groups = groups_matching(r, &filters);
        for (k, v) in all.iter().filter(|(k, _)| k == "blocks" || k == "bytes") {
            let sum: u64 = groups.iter().map(|g| g[k.as_str()].as_u64().unwrap_or(0)).sum();
            if sum.to_string() != *v {
                bad.push(format!("groups [{spec}]: {k} = {sum}, expected {v}"));
            }
        }
    }
    for order in directive(s, "EXPECT-ORDER:") {
        let want: Vec<&str> = order.split_whitespace().collect();
        let got: Vec<String> =
            r["leaks"].as_array().into_iter().flatten().take(want.len()).map(|g| g["bytes"].to_string()).collect();
        if got != want {
            bad.push(format!("group order {got:?}, expected {want:?}"));
        }
    }
    let leaked = r["leaks"].as_array().is_some_and(|a| !a.is_empty());
    if o.status.is_none() {
        bad.push(format!("killed by a signal; stderr: {}", o.stderr));
    }
    if leaked != o.stderr.contains("SUMMARY: HeapSweep:") {
        bad.push(format!("stderr {} the summary line", if leaked { "lacks" } else { "has" }));
    }
    if !leaked && o.stderr.contains("heapsweep") {
        bad.push(format!("a clean run printed: {}", o.stderr));
    }
    bad
}

fn tmp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("heapsweep-scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The two tests run their programs one at a time: a scenario's outcome must not depend
/// on what else the machine runs, but conservative scanning makes a rare stale word a
/// possibility under load (see BENCHMARKS.md and the notes), and CI must be exact.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn every_scenario_matches_its_expected_report() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let all = scenarios();
    assert!(all.len() >= 30, "only {} scenarios", all.len());
    let dir = tmp_dir();
    let queue = Arc::new(Mutex::new(all));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..1)
        .map(|_| {
            let (queue, failures, dir) = (queue.clone(), failures.clone(), dir.clone());
            std::thread::spawn(move || loop {
                let Some(s) = queue.lock().unwrap().pop() else { break };
                let problems = match run(&s, &dir, "a") {
                    Ok(o) => compare(&s, &o),
                    Err(e) => vec![e],
                };
                let verdict = if problems.is_empty() { "ok" } else { "MISMATCH" };
                println!("scenario {:<28} {verdict}", s.name);
                if !problems.is_empty() {
                    failures.lock().unwrap().push(format!("{}:\n    {}", s.name, problems.join("\n    ")));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{} scenario(s) did not match:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn results_are_identical_in_three_runs() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tmp_dir().join("repeat");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["leaked_list", "rc_two_cycle", "clean_running_thread"] {
        let s = scenarios().into_iter().find(|s| s.name == name).unwrap();
        // What was found leaked must not vary; how many blocks were reachable may (a running
        // thread may hold one more or one less temporary at the moment of the check).
        let leak_findings = |r: Value| {
            let s = &r["summary"];
            let groups: Vec<String> = r["leaks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| format!("{} {} {} {}", g["kind"], g["cyclic"], g["blocks"], g["bytes"]))
                .collect();
            let k = ["leaked_blocks", "leaked_bytes", "direct_blocks", "indirect_blocks", "cyclic_blocks"];
            format!("{:?} {groups:?}", k.map(|k| s[k].to_string()))
        };
        let summaries: Vec<String> = (0..3)
            .map(|i| run(&s, &dir, &i.to_string()).ok().and_then(|o| o.report).map(leak_findings).unwrap_or_default())
            .collect();
        assert!(!summaries[0].is_empty(), "{name}: no report");
        assert!(summaries.iter().all(|x| *x == summaries[0]), "{name}: {summaries:#?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
