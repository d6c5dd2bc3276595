//! The text report of `leak-report show`.
//!
//! # What it owns
//! [`render_text`]: for a leak report, the text the program printed at exit
//! (`heapsweep_format::text`: LeakSanitizer-style paragraphs, one per group, its stack
//! innermost first, `Rc`/`Arc` counts, cycles flagged, and a `SUMMARY:` line); for a
//! profile, its totals, the top sites by live, allocated and at-peak bytes, and (profiles
//! written with `verbosity=2`) why the largest sites are alive. Colours are
//! ANSI escapes, used only when [`TextOptions::color`] says so (the binary asks whether
//! stdout is a terminal and honours `NO_COLOR`).

use crate::input::Input;
use crate::stacks::{frame_label, frame_location};
use heapsweep_format::profile::{HeapProfile, Site, SiteRetention};
use heapsweep_format::report::{Frame, LeakReport};
use heapsweep_format::text::Painter;
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

/// SGR styles (see [`Painter::paint`]).
const BLUE: &str = "34";
const BOLD: &str = "1";

/// A header naming the program, then the leaks as the program printed them at exit
/// (alloc-core's renderer, the same text, which begins with the failure when the leak
/// check could not run to the end); a clean report of a check that ran to the end says so
/// with its counts.
fn leaks(r: &LeakReport, opts: &TextOptions) -> String {
    let p = Painter(opts.color);
    let mut out = String::new();
    let _ = writeln!(out, "{}: {} (pid {})\n", p.paint(BOLD, "Leak report"), r.program, r.pid);
    if r.is_clean() && !r.check_failed() {
        let s = &r.summary;
        let _ = writeln!(
            out,
            "No leaks found ({} reachable block(s) of {} byte(s); {} leaked block(s) suppressed).",
            s.reachable_blocks, s.reachable_bytes, s.suppressed_blocks
        );
        return out;
    }
    let text_opts = heapsweep_format::text::TextOptions { color: opts.color, max_leaks: opts.top };
    out.push_str(&heapsweep_format::text::render(r, &text_opts));
    out
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
    retention(&mut out, prof, p);
    out
}

/// With `verbosity=2` profiles: for each of the largest sites, the chain of pointers from
/// a root that keeps one of its blocks alive, root first.
fn retention(out: &mut String, prof: &HeapProfile, p: Painter) {
    if prof.retention.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", p.paint(BOLD, "Why the largest sites are alive:"));
    for r in &prof.retention {
        let (title, lines) = retention_lines(prof, r, p);
        let _ = writeln!(out, "  {title}");
        for line in lines {
            let _ = writeln!(out, "    {line}");
        }
    }
    out.push('\n');
}

/// One site's retention in words: a title (the site, the block), then the root and each
/// block of the chain (or why there is none). Shared with the HTML page.
pub(crate) fn retention_lines(prof: &HeapProfile, r: &SiteRetention, p: Painter) -> (String, Vec<String>) {
    let site = prof.sites.iter().find(|s| s.stack_id == Some(r.stack_id));
    let name = site.map_or_else(|| crate::stacks::NO_STACK.to_string(), |s| site_name(&s.stack, p));
    let title = format!("{name}: the block at {} ({} bytes)", r.address, r.size);
    let Some(chain) = &r.chain else {
        return (title, vec![r.note.clone().unwrap_or_else(|| "no chain".into())]);
    };
    let root = &chain.root;
    let mut first = format!("root: {} {}..{}", root.kind, root.start, root.end);
    if let Some(word) = &root.word {
        let _ = write!(first, ", the word at {word}");
    }
    if let Some(symbol) = &root.symbol {
        let _ = write!(first, " (in {symbol})");
    }
    if !root.stack.is_empty() {
        let _ = write!(first, ", allocated at {}", site_name(&root.stack, p));
    }
    let mut lines = vec![first];
    for (i, step) in chain.steps.iter().enumerate() {
        let pointer = match step.next_offset {
            Some(o) => format!("the pointer to #{} is at +{o:#x}", i + 1),
            None => "the block asked about".into(),
        };
        lines.push(format!("#{i} {} ({} bytes) {}; {pointer}", step.address, step.size, site_name(&step.stack, p)));
    }
    (title, lines)
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
    let own = stack.iter().find(|f| f.file.as_deref().is_some_and(|file| !crate::gate::is_library_file(file)));
    let Some(f) = own.or_else(|| stack.iter().find(|f| f.function.is_some())).or(stack.first()) else {
        return crate::stacks::NO_STACK.to_string();
    };
    match frame_location(f) {
        Some(l) => format!("{} {}", frame_label(f), p.paint(BLUE, &l)),
        None => frame_label(f),
    }
}
