//! Baselines: the leak sites of an earlier report, to tell known leaks from new ones.
//!
//! # What it owns
//! [`Baseline`]: read from a leak report's JSON text by a small reader of its own (the
//! allocator reads it at exit, and may not depend on serde_json, whose trait impls on
//! primitive types break type inference in its users' programs). A leak group is known
//! when the baseline has a group of the same kind whose allocation site
//! ([`allocation_site`](crate::report::allocation_site)) has the same function, file and
//! line: addresses, counts and sizes may all change between the two runs.

use crate::report::{allocation_site, Frame, LeakGroup, LeakKind};

/// A site: kind, then the allocation site's function, file and line.
type Site = (LeakKind, Option<String>, Option<String>, Option<u64>);

/// The leak sites of an earlier report.
#[derive(Clone, Debug, Default)]
pub struct Baseline {
    sites: Vec<Site>,
}

impl Baseline {
    /// Reads the sites of a leak report (the JSON of the contract).
    pub fn from_report_json(text: &str) -> Result<Baseline, String> {
        let value = Reader { text: text.as_bytes(), at: 0 }.document()?;
        let format = value.get("format").and_then(Value::as_str);
        if format != Some("heapsweep-leaks") {
            return Err(format!("not a HeapSweep leak report (format {format:?})"));
        }
        let leaks = value.get("leaks").and_then(Value::as_array).ok_or("no \"leaks\" list")?;
        let mut sites = Vec::with_capacity(leaks.len());
        for (i, g) in leaks.iter().enumerate() {
            let kind = match g.get("kind").and_then(Value::as_str) {
                Some("direct") => LeakKind::Direct,
                Some("indirect") => LeakKind::Indirect,
                other => return Err(format!("leak group {i}: kind {other:?}")),
            };
            let frames: Vec<Frame> = g.get("stack").and_then(Value::as_array).map_or(Vec::new(), |s| {
                s.iter()
                    .map(|f| Frame {
                        ip: String::new(),
                        function: f.get("function").and_then(Value::as_str).map(String::from),
                        file: f.get("file").and_then(Value::as_str).map(String::from),
                        line: f.get("line").and_then(Value::as_u64).map(|l| l as u32),
                        module: None,
                    })
                    .collect()
            });
            sites.push(site(kind, &frames));
        }
        Ok(Baseline { sites })
    }

    /// Whether `g`'s kind and allocation site are in the baseline.
    pub fn knows(&self, g: &LeakGroup) -> bool {
        let s = site(g.kind, &g.stack);
        self.sites.contains(&s)
    }

    /// How many groups the baseline holds.
    pub fn len(&self) -> usize {
        self.sites.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }
}

fn site(kind: LeakKind, stack: &[Frame]) -> Site {
    match allocation_site(stack) {
        Some(f) => (kind, f.function.clone(), f.file.clone(), f.line.map(u64::from)),
        None => (kind, None, None, None),
    }
}

/// A JSON value, as much as a baseline needs (numbers are kept as their text).
#[derive(Debug)]
enum Value {
    Null,
    Bool,
    Number(String),
    Str(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
    fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.parse().ok(),
            _ => None,
        }
    }
}

/// The deepest nesting read: a report nests five levels; this bounds the recursion.
const MAX_DEPTH: usize = 64;

/// A recursive-descent JSON reader over bytes, with errors naming the byte offset.
struct Reader<'a> {
    text: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn document(mut self) -> Result<Value, String> {
        let v = self.value(0)?;
        self.space();
        if self.at != self.text.len() {
            return Err(self.error("text after the JSON value"));
        }
        Ok(v)
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.at)
    }

    fn space(&mut self) {
        while self.text.get(self.at).is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.space();
        let hit = self.text.get(self.at) == Some(&b);
        self.at += usize::from(hit);
        hit
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deep"));
        }
        self.space();
        match self.text.get(self.at) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::Str),
            Some(b't') => self.literal("true", Value::Bool),
            Some(b'f') => self.literal("false", Value::Bool),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => Ok(self.number()),
            Some(_) => Err(self.error("unexpected character")),
            None => Err(self.error("unexpected end")),
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, String> {
        if self.text[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(v)
        } else {
            Err(self.error("bad literal"))
        }
    }

    fn number(&mut self) -> Value {
        let start = self.at;
        while self.text.get(self.at).is_some_and(|b| b"+-.eE0123456789".contains(b)) {
            self.at += 1;
        }
        Value::Number(String::from_utf8_lossy(&self.text[start..self.at]).into_owned())
    }

    fn object(&mut self, depth: usize) -> Result<Value, String> {
        self.at += 1;
        let mut fields = Vec::new();
        if self.eat(b'}') {
            return Ok(Value::Object(fields));
        }
        loop {
            self.space();
            let key = self.string()?;
            if !self.eat(b':') {
                return Err(self.error("expected ':'"));
            }
            fields.push((key, self.value(depth + 1)?));
            if self.eat(b'}') {
                return Ok(Value::Object(fields));
            }
            if !self.eat(b',') {
                return Err(self.error("expected ',' or '}'"));
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, String> {
        self.at += 1;
        let mut items = Vec::new();
        if self.eat(b']') {
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            if self.eat(b']') {
                return Ok(Value::Array(items));
            }
            if !self.eat(b',') {
                return Err(self.error("expected ',' or ']'"));
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        if self.text.get(self.at) != Some(&b'"') {
            return Err(self.error("expected a string"));
        }
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.text.get(self.at) else { return Err(self.error("unterminated string")) };
            self.at += 1;
            match b {
                b'"' => return String::from_utf8(out).map_err(|_| self.error("a string that is not UTF-8")),
                b'\\' => self.escape(&mut out)?,
                _ => out.push(b),
            }
        }
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let Some(&e) = self.text.get(self.at) else { return Err(self.error("unterminated escape")) };
        self.at += 1;
        let c = match e {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => self.unicode()?,
            _ => return Err(self.error("bad escape")),
        };
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    fn unicode(&mut self) -> Result<char, String> {
        let hex = |r: &mut Self| -> Result<u32, String> {
            let digits = r.text.get(r.at..r.at + 4).ok_or_else(|| r.error("short \\u escape"))?;
            r.at += 4;
            u32::from_str_radix(std::str::from_utf8(digits).unwrap_or("x"), 16).map_err(|_| r.error("bad \\u escape"))
        };
        let first = hex(self)?;
        if (0xD800..0xDC00).contains(&first) && self.text[self.at..].starts_with(b"\\u") {
            self.at += 2;
            let low = hex(self)?;
            let c = 0x10000 + ((first - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF);
            return char::from_u32(c).ok_or_else(|| self.error("bad surrogate pair"));
        }
        Ok(char::from_u32(first).unwrap_or('\u{FFFD}'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"{
  "format": "heapsweep-leaks", "version": 1, "program": "p", "pid": 1,
  "summary": {"leaked_blocks": 2, "leaked_bytes": 48},
  "leaks": [
    {"kind": "direct", "cyclic": false, "blocks": 1, "bytes": 32, "stack": [
      {"ip": "0x1", "function": "alloc::boxed::Box<T>::new", "file": "/rustc/x/library/alloc/src/boxed.rs", "line": 286},
      {"ip": "0x2", "function": "app::cache::fill", "file": "src/cache.rs", "line": 12},
      {"ip": "0x3", "function": "app::main", "file": "src/main.rs", "line": 3}]},
    {"kind": "indirect", "cyclic": true, "blocks": 1, "bytes": 16, "stack": [
      {"ip": "0x4", "function": "app::node \"q\" \u00e9", "file": null, "line": null}]}
  ]
}"#;

    fn group(kind: LeakKind, function: &str, file: &str, line: u32) -> LeakGroup {
        let frame = |f: &str, file: &str, line| Frame {
            ip: "0x9".into(),
            function: Some(f.into()),
            file: Some(file.into()),
            line: Some(line),
            module: None,
        };
        LeakGroup {
            kind,
            cyclic: false,
            blocks: 3,
            bytes: 99,
            stack: vec![
                frame("alloc::boxed::Box<T>::new", "/rustc/y/library/alloc/src/boxed.rs", 290),
                frame(function, file, line),
            ],
            rc: None,
            stack_id: None,
            reported_by_sweep: 0,
            in_baseline: false,
        }
    }

    #[test]
    fn groups_are_matched_by_kind_and_allocation_site() {
        let b = Baseline::from_report_json(REPORT).unwrap();
        assert_eq!(b.len(), 2);
        assert!(
            b.knows(&group(LeakKind::Direct, "app::cache::fill", "src/cache.rs", 12)),
            "std frames differ: still known"
        );
        assert!(!b.knows(&group(LeakKind::Direct, "app::cache::fill", "src/cache.rs", 13)), "another line");
        assert!(!b.knows(&group(LeakKind::Indirect, "app::cache::fill", "src/cache.rs", 12)), "another kind");
        let mut unnamed = group(LeakKind::Indirect, "x", "y", 1);
        unnamed.stack = vec![Frame { function: Some("app::node \"q\" é".into()), ..Frame::unresolved(5) }];
        assert!(b.knows(&unnamed), "escapes are read");
    }

    #[test]
    fn bad_input_gets_a_clear_error() {
        for (text, says) in [
            ("", "unexpected end at byte 0"),
            ("{\"format\": \"heapsweep-leaks\"", "expected ',' or '}'"),
            ("{\"format\": \"dhat\", \"leaks\": []}", "not a HeapSweep leak report"),
            ("{\"format\": \"heapsweep-leaks\"}", "no \"leaks\" list"),
            ("{\"format\": \"heapsweep-leaks\", \"leaks\": [{\"kind\": \"odd\"}]}", "leak group 0: kind"),
            ("[1, 2] x", "text after the JSON value"),
            ("\"\\q\"", "bad escape"),
        ] {
            let e = Baseline::from_report_json(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(Baseline::from_report_json(&deep).unwrap_err().contains("nested too deep"));
    }
}
