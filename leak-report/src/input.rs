//! Reading input files: a leak report or a heap profile, told apart by their `format` field.
//!
//! # What it owns
//! [`Input`], [`read_input`], [`parse_report`], [`parse_profile`] and what a file must pass
//! before any renderer sees it: readable, complete JSON (read with `serde_json`, which the
//! allocator's own crates never depend on), a known `format`, a known `status` (its `state`
//! and, for a failed check, its `kind`), then the model's own checks, one place for each
//! format: [`LeakReport::validate`] (the version, a report's groups add up to its summary)
//! and [`HeapProfile::validate`]. Every error is one line that starts with the file's path.

use crate::progress::Progress;
use heapsweep_format::profile::HeapProfile;
use heapsweep_format::report::{Frame, LeakReport, Module};
use serde::Deserialize;
use std::path::Path;

/// A file `leak-report` can render.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A leak report (`"format": "heapsweep-leaks"`).
    Leaks(LeakReport),
    /// A heap profile (`"format": "heapsweep-profile"`).
    Profile(HeapProfile),
}

impl Input {
    /// `argv[0]` of the program that wrote it.
    pub fn program(&self) -> &str {
        match self {
            Input::Leaks(r) => &r.program,
            Input::Profile(p) => &p.program,
        }
    }

    /// Process id of the program that wrote it.
    pub fn pid(&self) -> u32 {
        match self {
            Input::Leaks(r) => r.pid,
            Input::Profile(p) => p.pid,
        }
    }

    /// How many leak groups or profile sites it has.
    pub fn len(&self) -> usize {
        match self {
            Input::Leaks(r) => r.leaks.len(),
            Input::Profile(p) => p.sites.len(),
        }
    }

    /// Whether it has no leak group (no profile site).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The loaded object files recorded with it.
    pub fn modules(&self) -> &[Module] {
        match self {
            Input::Leaks(r) => &r.modules,
            Input::Profile(p) => &p.modules,
        }
    }

    /// Every stack in it (one per leak group or per site), for symbolization.
    pub fn stacks_mut(&mut self) -> Vec<&mut Vec<Frame>> {
        match self {
            Input::Leaks(r) => r.leaks.iter_mut().map(|g| &mut g.stack).collect(),
            Input::Profile(p) => p.sites.iter_mut().map(|s| &mut s.stack).collect(),
        }
    }

    /// The input as pretty-printed JSON in its own format.
    pub fn to_json(&self) -> String {
        match self {
            Input::Leaks(r) => r.to_json(),
            Input::Profile(p) => p.to_json(),
        }
    }
}

/// Just enough of a file to tell which model to read it with.
#[derive(Deserialize)]
struct Header {
    format: Option<String>,
}

/// Reads a leak report or a heap profile, validating format, version and invariants.
/// The error is one line naming the file and what is wrong.
pub fn read_input(path: &Path) -> Result<Input, String> {
    let named = |e: String| format!("{}: {e}", path.display());
    let text = read_text(path).map_err(named)?;
    let progress = Progress::spinner(text.len() as u64 > 1 << 20, "parsing");
    let input = parse_input(&text).map_err(named);
    progress.finish();
    input
}

/// Reads a heap profile; a leak report or anything else is an error naming the file.
pub fn read_profile(path: &Path) -> Result<HeapProfile, String> {
    match read_input(path)? {
        Input::Profile(p) => Ok(p),
        Input::Leaks(_) => Err(format!("{}: a leak report, where a heap profile was expected", path.display())),
    }
}

/// Parses the text of a leak report or a heap profile (see [`read_input`]).
pub fn parse_input(text: &str) -> Result<Input, String> {
    let format = match quick_format(text) {
        Some(format) => Some(format),
        None => {
            let header: Header =
                serde_json::from_str(text).map_err(|e| format!("not a HeapSweep report or profile: {e}"))?;
            header.format
        }
    };
    match format.as_deref() {
        Some(HeapProfile::FORMAT) => parse_profile(text).map(Input::Profile),
        Some(LeakReport::FORMAT) => {
            let fast = (text.len() >= crate::parallel::MIN_PARALLEL_BYTES)
                .then(|| crate::parallel::parse_leak_report(text, crate::parallel::available_threads()))
                .flatten();
            let report = match fast {
                Some(report) => {
                    report.validate()?;
                    report
                }
                None => parse_report(text)?,
            };
            Ok(Input::Leaks(report))
        }
        Some(other) => {
            Err(format!("format is {other:?}, expected {:?} or {:?}", LeakReport::FORMAT, HeapProfile::FORMAT))
        }
        None => Err("no \"format\" field: not a HeapSweep report or profile".into()),
    }
}

/// The value of the top-level `"format"` key when it comes first, as both writers put it,
/// without parsing the whole file twice (a 100 000-group report is 200 MB). `None` sends
/// the caller to a full parse, which also finds the syntax errors.
fn quick_format(text: &str) -> Option<String> {
    let rest = text.trim_start().strip_prefix('{')?.trim_start().strip_prefix("\"format\"")?;
    let rest = rest.trim_start().strip_prefix(':')?;
    serde_json::Deserializer::from_str(rest).into_iter::<String>().next()?.ok()
}

/// Reads a leak report from JSON and checks it ([`LeakReport::validate`]).
pub fn parse_report(text: &str) -> Result<LeakReport, String> {
    let r: LeakReport = serde_json::from_str(text).map_err(|e| format!("not a HeapSweep leak report: {e}"))?;
    r.validate()?;
    Ok(r)
}

/// Reads a heap profile from JSON and checks it ([`HeapProfile::validate`]).
pub fn parse_profile(text: &str) -> Result<HeapProfile, String> {
    let p: HeapProfile = serde_json::from_str(text).map_err(|e| format!("not a HeapSweep heap profile: {e}"))?;
    p.validate()?;
    Ok(p)
}

/// The leak report's invariants: the same as [`LeakReport::validate`], kept under this
/// name for callers of earlier versions.
pub fn validate_report(r: &LeakReport) -> Result<(), String> {
    r.validate()
}

fn read_text(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| io_message(&e))?;
    let size = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
    let mut bytes = Vec::with_capacity(size.saturating_add(1));
    advise_huge_pages(&bytes);
    file.read_to_end(&mut bytes).map_err(|e| io_message(&e))?;
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()))
}

/// Asks the kernel to back a large buffer with huge pages: a 200 MB report read into
/// 4 KiB pages takes some 50,000 page faults, a measurable part of `leak-report html`'s
/// time on such a file. Only a hint; a refusal changes nothing.
fn advise_huge_pages(buffer: &Vec<u8>) {
    const HUGE: usize = 2 << 20;
    let (start, len) = (buffer.as_ptr() as usize, buffer.capacity());
    if len < 8 * HUGE {
        return;
    }
    // madvise wants a page-aligned start: advise the huge-page-aligned part only.
    let aligned = (start + HUGE - 1) & !(HUGE - 1);
    let end = (start + len) & !(HUGE - 1);
    if end > aligned {
        // SAFETY: the range lies inside `buffer`'s allocation, which outlives the call;
        // MADV_HUGEPAGE changes how pages are backed, never their contents.
        unsafe { libc::madvise(aligned as *mut libc::c_void, end - aligned, libc::MADV_HUGEPAGE) };
    }
}

/// An I/O error without the "(os error N)" tail.
pub(crate) fn io_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_read_from_the_first_key_or_by_a_full_parse() {
        assert_eq!(quick_format("{\n  \"format\": \"heapsweep-leaks\", \"x\": [").as_deref(), Some("heapsweep-leaks"));
        assert_eq!(quick_format("{\"version\": 1, \"format\": \"heapsweep-leaks\"}"), None);
        let late = "{\"version\": 2, \"format\": \"heapsweep-profile\"}";
        assert!(parse_input(late).unwrap_err().contains("not a HeapSweep heap profile"));
    }

    #[test]
    fn a_report_whose_groups_do_not_add_up_is_refused() {
        let mut r = crate::synthetic::leak_report(3, 1);
        assert_eq!(validate_report(&r), Ok(()));
        r.summary.direct_blocks += 1;
        assert!(validate_report(&r).unwrap_err().contains("differ from leaked_blocks"));
        r.summary.direct_blocks -= 1;
        r.leaks[0].bytes += 1;
        assert!(validate_report(&r).unwrap_err().contains("leaked_bytes"));
    }
}
