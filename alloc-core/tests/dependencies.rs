//! The allocator goes into other people's programs: nothing in its dependency graph may
//! change how their code type-checks. `serde_json` implements `PartialEq<Value>` for the
//! primitive types, so with it in the graph `assert_eq!(total, it.sum())` stops compiling
//! (E0283). It may be only an optional dependency (the `json` feature, off by default),
//! and crates the allocator does not use may not be dependencies at all.

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

/// The `[dependencies]` table of alloc-core's manifest: `(name, optional)` per entry.
fn dependencies() -> Vec<(String, bool)> {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let mut in_table = false;
    let mut out = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_table = line == "[dependencies]";
            continue;
        }
        if !in_table || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap().trim().to_string();
        out.push((name, line.contains("optional = true")));
    }
    out
}

#[test]
fn no_dependency_adds_trait_impls_to_the_users_types_by_default() {
    let deps = dependencies();
    assert!(deps.iter().any(|(n, _)| n == "libc"), "the manifest was not read: {deps:?}");
    for (name, optional) in &deps {
        assert!(name != "serde_json" || *optional, "serde_json must stay optional (the `json` feature)");
        assert!(!["once_cell", "rustc-demangle"].contains(&name.as_str()), "{name} is not used by alloc-core");
    }
}
