//! The allocator goes into other people's programs: nothing in its dependency graph may
//! change how their code type-checks. `serde_json` implements `PartialEq<Value>` for the
//! primitive types (and `From<u64>`, `FromStr`, `Default` for `Value`), so with it in the
//! graph `assert_eq!(total, it.sum())` stops compiling (E0283). `test-programs/compile-check`
//! holds such code; this test checks the graph itself, as Cargo resolves it for the whole
//! workspace (`cargo metadata`, offline: every member's features and dev-dependencies
//! unified, the most a build of the workspace can turn on).

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

use serde_json::Value;
use std::collections::BTreeSet;

/// Crates that add trait impls to std or primitive types, which no library of the
/// allocator's graph may bring in.
const FORBIDDEN: [&str; 1] = ["serde_json"];

/// `cargo metadata` of the workspace, read once. Filtered to the one target the
/// allocator builds for (x86-64 Linux), so that no other platform's crates need be in the
/// local cache.
fn metadata() -> &'static Value {
    static META: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    META.get_or_init(read_metadata)
}

fn read_metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--manifest-path", manifest])
        .args(["--filter-platform", "x86_64-unknown-linux-gnu"])
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// The package id of the workspace member `name`.
fn id_of(meta: &Value, name: &str) -> String {
    let packages = meta["packages"].as_array().unwrap();
    let p = packages.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no package {name}"));
    p["id"].as_str().unwrap().to_string()
}

/// Names of the packages a library of `root` links, as resolved: its normal and build
/// dependencies, transitively (dev-dependencies reach only test binaries).
fn linked_graph(meta: &Value, root: &str) -> BTreeSet<String> {
    let nodes = meta["resolve"]["nodes"].as_array().unwrap();
    let node = |id: &str| nodes.iter().find(|n| n["id"] == id).unwrap_or_else(|| panic!("no node {id}"));
    let name = |id: &str| {
        let packages = meta["packages"].as_array().unwrap();
        packages.iter().find(|p| p["id"] == id).unwrap()["name"].as_str().unwrap().to_string()
    };
    let (mut seen, mut todo) = (BTreeSet::new(), vec![id_of(meta, root)]);
    while let Some(id) = todo.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        for dep in node(&id)["deps"].as_array().unwrap() {
            let kinds = dep["dep_kinds"].as_array().unwrap();
            if kinds.iter().any(|k| k["kind"].is_null() || k["kind"] == "build") {
                todo.push(dep["pkg"].as_str().unwrap().to_string());
            }
        }
    }
    seen.iter().map(|id| name(id)).collect()
}

#[test]
fn no_crate_in_the_allocators_resolved_graph_adds_trait_impls_to_std_types() {
    let meta = metadata();
    for root in ["alloc-core", "heapsweep-format", "compile-check"] {
        let graph = linked_graph(meta, root);
        assert!(graph.contains("libc") || root == "heapsweep-format", "{root}: the graph was not read: {graph:?}");
        assert!(graph.contains("serde"), "{root}: the graph was not read: {graph:?}");
        for bad in FORBIDDEN {
            assert!(!graph.contains(bad), "{bad} is in {root}'s dependency graph: {graph:?}");
        }
    }
    // The walk does find serde_json where it is: leak-report reads reports with it.
    assert!(linked_graph(meta, "leak-report").contains("serde_json"));
}

#[test]
fn alloc_core_depends_only_on_crates_it_uses() {
    let meta = metadata();
    let packages = meta["packages"].as_array().unwrap();
    let me = packages.iter().find(|p| p["name"] == "alloc-core").unwrap();
    let direct: Vec<&str> = me["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"].is_null())
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(direct.contains(&"heapsweep-format"), "{direct:?}");
    for unused in ["once_cell", "rustc-demangle", "serde_json"] {
        assert!(!direct.contains(&unused), "{unused} is not used by alloc-core: {direct:?}");
    }
}
