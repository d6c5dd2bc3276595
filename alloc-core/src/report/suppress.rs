//! Suppressions: a file of `leak:PATTERN` lines, as LeakSanitizer reads them. A leak group
//! is suppressed when a pattern matches some frame's function, file or module. `*` matches
//! any run of characters; a pattern without `*` matches anywhere (substring).

use super::model::Frame;

/// One pattern, with what it matched so far.
#[derive(Clone, Debug)]
pub(crate) struct Suppression {
    pub(crate) pattern: String,
    pub(crate) blocks: u64,
    pub(crate) bytes: u64,
}

/// Parses a suppressions file. Errors name the line (`path:line: ...`).
pub(crate) fn parse(path: &str, text: &str) -> Result<Vec<Suppression>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_prefix("leak:") {
            Some(p) if !p.trim().is_empty() => {
                out.push(Suppression { pattern: p.trim().to_string(), blocks: 0, bytes: 0 })
            }
            _ => return Err(format!("{path}:{}: expected `leak:PATTERN`, found {line:?}", i + 1)),
        }
    }
    Ok(out)
}

/// Whether `pattern` matches `text` (`*` wildcards; without one, a substring match).
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    if !pattern.contains('*') {
        return text.contains(pattern);
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() {
        return false;
    }
    let mut rest = &text[first.len()..];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(at) => rest = &rest[at + mid.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// The index of the first suppression matching any frame, if any.
pub(crate) fn find(sups: &[Suppression], stack: &[Frame]) -> Option<usize> {
    sups.iter().position(|s| {
        stack.iter().any(|f| {
            f.function.as_deref().is_some_and(|n| matches(&s.pattern, n))
                || f.file.as_deref().is_some_and(|p| matches(&s.pattern, p))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comments_and_rejects_other_lines() {
        let s = parse("s.txt", "# caches\nleak:my_cache\n\n  leak:*::intern*  \n").unwrap();
        assert_eq!(s.iter().map(|s| s.pattern.as_str()).collect::<Vec<_>>(), ["my_cache", "*::intern*"]);
        let e = parse("s.txt", "leak:ok\nrace:foo\n").unwrap_err();
        assert!(e.starts_with("s.txt:2:"), "{e}");
        assert!(parse("s.txt", "leak:\n").is_err());
    }

    #[test]
    fn wildcards_and_substrings_match() {
        assert!(matches("cache", "app::cache::fill"));
        assert!(matches("app::*::fill", "app::cache::fill"));
        assert!(matches("*fill", "app::cache::fill"));
        assert!(!matches("app::*::drain", "app::cache::fill"));
        assert!(matches("*", "anything"));
        assert!(!matches("x*y", "x"));
    }
}
