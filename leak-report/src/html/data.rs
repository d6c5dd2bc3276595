//! The JSON embedded in the HTML page.
//!
//! # Schema
//! ```text
//! { kind: "leaks"|"profile", program, pid, summary: {...},
//!   metrics: ["leaked bytes"] | ["live bytes", "allocated bytes", "bytes at peak"],
//!   frames: [[label, "file:line"|null, ip], ...],        // interned
//!   groups: [{ v: [bytes per metric], k: [blocks per metric], s: [frame index, ...],
//!              kind?: "direct"|"indirect", cyclic?: bool, rc?: "Rc strong 2, weak 1",
//!              lt?: lifetime_us }, ...],                 // largest v[0] first
//!   names: [flame graph frame name, ...],
//!   flame: { n: name index (-1 for the root), v: [value per metric], c: [child, ...] },
//!   timeline: [[t_us, live_bytes, live_blocks], ...],
//!   cycles: [{ n: component blocks, more, m: [[address, bytes, site, "file:line"|null, "+0x.."], ...] }],
//!   retention?: [{ t: site and block, l: [root, then each block of the chain, ...] }] }
//! ```

use crate::fxhash::FxBuild;
use crate::input::Input;
use crate::stacks::{frame_ip, frame_label, frame_location, NO_STACK};
use heapsweep_format::report::{allocation_site, Frame, LeakKind, RcKind};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write;

/// A flame graph node is kept when some metric's value is at least total / PRUNE.
const PRUNE: u64 = 20_000;

/// One group or site, before serialization.
struct Row<'a> {
    stack: &'a [Frame],
    bytes: Vec<u64>,
    blocks: Vec<u64>,
    extra: Value,
}

/// The page's data as JSON text.
pub fn page_data(input: &Input) -> String {
    let (kind, metrics, summary, mut rows, timeline) = rows(input);
    rows.sort_by(|a, b| b.bytes[0].cmp(&a.bytes[0]));
    let mut frames = Interner::with_capacity(rows.iter().map(|r| r.stack.len()).sum());
    let stacks: Vec<Vec<usize>> = rows.iter().map(|r| frames.stack(r.stack)).collect();
    let mut out = String::with_capacity(rows.len() * 160);
    let head = json!({"kind": kind, "program": input.program(), "pid": input.pid(), "summary": summary, "metrics": metrics, "timeline": timeline, "cycles": cycles(input)});
    let mut head = head;
    let retention = retention(input);
    if retention.as_array().is_some_and(|r| !r.is_empty()) {
        head["retention"] = retention;
    }
    let head = head.to_string();
    out.push_str(&head[..head.len() - 1]);
    write_groups(&mut out, &rows, &stacks);
    let labels: Vec<String> = frames.frames.iter().map(|f| frame_label(f)).collect();
    write_frames(&mut out, &frames.frames, &labels);
    let (names, tree) = flame(&stacks, &rows, &labels, metrics.len());
    out.push_str(",\"names\":");
    out.push_str(&Value::from(names).to_string());
    out.push_str(",\"flame\":");
    tree.write(0, &mut out);
    out.push('}');
    out
}

/// Why a profile's largest sites are alive (`verbosity=2`): `[{ t: title, l: [line, ...]
/// }]`, in the words of the text report.
fn retention(input: &Input) -> Value {
    let Input::Profile(p) = input else { return json!([]) };
    let painter = heapsweep_format::text::Painter(false);
    let entries: Vec<Value> = p
        .retention
        .iter()
        .map(|r| {
            let (title, lines) = crate::text::retention_lines(p, r, painter);
            json!({"t": title, "l": lines})
        })
        .collect();
    Value::from(entries)
}

/// The leaked cycles: `[{ n: component blocks, more: members not listed, m: [[address,
/// bytes, site label, "file:line"|null, "+0x.." offset of the pointer to the next], ...] }]`.
fn cycles(input: &Input) -> Value {
    let Input::Leaks(r) = input else { return json!([]) };
    let cycles: Vec<Value> = r
        .cycles
        .iter()
        .map(|c| {
            let members: Vec<Value> = c
                .members
                .iter()
                .map(|m| {
                    let site = r.leaks.get(m.group).and_then(|g| allocation_site(&g.stack));
                    let label = site.map_or_else(|| "<no stack>".to_string(), frame_label);
                    let location = site.and_then(frame_location);
                    json!([m.address, m.bytes, label, location, format!("+{:#x}", m.next_offset)])
                })
                .collect();
            json!({"n": c.component_blocks, "more": c.more_members, "m": members})
        })
        .collect();
    Value::from(cycles)
}

/// `,"groups":[...]`, written by hand: a million numbers go faster without `serde_json::Value`.
fn write_groups(out: &mut String, rows: &[Row], stacks: &[Vec<usize>]) {
    out.push_str(",\"groups\":[");
    for (i, (r, stack)) in rows.iter().zip(stacks).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"v\":");
        push_list(out, r.bytes.iter().copied());
        out.push_str(",\"k\":");
        push_list(out, r.blocks.iter().copied());
        out.push_str(",\"s\":");
        push_list(out, stack.iter().map(|&i| i as u64));
        if let Value::Object(extra) = &r.extra {
            for (k, v) in extra {
                let _ = write!(out, ",{}:{v}", Value::from(k.as_str()));
            }
        }
        out.push('}');
    }
    out.push(']');
}

/// `,"frames":[[label, location, ip], ...]`.
fn write_frames(out: &mut String, frames: &[&Frame], labels: &[String]) {
    out.push_str(",\"frames\":[");
    for (i, (f, label)) in frames.iter().zip(labels).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let row = json!([label, frame_location(f), f.ip]);
        let _ = write!(out, "{row}");
    }
    out.push(']');
}

type Parts<'a> = (&'static str, Vec<&'static str>, Value, Vec<Row<'a>>, Value);

fn rows(input: &Input) -> Parts<'_> {
    match input {
        Input::Leaks(r) => {
            let rows = r
                .leaks
                .iter()
                .map(|g| {
                    let kind = match g.kind {
                        LeakKind::Direct => "direct",
                        LeakKind::Indirect => "indirect",
                    };
                    let mut extra = json!({"kind": kind, "cyclic": g.cyclic});
                    if let Some(rc) = g.rc {
                        let name = match rc.kind {
                            RcKind::Rc => "Rc",
                            RcKind::Arc => "Arc",
                        };
                        extra["rc"] = json!(format!("{name} with strong count {}, weak count {}", rc.strong, rc.weak));
                    }
                    Row { stack: &g.stack, bytes: vec![g.bytes], blocks: vec![g.blocks], extra }
                })
                .collect();
            let mut summary = json!(r.summary);
            summary["groups"] = json!(r.leaks.len());
            ("leaks", vec!["leaked bytes"], summary, rows, json!([]))
        }
        Input::Profile(p) => {
            let rows = p
                .sites
                .iter()
                .map(|s| Row {
                    stack: &s.stack,
                    bytes: vec![s.live_bytes, s.total_bytes, s.peak_bytes],
                    blocks: vec![s.live_blocks, s.total_blocks, s.peak_blocks],
                    extra: json!({"lt": s.lifetime_us, "mb": s.max_live_bytes}),
                })
                .collect();
            let mut summary = json!(p.summary);
            summary["time_us"] = json!(p.time_us);
            summary["sites"] = json!(p.sites.len());
            let timeline: Vec<[u64; 3]> = p.timeline.iter().map(|t| [t.t_us, t.live_bytes, t.live_blocks]).collect();
            ("profile", vec!["live bytes", "allocated bytes", "bytes at peak"], summary, rows, json!(timeline))
        }
    }
}

/// Writes `[a,b,c]`.
fn push_list(out: &mut String, items: impl Iterator<Item = u64>) {
    out.push('[');
    for (i, n) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_u64(out, n);
    }
    out.push(']');
}

/// Writes a number without the formatting machinery (a few million of them per page).
fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&d| char::from(d)));
}

/// Distinct frames, in order of first use.
///
/// A frame is known by its address and its place in the run of frames sharing that
/// address (inlined calls expand one return address into several frames, innermost
/// first): within one report an address always expands to the same frames. Keying on two
/// integers instead of the frame's five fields roughly halved the time to intern the 1.1
/// million frames of a 100 000-group report (0.6 s to 0.3 s on a busy 2-core machine).
struct Interner<'a> {
    index: HashMap<(u64, u32), usize, FxBuild>,
    frames: Vec<&'a Frame>,
}

impl<'a> Interner<'a> {
    fn with_capacity(n: usize) -> Self {
        Interner { index: HashMap::with_capacity_and_hasher(n, FxBuild::default()), frames: Vec::new() }
    }

    /// Frame indices of `stack`.
    fn stack(&mut self, stack: &'a [Frame]) -> Vec<usize> {
        let mut out = Vec::with_capacity(stack.len());
        let mut run = 0u32;
        for (i, f) in stack.iter().enumerate() {
            run = if i > 0 && stack[i - 1].ip == f.ip { run + 1 } else { 0 };
            let next = self.frames.len();
            let id = *self.index.entry((frame_ip(f), run)).or_insert_with(|| {
                self.frames.push(f);
                next
            });
            out.push(id);
        }
        out
    }
}

/// A node of the aggregated flame graph. Children form a list through `first_child` and
/// `next_sibling` (0: none; the root, node 0, is nobody's child), so that a million nodes
/// need no allocation each.
struct Node {
    name: i64,
    /// Values of the first `Tree::metrics` metrics.
    value: [u64; 3],
    first_child: u32,
    next_sibling: u32,
}

struct Tree {
    nodes: Vec<Node>,
    keep: [u64; 3],
    metrics: usize,
}

impl Tree {
    fn write(&self, i: usize, out: &mut String) {
        let n = &self.nodes[i];
        let _ = write!(out, "{{\"n\":{},\"v\":", n.name);
        push_list(out, n.value[..self.metrics].iter().copied());
        let mut kids = Vec::new();
        let mut c = n.first_child as usize;
        while c != 0 {
            let v = &self.nodes[c].value;
            if v.iter().zip(&self.keep).any(|(v, k)| v >= k && *v > 0) {
                kids.push(c);
            }
            c = self.nodes[c].next_sibling as usize;
        }
        if !kids.is_empty() {
            kids.sort_by(|&a, &b| {
                self.nodes[b].value[0].cmp(&self.nodes[a].value[0]).then(self.nodes[a].name.cmp(&self.nodes[b].name))
            });
            out.push_str(",\"c\":[");
            for (j, &c) in kids.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                self.write(c, out);
            }
            out.push(']');
        }
        out.push('}');
    }
}

/// Frame names and the flame graph tree (root to leaf), values per metric. `stacks` are
/// indices into `labels`, innermost first.
fn flame(stacks: &[Vec<usize>], rows: &[Row], labels: &[String], metrics: usize) -> (Vec<String>, Tree) {
    let mut names: Vec<String> = Vec::new();
    let mut name_index: HashMap<&str, i64, FxBuild> = HashMap::default();
    // Frame index to name index; equal labels share a name.
    let frame_names: Vec<i64> = labels
        .iter()
        .map(|l| {
            let next = names.len() as i64;
            *name_index.entry(l.as_str()).or_insert_with(|| {
                names.push(l.clone());
                next
            })
        })
        .collect();
    let no_stack = names.len() as i64;
    names.push(NO_STACK.to_string());
    // Root-first name paths, sorted: a path shares its nodes with the previous one up to
    // their common prefix, so the tree is built without hashing.
    let mut paths: Vec<(Vec<i64>, usize)> = stacks
        .iter()
        .enumerate()
        .map(|(i, s)| match s.is_empty() {
            true => (vec![no_stack], i),
            false => (s.iter().rev().map(|&f| frame_names[f]).collect(), i),
        })
        .collect();
    paths.sort_unstable();
    let mut nodes = Vec::with_capacity(paths.iter().map(|p| p.0.len()).sum::<usize>() + 1);
    nodes.push(Node { name: -1, value: [0; 3], first_child: 0, next_sibling: 0 });
    let mut open = vec![0];
    let mut prev: &[i64] = &[];
    for (path, i) in &paths {
        let common = prev.iter().zip(path).take_while(|(a, b)| a == b).count();
        open.truncate(common + 1);
        for &name in &path[common..] {
            let n = nodes.len();
            let parent = open[open.len() - 1];
            nodes.push(Node { name, value: [0; 3], first_child: 0, next_sibling: nodes[parent].first_child });
            nodes[parent].first_child = n as u32;
            open.push(n);
        }
        for &n in &open {
            add(&mut nodes[n].value, &rows[*i].bytes);
        }
        prev = path;
    }
    let keep = nodes[0].value.map(|t| t / PRUNE);
    (names, Tree { nodes, keep, metrics })
}

fn add(to: &mut [u64], v: &[u64]) {
    for (a, b) in to.iter_mut().zip(v) {
        *a += b;
    }
}
