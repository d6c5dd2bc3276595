//! Workloads made of what real Rust programs do, rather than of allocation patterns:
//! parsing a large JSON document into `serde_json::Value`s, compiling and running a set
//! of regular expressions, and a burst of memory most of which is given back.
//!
//! # What it owns
//! [`json`], [`regex_set`] and [`burst`], registered in [`crate::workloads::WORKLOADS`]
//! like the micro-workloads, so every allocator runs them in the same harness. Their
//! inputs (the document's text, the patterns and the haystack) are built before the
//! clock starts.

use crate::workloads::{Block, Rep, Rng};
use regex::RegexSet;
use serde_json::Value;
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// The blocks the last [`burst`] kept: alive until the next burst, so that the child
/// reads its resident set size with them (and nothing else of the burst) alive.
static KEPT: Mutex<Vec<Block>> = Mutex::new(Vec::new());

/// One burst: `ops` blocks of 16..=500 bytes (about 1 GiB for 4M blocks) allocated and
/// written, then all but the first 1% freed, in a random order; the kept 1% replaces the
/// previous burst's. (Had it kept every 100th block instead, every page of every
/// allocator would keep a few blocks, and no allocator could give any page back.) Then, outside the measured part, 20 ms of quiet and a thousand
/// small allocations and frees, when an allocator that gives memory back after a delay
/// (mimalloc's and HeapSweep's purge) does so. The child reads the resident set size
/// after the last burst: what the allocator kept of the 99% freed. Checksum: bytes
/// allocated.
pub(crate) fn burst(ops: u64, _set: usize) -> Rep {
    KEPT.lock().unwrap().clear();
    let t = Instant::now();
    let (kept, checksum) = allocate_and_keep_the_first_hundredth(ops);
    let elapsed = t.elapsed();
    *KEPT.lock().unwrap() = kept;
    std::thread::sleep(Duration::from_millis(20));
    for i in 0..1000 {
        black_box(Block::new(16 + i % 64));
    }
    Rep { elapsed, ops, checksum }
}

/// [`burst`]'s measured part: the blocks kept, and the bytes allocated.
fn allocate_and_keep_the_first_hundredth(ops: u64) -> (Vec<Block>, u64) {
    let mut rng = Rng::new(23);
    let mut blocks: Vec<Option<Block>> = (0..ops).map(|i| Some(Block::tagged(rng.range(16, 500), i as u8))).collect();
    let checksum = blocks.iter().flatten().map(|b| b.size() as u64).sum();
    // The first 1% allocated stays (a program's long-lived state, built first).
    let first = blocks.len() / 100;
    let kept: Vec<Block> = blocks[..first].iter_mut().filter_map(Option::take).collect();
    // Free the rest in a random order (a shuffle of the slots: Fisher-Yates).
    for i in (1..blocks.len()).rev() {
        blocks.swap(i, rng.below(i + 1));
    }
    drop(blocks);
    (kept, checksum)
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
    fn a_burst_keeps_the_first_hundredth_of_its_blocks() {
        let (kept, checksum) = allocate_and_keep_the_first_hundredth(1_000);
        assert_eq!(kept.len(), 10);
        assert!(kept.iter().all(|b| (16..=500).contains(&b.size())));
        assert_eq!(kept[3].tag(), 3, "the first ten blocks");
        assert!((16 * 1_000..=500 * 1_000).contains(&checksum));
        assert_eq!(burst(1_000, 1).checksum, checksum);
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
