//! The sweep line format (`heapsweep-sweep`, FORMATS.md): one JSON object per line of
//! `<report>.sweeps.jsonl`, written by each leak sweep that found new leaks.

use crate::report::LeakGroup;
use serde::Serialize;

/// One line of `<report>.sweeps.jsonl`.
#[derive(Debug, Serialize)]
pub struct SweepLine<'a> {
    /// Always `"heapsweep-sweep"` ([`SweepLine::FORMAT`]).
    pub format: &'static str,
    /// Schema version: 1.
    pub version: u32,
    pub pid: u32,
    /// The sweep's number in the process, from 1.
    pub sweep: u64,
    /// The generation swept (with the younger ones).
    pub generation: usize,
    /// How long the other threads were stopped.
    pub pause_us: u64,
    /// Live blocks of the swept generations, and the reachable ones among them.
    pub swept_blocks: u64,
    pub survivors: u64,
    pub new_leaked_blocks: u64,
    pub new_leaked_bytes: u64,
    /// The new leak groups, as in a leak report.
    pub leaks: &'a [LeakGroup],
}

impl SweepLine<'_> {
    pub const FORMAT: &'static str = "heapsweep-sweep";

    /// The line's JSON, on one line (no trailing line break).
    pub fn to_json_line(&self) -> Result<String, String> {
        crate::pretty_json::to_string_pretty(self).map(|t| compact(&t)).map_err(|e| e.to_string())
    }
}

/// Pretty-printed JSON on one line: the printer's line breaks and indentation removed
/// (strings hold no raw line break: the printer escapes them).
fn compact(pretty: &str) -> String {
    let mut out = String::with_capacity(pretty.len());
    let mut chars = pretty.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            while chars.peek() == Some(&' ') {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_json_is_one_line_and_keeps_strings() {
        let pretty = "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": \"x  \\n y\"\n}";
        assert_eq!(compact(pretty), "{\"a\": [1,2],\"b\": \"x  \\n y\"}");
    }

    #[test]
    fn a_line_is_one_line() {
        let line = SweepLine {
            format: SweepLine::FORMAT,
            version: 1,
            pid: 7,
            sweep: 2,
            generation: 0,
            pause_us: 10,
            swept_blocks: 5,
            survivors: 4,
            new_leaked_blocks: 0,
            new_leaked_bytes: 0,
            leaks: &[],
        };
        let text = line.to_json_line().unwrap();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.starts_with("{\"format\": \"heapsweep-sweep\",\"version\": 1,\"pid\": 7,\"sweep\": 2"), "{text}");
    }
}
