//! Test that memory behind a `OnceLock` static (a vector of strings) is reachable.
//!
// EXPECT: clean reachable_blocks>=101
// EXPECT-EXIT: 0
//
// The 100 strings and their vector: at least 101 reachable blocks.

use std::hint::black_box;
use std::sync::OnceLock;
use test_programs::scribble_stack;

static CACHE: OnceLock<Vec<String>> = OnceLock::new();

#[inline(never)]
fn fill(n: usize) {
    let cache = CACHE.get_or_init(|| (0..n).map(|i| format!("entry {i}")).collect());
    assert_eq!(cache.len(), n);
}

fn main() {
    fill(black_box(100));
    scribble_stack();
}
