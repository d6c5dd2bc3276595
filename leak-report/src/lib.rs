//! Renderers for HeapSweep's reports, and the library behind the `leak-report` command.
//!
//! # What it owns
//! Reading a leak report (`heapsweep-leaks`) or a heap profile (`heapsweep-profile`) with
//! errors that name the file ([`input`]), and turning either into what people open after a
//! run: a text report ([`text`]), one self-contained HTML page ([`html`]), folded stacks and
//! flame graph SVGs ([`folded`], [`flamegraph`]), pprof `profile.proto` ([`pprof`]), DHAT JSON
//! ([`mod@dhat`]), a comparison of two runs ([`mod@diff`]), a CI verdict with annotations ([`mod@gate`], behind
//! `leak-report check`),
//! and offline symbolization of a report written without symbols ([`mod@symbolize`]).
//!
//! The models live in the `heapsweep-format` crate ([`heapsweep_format::report`],
//! [`heapsweep_format::profile`]; `alloc-core` re-exports them as `alloc_core::report::model`
//! and `alloc_core::profile::model`); this crate re-exports them. The `leak-report` binary is a thin command-line layer over these
//! functions.

pub mod dhat;
pub mod diff;
pub mod flamegraph;
pub mod folded;
mod fxhash;
pub mod gate;
pub mod html;
pub mod input;
pub mod output;
mod parallel;
pub mod pprof;
pub mod progress;
pub mod stacks;
pub mod symbolize;
pub mod synthetic;
pub mod text;

pub use dhat::to_dhat;
pub use diff::{diff, Diff, DiffEntry, DiffStatus};
pub use flamegraph::to_flamegraph_svg;
pub use folded::to_folded;
pub use gate::{gate, GateFormat, GateOptions, GateOutcome};
pub use heapsweep_format::profile::{HeapProfile, ProfileSummary, Site, TimelinePoint};
pub use heapsweep_format::report::{
    CheckFailure, CheckStatus, FailureKind, Frame, LeakGroup, LeakKind, LeakReport, Module, RcCounts, RcKind, Summary,
};
pub use html::render_html;
pub use input::{parse_profile, parse_report, read_input, read_profile, Input};
pub use pprof::to_pprof;
pub use stacks::{Measure, Metric, Weight};
pub use symbolize::{symbolize, SymbolizeStats};
pub use text::{render_text, TextOptions};

/// Reads a JSON leak report, with an error that names the file and what is wrong.
pub fn read_report(path: &std::path::Path) -> Result<LeakReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    input::parse_report(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();
