//! Reporting: the report model (the JSON of the contract), building it from a check's raw
//! output, and its text and JSON renderings.
//!
//! # What it owns
//! - [`model`]: the public report types (`LeakReport` and its parts), from the
//!   `heapsweep-format` crate.
//! - `build`: grouping by (kind, cyclic, stack), sorting, the summary.
//! - `symbolize`: addresses to frames in process, trimming of allocator/runtime frames.
//! - `suppress`: the `suppressions=` file and its matching.
//! - `modules`: the loaded object files and their load addresses.
//! - `rc`: strong/weak counts read from leaked `Rc`/`Arc` blocks.
//! - [`text`]: the LSan-style report for stderr (from `heapsweep-format`); [`json`]: the
//!   JSON report and its file.
//!
//! # Who calls it, and when
//! `check` (a check on demand and the at-exit check), after the world resumed, with the
//! reentrancy guard set: allocations here (`Vec`, `String`, serde, the `backtrace`
//! crate's caches) go to the untracked internal heap. Nothing here runs on the
//! allocation path or while threads are stopped.

pub(crate) mod build;
pub(crate) mod cycles;
pub mod json;
pub(crate) mod modules;
pub(crate) mod rc;
pub(crate) mod suppress;
pub(crate) mod symbolize;

/// The report model, from the `heapsweep-format` crate.
pub use heapsweep_format::report as model;
/// The text report, from the `heapsweep-format` crate.
pub use heapsweep_format::text;

/// Text options for the report on stderr: colours when stderr is a terminal and
/// `NO_COLOR` is unset, at most the `max_leaks` option's groups.
pub(crate) fn text_options(o: &crate::config::Options) -> text::TextOptions {
    let tty = crate::platform::isatty(2);
    text::TextOptions { color: tty && std::env::var_os("NO_COLOR").is_none(), max_leaks: o.max_leaks as usize }
}

/// Drops the allocator's plumbing at the innermost end of a stack (innermost frame
/// first) and the runtime's frames below `main`, by function names and files: what the
/// in-process report does, for tools that symbolize a report later.
pub fn trim_frames(frames: &mut Vec<model::Frame>) {
    symbolize::trim(frames)
}

/// `argv[0]` of the program, for the `program` field of reports and profiles.
pub(crate) fn program_name() -> String {
    std::env::args_os().next().map(|a| a.to_string_lossy().into_owned()).unwrap_or_default()
}
