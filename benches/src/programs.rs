//! Workloads made of what real Rust programs do, rather than of allocation patterns:
//! parsing a large JSON document into `serde_json::Value`s, and compiling and running a
//! set of regular expressions.
//!
//! # What it owns
//! [`json`] and [`regex_set`], registered in [`crate::workloads::WORKLOADS`] like the
//! micro-workloads, so every allocator runs them in the same harness. Their inputs (the
//! document's text, the patterns and the haystack) are built before the clock starts.

use crate::workloads::{Rep, Rng};
use regex::RegexSet;
use serde_json::Value;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

/// JSON values in one record of [`document`]: the object, its 9 fields' values, the 3
/// numbers of its `scores` array and the 2 objects of its `tags` array with their 2
/// fields each.
const VALUES_PER_RECORD: u64 = 1 + 9 + 3 + 2 * 3;

/// A JSON array of `records` objects (about 250 bytes each: strings, numbers, nested
/// arrays and objects, as an API's payload has), deterministic.
fn document(records: usize) -> String {
    let mut rng = Rng::new(7);
    let mut s = String::with_capacity(records * 260 + 2);
    s.push('[');
    for i in 0..records {
        if i > 0 {
            s.push(',');
        }
        let name_len = rng.range(5, 40);
        let name: String = (0..name_len).map(|_| (b'a' + rng.below(26) as u8) as char).collect();
        let _ = write!(
            s,
            r#"{{"id":{i},"name":"{name}","email":"{name}@example.com","active":{},"balance":{}.{:02},"#,
            rng.below(2) == 1,
            rng.below(100_000),
            rng.below(100),
        );
        let _ = write!(
            s,
            r#""scores":[{},{},{}],"tags":[{{"k":"t{}","v":{}}},{{"k":"u{}","v":{}}}],"note":null,"#,
            rng.below(1000),
            rng.below(1000),
            rng.below(1000),
            rng.below(50),
            rng.below(10),
            rng.below(50),
            rng.below(10),
        );
        let _ = write!(s, r#""city":"{}"}}"#, ["Lyon", "Kyoto", "Quito", "Accra", "Perth"][rng.below(5)]);
    }
    s.push(']');
    s
}

/// `serde_json::from_str::<Value>` of a document of `records` records (200k: about 50
/// MB), then the drop of the tree, repeated until about `ops` values were made (at least
/// one document). Checksum: the sum of the records' ids and array lengths.
pub(crate) fn json(ops: u64, records: usize) -> Rep {
    let text = document(records);
    let per_doc = VALUES_PER_RECORD * records as u64;
    let docs = (ops / per_doc).max(1);
    let t = Instant::now();
    let mut checksum = 0u64;
    for _ in 0..docs {
        let v: Value = serde_json::from_str(black_box(&text)).expect("the document is valid JSON");
        let list = v.as_array().expect("an array");
        checksum += list.len() as u64 + list.last().and_then(|r| r["id"].as_u64()).unwrap_or(0);
        drop(black_box(v));
    }
    Rep { elapsed: t.elapsed(), ops: docs * per_doc, checksum }
}

/// The `i`th pattern of a set: words with digits, alternations, classes and repetitions,
/// as a log scanner's rules have.
fn pattern(i: usize) -> String {
    match i % 4 {
        0 => format!(r"\berror{i}\s+code=(\d+)\b"),
        1 => format!(r"(?i)user_{i}@[a-z]+\.(com|org|net)"),
        2 => format!(r"^\[{i}\] [A-Z]{{3,8}}: .*timeout"),
        _ => format!(r"req-{i}-[0-9a-f]{{8}}(-retry)?"),
    }
}

/// Lines of a log to match the `patterns` patterns against: a few of them match.
fn haystack(lines: usize, patterns: usize) -> Vec<String> {
    let mut rng = Rng::new(11);
    (0..lines)
        .map(|k| match rng.below(8) {
            0 => format!("error{} code={}", rng.below(patterns), rng.below(999)),
            1 => format!("[{}] WARN: disk timeout after {} ms", rng.below(patterns), k),
            2 => format!("req-{}-{:08x} done", rng.below(patterns), rng.next_u64() as u32),
            _ => format!("line {k}: nothing to see here, moving on to the next one"),
        })
        .collect()
}

/// A `RegexSet` of `patterns` patterns (500) compiled, matched against 2,000 log lines
/// (its lazy DFA's states are built, and allocated, as it goes) and dropped, repeated
/// until about `ops` patterns were compiled (at least one set). Checksum: the matches.
pub(crate) fn regex_set(ops: u64, patterns: usize) -> Rep {
    let sources: Vec<String> = (0..patterns).map(pattern).collect();
    let lines = haystack(2_000, patterns);
    let sets = (ops / patterns as u64).max(1);
    let t = Instant::now();
    let mut checksum = 0u64;
    for _ in 0..sets {
        let set = RegexSet::new(black_box(&sources)).expect("the patterns are valid");
        for line in &lines {
            checksum += set.matches(line).iter().count() as u64;
        }
        drop(black_box(set));
    }
    Rep { elapsed: t.elapsed(), ops: sets * patterns as u64, checksum }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_has_the_values_it_is_counted_by() {
        let v: Value = serde_json::from_str(&document(3)).unwrap();
        fn count(v: &Value) -> u64 {
            1 + match v {
                Value::Array(a) => a.iter().map(count).sum(),
                Value::Object(o) => o.values().map(count).sum(),
                _ => 0,
            }
        }
        // The top-level array is not a record's.
        assert_eq!(count(&v) - 1, 3 * VALUES_PER_RECORD);
    }

    #[test]
    fn json_parses_whole_documents() {
        let r = json(1, 50);
        assert_eq!((r.ops, r.checksum), (50 * VALUES_PER_RECORD, 50 + 49));
        let r = json(3 * 50 * VALUES_PER_RECORD, 50);
        assert_eq!((r.ops, r.checksum), (3 * 50 * VALUES_PER_RECORD, 3 * (50 + 49)));
    }

    #[test]
    fn regex_sets_match_some_lines() {
        let a = regex_set(40, 20);
        assert_eq!(a.ops, 40);
        assert!(a.checksum > 0, "{a:?}");
        assert_eq!(regex_set(40, 20).checksum, a.checksum);
        // One set of 20 patterns finds half of what two sets find.
        assert_eq!(regex_set(20, 20).checksum * 2, a.checksum);
    }
}
