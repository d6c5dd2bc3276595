//! Suppressions: a file of `leak:PATTERN` lines, as LeakSanitizer reads them, and the
//! matching of leak groups against them.
//!
//! # Syntax
//! One `leak:PATTERN` per line; `#` starts a comment line; blank lines are skipped. Any
//! other line is an error naming the file and line, which the caller prints as a warning
//! (the other lines still apply).
//!
//! # Matching
//! As LeakSanitizer's templates: a pattern matches anywhere in the text (a substring),
//! `*` matches any run of characters, a leading `^` anchors the match at the start and a
//! trailing `$` at the end. A leak group is suppressed when a pattern matches the
//! function, the source file or the module (executable or shared object path) of any
//! frame of its stack; the first such pattern, in file order, is credited with it.

use super::model::Frame;

/// Suppressions added under the `LD_PRELOAD` library (after the user's, so theirs are
/// credited first): blocks the C library and the dynamic loader allocate for themselves
/// and keep where no root shows them, as LeakSanitizer's built-in suppressions do.
pub(crate) const PRELOAD_DEFAULTS: &str = "\
# glibc's thread-local storage for dlopen'd objects (sourceware bug 12650), as LeakSanitizer
leak:*tls_get_addr*
# A thread's DTV (ld.so's table of its TLS blocks): glibc keeps an ended thread's stack,
# and the thread control block at its top that points to the DTV, for the next thread;
# the check skips such stacks, full of stale pointers, so the DTV looks unreachable.
leak:^allocate_dtv$
leak:^_dl_allocate_tls$
leak:^_dl_allocate_tls_init$
leak:^_dl_resize_dtv$
";

/// One pattern, with what it matched so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Suppression {
    pub(crate) pattern: String,
    pub(crate) blocks: u64,
    pub(crate) bytes: u64,
}

/// Parses a suppressions file: the patterns, and one error (`path:line: ...`) per line
/// that is not a pattern, a comment or blank.
pub(crate) fn parse(path: &str, text: &str) -> (Vec<Suppression>, Vec<String>) {
    let mut sups = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_prefix("leak:").map(str::trim) {
            Some(p) if !p.is_empty() => sups.push(Suppression { pattern: p.to_string(), blocks: 0, bytes: 0 }),
            _ => errors.push(format!("{path}:{}: expected `leak:PATTERN`, found {line:?}; line ignored", i + 1)),
        }
    }
    (sups, errors)
}

/// Reads and parses the suppressions file at `path`; errors (unreadable file, bad lines)
/// come back as messages for warnings.
pub(crate) fn load(path: &str) -> (Vec<Suppression>, Vec<String>) {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) => (Vec::new(), vec![format!("cannot read the suppressions file {path}: {e}")]),
    }
}

/// Whether `pattern` matches `text`, as LeakSanitizer's templates do (see the module
/// note). An empty text matches nothing.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    if text.is_empty() {
        return false;
    }
    let (at_start, p) = match pattern.strip_prefix('^') {
        Some(p) => (true, p),
        None => (false, pattern),
    };
    let (at_end, p) = match p.strip_suffix('$') {
        Some(p) => (true, p),
        None => (false, p),
    };
    let parts: Vec<&str> = p.split('*').collect();
    let last = parts.len() - 1;
    let mut pos = 0;
    for (i, part) in parts.iter().enumerate() {
        let rest = &text[pos..];
        if i == last && at_end {
            // The last part ends the text; anchored at both ends, it is all of it.
            return rest.ends_with(part) && (i > 0 || !at_start || rest.len() == part.len());
        }
        if i == 0 && at_start {
            if !rest.starts_with(part) {
                return false;
            }
            pos += part.len();
        } else {
            // Leftmost match: later parts only gain room from it.
            match rest.find(part) {
                Some(at) => pos += at + part.len(),
                None => return false,
            }
        }
    }
    true
}

/// Whether `pattern` matches any frame's function, file or module.
fn matches_stack(pattern: &str, stack: &[Frame]) -> bool {
    stack.iter().any(|f| {
        [&f.function, &f.file, &f.module].into_iter().any(|t| t.as_deref().is_some_and(|t| matches(pattern, t)))
    })
}

/// The suppression of `stack`, if any: of the frames some suppression matches, the
/// innermost; of the suppressions matching it, the first listed. (Innermost first, so
/// that a stack's frames can be matched as they are resolved: see `build`.)
pub(crate) fn find(sups: &[Suppression], stack: &[Frame]) -> Option<usize> {
    stack.iter().find_map(|f| sups.iter().position(|s| matches_stack(&s.pattern, core::slice::from_ref(f))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(s: &[Suppression]) -> Vec<&str> {
        s.iter().map(|s| s.pattern.as_str()).collect()
    }

    #[test]
    fn parses_patterns_skips_comments_and_reports_bad_lines() {
        let (s, e) = parse("s.txt", "# caches\nleak:my_cache\n\n  leak:*::intern*  \r\n");
        assert_eq!(patterns(&s), ["my_cache", "*::intern*"]);
        assert!(e.is_empty());
        let (s, e) = parse("s.txt", "leak:ok\nrace:foo\nleak:\nleak:also_ok\n");
        assert_eq!(patterns(&s), ["ok", "also_ok"], "good lines still apply");
        assert_eq!(e.len(), 2);
        assert!(e[0].starts_with("s.txt:2: ") && e[0].contains("race:foo"), "{}", e[0]);
        assert!(e[1].starts_with("s.txt:3: "), "{}", e[1]);
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let (s, e) = load("/nonexistent/heapsweep.supp");
        assert!(s.is_empty());
        assert!(e[0].contains("/nonexistent/heapsweep.supp"), "{}", e[0]);
    }

    #[test]
    fn wildcards_anchors_and_substrings_match() {
        assert!(matches("cache", "app::cache::fill"));
        assert!(!matches("cache", "app::Cash::fill"));
        assert!(matches("app::*::fill", "app::cache::fill"));
        assert!(matches("app::*::fill", "<app::cache::fill as x>"), "unanchored, as LSan");
        assert!(matches("*fill", "app::cache::fill"));
        assert!(!matches("app::*::drain", "app::cache::fill"));
        assert!(matches("*", "anything"));
        assert!(!matches("*", ""));
        assert!(!matches("x*y", "x"));
        assert!(matches("x*y", "xy"));
        assert!(matches("^app::", "app::cache"));
        assert!(!matches("^cache", "app::cache"));
        assert!(matches("fill$", "app::fill"));
        assert!(!matches("fill$", "app::fill_all"));
        assert!(matches("^a*c$", "abc"));
        assert!(!matches("^ab*b$", "ab"));
        assert!(matches("^exact$", "exact"));
        assert!(!matches("^exact$", "exactly"));
        assert!(matches("a$", "aba"), "the last part is found from the end");
    }

    #[test]
    fn any_frame_field_can_match_and_the_innermost_frame_decides() {
        let frame = Frame {
            function: Some("my_crate::cache::fill".into()),
            file: Some("src/cache.rs".into()),
            module: Some("/usr/lib/libplugin.so".into()),
            ..Frame::unresolved(1)
        };
        let stack = [Frame::unresolved(2), frame];
        let (sups, _) = parse("s", "leak:nothing\nleak:libplugin.so\nleak:cache\n");
        assert_eq!(find(&sups, &stack), Some(1));
        let (sups, _) = parse("s", "leak:src/cache.rs$\n");
        assert_eq!(find(&sups, &stack), Some(0));
        let (sups, _) = parse("s", "leak:^cache\n");
        assert_eq!(find(&sups, &stack), None);
        assert_eq!(find(&sups, &[]), None);
        // Of two frames matched, the innermost decides, whatever the patterns' order.
        let inner = Frame { function: Some("allocate_dtv".into()), ..Frame::unresolved(3) };
        let outer = Frame { function: Some("app::spawn".into()), ..Frame::unresolved(4) };
        let (sups, _) = parse("s", "leak:spawn\nleak:^allocate_dtv$\n");
        assert_eq!(find(&sups, &[inner, outer]), Some(1));
    }
}
