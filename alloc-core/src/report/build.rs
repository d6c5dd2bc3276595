//! Building a report from the check's raw output: group, symbolize, suppress, count,
//! attach `Rc`/`Arc` counts, sort.
//!
//! # Who calls it
//! `check::check`, after the world resumed, with the reentrancy guard set. It converts
//! the leak analysis into a [`RawCheck`] and passes the stack depot's lookup as
//! `frames_of`.
//!
//! # Order of the groups
//! Largest `bytes` first (the contract); at equal bytes more blocks first, then direct
//! before indirect (where to start fixing), then cyclic first, then by stack id, so the
//! order never depends on hashing.

use super::model::{CheckStatus, Frame, LeakGroup, LeakKind, LeakReport, Summary, SuppressionUse};
use super::rc::rc_counts;
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
    /// Allocation stack id (0: none recorded).
    pub(crate) stack: u32,
    /// Address of the block's first byte.
    pub(crate) start: usize,
    /// Requested size.
    pub(crate) size: usize,
    pub(crate) kind: RawKind,
    pub(crate) cyclic: bool,
    /// A leak sweep already reported the block.
    pub(crate) reported: bool,
    /// The block's place on its component's shown cycle.
    pub(crate) cycle: CycleLink,
}

/// A leaked block's place on the cycle shown for its strongly connected component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CycleLink {
    /// The index (in [`RawCheck::leaked`]) of the next member, or `u32::MAX` when the
    /// block is on no shown cycle.
    pub(crate) next: u32,
    /// The offset in this block of the word that points into the next member.
    pub(crate) next_offset: u32,
    /// The size of the block's component (1: a block alone, cyclic at most through a
    /// pointer to itself; 0: not known).
    pub(crate) component_blocks: u32,
}

impl CycleLink {
    /// On no shown cycle, component not known.
    pub(crate) const NONE: CycleLink = CycleLink { next: u32::MAX, next_offset: 0, component_blocks: 0 };
}

/// The check's raw output.
#[derive(Clone, Debug, Default)]
pub(crate) struct RawCheck {
    pub(crate) leaked: Vec<RawLeak>,
    pub(crate) reachable_blocks: u64,
    pub(crate) reachable_bytes: u64,
    pub(crate) program: String,
    pub(crate) pid: u32,
    /// Whether the check ran to the end; copied into the report as it is. The leaks above
    /// are what was found before a failure (possibly nothing).
    pub(crate) status: CheckStatus,
}

/// How to build the report.
#[derive(Clone, Debug, Default)]
pub(crate) struct BuildOptions {
    /// Resolve function names, files and lines (`symbolize=1`).
    pub(crate) symbolize: bool,
    /// Path of a suppressions file.
    pub(crate) suppressions: Option<String>,
    /// Add [`suppress::PRELOAD_DEFAULTS`] after the file's patterns: the process runs
    /// under the `LD_PRELOAD` library.
    pub(crate) preload_defaults: bool,
    /// Path of a baseline report (`baseline=PATH`).
    pub(crate) baseline: Option<String>,
    /// List the loaded objects (`modules`; the JSON report's, the text report has no use
    /// for them: the exit check lists them only when it writes or prints a report).
    pub(crate) modules: bool,
}

impl BuildOptions {
    pub(crate) fn from_config(o: &crate::config::Options) -> Self {
        let suppressions = o.suppressions.as_option().map(|p| p.to_string_lossy());
        let baseline = o.baseline.as_option().map(|p| p.to_string_lossy());
        Self {
            symbolize: o.symbolize,
            suppressions,
            preload_defaults: crate::config::preloaded(),
            baseline,
            modules: true,
        }
    }
}

/// Builds the report. `frames_of` gives the raw return addresses of a stack id,
/// innermost first. Problems with the suppressions file are printed as warnings.
pub(crate) fn build_report(raw: &RawCheck, frames_of: &dyn Fn(u32) -> Vec<usize>, opts: &BuildOptions) -> LeakReport {
    let mut sym: Box<dyn Symbolizer> = if opts.symbolize { Box::<InProcess>::default() } else { Box::new(RawOnly) };
    let (mut sups, errors) = opts.suppressions.as_deref().map(suppress::load).unwrap_or_default();
    for e in &errors {
        warning!("{}", e);
    }
    if opts.preload_defaults {
        sups.extend(suppress::parse("<preload defaults>", suppress::PRELOAD_DEFAULTS).0);
    }
    let mut report = build_with(raw, frames_of, &mut *sym, sups);
    if opts.modules {
        report.modules = super::modules::loaded_modules();
    }
    if let Some(path) = &opts.baseline {
        mark_known(&mut report, path);
    }
    report
}

/// Marks the groups the baseline report at `path` holds (a warning when it cannot be
/// read: then every group counts as new).
fn mark_known(report: &mut LeakReport, path: &str) {
    let baseline = std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| heapsweep_format::baseline::Baseline::from_report_json(&text));
    match baseline {
        Ok(b) => report.leaks.iter_mut().for_each(|g| g.in_baseline = b.knows(g)),
        Err(e) => warning!("baseline {}: {}; every leak counts as new", path, e),
    }
}

/// The blocks of one (kind, cyclic, stack) group.
#[derive(Default)]
struct Acc {
    blocks: u64,
    bytes: u64,
    /// A block of the group, to read `Rc` counts from.
    first_start: usize,
    /// Blocks a sweep already reported.
    reported: u64,
}

/// Groups the leaked blocks by (kind, cyclic, stack id).
fn group(leaked: &[RawLeak]) -> HashMap<(RawKind, bool, u32), Acc> {
    let mut groups: HashMap<(RawKind, bool, u32), Acc> = HashMap::new();
    for l in leaked {
        let a = groups.entry((l.kind, l.cyclic, l.stack)).or_default();
        if a.blocks == 0 {
            a.first_start = l.start;
        }
        a.blocks += 1;
        a.bytes += l.size as u64;
        a.reported += u64::from(l.reported);
    }
    groups
}

/// As [`build_report`], with a given symbolizer and suppressions (tests inject fakes).
pub(crate) fn build_with(
    raw: &RawCheck,
    frames_of: &dyn Fn(u32) -> Vec<usize>,
    sym: &mut dyn Symbolizer,
    mut sups: Vec<Suppression>,
) -> LeakReport {
    let mut summary =
        Summary { reachable_blocks: raw.reachable_blocks, reachable_bytes: raw.reachable_bytes, ..Summary::default() };
    let mut stacks = HashMap::new();
    let leaked = earn_self_cycles(&raw.leaked, &mut |id| {
        stacks.entry(id).or_insert_with(|| symbolize::stack_frames(&frames_of(id), sym)).clone()
    });
    let mut leaks = Vec::new();
    for ((kind, cyclic, stack), acc) in group(&leaked) {
        let suppressed_by = match stacks.get(&stack) {
            Some(frames) => suppress::find(&sups, frames),
            None => {
                // Matched frame by frame as the stack is resolved: a suppression of an
                // inner frame (glibc's `allocate_dtv`, under preload) then needs no debug
                // information of the program's (a test binary's cost 60 MB and 80 ms).
                let mut found = None;
                let resolved = symbolize::stack_frames_until(&frames_of(stack), sym, &mut |f| {
                    found = suppress::find(&sups, core::slice::from_ref(f));
                    found.is_some()
                });
                if let Some(frames) = resolved {
                    stacks.insert(stack, frames);
                }
                found
            }
        };
        if let Some(i) = suppressed_by {
            sups[i].blocks += acc.blocks;
            sups[i].bytes += acc.bytes;
            summary.suppressed_blocks += acc.blocks;
            continue;
        }
        let frames = &stacks[&stack];
        let kind = match kind {
            RawKind::Direct => LeakKind::Direct,
            RawKind::Indirect => LeakKind::Indirect,
        };
        let rc = rc_counts(frames, acc.first_start);
        let stack_id = (stack != 0).then_some(stack);
        leaks.push(LeakGroup {
            kind,
            cyclic,
            blocks: acc.blocks,
            bytes: acc.bytes,
            stack: frames.clone(),
            rc,
            stack_id,
            reported_by_sweep: acc.reported,
            in_baseline: false,
        });
    }
    sort_groups(&mut leaks);
    count(&mut summary, &leaks);
    let cycles = super::cycles::collect_cycles(&leaked, &leaks);
    LeakReport {
        format: LeakReport::FORMAT.into(),
        version: LeakReport::VERSION,
        program: raw.program.clone(),
        pid: raw.pid,
        status: raw.status.clone(),
        summary,
        leaks,
        suppressions: used(sups),
        modules: Vec::new(),
        cycles,
    }
}

/// The leaked blocks with the cyclic label kept only where it is earned. A block alone in
/// its component that holds its own address is cyclic only when that pointer can keep it
/// alive: the block is an `Rc`/`Arc` allocation (by its stack, as `rc` judges) with a
/// strong count of at least one. Any other lone block containing its own address is not
/// a cycle: a `Box` cannot own itself, and the word may be one an earlier occupant of the
/// memory left in bytes the new owner never wrote (padding, spare capacity).
fn earn_self_cycles(leaked: &[RawLeak], frames: &mut dyn FnMut(u32) -> Vec<Frame>) -> Vec<RawLeak> {
    leaked
        .iter()
        .map(|&l| {
            if l.cyclic && l.cycle.component_blocks == 1 {
                let earned = rc_counts(&frames(l.stack), l.start).is_some_and(|c| c.strong >= 1);
                if !earned {
                    return RawLeak { cyclic: false, cycle: CycleLink::NONE, ..l };
                }
            }
            l
        })
        .collect()
}

/// See the module note.
fn sort_groups(leaks: &mut [LeakGroup]) {
    leaks.sort_by(|a, b| {
        (b.bytes.cmp(&a.bytes))
            .then(b.blocks.cmp(&a.blocks))
            .then(a.kind.cmp(&b.kind))
            .then(b.cyclic.cmp(&a.cyclic))
            .then(a.stack_id.cmp(&b.stack_id))
    });
}

/// Fills the summary's leak counts from the groups (counted in blocks).
fn count(summary: &mut Summary, leaks: &[LeakGroup]) {
    for g in leaks {
        summary.leaked_blocks += g.blocks;
        summary.leaked_bytes += g.bytes;
        match g.kind {
            LeakKind::Direct => summary.direct_blocks += g.blocks,
            LeakKind::Indirect => summary.indirect_blocks += g.blocks,
        }
        if g.cyclic {
            summary.cyclic_blocks += g.blocks;
        }
    }
    debug_assert_eq!(summary.leaked_blocks, summary.direct_blocks + summary.indirect_blocks);
}

/// The patterns that matched, in file order.
fn used(sups: Vec<Suppression>) -> Vec<SuppressionUse> {
    sups.into_iter()
        .filter(|s| s.blocks > 0)
        .map(|s| SuppressionUse { pattern: s.pattern, matched_blocks: s.blocks, matched_bytes: s.bytes })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stack `id` has the single address `id`, named `app::site{id}`; address 0x99 is
    /// the allocator (trimmed).
    fn names(ip: usize) -> Vec<Frame> {
        let function = if ip == 0x99 { "__rust_alloc".to_string() } else { format!("app::site{ip}") };
        vec![Frame {
            function: Some(function),
            file: Some("src/main.rs".into()),
            line: Some(ip as u32),
            ..Frame::unresolved(ip)
        }]
    }

    fn frames_of(id: u32) -> Vec<usize> {
        if id == 0 {
            Vec::new()
        } else {
            vec![0x99, id as usize]
        }
    }

    fn leak(stack: u32, size: usize, kind: RawKind, cyclic: bool) -> RawLeak {
        RawLeak { stack, start: 0, size, kind, cyclic, cycle: CycleLink::NONE, reported: false }
    }

    #[test]
    fn a_lone_self_pointer_is_a_cycle_only_for_a_counted_reference() {
        let alone = CycleLink { next: 0, next_offset: 16, component_blocks: 1 };
        let pair = CycleLink { next: 1, next_offset: 0, component_blocks: 2 };
        let raw = raw(vec![
            RawLeak { cycle: alone, ..leak(1, 64, RawKind::Direct, true) },
            RawLeak { cycle: pair, ..leak(2, 16, RawKind::Direct, true) },
        ]);
        // Neither block is an `Rc` (their stacks are `app::site1` and `app::site2`).
        let r = build(&raw, "");
        let cyclic = |site: &str| r.groups_with_function(site).iter().all(|g| g.cyclic);
        assert!(!cyclic("app::site1"), "a stale self-address is no cycle");
        assert!(cyclic("app::site2"), "a component of two blocks is one");
        assert_eq!(r.summary.cyclic_blocks, 1);
    }

    fn raw(leaked: Vec<RawLeak>) -> RawCheck {
        RawCheck {
            leaked,
            reachable_blocks: 10,
            reachable_bytes: 999,
            program: "app".into(),
            pid: 7,
            status: CheckStatus::Ok,
        }
    }

    fn build(raw: &RawCheck, sups: &str) -> LeakReport {
        build_with(raw, &frames_of, &mut names, suppress::parse("s", sups).0)
    }

    #[test]
    fn groups_count_and_sort() {
        use RawKind::{Direct as D, Indirect as I};
        let r = build(
            &raw(vec![
                leak(1, 32, D, false),
                leak(2, 16, I, false),
                leak(2, 16, I, false),
                leak(3, 24, D, true),
                leak(3, 24, I, true),
                leak(3, 24, D, true),
                leak(4, 8, D, false),
                leak(4, 8, I, false),
            ]),
            "",
        );
        let s = Summary {
            leaked_blocks: 8,
            leaked_bytes: 152,
            direct_blocks: 4,
            indirect_blocks: 4,
            cyclic_blocks: 3,
            reachable_blocks: 10,
            reachable_bytes: 999,
            suppressed_blocks: 0,
        };
        assert_eq!(r.summary, s);
        let got: Vec<_> = r.leaks.iter().map(|g| (g.bytes, g.blocks, g.kind, g.cyclic, g.stack_id)).collect();
        assert_eq!(
            got,
            [
                (48, 2, LeakKind::Direct, true, Some(3)),
                (32, 2, LeakKind::Indirect, false, Some(2)), // more blocks first
                (32, 1, LeakKind::Direct, false, Some(1)),
                (24, 1, LeakKind::Indirect, true, Some(3)),
                (8, 1, LeakKind::Direct, false, Some(4)), // direct before indirect
                (8, 1, LeakKind::Indirect, false, Some(4)),
            ]
        );
        assert_eq!(r.leaks[1].stack, names(2), "the allocator's frame is trimmed");
        assert_eq!((r.format.as_str(), r.version, r.program.as_str(), r.pid), ("heapsweep-leaks", 1, "app", 7));
        assert_eq!((r.leaked_bytes(), r.leaked_blocks()), (152, 8));
        assert!(r.suppressions.is_empty() && !r.is_clean());
        assert_eq!(serde_json::from_str::<LeakReport>(&r.to_json()).unwrap(), r);
    }

    #[test]
    fn suppressions_remove_groups_and_count_matches() {
        let r = build(
            &raw(vec![
                leak(1, 32, RawKind::Direct, false),
                leak(2, 8, RawKind::Direct, false),
                leak(2, 8, RawKind::Indirect, false),
                leak(3, 4, RawKind::Direct, false),
            ]),
            "# comment\nleak:site2\nleak:nothing\nleak:app::*3\n",
        );
        assert_eq!(r.leaks.len(), 1);
        assert_eq!(r.leaks[0].stack_id, Some(1));
        assert_eq!((r.summary.leaked_blocks, r.summary.leaked_bytes), (1, 32));
        assert_eq!((r.summary.direct_blocks, r.summary.indirect_blocks), (1, 0));
        assert_eq!(r.summary.suppressed_blocks, 3);
        let used = |p: &str, b, n| SuppressionUse { pattern: p.into(), matched_blocks: b, matched_bytes: n };
        assert_eq!(r.suppressions, [used("site2", 2, 16), used("app::*3", 1, 4)]);
    }

    #[test]
    fn a_suppression_of_an_inner_frame_needs_no_outer_frame_resolved() {
        let frames_of = |id: u32| if id == 7 { vec![0x99, 0x71, 0x72, 0x73] } else { vec![0x99, id as usize] };
        let mut asked = Vec::new();
        let mut sym = |ip: usize| {
            asked.push(ip);
            let name = match ip {
                0x71 => "allocate_dtv".to_string(),
                0x72 => "app::spawn".to_string(),
                _ => return names(ip),
            };
            vec![Frame { function: Some(name), ..Frame::unresolved(ip) }]
        };
        let raw = raw(vec![leak(7, 304, RawKind::Direct, false), leak(1, 8, RawKind::Direct, false)]);
        let r = build_with(&raw, &frames_of, &mut sym, suppress::parse("s", "leak:^allocate_dtv$\nleak:spawn\n").0);
        assert_eq!(r.summary.suppressed_blocks, 1);
        assert_eq!(r.leaks.len(), 1);
        assert!(!asked.contains(&0x72) && !asked.contains(&0x73), "resolved past the match: {asked:x?}");
        let used = |p: &str, b, n| SuppressionUse { pattern: p.into(), matched_blocks: b, matched_bytes: n };
        assert_eq!(r.suppressions, [used("^allocate_dtv$", 1, 304)], "the innermost frame's pattern");
    }

    #[test]
    fn no_stack_and_no_leak() {
        let r = build(&raw(vec![leak(0, 5, RawKind::Direct, false)]), "");
        assert_eq!((r.leaks[0].stack.len(), r.leaks[0].stack_id), (0, None));
        let clean = build(&raw(vec![]), "leak:x");
        assert!(clean.is_clean() && clean.suppressions.is_empty());
        assert_eq!(clean.summary, Summary { reachable_blocks: 10, reachable_bytes: 999, ..Summary::default() });
    }

    #[test]
    fn the_checks_status_is_carried_into_the_report() {
        use crate::report::model::{CheckFailure, FailureKind};
        let failure = CheckFailure::new(FailureKind::RootsUnreadable, "cannot open /proc/self/maps: EMFILE");
        let mut raw = raw(vec![leak(1, 32, RawKind::Direct, false)]);
        raw.status = CheckStatus::Failed(failure.clone());
        let r = build(&raw, "");
        assert_eq!((r.failure(), r.leaks.len()), (Some(&failure), 1), "the groups found are kept");
        assert!(!build(&RawCheck::default(), "").check_failed());
    }

    #[test]
    fn unsymbolized_reports_keep_raw_addresses() {
        let opts = BuildOptions {
            symbolize: false,
            suppressions: None,
            preload_defaults: false,
            baseline: None,
            modules: true,
        };
        let r = build_report(&raw(vec![leak(5, 1, RawKind::Direct, false)]), &frames_of, &opts);
        assert_eq!(r.leaks[0].stack, [Frame::unresolved(0x99), Frame::unresolved(5)]);
        assert!(!r.modules.is_empty(), "the loaded objects are listed");
        let r = build_report(&raw(vec![]), &frames_of, &BuildOptions { modules: false, ..opts });
        assert!(r.modules.is_empty(), "not asked for");
    }

    #[test]
    fn rc_counts_are_attached_to_rc_groups() {
        let node = std::rc::Rc::new([3u64; 2]);
        let start = std::rc::Rc::as_ptr(&node) as usize - 16;
        let mut sym = |ip: usize| {
            let name = if ip == 1 { "alloc::rc::Rc<T>::new" } else { "app::make" };
            vec![Frame { function: Some(name.into()), ..Frame::unresolved(ip) }]
        };
        let raw = raw(vec![RawLeak {
            stack: 8,
            start,
            size: 32,
            kind: RawKind::Direct,
            cyclic: true,
            cycle: CycleLink::NONE,
            reported: false,
        }]);
        let r = build_with(&raw, &|_| vec![1, 2], &mut sym, Vec::new());
        let rc = r.leaks[0].rc.expect("counts read");
        assert_eq!((rc.kind, rc.strong, rc.weak), (crate::report::model::RcKind::Rc, 1, 1));
    }

    #[test]
    fn rendered_from_a_built_report() {
        use crate::report::text::{render, TextOptions};
        let frame = |ip: &str, f: &str, file: &str, line: u32| Frame {
            ip: ip.into(),
            function: Some(f.into()),
            file: Some(file.into()),
            line: Some(line),
            module: None,
        };
        let leak = |stack, size, kind, cyclic| RawLeak {
            stack,
            start: 0,
            size,
            kind,
            cyclic,
            cycle: CycleLink::NONE,
            reported: false,
        };
        let raw = RawCheck {
            leaked: vec![
                leak(1, 16, RawKind::Direct, false),
                leak(2, 24, RawKind::Indirect, true),
                leak(2, 24, RawKind::Indirect, true),
            ],
            program: "app".into(),
            pid: 99,
            ..RawCheck::default()
        };
        let mut sym = |ip: usize| {
            let names: &[&str] = match ip {
                1 => &["alloc::boxed::Box<T>::new", "app::head"],
                _ => &["app::node"],
            };
            names.iter().map(|n| frame(&format!("{ip:#x}"), n, "src/lib.rs", ip as u32)).collect()
        };
        let r = build_with(&raw, &|id| vec![id as usize], &mut sym, Vec::new());
        let expected = "\
=================================================================
==99==ERROR: HeapSweep: detected memory leaks

Indirect leak of 48 byte(s) in 2 object(s) (cyclic: a reference cycle) allocated from:
    #0 0x2 in app::node src/lib.rs:2

Direct leak of 16 byte(s) in 1 object(s) allocated from:
    #0 0x1 in alloc::boxed::Box<T>::new src/lib.rs:1
    #1 0x1 in app::head src/lib.rs:1

SUMMARY: HeapSweep: 64 byte(s) leaked in 3 allocation(s) (1 direct, 2 indirect, 2 in cycles).
";
        assert_eq!(render(&r, &TextOptions::default()), expected);
    }
}
