//! The text report, in the manner of LeakSanitizer's: a banner, one paragraph per leak
//! group (largest first, at most `max_leaks`), the suppressions used and a summary line.
//! When the check could not run to the end, the banner is LeakSanitizer's fatal error
//! instead (what failed and a `HINT:` line), and the groups found before the failure, if
//! any, follow under a line saying they may be incomplete or wrong.
//!
//! # Who calls it
//! `check::run_at_exit`, which writes the string to stderr, and `leak-report show`, so a
//! report read back prints as the program printed it. Colours are for a terminal only:
//! alloc-core turns them on when stderr is a terminal and `NO_COLOR` is unset.

use crate::report::{
    allocation_site, site_label, CheckFailure, Frame, LeakCycle, LeakGroup, LeakKind, LeakReport, RcCounts, RcKind,
};
use std::fmt::Write;

/// How to render.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextOptions {
    /// ANSI colours.
    pub color: bool,
    /// Most groups shown; 0 shows all.
    pub max_leaks: usize,
}

const BANNER: &str = "=================================================================";
const RULE: &str = "-----------------------------------------------------";

/// Renders the report.
pub fn render(r: &LeakReport, opts: &TextOptions) -> String {
    let p = Painter(opts.color);
    let mut out = String::new();
    if let Some(failure) = r.failure() {
        fatal_error(&mut out, r.pid, failure, p);
        if r.leaks.is_empty() {
            suppressions(&mut out, r);
            let _ = writeln!(out, "SUMMARY: HeapSweep: the leak check failed ({}); no leak report.", failure.kind);
            return out;
        }
        let _ = writeln!(
            out,
            "The leak groups below were found before the check failed: they may be incomplete or wrong.\n"
        );
    } else {
        let _ = writeln!(out, "{BANNER}\n=={}=={}: HeapSweep: detected memory leaks\n", r.pid, p.paint(RED, "ERROR"));
    }
    let shown = match opts.max_leaks {
        0 => r.leaks.len(),
        n => n.min(r.leaks.len()),
    };
    for (i, g) in r.leaks[..shown].iter().enumerate() {
        let on_listed_cycle = r.cycles.iter().any(|c| c.members.iter().any(|m| m.group == i));
        group(&mut out, g, on_listed_cycle, p);
    }
    let hidden = r.leaks.len() - shown;
    if hidden > 0 {
        let s = if hidden == 1 { "" } else { "s" };
        let _ = writeln!(out, "... and {hidden} more leak group{s} (see the JSON report: HEAPSWEEP=report=PATH)\n");
    }
    for c in &r.cycles {
        cycle(&mut out, r, c);
    }
    suppressions(&mut out, r);
    let known: Vec<&LeakGroup> = r.leaks.iter().filter(|g| g.in_baseline).collect();
    if !known.is_empty() {
        let (bytes, blocks) = known.iter().fold((0u64, 0u64), |(b, n), g| (b + g.bytes, n + g.blocks));
        let _ = writeln!(
            out,
            "Known leaks (in the baseline): {bytes} byte(s) in {blocks} allocation(s); they do not set the exit status."
        );
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "SUMMARY: HeapSweep: {} byte(s) leaked in {} allocation(s) ({} direct, {} indirect, {} in cycles).",
        s.leaked_bytes, s.leaked_blocks, s.direct_blocks, s.indirect_blocks, s.cyclic_blocks
    );
    out
}

/// LeakSanitizer's fatal error: the banner, what failed, and the hint, each line under
/// the `==PID==` prefix, then a blank line.
fn fatal_error(out: &mut String, pid: u32, failure: &CheckFailure, p: Painter) {
    let _ = writeln!(
        out,
        "{BANNER}\n=={pid}=={}: HeapSweep has encountered a fatal error: the leak check could not run to the end ({})",
        p.paint(RED, "ERROR"),
        failure.kind
    );
    for line in failure.message.lines() {
        let _ = writeln!(out, "=={pid}=={line}");
    }
    for (i, line) in failure.hint.lines().enumerate() {
        let label = if i == 0 { "HINT: " } else { "" };
        let _ = writeln!(out, "=={pid}=={label}{line}");
    }
    out.push('\n');
}

/// One group: its headline, its stack, and a note on `Rc`/`Arc` counts.
/// `on_listed_cycle`: a block of the group is a member of a cycle the report lists.
fn group(out: &mut String, g: &LeakGroup, on_listed_cycle: bool, p: Painter) {
    let kind = match g.kind {
        LeakKind::Direct => p.paint(RED, "Direct leak"),
        LeakKind::Indirect => p.paint(MAGENTA, "Indirect leak"),
    };
    let cyc = if g.cyclic { " (cyclic: a reference cycle)" } else { "" };
    let known = if g.in_baseline { " (known: in the baseline)" } else { "" };
    let _ = writeln!(out, "{kind} of {} byte(s) in {} object(s){cyc}{known} allocated from:", g.bytes, g.blocks);
    if g.stack.is_empty() {
        let _ = writeln!(out, "    (no allocation stack recorded: see the stack_depth option)");
    }
    for (i, f) in g.stack.iter().enumerate() {
        let _ = writeln!(out, "    #{i} {}", frame(f, p));
    }
    if let Some(rc) = g.rc {
        let _ = writeln!(out, "  note: {}", rc_note(g, rc, on_listed_cycle));
    }
    if g.reported_by_sweep > 0 {
        let _ = writeln!(out, "  note: {} of these object(s) already reported by a leak sweep", g.reported_by_sweep);
    }
    out.push('\n');
}

/// One leaked cycle: its members in order, each with its size, allocation site and the
/// offset of its pointer to the next.
fn cycle(out: &mut String, r: &LeakReport, c: &LeakCycle) {
    let shown = c.members.len() as u64 + c.more_members;
    let _ = write!(out, "Leaked cycle of {shown} block(s)");
    if c.component_blocks > shown {
        let _ = write!(out, " (one of the cycles among {} blocks that all reach each other)", c.component_blocks);
    }
    let _ = writeln!(out, ", each block pointing to the next:");
    for (i, m) in c.members.iter().enumerate() {
        let site = r
            .leaks
            .get(m.group)
            .and_then(|g| allocation_site(&g.stack))
            .map_or_else(|| "<no stack>".to_string(), site_label);
        let next = if i + 1 == c.members.len() && c.more_members == 0 { " (the first)" } else { "" };
        let _ = writeln!(
            out,
            "    {} ({} bytes) from {site}; pointer at +{:#x} -> next{next}",
            m.address, m.bytes, m.next_offset
        );
    }
    if c.more_members > 0 {
        let _ = writeln!(out, "    ... and {} more blocks, the last pointing to the first", c.more_members);
    }
    out.push('\n');
}

/// `0x... in function file:line`, or `0x... in <unknown> (module)`.
fn frame(f: &Frame, p: Painter) -> String {
    let mut s = format!("{} in {}", f.ip, p.paint(BOLD, f.function.as_deref().unwrap_or("<unknown>")));
    match (&f.file, f.line) {
        (Some(file), Some(line)) => {
            let _ = write!(s, " {file}:{line}");
        }
        (Some(file), None) => {
            let _ = write!(s, " {file}");
        }
        (None, _) => {
            if let Some(m) = &f.module {
                let _ = write!(s, " ({m})");
            }
        }
    }
    s
}

/// Why an `Rc`/`Arc` block is alive, with its counts.
fn rc_note(g: &LeakGroup, rc: RcCounts, on_listed_cycle: bool) -> String {
    let (name, weak) = match rc.kind {
        RcKind::Rc => ("Rc", "std::rc::Weak"),
        RcKind::Arc => ("Arc", "std::sync::Weak"),
    };
    let counts = format!("strong={} weak={}", rc.strong, rc.weak);
    if g.cyclic && on_listed_cycle {
        format!("{name} on a reference cycle, {counts} (the cycle is shown below the leaks; make one of its links a {weak})")
    } else if g.cyclic {
        let blocks = if g.blocks == 1 { "1 block".to_string() } else { format!("{} blocks", g.blocks) };
        format!(
            "{name} cycle: {blocks}, {counts} (each node is kept alive by another node in the cycle; \
             make one of the links a {weak})"
        )
    } else if g.kind == LeakKind::Direct {
        format!("{name} with {counts}: no pointer to it remains (a strong reference was forgotten or leaked)")
    } else {
        format!("{name} with {counts}, kept alive by another leaked block")
    }
}

/// The "Suppressions used" table, when any pattern matched.
fn suppressions(out: &mut String, r: &LeakReport) {
    if r.suppressions.is_empty() {
        return;
    }
    let _ = writeln!(out, "{RULE}\nSuppressions used:\n  count      bytes template");
    for s in &r.suppressions {
        let _ = writeln!(out, "{:>7} {:>10} {}", s.matched_blocks, s.matched_bytes, s.pattern);
    }
    let _ = writeln!(out, "{RULE}\n");
}

const RED: &str = "1;31";
const MAGENTA: &str = "1;35";
const BOLD: &str = "1";

/// ANSI colouring when its flag is set, plain text otherwise (also used by
/// `leak-report show`).
#[derive(Clone, Copy, Debug)]
pub struct Painter(pub bool);

impl Painter {
    /// `text` in the SGR style `code` (`"1"` bold, `"1;31"` bold red, `"34"` blue...).
    pub fn paint(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CheckStatus, FailureKind, Summary, SuppressionUse};

    fn frame(ip: &str, f: &str, file: &str, line: u32) -> Frame {
        Frame { ip: ip.into(), function: Some(f.into()), file: Some(file.into()), line: Some(line), module: None }
    }

    fn sample() -> LeakReport {
        let group = |kind, cyclic, blocks, bytes, stack, rc| LeakGroup {
            kind,
            cyclic,
            blocks,
            bytes,
            stack,
            rc,
            stack_id: None,
            reported_by_sweep: 0,
            in_baseline: false,
        };
        let unknown = Frame { module: Some("/lib/libplugin.so".into()), ..Frame::unresolved(0x30) };
        LeakReport {
            modules: Vec::new(),
            cycles: Vec::new(),
            format: LeakReport::FORMAT.into(),
            version: 1,
            program: "demo".into(),
            pid: 12345,
            status: CheckStatus::Ok,
            summary: Summary {
                leaked_blocks: 4,
                leaked_bytes: 112,
                direct_blocks: 3,
                indirect_blocks: 1,
                cyclic_blocks: 2,
                reachable_blocks: 5,
                reachable_bytes: 50,
                suppressed_blocks: 3,
            },
            leaks: vec![
                group(
                    LeakKind::Direct,
                    true,
                    2,
                    64,
                    vec![
                        frame("0x10", "alloc::rc::Rc<T>::new", "rc.rs", 1),
                        frame("0x20", "demo::make_cycle", "src/main.rs", 12),
                    ],
                    Some(RcCounts { kind: RcKind::Rc, strong: 1, weak: 1 }),
                ),
                group(LeakKind::Direct, false, 1, 32, vec![unknown, Frame::unresolved(0x40)], None),
                group(
                    LeakKind::Indirect,
                    false,
                    1,
                    16,
                    vec![],
                    Some(RcCounts { kind: RcKind::Arc, strong: 1, weak: 1 }),
                ),
            ],
            suppressions: vec![SuppressionUse { pattern: "my_cache".into(), matched_blocks: 3, matched_bytes: 96 }],
        }
    }

    const GOLDEN: &str = "\
=================================================================
==12345==ERROR: HeapSweep: detected memory leaks

Direct leak of 64 byte(s) in 2 object(s) (cyclic: a reference cycle) allocated from:
    #0 0x10 in alloc::rc::Rc<T>::new rc.rs:1
    #1 0x20 in demo::make_cycle src/main.rs:12
  note: Rc cycle: 2 blocks, strong=1 weak=1 (each node is kept alive by another node in the cycle; make one of the links a std::rc::Weak)

Direct leak of 32 byte(s) in 1 object(s) allocated from:
    #0 0x30 in <unknown> (/lib/libplugin.so)
    #1 0x40 in <unknown>

Indirect leak of 16 byte(s) in 1 object(s) allocated from:
    (no allocation stack recorded: see the stack_depth option)
  note: Arc with strong=1 weak=1, kept alive by another leaked block

-----------------------------------------------------
Suppressions used:
  count      bytes template
      3         96 my_cache
-----------------------------------------------------

SUMMARY: HeapSweep: 112 byte(s) leaked in 4 allocation(s) (3 direct, 1 indirect, 2 in cycles).
";

    #[test]
    fn golden_text_report() {
        assert_eq!(render(&sample(), &TextOptions::default()), GOLDEN);
    }

    /// `sample()` whose check failed: a thread did not stop.
    fn failed(mut r: LeakReport) -> LeakReport {
        r.status = CheckStatus::Failed(CheckFailure {
            kind: FailureKind::ThreadsNotStopped,
            message: "thread 4243 did not stop within 2000 ms".into(),
            hint: "let every thread take SIGPWR".into(),
        });
        r
    }

    const FAILED_HEAD: &str = "\
=================================================================
==12345==ERROR: HeapSweep has encountered a fatal error: the leak check could not run to the end (threads_not_stopped)
==12345==thread 4243 did not stop within 2000 ms
==12345==HINT: let every thread take SIGPWR

";

    #[test]
    fn golden_failed_check_with_groups() {
        let text = render(&failed(sample()), &TextOptions::default());
        let groups = GOLDEN.split_once("detected memory leaks\n\n").unwrap().1;
        let expected = format!(
            "{FAILED_HEAD}The leak groups below were found before the check failed: they may be incomplete or \
             wrong.\n\n{groups}"
        );
        assert_eq!(text, expected);
        assert!(!text.contains("detected memory leaks"));
    }

    #[test]
    fn golden_failed_check_without_groups() {
        let mut r = failed(sample());
        r.leaks.clear();
        r.suppressions.clear();
        r.summary = Summary::default();
        let expected =
            format!("{FAILED_HEAD}SUMMARY: HeapSweep: the leak check failed (threads_not_stopped); no leak report.\n");
        assert_eq!(render(&r, &TextOptions::default()), expected);
        // Suppressions that matched before the failure are still listed.
        r.suppressions = sample().suppressions;
        let text = render(&r, &TextOptions::default());
        assert!(
            text.contains("Suppressions used:\n  count      bytes template\n      3         96 my_cache\n"),
            "{text}"
        );
        assert!(text.ends_with("no leak report.\n"));
    }

    #[test]
    fn a_failed_check_is_red_and_multi_line_texts_keep_the_prefix() {
        let mut r = failed(sample());
        r.leaks.clear();
        let coloured = render(&r, &TextOptions { color: true, max_leaks: 0 });
        assert!(coloured.contains("==12345==\x1b[1;31mERROR\x1b[0m: HeapSweep has encountered a fatal error"));
        let CheckStatus::Failed(f) = &mut r.status else { unreachable!() };
        f.message = "line one\nline two".into();
        f.hint = "first\nsecond".into();
        let text = render(&r, &TextOptions::default());
        assert!(
            text.contains("==12345==line one\n==12345==line two\n==12345==HINT: first\n==12345==second\n"),
            "{text}"
        );
    }

    #[test]
    fn max_leaks_cuts_the_list_and_says_how_many_are_left() {
        let r = sample();
        let short = render(&r, &TextOptions { color: false, max_leaks: 1 });
        assert!(short.contains("\n... and 2 more leak groups (see the JSON report"), "{short}");
        assert!(!short.contains("0x30") && short.contains("0x20"));
        assert!(short.ends_with("(3 direct, 1 indirect, 2 in cycles).\n"), "the summary still counts all");
        let one_left = render(&r, &TextOptions { color: false, max_leaks: 2 });
        assert!(one_left.contains("... and 1 more leak group (see"));
        assert_eq!(render(&r, &TextOptions { color: false, max_leaks: 3 }), GOLDEN);
    }

    #[test]
    fn colours_only_when_asked() {
        let coloured = render(&sample(), &TextOptions { color: true, max_leaks: 0 });
        assert!(coloured.contains("\x1b[1;31mDirect leak\x1b[0m of 64"));
        assert!(coloured.contains("\x1b[1;35mIndirect leak\x1b[0m"));
        assert!(!GOLDEN.contains('\x1b'));
    }

    #[test]
    fn a_forgotten_rc_gets_its_own_note() {
        let mut r = sample();
        r.leaks[0].cyclic = false;
        let text = render(&r, &TextOptions::default());
        assert!(text.contains("  note: Rc with strong=1 weak=1: no pointer to it remains"), "{text}");
    }
}
