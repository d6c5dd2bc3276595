//! Where a sweep's new leaks go: a JSON line appended to `<report>.sweeps.jsonl` when
//! `report=PATH` is set (FORMATS.md: `heapsweep-sweep`), then a `tracing` warning per
//! group and the [`on_leak`] callback. Runs after the sweep released its lock, without
//! the reentrancy guard: the callback and the `tracing` subscriber are the program's
//! code, and allocate as the program does.

use super::SweepResult;
use crate::report::model::{LeakGroup, LeakKind};
use core::sync::atomic::{AtomicUsize, Ordering};
use heapsweep_format::sweep::SweepLine;
use std::io::Write as _;

/// A function told of each new leak group a sweep finds.
pub type LeakCallback = fn(&LeakGroup);

/// The callback as an address; 0 when none.
static CALLBACK: AtomicUsize = AtomicUsize::new(0);

/// Sets the function told of each new leak group (replacing any earlier one); `None`
/// removes it. It runs on the thread that swept (the sweeper thread, or the caller of
/// `collect`), once per group, after the world resumed.
pub fn on_leak(f: Option<LeakCallback>) {
    CALLBACK.store(f.map_or(0, |f| f as usize), Ordering::Release);
}

fn callback() -> Option<LeakCallback> {
    let f = CALLBACK.load(Ordering::Acquire);
    // SAFETY: a non-zero value was stored by `on_leak` from a `LeakCallback`, a plain `fn`
    // pointer of the same type, valid for the life of the process.
    (f != 0).then(|| unsafe { core::mem::transmute::<usize, LeakCallback>(f) })
}

/// Writes the JSON line of sweep number `sequence`, if it found new leaks (`always`: even
/// when it found none, a sweep the signal asked for) and `report` is set.
///
/// Called before [`tell`]: a program told of a leak (by the callback or a `tracing`
/// subscriber) may end at once, and its line must then be in the file already. (Written
/// last, it was lost now and then: `tests/sweep_service.rs`, whose program exits as soon
/// as its callback counted every leak, found 10 lines for 11 leaks in a release run.)
pub(super) fn write_line(r: &SweepResult, sequence: u64, always: bool) {
    if r.failure.is_none() && (always || !r.new_leaks.leaks.is_empty()) {
        append_line(r, sequence);
    }
}

/// Tells the program of the sweep's new leaks: a `tracing` warning and the callback per
/// group.
pub(super) fn tell(r: &SweepResult) {
    for g in &r.new_leaks.leaks {
        let top: Vec<&str> = g.stack.iter().take(3).map(|f| f.function.as_deref().unwrap_or(&f.ip)).collect();
        let kind = match g.kind {
            LeakKind::Direct => "direct",
            LeakKind::Indirect => "indirect",
        };
        tracing::warn!(
            target: "heapsweep::sweep",
            bytes = g.bytes,
            blocks = g.blocks,
            kind,
            cyclic = g.cyclic,
            generation = r.generation,
            top_frames = %top.join(" < "),
            "new leak"
        );
        if let Some(f) = callback() {
            f(g);
        }
    }
}

/// Appends the sweep's line to `<report>.sweeps.jsonl` (`%p` expanded), if `report` is set.
fn append_line(r: &SweepResult, sequence: u64) {
    let opts = crate::config::current();
    let Some(template) = opts.report.as_option() else { return };
    let mut path = template.expand(std::process::id()).to_string_lossy();
    path.push_str(".sweeps.jsonl");
    let line = SweepLine {
        format: SweepLine::FORMAT,
        version: 1,
        pid: std::process::id(),
        sweep: sequence,
        generation: r.generation,
        pause_us: r.pause.as_micros() as u64,
        swept_blocks: r.swept_blocks,
        survivors: r.survivors,
        new_leaked_blocks: r.new_leaked_blocks(),
        new_leaked_bytes: r.new_leaks.leaks.iter().map(|g| g.bytes).sum(),
        leaks: &r.new_leaks.leaks,
    };
    let text = match line.to_json_line() {
        Ok(t) => t,
        Err(e) => return warning!("leak sweep: cannot write its JSON line: {}", e),
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{text}\n").as_bytes()));
    if let Err(e) = written {
        warning!("leak sweep: cannot append to {}: {}", path, e);
    }
}
