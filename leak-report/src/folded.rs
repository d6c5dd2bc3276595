//! Folded stacks: `root;caller;...;leaf weight`, one line per distinct stack, the input of
//! flame graph tools (inferno, flamegraph.pl, speedscope).
//!
//! # What it owns
//! [`to_folded`] and [`folded_lines`]: frames named by [`frame_label`], stacks that name
//! the same frames merged (their weights added), lines sorted, zero weights left out.

use crate::input::Input;
use crate::stacks::{frame_label, weighted_stacks, Measure, NO_STACK};
use std::collections::BTreeMap;

/// The folded stacks of `input`, weighed by `m`, one per line.
pub fn to_folded(input: &Input, m: Measure) -> String {
    let mut out = String::new();
    for (stack, weight) in folded_lines(input, m) {
        out.push_str(&stack);
        out.push(' ');
        out.push_str(&weight.to_string());
        out.push('\n');
    }
    out
}

/// `(root;...;leaf, weight)` pairs, sorted by stack.
pub fn folded_lines(input: &Input, m: Measure) -> BTreeMap<String, u64> {
    let mut lines = BTreeMap::new();
    for (stack, weight) in weighted_stacks(input, m) {
        if weight == 0 {
            continue;
        }
        let key = if stack.is_empty() {
            NO_STACK.to_string()
        } else {
            let names: Vec<String> = stack.iter().rev().map(|f| sanitize(&frame_label(f))).collect();
            names.join(";")
        };
        *lines.entry(key).or_insert(0u64) += weight;
    }
    lines
}

/// Keeps a name on one line and out of the `;` separators.
fn sanitize(name: &str) -> String {
    name.replace(';', ":").replace(['\n', '\r'], " ")
}
