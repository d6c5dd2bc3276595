//! Stacks and weights: what every stack-based renderer (folded stacks, flame graphs, pprof,
//! DHAT, HTML) needs from a leak report or a profile.
//!
//! # What it owns
//! - [`Measure`]: which number weighs a stack: bytes or blocks ([`Weight`]), and for a
//!   profile live, total or at-peak ([`Metric`]). In a leak report every metric means the
//!   leaked blocks.
//! - [`weighted_stacks`]: one `(stack, weight)` per leak group or site.
//! - [`frame_label`] / [`frame_location`]: how a frame is named in every output, so that the
//!   renderers agree.

use crate::input::Input;
use heapsweep_format::report::Frame;

/// Bytes or blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Weight {
    /// Requested bytes.
    #[default]
    Bytes,
    /// Blocks (allocations).
    Blocks,
}

/// Which of a profile's counts (ignored for a leak report, whose count is "leaked").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Metric {
    /// Live when the profile was written.
    #[default]
    Live,
    /// Allocated since the start.
    Total,
    /// Live at the heap's peak.
    Peak,
}

/// A weight and a metric.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Measure {
    /// Bytes or blocks.
    pub weight: Weight,
    /// Live, total or at peak (profiles only).
    pub metric: Metric,
}

impl Measure {
    /// What the weight counts, for titles: "leaked bytes", "live blocks", ...
    pub fn describe(&self, input: &Input) -> String {
        let what = match self.weight {
            Weight::Bytes => "bytes",
            Weight::Blocks => "blocks",
        };
        let metric = match (input, self.metric) {
            (Input::Leaks(_), _) => "leaked",
            (Input::Profile(_), Metric::Live) => "live",
            (Input::Profile(_), Metric::Total) => "allocated",
            (Input::Profile(_), Metric::Peak) => "at-peak",
        };
        format!("{metric} {what}")
    }
}

/// One `(stack, weight)` per leak group or profile site, innermost frame first, in the
/// input's order; zero weights included.
pub fn weighted_stacks(input: &Input, m: Measure) -> Vec<(&[Frame], u64)> {
    match input {
        Input::Leaks(r) => r
            .leaks
            .iter()
            .map(|g| {
                let w = match m.weight {
                    Weight::Bytes => g.bytes,
                    Weight::Blocks => g.blocks,
                };
                (g.stack.as_slice(), w)
            })
            .collect(),
        Input::Profile(p) => p
            .sites
            .iter()
            .map(|s| {
                let (bytes, blocks) = match m.metric {
                    Metric::Live => (s.live_bytes, s.live_blocks),
                    Metric::Total => (s.total_bytes, s.total_blocks),
                    Metric::Peak => (s.peak_bytes, s.peak_blocks),
                };
                let w = match m.weight {
                    Weight::Bytes => bytes,
                    Weight::Blocks => blocks,
                };
                (s.stack.as_slice(), w)
            })
            .collect(),
    }
}

/// The name a frame goes by: its function, or `0xADDR` (with the module's file name) when
/// it has no symbol.
pub fn frame_label(f: &Frame) -> String {
    match (&f.function, &f.module) {
        (Some(name), _) => name.clone(),
        (None, Some(module)) => format!("{} ({})", f.ip, file_name(module)),
        (None, None) => f.ip.clone(),
    }
}

/// `file:line`, when the frame has a file.
pub fn frame_location(f: &Frame) -> Option<String> {
    let file = f.file.as_deref()?;
    Some(match f.line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_string(),
    })
}

/// Label used for a stack with no frames recorded (`stack_depth=0`).
pub const NO_STACK: &str = "[no stack recorded]";

/// The last component of a path.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Parses a frame's `"0x..."` address (0 when malformed).
pub fn frame_ip(f: &Frame) -> u64 {
    heapsweep_format::report::Module::parse_address(&f.ip).unwrap_or(0)
}
