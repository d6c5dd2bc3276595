//! The HTML report: one self-contained page (inline CSS and JavaScript, no network) that
//! people open after a run.
//!
//! # What it owns
//! [`render_html`]: the page template (`page.html`, `page.css`, `page.js`, compiled
//! in) with the input's data embedded as JSON, built by [`data`]. The page's script renders
//! the summary, the leak groups or profile sites (largest first, 100 per page), cycles as
//! rings, an interactive flame graph (click to zoom, hover for details) and, for a profile,
//! the timeline of live bytes. Script errors are written into the element `#js-errors`, so
//! that a test can assert there were none. A leak report whose check could not run to the
//! end gets a banner at the top of the summary, in the HTML itself (it shows without
//! JavaScript): the failure, its message and hint, and that the groups may be incomplete.
//!
//! # Size and speed
//! Frames are interned into one table and stacks are lists of indices into it; the flame
//! graph is aggregated here (a tree of frame names), and nodes below 1/20 000 of the total
//! (less than a pixel) are left out, their bytes staying in their parent's width. A synthetic
//! report of 100 000 groups (215 MB of JSON) makes an 18 MB page that headless Chromium
//! renders in about 1.2 s; the groups are drawn 100 at a time.

pub mod data;

use crate::input::Input;

const TEMPLATE: &str = include_str!("page.html");
const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");

/// The HTML page for `input`.
pub fn render_html(input: &Input) -> String {
    let json = data::page_data(input);
    // `<` only occurs inside JSON strings, where `\u003c` means the same: this keeps
    // `</script>` in a function name from ending the script element.
    let json = json.replace('<', "\\u003c");
    let title = format!("HeapSweep: {} (pid {})", input.program(), input.pid());
    let mut out = String::with_capacity(json.len() + TEMPLATE.len() + CSS.len() + JS.len() + 256);
    let mut rest = TEMPLATE;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("}}").map_or(rest.len(), |j| i + j + 2);
        match &rest[i..end] {
            "{{TITLE}}" => out.push_str(&escape(&title)),
            "{{CSS}}" => out.push_str(CSS),
            "{{JS}}" => out.push_str(JS),
            "{{DATA}}" => out.push_str(&json),
            "{{CHECK_FAILED}}" => out.push_str(&check_failed_banner(input)),
            other => out.push_str(other),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The banner of a leak report whose check failed; empty otherwise.
fn check_failed_banner(input: &Input) -> String {
    let Input::Leaks(r) = input else { return String::new() };
    let Some(f) = r.failure() else { return String::new() };
    let groups = if r.leaks.is_empty() {
        "No leak groups were found before it failed: that does not mean there are no leaks."
    } else {
        "The leak groups below were found before it failed: they may be incomplete or wrong."
    };
    format!(
        "<div class=\"check-failed\" id=\"check-failed\" role=\"alert\">\
         <p><strong>The leak check could not run to the end ({}).</strong> {}</p>\
         <p>HINT: {}</p><p>{groups}</p></div>",
        escape(f.kind.as_str()),
        escape(&f.message),
        escape(&f.hint)
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapsweep_format::report::{CheckFailure, CheckStatus, FailureKind};

    #[test]
    fn the_banner_of_a_failed_check_is_escaped_and_only_there_when_it_failed() {
        let mut r = crate::synthetic::leak_report(3, 5);
        assert!(!render_html(&Input::Leaks(r.clone())).contains("class=\"check-failed\""));
        r.status = CheckStatus::Failed(CheckFailure {
            kind: FailureKind::OutOfMemory,
            message: "no memory for <script>alert(1)</script> & co".into(),
            hint: "raise \"ulimit -v\"".into(),
        });
        let page = render_html(&Input::Leaks(r.clone()));
        assert!(page.contains("could not run to the end (out_of_memory).</strong> no memory for &lt;script&gt;alert(1)&lt;/script&gt; &amp; co"), "{page}");
        assert!(page.contains("HINT: raise &quot;ulimit -v&quot;") && page.contains("may be incomplete or wrong"));
        assert!(!page.contains("<script>alert"));
        r.leaks.clear();
        r.summary = Default::default();
        assert!(render_html(&Input::Leaks(r)).contains("that does not mean there are no leaks"));
    }
}
