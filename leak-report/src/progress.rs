//! Progress on stderr for work that takes more than a moment.
//!
//! # What it owns
//! [`Progress`]: an `indicatif` bar or spinner, shown only when asked for (large inputs:
//! more than 1 MB of JSON, more than [`BIG`] groups) and only when stderr is a terminal,
//! so that redirected output and tests see nothing.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Groups, sites or frames above which work gets a progress bar.
pub const BIG: usize = 10_000;

/// A progress bar that may be hidden.
#[derive(Debug)]
pub struct Progress(ProgressBar);

impl Progress {
    /// A bar for `len` steps, shown when `len > BIG` and stderr is a terminal.
    pub fn bar(len: usize, message: &'static str) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(len as u64), target(len > BIG));
        if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message);
        Progress(bar)
    }

    /// A spinner, shown when `wanted` and stderr is a terminal.
    pub fn spinner(wanted: bool, message: &'static str) -> Progress {
        let target = target(wanted);
        let shown = !target.is_hidden();
        let bar = ProgressBar::with_draw_target(None, target);
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(message);
        if shown {
            bar.enable_steady_tick(std::time::Duration::from_millis(100));
        }
        Progress(bar)
    }

    /// Advances by one step.
    pub fn inc(&self) {
        self.0.inc(1);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn target(wanted: bool) -> ProgressDrawTarget {
    if wanted && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}
