//! Reads a scenario's expectations: the comment lines at the top of its source file.
//!
//! # Syntax (see `README.md`)
//! The leading block of `//` and `//!` lines is the header. Its first line reads
//! `//! Test that ...`. Lines starting with `// EXPECT` or `// OPTIONS` are directives:
//!
//! ```text
//! // OPTIONS: key=value ...            more HEAPSWEEP keys (paths relative to the crate)
//! // EXPECT: key=N key>=N clean no-report
//! // EXPECT-GROUP: kind=direct cyclic=false blocks=N bytes=N function~=TEXT frames=N
//! // EXPECT-EXIT: N
//! ```
//!
//! Any other `// EXPECT...` line, an unknown key, or a malformed value is an error: a
//! typo must fail the suite, not silently weaken a scenario.

use std::fmt;

/// The summary fields of a version-1 report that `EXPECT:` may name.
pub const SUMMARY_KEYS: [&str; 8] = [
    "leaked_blocks",
    "leaked_bytes",
    "direct_blocks",
    "indirect_blocks",
    "cyclic_blocks",
    "reachable_blocks",
    "reachable_bytes",
    "suppressed_blocks",
];

/// The leak fields `clean` sets to zero.
const LEAK_KEYS: [&str; 5] = ["leaked_blocks", "leaked_bytes", "direct_blocks", "indirect_blocks", "cyclic_blocks"];

/// How a summary field is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `key=N`
    Eq,
    /// `key>=N`
    AtLeast,
}

/// One `key=N` or `key>=N` of an `EXPECT:` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryCheck {
    pub key: String,
    pub cmp: Cmp,
    pub value: u64,
}

impl fmt::Display for SummaryCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = if self.cmp == Cmp::Eq { "=" } else { ">=" };
        write!(f, "{}{op}{}", self.key, self.value)
    }
}

/// One `EXPECT-GROUP:` line: the leak group it must match. `kind` and `cyclic` are always
/// given; the other fields are checked when given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    pub kind: String,
    pub cyclic: bool,
    pub blocks: Option<u64>,
    pub bytes: Option<u64>,
    /// Some frame's `function` contains this text.
    pub function: Option<String>,
    /// The stack has exactly this many frames.
    pub frames: Option<usize>,
    /// The line as written, for messages.
    pub text: String,
}

/// Everything a scenario's header asks for.
#[derive(Clone, Debug, Default)]
pub struct Expectation {
    /// `HEAPSWEEP` keys beyond the report path, in order, values as written.
    pub options: Vec<(String, String)>,
    pub summary: Vec<SummaryCheck>,
    /// `EXPECT: clean`: no leak group, and every leak count is zero.
    pub clean: bool,
    /// `EXPECT: no-report`: the program must write no report at all.
    pub no_report: bool,
    /// `EXPECT-GROUP:` lines; the report's groups must match them one to one.
    pub groups: Vec<GroupSpec>,
    pub exit: i32,
}

/// Parses the header of a scenario's source.
pub fn parse(source: &str) -> Result<Expectation, String> {
    let header: Vec<&str> = source.lines().take_while(|l| l.starts_with("//")).collect();
    match header.first() {
        Some(l) if l.starts_with("//! Test that ") => {}
        _ => return Err("the first line must read `//! Test that ...`".into()),
    }
    let mut e = Expectation::default();
    let mut exit = None;
    let mut has_expect = false;
    for line in header {
        let Some(directive) = line.strip_prefix("// ") else { continue };
        if let Some(rest) = directive.strip_prefix("EXPECT-GROUP:") {
            e.groups.push(parse_group(rest.trim())?);
        } else if let Some(rest) = directive.strip_prefix("EXPECT-EXIT:") {
            let code = rest.trim().parse().map_err(|_| format!("bad exit status in `{line}`"))?;
            if exit.replace(code).is_some() {
                return Err("more than one EXPECT-EXIT line".into());
            }
        } else if let Some(rest) = directive.strip_prefix("EXPECT:") {
            has_expect = true;
            parse_summary(rest, &mut e)?;
        } else if let Some(rest) = directive.strip_prefix("OPTIONS:") {
            e.options.extend(parse_options(rest)?);
        } else if directive.starts_with("EXPECT") || directive.starts_with("OPTION") {
            return Err(format!("unknown directive in `{line}`"));
        }
    }
    e.exit = exit.ok_or("no EXPECT-EXIT line")?;
    if !has_expect {
        return Err("no EXPECT line".into());
    }
    validate(&e)?;
    Ok(e)
}

/// The words of an `EXPECT:` line.
fn parse_summary(rest: &str, e: &mut Expectation) -> Result<(), String> {
    for word in rest.split_whitespace() {
        match word {
            "clean" => e.clean = true,
            "no-report" => e.no_report = true,
            _ => e.summary.push(parse_summary_check(word)?),
        }
    }
    Ok(())
}

fn parse_summary_check(word: &str) -> Result<SummaryCheck, String> {
    let (key, cmp, value) = match word.split_once(">=") {
        Some((k, v)) => (k, Cmp::AtLeast, v),
        None => {
            let (k, v) = word.split_once('=').ok_or_else(|| format!("`{word}` is not key=N or key>=N"))?;
            (k, Cmp::Eq, v)
        }
    };
    if !SUMMARY_KEYS.contains(&key) {
        return Err(format!("unknown summary key `{key}`"));
    }
    let value = value.parse().map_err(|_| format!("`{word}`: not a number"))?;
    Ok(SummaryCheck { key: key.to_string(), cmp, value })
}

fn parse_group(text: &str) -> Result<GroupSpec, String> {
    let (mut kind, mut cyclic) = (None, None);
    let mut g = GroupSpec {
        kind: String::new(),
        cyclic: false,
        blocks: None,
        bytes: None,
        function: None,
        frames: None,
        text: text.to_string(),
    };
    for word in text.split_whitespace() {
        let (key, value) = word.split_once('=').ok_or_else(|| format!("`{word}` is not key=value"))?;
        let number = || value.parse::<u64>().map_err(|_| format!("`{word}`: not a number"));
        match key {
            "kind" if value == "direct" || value == "indirect" => kind = Some(value.to_string()),
            "cyclic" => cyclic = Some(value.parse::<bool>().map_err(|_| format!("`{word}`: not true/false"))?),
            "blocks" => g.blocks = Some(number()?),
            "bytes" => g.bytes = Some(number()?),
            "frames" => g.frames = Some(number()? as usize),
            "function~" if !value.is_empty() => g.function = Some(value.to_string()),
            _ => return Err(format!("bad group key or value `{word}`")),
        }
    }
    g.kind = kind.ok_or_else(|| format!("EXPECT-GROUP without kind=: `{text}`"))?;
    g.cyclic = cyclic.ok_or_else(|| format!("EXPECT-GROUP without cyclic=: `{text}`"))?;
    Ok(g)
}

/// `key=value` words, separated by spaces or commas.
fn parse_options(rest: &str) -> Result<Vec<(String, String)>, String> {
    rest.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() && k != "report" => Ok((k.to_string(), v.to_string())),
            Some(_) => Err(format!("option `{w}`: the runner sets `report` itself")),
            None => Err(format!("option `{w}` is not key=value")),
        })
        .collect()
}

/// Rules between directives.
fn validate(e: &Expectation) -> Result<(), String> {
    if e.no_report && (e.clean || !e.summary.is_empty() || !e.groups.is_empty()) {
        return Err("`no-report` excludes every other expectation on the report".into());
    }
    if e.clean && !e.groups.is_empty() {
        return Err("`clean` with EXPECT-GROUP lines".into());
    }
    if e.clean && e.summary.iter().any(|s| LEAK_KEYS.contains(&s.key.as_str()) && s.value != 0) {
        return Err("`clean` with a non-zero leak count".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "//! Test that a list leaks.\n//!\n\
        // OPTIONS: stack_depth=8 suppressions=x.supp\n\
        // EXPECT: leaked_blocks=10 reachable_blocks>=5\n\
        // EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=16 function~=make\n\
        // EXPECT-GROUP: kind=indirect cyclic=true frames=0\n\
        // EXPECT-EXIT: 23\n\nfn main() {}\n// EXPECT: ignored, not in the header\n";

    #[test]
    fn a_full_header_parses() {
        let e = parse(GOOD).unwrap();
        assert_eq!(e.exit, 23);
        assert_eq!(e.options, [("stack_depth".into(), "8".into()), ("suppressions".into(), "x.supp".into())]);
        assert_eq!(
            e.summary.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["leaked_blocks=10", "reachable_blocks>=5"]
        );
        assert_eq!(e.groups.len(), 2);
        assert_eq!((e.groups[0].blocks, e.groups[0].bytes), (Some(1), Some(16)));
        assert_eq!(e.groups[0].function.as_deref(), Some("make"));
        assert_eq!((e.groups[1].kind.as_str(), e.groups[1].cyclic, e.groups[1].frames), ("indirect", true, Some(0)));
        assert!(!e.clean && !e.no_report);
    }

    #[test]
    fn mistakes_are_errors() {
        let with = |line: &str| format!("//! Test that x.\n{line}\n// EXPECT-EXIT: 0\n");
        for bad in [
            "// EXPECT: leaked_blocs=1",
            "// EXPECT: leaked_blocks=one",
            "// EXPECT-GRUOP: kind=direct cyclic=false",
            "// EXPECT: leaked_blocks=1\n// EXPECT-GROUP: kind=direct blocks=1",
            "// EXPECT: leaked_blocks=1\n// EXPECT-GROUP: kind=leaked cyclic=false",
            "// EXPECT: leaked_blocks=1\n// EXPECT-GROUP: kind=direct cyclic=false colour=red",
            "// EXPECT: clean leaked_blocks=2",
            "// EXPECT: no-report leaked_blocks=0",
            "// EXPECT: clean\n// OPTIONS: report=x.json",
            "// EXPECT: clean\n// EXPECT-EXIT: 0",
        ] {
            assert!(parse(&with(bad)).is_err(), "accepted: {bad}");
        }
        assert!(parse("//! Test that x.\n// EXPECT: clean\n").is_err(), "no EXPECT-EXIT");
        assert!(parse("//! Test that x.\n// EXPECT-EXIT: 0\n").is_err(), "no EXPECT");
        assert!(parse("// Test that x.\n// EXPECT: clean\n// EXPECT-EXIT: 0\n").is_err(), "no doc line");
        assert!(parse(&with("// EXPECT: clean suppressed_blocks=1")).is_ok());
    }
}
