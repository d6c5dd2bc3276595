//! Round trips: each machine-readable output is read back by an independent parser and its
//! totals checked against the input (pprof through prost, DHAT through serde_json and the
//! checks of DHAT's own viewer, SVG and JUnit through an XML parser, SARIF as JSON).

mod common;

use common::input;
use leak_report::gate::{render_gate, GateFormat, GateOptions};
use leak_report::pprof::decode_pprof;
use leak_report::{Input, Measure};
use serde_json::Value;
use std::collections::HashSet;

#[test]
fn pprof_decodes_with_the_inputs_totals() {
    for name in ["leaks.json", "profile.json", "empty.json", "raw.json"] {
        let inp = input(name);
        let bytes = leak_report::to_pprof(&inp).unwrap();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b], "{name}: gzipped");
        let p = decode_pprof(&bytes).unwrap();
        let s = |i: i64| p.string_table[i as usize].as_str();
        assert_eq!(p.string_table[0], "");
        let types: Vec<(&str, &str)> = p.sample_type.iter().map(|t| (s(t.r#type), s(t.unit))).collect();
        let want = [
            ("alloc_objects", "count"),
            ("alloc_space", "bytes"),
            ("inuse_objects", "count"),
            ("inuse_space", "bytes"),
        ];
        assert_eq!(types, want);
        assert_eq!(s(p.default_sample_type), "inuse_space");
        let total = |k: usize| p.sample.iter().map(|x| x.value[k]).sum::<i64>() as u64;
        let (alloc, inuse, groups) = match &inp {
            Input::Leaks(r) => (
                (r.leaked_blocks(), r.leaked_bytes()),
                (r.summary.leaked_blocks, r.summary.leaked_bytes),
                r.leaks.len(),
            ),
            Input::Profile(p) => (
                (p.summary.total_blocks, p.summary.total_bytes),
                (p.summary.live_blocks, p.summary.live_bytes),
                p.sites.len(),
            ),
        };
        assert_eq!((total(0), total(1)), alloc, "{name}: alloc totals");
        assert_eq!((total(2), total(3)), inuse, "{name}: inuse totals");
        assert_eq!(p.sample.len(), groups, "{name}: one sample per group or site");
        // Ids are sequential from 1 and every reference resolves.
        for (i, l) in p.location.iter().enumerate() {
            assert_eq!(l.id, i as u64 + 1);
            assert!(l.mapping_id as usize <= p.mapping.len());
            assert!(l.line.iter().all(|ln| ln.function_id >= 1 && ln.function_id as usize <= p.function.len()));
        }
        for (i, f) in p.function.iter().enumerate() {
            assert_eq!(f.id, i as u64 + 1);
        }
        assert!(p.sample.iter().all(|x| x.value.len() == 4 && !x.location_id.is_empty()));
        assert!(p.sample.iter().flat_map(|x| &x.location_id).all(|&id| id >= 1 && id as usize <= p.location.len()));
    }
}

#[test]
fn pprof_keeps_stacks_mappings_and_inlined_lines() {
    let p = decode_pprof(&leak_report::to_pprof(&input("leaks.json")).unwrap()).unwrap();
    let s = |i: i64| p.string_table[i as usize].as_str();
    // The first sample is the cache group: leaf first, Vec::with_capacity inlined into
    // Cache::grow at one address, so one location with two lines, innermost first.
    let leaf = &p.location[p.sample[0].location_id[0] as usize - 1];
    let names: Vec<&str> = leaf.line.iter().map(|l| s(p.function[l.function_id as usize - 1].name)).collect();
    assert_eq!(names, ["alloc::vec::Vec<T,A>::with_capacity", "app::cache::Cache::grow"]);
    assert_eq!(leaf.address, 0x55d0_c0a0_1010);
    let m = &p.mapping[leaf.mapping_id as usize - 1];
    assert_eq!(
        (s(m.filename), m.memory_start, m.memory_limit),
        ("/opt/app/bin/app", 0x55d0_c0a0_0000, 0x55d0_c0b0_0000)
    );
    assert_eq!(s(m.build_id), "c3a7469687c11b7ce12f63246b2d6807aba9a4b7");
    assert!(m.has_functions && m.has_inline_frames);
    let libc_frame = p.location.iter().find(|l| l.address == 0x7f00_0003_1234).unwrap();
    assert_eq!(s(p.mapping[libc_frame.mapping_id as usize - 1].filename), "/lib/x86_64-linux-gnu/libc.so.6");
}

fn dhat(name: &str) -> (Input, Value) {
    let inp = input(name);
    let v: Value = serde_json::from_str(&leak_report::to_dhat(&inp)).unwrap();
    (inp, v)
}

#[test]
fn dhat_has_the_fields_and_sums() {
    for name in ["leaks.json", "profile.json", "empty.json", "raw.json"] {
        let (inp, d) = dhat(name);
        for f in [
            "dhatFileVersion",
            "mode",
            "verb",
            "bklt",
            "bkacc",
            "tu",
            "Mtu",
            "cmd",
            "pid",
            "te",
            "pps",
            "ftbl",
            "tg",
            "tuth",
        ] {
            assert!(d.get(f).is_some(), "{name}: missing {f}");
        }
        assert_eq!(d["dhatFileVersion"], 2);
        assert_eq!(d["bklt"], true);
        assert_eq!(d["ftbl"][0], "[root]");
        let ftbl = d["ftbl"].as_array().unwrap().len();
        let pps = d["pps"].as_array().unwrap();
        let mut seen = HashSet::new();
        for pp in pps {
            for f in ["tb", "tbk", "tl", "mb", "mbk", "gb", "gbk", "eb", "ebk", "fs"] {
                assert!(pp.get(f).is_some(), "{name}: a program point lacks {f}");
            }
            let fs: Vec<u64> = pp["fs"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
            assert!(fs.iter().all(|&i| i >= 1 && (i as usize) < ftbl), "{name}: fs indices in range");
            assert!(seen.insert(fs), "{name}: repeated location");
            assert!(pp["eb"].as_u64() <= pp["mb"].as_u64() && pp["mb"].as_u64() <= pp["tb"].as_u64());
        }
        let sum = |k: &str| pps.iter().map(|p| p[k].as_u64().unwrap()).sum::<u64>();
        match &inp {
            Input::Leaks(r) => {
                assert_eq!((sum("eb"), sum("ebk")), (r.summary.leaked_bytes, r.summary.leaked_blocks));
                assert_eq!(sum("tb"), r.summary.leaked_bytes);
            }
            Input::Profile(p) => {
                let s = &p.summary;
                assert_eq!((sum("tb"), sum("tbk")), (s.total_bytes, s.total_blocks));
                assert_eq!((sum("eb"), sum("ebk")), (s.live_bytes, s.live_blocks));
                assert_eq!((sum("gb"), sum("gbk")), (s.peak_bytes, s.peak_blocks));
                assert_eq!(sum("tl"), p.sites.iter().map(|x| x.lifetime_us).sum::<u64>());
                assert_eq!((d["te"].as_u64(), d["tg"].as_u64()), (Some(p.time_us), Some(s.peak_time_us)));
            }
        }
    }
}

#[test]
fn dhat_frames_parse_as_the_firefox_importer_reads_them() {
    let (_, d) = dhat("leaks.json");
    let frame = d["ftbl"].as_array().unwrap().iter().find(|f| f.as_str().unwrap().contains("Cache::grow")).unwrap();
    assert_eq!(frame, "0x55d0c0a01010: app::cache::Cache::grow (src/cache.rs:40)");
}

/// Runs the field checks of Valgrind's own viewer (`checkFields`, `checkPP` and the
/// top-level field list of `buildTree`, taken from dh_view.js) on our files with node.
#[test]
fn dhat_passes_the_viewers_own_checks() {
    let viewer = std::path::Path::new("/usr/libexec/valgrind/dh_view.js");
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !viewer.exists() || !node {
        eprintln!("SKIPPED: dhat_passes_the_viewers_own_checks needs node and {} (valgrind)", viewer.display());
        return;
    }
    let dir = common::scratch("dhview");
    for name in ["leaks.json", "profile.json", "empty.json"] {
        let out = dir.join(name);
        std::fs::write(&out, leak_report::to_dhat(&input(name))).unwrap();
        let script = r#"
const fs = require("fs");
const src = fs.readFileSync(process.argv[1], "utf8");
const fn = (name) => { const i = src.indexOf("function " + name + "("); let d = 0, j = src.indexOf("{", i);
  for (let k = j; k < src.length; k++) { if (src[k] == "{") d++; if (src[k] == "}" && --d == 0) return src.slice(i, k + 1); } };
const fields = src.match(/let fields = (\[[^\]]*\]);/)[1];
const gData = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
eval(fn("checkFields") + fn("checkPP") + "checkFields(gData, " + fields + ");" +
  "if (gData.bklt) checkFields(gData, ['tg', 'tuth']);" +
  "for (const pp of gData.pps) checkPP(pp);");
if (gData.dhatFileVersion != 2) throw new Error("version");
const seen = new Set();
for (const pp of gData.pps) { const k = pp.fs.join(","); if (seen.has(k)) throw new Error("data file contains a repeated location"); seen.add(k); }
console.log("ok " + gData.pps.length);
"#;
        let run = std::process::Command::new("node").arg("-e").arg(script).arg(viewer).arg(&out).output().unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{name}: dh_view's checks failed: {stderr}");
        assert!(String::from_utf8_lossy(&run.stdout).starts_with("ok "));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn flame_graph_svg_is_well_formed_and_names_the_frames() {
    for name in ["leaks.json", "profile.json", "empty.json"] {
        let svg = String::from_utf8(leak_report::to_flamegraph_svg(&input(name), Measure::default()).unwrap()).unwrap();
        let opts = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
        let doc = roxmltree::Document::parse_with_options(&svg, opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let titles: Vec<&str> =
            doc.descendants().filter(|n| n.has_tag_name("title")).filter_map(|n| n.text()).collect();
        match name {
            "empty.json" => assert!(svg.contains("nothing to show")),
            "leaks.json" => {
                assert!(titles.iter().any(|t| t.starts_with("all (4,344 bytes, 100%)")), "{titles:?}");
                assert!(
                    titles.iter().any(|t| t.starts_with("app::cache::Cache::grow (4,096 bytes, 94.29%)")),
                    "{titles:?}"
                );
            }
            _ => assert!(titles.iter().any(|t| t.starts_with("app::cache::Cache::grow (32,768 bytes")), "{titles:?}"),
        }
    }
}

#[test]
fn junit_and_sarif_parse() {
    let Input::Leaks(r) = input("leaks.json") else { panic!() };
    let outcome = leak_report::gate(&r, &GateOptions { workdir: "/home/dev/app".into(), ..GateOptions::default() });
    let xml = render_gate(&outcome, GateFormat::Junit);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cases = doc.descendants().filter(|n| n.has_tag_name("testcase")).count();
    let failures = doc.descendants().filter(|n| n.has_tag_name("failure")).count();
    assert_eq!((cases, failures), (r.leaks.len(), r.leaks.len()));
    let sarif: Value = serde_json::from_str(&render_gate(&outcome, GateFormat::Sarif)).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), r.leaks.len());
    let first = &results[0]["locations"][0]["physicalLocation"];
    assert_eq!(
        (first["artifactLocation"]["uri"].as_str(), first["region"]["startLine"].as_u64()),
        (Some("src/cache.rs"), Some(40))
    );
    // The group whose frames are all outside the user's code has no location to point at.
    assert!(results.iter().any(|r| r["locations"].as_array().unwrap().is_empty()));
}
