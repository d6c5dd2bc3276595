//! The text report of `leak-report show`.
//!
//! # What it owns
//! [`render_text`]: for a leak report, LeakSanitizer-style paragraphs (one per group, its
//! stack innermost first, `Rc`/`Arc` counts, cycles flagged) and a `SUMMARY:` line; for a
//! profile, its totals and the top sites by live, allocated and at-peak bytes. Colours are
//! ANSI escapes, used only when [`TextOptions::color`] says so (the binary asks whether
//! stdout is a terminal and honours `NO_COLOR`).

use crate::input::Input;
use crate::stacks::{frame_label, frame_location};
use alloc_core::profile::model::{HeapProfile, Site};
use alloc_core::report::model::{Frame, LeakGroup, LeakKind, LeakReport, RcKind};
use std::fmt::Write;

/// How to render.
#[derive(Clone, Copy, Debug)]
pub struct TextOptions {
    /// ANSI colours.
    pub color: bool,
    /// Most leak groups, or sites per table, shown; 0 shows all groups.
    pub top: usize,
}

impl Default for TextOptions {
    fn default() -> Self {
        TextOptions { color: false, top: 10 }
    }
}

impl TextOptions {
    /// Colours when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn color_for_stdout() -> bool {
        use std::io::IsTerminal;
        std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
    }
}

/// Renders a leak report or a profile as text.
pub fn render_text(input: &Input, opts: &TextOptions) -> String {
    match input {
        Input::Leaks(r) => leaks(r, opts),
        Input::Profile(p) => profile(p, opts),
    }
}

const RED: &str = "\x1b[1;31m";
const MAGENTA: &str = "\x1b[1;35m";
const BLUE: &str = "\x1b[34m";
const BOLD: &str = "\x1b[1m";

#[derive(Clone, Copy)]
struct Painter(bool);

impl Painter {
    fn paint(self, style: &str, text: &str) -> String {
        if self.0 {
            format!("{style}{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

fn leaks(r: &LeakReport, opts: &TextOptions) -> String {
    let p = Painter(opts.color);
    let mut out = String::new();
    let _ = writeln!(out, "{}: {} (pid {})\n", p.paint(BOLD, "Leak report"), r.program, r.pid);
    if r.is_clean() {
        let _ = writeln!(out, "No leaks found.");
    }
    let shown = if opts.top == 0 { r.leaks.len() } else { opts.top.min(r.leaks.len()) };
    for g in &r.leaks[..shown] {
        group(&mut out, g, p);
    }
    let hidden = r.leaks.len() - shown;
    if hidden > 0 {
        let _ = writeln!(out, "... and {hidden} more leak group(s) (--top 0 shows all)\n");
    }
    for s in &r.suppressions {
        let _ = writeln!(
            out,
            "suppressed: {} byte(s) in {} object(s) by leak:{}",
            s.matched_bytes, s.matched_blocks, s.pattern
        );
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "SUMMARY: HeapSweep: {} byte(s) leaked in {} allocation(s) ({} direct, {} indirect, {} in cycles; {} reachable block(s) of {} byte(s); {} suppressed).",
        s.leaked_bytes, s.leaked_blocks, s.direct_blocks, s.indirect_blocks, s.cyclic_blocks, s.reachable_blocks, s.reachable_bytes, s.suppressed_blocks
    );
    out
}

fn group(out: &mut String, g: &LeakGroup, p: Painter) {
    let kind = match g.kind {
        LeakKind::Direct => p.paint(RED, "Direct leak"),
        LeakKind::Indirect => p.paint(MAGENTA, "Indirect leak"),
    };
    let cyc = if g.cyclic { " (cyclic: a reference cycle)" } else { "" };
    let _ = writeln!(out, "{kind} of {} byte(s) in {} object(s){cyc} allocated from:", g.bytes, g.blocks);
    stack(out, &g.stack, p);
    if let Some(rc) = g.rc {
        let kind = match rc.kind {
            RcKind::Rc => "Rc",
            RcKind::Arc => "Arc",
        };
        let _ = writeln!(out, "  note: {kind} with strong count {} and weak count {}", rc.strong, rc.weak);
    }
    out.push('\n');
}

fn stack(out: &mut String, frames: &[Frame], p: Painter) {
    if frames.is_empty() {
        let _ = writeln!(out, "    (no allocation stack recorded)");
    }
    for (i, f) in frames.iter().enumerate() {
        let at = frame_location(f).map(|l| format!(" {}", p.paint(BLUE, &l))).unwrap_or_default();
        let _ = match (&f.function, &f.module) {
            (Some(name), _) => writeln!(out, "    #{i} {} in {name}{at}", f.ip),
            (None, Some(module)) => writeln!(out, "    #{i} {} in <unknown> ({module})", f.ip),
            (None, None) => writeln!(out, "    #{i} {} in <unknown>", f.ip),
        };
    }
}

fn profile(prof: &HeapProfile, opts: &TextOptions) -> String {
    let p = Painter(opts.color);
    let s = &prof.summary;
    let mut out = String::new();
    let _ = writeln!(out, "{}: {} (pid {})\n", p.paint(BOLD, "Heap profile"), prof.program, prof.pid);
    let _ = writeln!(out, "  allocated: {} byte(s) in {} block(s)", s.total_bytes, s.total_blocks);
    let _ = writeln!(out, "  live:      {} byte(s) in {} block(s) at {} us", s.live_bytes, s.live_blocks, prof.time_us);
    let _ =
        writeln!(out, "  peak:      {} byte(s) in {} block(s) at {} us", s.peak_bytes, s.peak_blocks, s.peak_time_us);
    let _ = writeln!(out, "  sites:     {}\n", prof.sites.len());
    let top = if opts.top == 0 { prof.sites.len() } else { opts.top };
    let tables: [(&str, Counts, u64); 3] = [
        ("live bytes", |s| (s.live_bytes, s.live_blocks), s.live_bytes),
        ("allocated bytes", |s| (s.total_bytes, s.total_blocks), s.total_bytes),
        ("bytes at peak", |s| (s.peak_bytes, s.peak_blocks), s.peak_bytes),
    ];
    for (title, get, total) in tables {
        sites_table(&mut out, prof, title, get, total, top, p);
    }
    out
}

/// A site's (bytes, blocks) for one table.
type Counts = fn(&Site) -> (u64, u64);

fn sites_table(out: &mut String, prof: &HeapProfile, title: &str, get: Counts, total: u64, top: usize, p: Painter) {
    let mut sites: Vec<&Site> = prof.sites.iter().filter(|s| get(s).0 > 0).collect();
    sites.sort_by_key(|s| std::cmp::Reverse(get(s).0));
    let _ = writeln!(out, "{}", p.paint(BOLD, &format!("Top sites by {title}:")));
    if sites.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for s in sites.iter().take(top) {
        let (bytes, blocks) = get(s);
        let pct = if total == 0 { 0.0 } else { bytes as f64 * 100.0 / total as f64 };
        let _ = writeln!(out, "  {bytes:>12} B {pct:>5.1}% {blocks:>9} block(s)  {}", site_name(&s.stack, p));
    }
    out.push('\n');
}

/// The innermost frame outside the standard library and dependencies (else the innermost
/// with a symbol), and where it is.
fn site_name(stack: &[Frame], p: Painter) -> String {
    let own = stack.iter().find(|f| f.file.as_deref().is_some_and(|file| !crate::check::is_library_file(file)));
    let Some(f) = own.or_else(|| stack.iter().find(|f| f.function.is_some())).or(stack.first()) else {
        return crate::stacks::NO_STACK.to_string();
    };
    match frame_location(f) {
        Some(l) => format!("{} {}", frame_label(f), p.paint(BLUE, &l)),
        None => frame_label(f),
    }
}
