//! Flame graph SVGs, drawn by `inferno` from the folded stacks of [`crate::folded`].
//!
//! # What it owns
//! [`to_flamegraph_svg`]: a deterministic SVG (colours hashed from names, no randomness), so
//! that the same input always gives the same file.

use crate::folded::folded_lines;
use crate::input::Input;
use crate::stacks::{Measure, Weight};

/// An SVG flame graph of `input` weighed by `m`.
pub fn to_flamegraph_svg(input: &Input, m: Measure) -> Result<Vec<u8>, String> {
    let lines: Vec<String> = folded_lines(input, m).into_iter().map(|(stack, w)| format!("{stack} {w}")).collect();
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = format!("{} of {} (pid {})", m.describe(input), input.program(), input.pid());
    opts.count_name = match m.weight {
        Weight::Bytes => "bytes".into(),
        Weight::Blocks => "blocks".into(),
    };
    opts.name_type = "Function:".into();
    opts.hash = true;
    opts.deterministic = true;
    opts.colors = inferno::flamegraph::color::Palette::Basic(inferno::flamegraph::color::BasicPalette::Mem);
    if lines.is_empty() {
        return Ok(empty_svg(&opts.title).into_bytes());
    }
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), &mut svg)
        .map_err(|e| format!("cannot draw the flame graph: {e}"))?;
    Ok(svg)
}

/// inferno refuses an input without stacks; a clean report still gets a picture saying so.
fn empty_svg(title: &str) -> String {
    let title = title.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    format!(
        "<?xml version=\"1.0\" standalone=\"no\"?>\n\
         <svg version=\"1.1\" width=\"1200\" height=\"80\" viewBox=\"0 0 1200 80\" xmlns=\"http://www.w3.org/2000/svg\">\n\
         <rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#eeeeee\"/>\n\
         <text x=\"600\" y=\"30\" text-anchor=\"middle\" font-size=\"17\" font-family=\"Verdana\">{title}</text>\n\
         <text x=\"600\" y=\"60\" text-anchor=\"middle\" font-size=\"12\" font-family=\"Verdana\">nothing to show: no stack has a non-zero weight</text>\n\
         </svg>\n"
    )
}
