//! The crate's layers, checked against its sources: every import goes to the importing
//! file's own layer or below, and loops of imports stay inside one concern.
//!
//! The table is the one in the crate docs (`src/lib.rs`, "Layers"), so the docs cannot
//! drift from the code. Imports are read from the text: `use crate::...` and
//! `use super::...` (braces expanded), `crate::`/`super::` paths, paths through a child
//! module, and the `warning!` macro (which lives in `fatal`). Each inline
//! `#[cfg(test)] mod tests` block is left out: test code may reach anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

type Module = Vec<String>;

/// A file of the crate: its module path (empty for `lib.rs`) and its text.
struct SourceFile {
    module: Module,
    path: String,
    text: String,
}

fn sources() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
                let mut module: Module = rel.trim_end_matches(".rs").split('/').map(String::from).collect();
                if module.last().is_some_and(|m| m == "mod") || module == ["lib"] {
                    module.pop();
                }
                out.push(SourceFile { module, path: rel, text: std::fs::read_to_string(&path).unwrap() });
            }
        }
    }
    out
}

/// One layer of the table: its number and the module prefixes it holds.
struct Layer {
    number: u32,
    name: String,
    modules: Vec<Module>,
}

/// Reads the layer table from the crate docs.
fn layer_table(lib: &str) -> Vec<Layer> {
    let start = lib.find("//! # Layers").expect("src/lib.rs has no `# Layers` section");
    let mut layers = Vec::new();
    for line in lib[start..].lines().map(|l| l.trim_start_matches("//!").trim()) {
        let Some((head, rest)) = line.split_once(':') else { continue };
        let mut words = head.split_whitespace();
        let (Some(n), Some(name), None) = (words.next(), words.next(), words.next()) else { continue };
        let Ok(number) = n.parse() else { continue };
        let list = rest.split('—').next().unwrap();
        let modules = list.split(',').map(|m| m.trim()).filter(|m| !m.is_empty());
        let modules = modules.map(|m| if m == "lib" { Vec::new() } else { m.split('/').map(String::from).collect() });
        layers.push(Layer { number, name: name.to_string(), modules: modules.collect() });
    }
    assert!(layers.len() >= 3, "the layer table in src/lib.rs could not be read");
    layers
}

/// The layer of a module: the table entry that is its longest prefix.
fn layer_of<'a>(layers: &'a [Layer], module: &Module) -> Option<&'a Layer> {
    let mut best: Option<(&Layer, usize)> = None;
    for layer in layers {
        for m in &layer.modules {
            let matches = if m.is_empty() { module.is_empty() } else { module.starts_with(m) };
            if matches && best.is_none_or(|(_, len)| m.len() > len) {
                best = Some((layer, m.len()));
            }
        }
    }
    best.map(|(l, _)| l)
}

/// The text without comments, and without its inline test module.
fn code_of(text: &str) -> String {
    let mut code: String = text.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n");
    if let Some(i) = code.find("#[cfg(test)]\nmod tests {") {
        code.truncate(i);
    }
    code
}

/// Expands `a::{b, c::{d, e}}` into `[a, b]`, `[a, c, d]`, `[a, c, e]`.
fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Module>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> =
            tree[..open].split("::").map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let (mut depth, mut from) = (0, 0);
        let mut items = Vec::new();
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&inner[from..i]);
                    from = i + 1;
                }
                _ => {}
            }
        }
        items.push(&inner[from..]);
        let n = prefix.len();
        prefix.extend(head);
        for item in items.into_iter().filter(|i| !i.trim().is_empty()) {
            expand(item, prefix, out);
        }
        prefix.truncate(n);
    } else {
        let path = tree.split(" as ").next().unwrap();
        let mut full = prefix.clone();
        full.extend(path.split("::").map(str::trim).filter(|s| !s.is_empty() && *s != "self").map(String::from));
        out.push(full);
    }
}

/// Every `KEYWORD::path` in `code` (and `use KEYWORD::tree;` with braces), as paths
/// after the keyword.
fn paths_after(code: &str, keyword: &str) -> Vec<Module> {
    let mut out = Vec::new();
    let needle = format!("use {keyword}::");
    let mut rest = code;
    while let Some(i) = rest.find(&needle) {
        let after = &rest[i + needle.len()..];
        let end = after.find(';').unwrap_or(after.len());
        expand(&after[..end], &mut Vec::new(), &mut out);
        rest = &after[end..];
    }
    let needle = format!("{keyword}::");
    let mut rest = code;
    while let Some(i) = rest.find(&needle) {
        let word_before = rest[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_');
        let after = &rest[i + needle.len()..];
        if !word_before {
            let end = after.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(after.len());
            out.push(after[..end].split("::").filter(|s| !s.is_empty()).map(String::from).collect());
        }
        rest = after;
    }
    out
}

/// The modules a file imports, resolved to the files that exist.
fn imports(file: &SourceFile, known: &BTreeSet<Module>) -> BTreeSet<Module> {
    let code = code_of(&file.text);
    let resolve = |path: &[String]| (1..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| known.contains(p));
    let parent: Module = file.module[..file.module.len().saturating_sub(1)].to_vec();
    let mut out = BTreeSet::new();
    out.extend(paths_after(&code, "crate").iter().filter_map(|p| resolve(p)));
    for p in paths_after(&code, "super") {
        let full: Module = parent.iter().cloned().chain(p).collect();
        out.extend(resolve(&full));
    }
    // Paths through a child module: `child::item`.
    for (i, _) in code.match_indices("::") {
        let start = code[..i].rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |s| s + 1);
        if start > 0 && code[..start].ends_with(':') {
            continue;
        }
        let mut child = file.module.clone();
        child.push(code[start..i].to_string());
        if known.contains(&child) {
            out.insert(child);
        }
    }
    if code.contains("warning!") {
        out.insert(vec!["fatal".to_string()]);
    }
    out.remove(&file.module);
    out
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "lib".into()
    } else {
        m.join("/")
    }
}

/// Strongly connected components of more than one module (Tarjan, iterative enough for a
/// crate's worth of files).
fn loops(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct State<'a> {
        graph: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        out: Vec<Vec<Module>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Module) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in &s.graph[v] {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn graph() -> (Vec<SourceFile>, BTreeMap<Module, BTreeSet<Module>>) {
    let files = sources();
    let known: BTreeSet<Module> = files.iter().map(|f| f.module.clone()).collect();
    let graph = files.iter().map(|f| (f.module.clone(), imports(f, &known))).collect();
    (files, graph)
}

#[test]
fn every_import_goes_to_the_same_layer_or_below() {
    let (files, graph) = graph();
    let lib = &files.iter().find(|f| f.module.is_empty()).unwrap().text;
    let layers = layer_table(lib);
    let mut problems = Vec::new();
    for f in &files {
        let Some(from) = layer_of(&layers, &f.module) else {
            problems.push(format!("{} is in no layer: add its module to the table in src/lib.rs", f.path));
            continue;
        };
        for to in &graph[&f.module] {
            let Some(target) = layer_of(&layers, to) else { continue };
            if target.number > from.number {
                problems.push(format!(
                    "{} (layer {} {}) imports {} (layer {} {}): an arrow up",
                    f.path,
                    from.number,
                    from.name,
                    name(to),
                    target.number,
                    target.name
                ));
            }
        }
    }
    for layer in &layers {
        for m in &layer.modules {
            let used = files.iter().any(|f| if m.is_empty() { f.module.is_empty() } else { f.module.starts_with(m) });
            if !used {
                problems.push(format!("the table names `{}`, which is no module of the crate", name(m)));
            }
        }
    }
    assert!(problems.is_empty(), "layer rule broken:\n{}", problems.join("\n"));
}

#[test]
fn loops_of_imports_stay_inside_one_concern() {
    let (_, graph) = graph();
    let mut problems = Vec::new();
    for component in loops(&graph) {
        let concerns: BTreeSet<&str> = component.iter().map(|m| m.first().map_or("lib", |s| s.as_str())).collect();
        if concerns.len() > 1 {
            let names: Vec<String> = component.iter().map(name).collect();
            problems.push(format!("a loop of imports across {concerns:?}: {}", names.join(", ")));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_reader_sees_the_imports_it_must() {
    // The checks above are only as good as the import reader: it must see each form.
    let (_, graph) = graph();
    let has = |from: &[&str], to: &[&str]| {
        let from: Module = from.iter().map(|s| s.to_string()).collect();
        let to: Module = to.iter().map(|s| s.to_string()).collect();
        graph[&from].contains(&to)
    };
    assert!(has(&["heap"], &["track"]), "`use crate::track;`");
    assert!(has(&["heap", "free"], &["heap"]), "`use super::{{...}}`");
    assert!(has(&["heap"], &["heap", "abandoned"]), "a path through a child module");
    assert!(has(&["global"], &["runtime", "entry"]), "`use crate::runtime::entry;`");
    assert!(has(&["runtime", "init"], &["runtime", "fork"]), "`super::fork::install()`");
    let mut fake = Vec::new();
    expand("a::{b, c::{d, e as f}, self}", &mut Vec::new(), &mut fake);
    assert_eq!(fake, [vec!["a", "b"], vec!["a", "c", "d"], vec!["a", "c", "e"], vec!["a"]]);
}
