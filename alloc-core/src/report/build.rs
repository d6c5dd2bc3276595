//! Building a report from the check's raw output: group, symbolize, suppress, count, sort.

use super::model::{Frame, LeakGroup, LeakKind, LeakReport, RcCounts, RcKind, Summary, SuppressionUse};
use super::suppress::{self, Suppression};
use super::symbolize::{self, InProcess, RawOnly, Symbolizer};
use std::collections::HashMap;

/// Direct or indirect, as the check classified a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum RawKind {
    Direct,
    Indirect,
}

/// One leaked block as the check found it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawLeak {
    pub(crate) stack: u32,
    pub(crate) start: usize,
    pub(crate) size: usize,
    pub(crate) kind: RawKind,
    pub(crate) cyclic: bool,
}

/// The check's raw output.
#[derive(Clone, Debug, Default)]
pub(crate) struct RawCheck {
    pub(crate) leaked: Vec<RawLeak>,
    pub(crate) reachable_blocks: u64,
    pub(crate) reachable_bytes: u64,
    pub(crate) program: String,
    pub(crate) pid: u32,
}

/// How to build the report.
#[derive(Clone, Debug, Default)]
pub(crate) struct BuildOptions {
    pub(crate) symbolize: bool,
    /// Path of a suppressions file.
    pub(crate) suppressions: Option<String>,
}

impl BuildOptions {
    pub(crate) fn from_config(o: &crate::config::Options) -> Self {
        let suppressions = o.suppressions.as_option().map(|p| String::from_utf8_lossy(p.as_bytes()).into_owned());
        Self { symbolize: o.symbolize, suppressions }
    }
}

#[derive(Default)]
struct Acc {
    blocks: u64,
    bytes: u64,
    first_start: usize,
}

fn load_suppressions(opts: &BuildOptions) -> Vec<Suppression> {
    let Some(path) = &opts.suppressions else { return Vec::new() };
    match std::fs::read_to_string(path) {
        Ok(text) => suppress::parse(path, &text).unwrap_or_else(|e| {
            warning!("suppressions: {}", e);
            Vec::new()
        }),
        Err(e) => {
            warning!("suppressions: cannot read {}: {}", path, e);
            Vec::new()
        }
    }
}

/// Builds the report. `frames_of` gives the raw return addresses of a stack id.
pub(crate) fn build_report(raw: &RawCheck, frames_of: &dyn Fn(u32) -> Vec<usize>, opts: &BuildOptions) -> LeakReport {
    let mut sym: Box<dyn Symbolizer> = if opts.symbolize { Box::new(InProcess::default()) } else { Box::new(RawOnly) };
    build_with(raw, frames_of, &mut *sym, load_suppressions(opts))
}

/// As [`build_report`], with a given symbolizer and suppressions (tests inject fakes).
pub(crate) fn build_with(
    raw: &RawCheck,
    frames_of: &dyn Fn(u32) -> Vec<usize>,
    sym: &mut dyn Symbolizer,
    mut sups: Vec<Suppression>,
) -> LeakReport {
    let mut groups: HashMap<(RawKind, bool, u32), Acc> = HashMap::new();
    for l in &raw.leaked {
        let a = groups.entry((l.kind, l.cyclic, l.stack)).or_default();
        if a.blocks == 0 {
            a.first_start = l.start;
        }
        a.blocks += 1;
        a.bytes += l.size as u64;
    }
    let mut stacks: HashMap<u32, Vec<Frame>> = HashMap::new();
    let mut summary =
        Summary { reachable_blocks: raw.reachable_blocks, reachable_bytes: raw.reachable_bytes, ..Summary::default() };
    let mut leaks = Vec::new();
    for ((kind, cyclic, stack), acc) in groups {
        let frames = stacks.entry(stack).or_insert_with(|| symbolize::stack_frames(&frames_of(stack), sym)).clone();
        if let Some(i) = suppress::find(&sups, &frames) {
            sups[i].blocks += acc.blocks;
            sups[i].bytes += acc.bytes;
            summary.suppressed_blocks += acc.blocks;
            continue;
        }
        summary.leaked_blocks += acc.blocks;
        summary.leaked_bytes += acc.bytes;
        match kind {
            RawKind::Direct => summary.direct_blocks += acc.blocks,
            RawKind::Indirect => summary.indirect_blocks += acc.blocks,
        }
        if cyclic {
            summary.cyclic_blocks += acc.blocks;
        }
        let rc = rc_counts(&frames, acc.first_start);
        let kind = if kind == RawKind::Direct { LeakKind::Direct } else { LeakKind::Indirect };
        leaks.push(LeakGroup { kind, cyclic, blocks: acc.blocks, bytes: acc.bytes, stack: frames, rc });
    }
    // Largest first; at equal size direct before indirect (where to start fixing), then
    // more blocks first, then by innermost address so the order is stable.
    leaks.sort_by(|a, b| {
        (b.bytes.cmp(&a.bytes))
            .then(a.kind.cmp(&b.kind))
            .then(b.blocks.cmp(&a.blocks))
            .then_with(|| a.stack.first().map(|f| &f.ip).cmp(&b.stack.first().map(|f| &f.ip)))
    });
    let suppressions = sups
        .into_iter()
        .filter(|s| s.blocks > 0)
        .map(|s| SuppressionUse { pattern: s.pattern, blocks: s.blocks, bytes: s.bytes })
        .collect();
    LeakReport {
        format: LeakReport::FORMAT.into(),
        version: 1,
        program: raw.program.clone(),
        pid: raw.pid,
        summary,
        leaks,
        suppressions,
    }
}

/// When the stack shows `Rc`/`Arc` allocation, the counts read from the block: std's
/// `RcInner`/`ArcInner` start with the strong and weak counts.
fn rc_counts(frames: &[Frame], start: usize) -> Option<RcCounts> {
    let kind = frames.iter().find_map(|f| {
        let n = f.function.as_deref()?;
        if n.starts_with("alloc::rc::") || n.starts_with("<alloc::rc::") {
            Some(RcKind::Rc)
        } else if n.starts_with("alloc::sync::Arc") || n.starts_with("<alloc::sync::Arc") {
            Some(RcKind::Arc)
        } else {
            None
        }
    })?;
    crate::block::live_containing(start).filter(|b| b.start() == start && b.size() >= 16)?;
    // SAFETY: the block is live (checked just above) and at least 16 bytes long; a leaked
    // block is not freed by anyone, and reading two words of it has no side effect.
    let (strong, weak) =
        unsafe { (core::ptr::read_volatile(start as *const u64), core::ptr::read_volatile((start + 8) as *const u64)) };
    Some(RcCounts { kind, strong, weak })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names;
    impl Symbolizer for Names {
        fn resolve(&mut self, ip: usize) -> Vec<Frame> {
            vec![Frame {
                ip: format!("{ip:#x}"),
                function: Some(format!("app::site{ip}")),
                file: Some("src/main.rs".into()),
                line: Some(ip as u32),
            }]
        }
    }

    fn leak(stack: u32, size: usize, kind: RawKind, cyclic: bool) -> RawLeak {
        RawLeak { stack, start: 0, size, kind, cyclic }
    }

    #[test]
    fn groups_count_and_sort_by_bytes() {
        let raw = RawCheck {
            leaked: vec![
                leak(1, 32, RawKind::Direct, false),
                leak(2, 16, RawKind::Indirect, false),
                leak(2, 16, RawKind::Indirect, false),
                leak(3, 24, RawKind::Direct, true),
                leak(3, 24, RawKind::Direct, true),
                leak(3, 24, RawKind::Direct, true),
            ],
            reachable_blocks: 10,
            reachable_bytes: 999,
            program: "app".into(),
            pid: 7,
        };
        let r = build_with(&raw, &|id| vec![id as usize], &mut Names, Vec::new());
        assert_eq!(
            r.summary,
            Summary {
                leaked_blocks: 6,
                leaked_bytes: 136,
                direct_blocks: 4,
                indirect_blocks: 2,
                cyclic_blocks: 3,
                reachable_blocks: 10,
                reachable_bytes: 999,
                suppressed_blocks: 0
            }
        );
        let got: Vec<(u64, u64, bool)> = r.leaks.iter().map(|g| (g.bytes, g.blocks, g.cyclic)).collect();
        assert_eq!(got, [(72, 3, true), (32, 1, false), (32, 2, false)]);
        assert_eq!(r.leaks[1].kind, LeakKind::Direct);
        assert_eq!(r.leaks[2].stack[0].function.as_deref(), Some("app::site2"));
        let back = LeakReport::from_json(&r.to_json()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn suppressions_remove_groups_and_count_matches() {
        let raw = RawCheck {
            leaked: vec![leak(1, 32, RawKind::Direct, false), leak(2, 8, RawKind::Direct, false)],
            ..RawCheck::default()
        };
        let sups = suppress::parse("s", "leak:site2\nleak:nothing").unwrap();
        let r = build_with(&raw, &|id| vec![id as usize], &mut Names, sups);
        assert_eq!(r.leaks.len(), 1);
        assert_eq!(r.summary.suppressed_blocks, 1);
        assert_eq!(r.summary.leaked_bytes, 32);
        assert_eq!(r.suppressions, vec![SuppressionUse { pattern: "site2".into(), blocks: 1, bytes: 8 }]);
    }

    #[test]
    fn the_contract_example_parses() {
        let text = r#"{
          "format": "heapsweep-leaks", "version": 1, "program": "argv[0]", "pid": 1234,
          "summary": { "leaked_blocks": 3, "leaked_bytes": 96, "direct_blocks": 1, "indirect_blocks": 2,
                       "cyclic_blocks": 0, "reachable_blocks": 120, "reachable_bytes": 8192, "suppressed_blocks": 0 },
          "leaks": [ { "kind": "direct", "cyclic": false, "blocks": 1, "bytes": 32,
                       "stack": [ { "ip": "0x55d0c0ffee00", "function": "my_crate::make_list", "file": "src/main.rs", "line": 12 } ] } ]
        }"#;
        let r = LeakReport::from_json(text).unwrap();
        assert_eq!(r.leaks[0].stack[0].line, Some(12));
        assert!(LeakReport::from_json(&text.replace("\"version\": 1", "\"version\": 9"))
            .unwrap_err()
            .contains("version 9"));
        assert!(LeakReport::from_json("{").is_err());
    }
}
