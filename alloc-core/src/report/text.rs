//! The text report, in the manner of LeakSanitizer's: one paragraph per leak group,
//! largest first, then the suppressions used and a summary line.

use super::model::{LeakGroup, LeakKind, LeakReport, RcKind};
use std::fmt::Write;

/// How to render.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TextOptions {
    /// ANSI colours.
    pub(crate) color: bool,
    /// Most groups shown; 0 shows all.
    pub(crate) max_leaks: usize,
}

impl TextOptions {
    /// Colours when stderr is a terminal and `NO_COLOR` is unset.
    pub(crate) fn from_config(o: &crate::config::Options) -> Self {
        // SAFETY: isatty has no preconditions.
        let tty = unsafe { libc::isatty(2) } == 1;
        Self { color: tty && std::env::var_os("NO_COLOR").is_none(), max_leaks: o.max_leaks as usize }
    }
}

fn paint(on: bool, code: &str, text: &str) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn group(out: &mut String, g: &LeakGroup, color: bool) {
    let kind = match g.kind {
        LeakKind::Direct => paint(color, "1;31", "Direct leak"),
        LeakKind::Indirect => paint(color, "1;35", "Indirect leak"),
    };
    let cyc = if g.cyclic { " (cyclic: on a reference cycle)" } else { "" };
    let _ = writeln!(out, "{kind} of {} byte(s) in {} object(s){cyc} allocated from:", g.bytes, g.blocks);
    for (i, f) in g.stack.iter().enumerate() {
        let func = f.function.as_deref().unwrap_or("<unknown>");
        let loc = match (&f.file, f.line) {
            (Some(file), Some(line)) => format!(" {file}:{line}"),
            (Some(file), None) => format!(" {file}"),
            _ => String::new(),
        };
        let _ = writeln!(out, "    #{i} {} in {}{loc}", f.ip, paint(color, "1", func));
    }
    if let Some(rc) = g.rc {
        let what = match rc.kind {
            RcKind::Rc => ("Rc", "std::rc::Weak"),
            RcKind::Arc => ("Arc", "std::sync::Weak"),
        };
        if g.cyclic {
            let _ = writeln!(
                out,
                "  note: {} cycle: {} block(s), strong={} weak={}: each node is kept alive by another node of the cycle; make one of the links a {}",
                what.0, g.blocks, rc.strong, rc.weak, what.1
            );
        } else {
            let _ = writeln!(out, "  note: {} allocation with strong={} weak={}", what.0, rc.strong, rc.weak);
        }
    }
    out.push('\n');
}

/// Renders the report.
pub(crate) fn render(r: &LeakReport, opts: &TextOptions) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "=================================================================");
    let _ = writeln!(out, "=={}=={}: HeapSweep: detected memory leaks\n", r.pid, paint(opts.color, "1;31", "ERROR"));
    let shown = if opts.max_leaks == 0 { r.leaks.len() } else { opts.max_leaks.min(r.leaks.len()) };
    for g in &r.leaks[..shown] {
        group(&mut out, g, opts.color);
    }
    if shown < r.leaks.len() {
        let _ = writeln!(
            out,
            "... and {} more leak group(s) (see the JSON report: HEAPSWEEP=report=PATH)\n",
            r.leaks.len() - shown
        );
    }
    if !r.suppressions.is_empty() {
        let _ = writeln!(
            out,
            "-----------------------------------------------------\nSuppressions used:\n  count      bytes template"
        );
        for s in &r.suppressions {
            let _ = writeln!(out, "{:>7} {:>10} {}", s.blocks, s.bytes, s.pattern);
        }
        let _ = writeln!(out, "-----------------------------------------------------\n");
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "SUMMARY: HeapSweep: {} byte(s) leaked in {} allocation(s) ({} direct, {} indirect, {} in cycles).",
        s.leaked_bytes, s.leaked_blocks, s.direct_blocks, s.indirect_blocks, s.cyclic_blocks
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Frame, RcCounts, Summary, SuppressionUse};

    fn frame(ip: &str, f: &str, file: &str, line: u32) -> Frame {
        Frame { ip: ip.into(), function: Some(f.into()), file: Some(file.into()), line: Some(line) }
    }

    #[test]
    fn golden_text_report() {
        let r = LeakReport {
            format: LeakReport::FORMAT.into(),
            version: 1,
            program: "demo".into(),
            pid: 12345,
            summary: Summary {
                leaked_blocks: 3,
                leaked_bytes: 96,
                direct_blocks: 3,
                indirect_blocks: 0,
                cyclic_blocks: 2,
                reachable_blocks: 5,
                reachable_bytes: 50,
                suppressed_blocks: 1,
            },
            leaks: vec![
                LeakGroup {
                    kind: LeakKind::Direct,
                    cyclic: true,
                    blocks: 2,
                    bytes: 64,
                    stack: vec![
                        frame("0x10", "alloc::rc::Rc<T>::new", "rc.rs", 1),
                        frame("0x20", "demo::make_cycle", "src/main.rs", 12),
                    ],
                    rc: Some(RcCounts { kind: RcKind::Rc, strong: 1, weak: 1 }),
                },
                LeakGroup {
                    kind: LeakKind::Direct,
                    cyclic: false,
                    blocks: 1,
                    bytes: 32,
                    stack: vec![Frame { ip: "0x30".into(), function: None, file: None, line: None }],
                    rc: None,
                },
            ],
            suppressions: vec![SuppressionUse { pattern: "cache".into(), blocks: 1, bytes: 8 }],
        };
        let text = render(&r, &TextOptions::default());
        let expected = "\
=================================================================
==12345==ERROR: HeapSweep: detected memory leaks

Direct leak of 64 byte(s) in 2 object(s) (cyclic: on a reference cycle) allocated from:
    #0 0x10 in alloc::rc::Rc<T>::new rc.rs:1
    #1 0x20 in demo::make_cycle src/main.rs:12
  note: Rc cycle: 2 block(s), strong=1 weak=1: each node is kept alive by another node of the cycle; make one of the links a std::rc::Weak

Direct leak of 32 byte(s) in 1 object(s) allocated from:
    #0 0x30 in <unknown>

-----------------------------------------------------
Suppressions used:
  count      bytes template
      1          8 cache
-----------------------------------------------------

SUMMARY: HeapSweep: 96 byte(s) leaked in 3 allocation(s) (3 direct, 0 indirect, 2 in cycles).
";
        assert_eq!(text, expected);
        let short = render(&r, &TextOptions { color: false, max_leaks: 1 });
        assert!(short.contains("... and 1 more leak group(s)"));
        assert!(!short.contains("0x30"));
    }
}
