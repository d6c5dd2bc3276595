//! Test that memory behind a `LazyLock` static (a hash map of boxes) is reachable.
//!
// EXPECT: clean reachable_blocks>=51
// EXPECT-EXIT: 0
//
// The 50 boxes and the table: at least 51 reachable blocks.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::LazyLock;
use test_programs::scribble_stack;

static TABLE: LazyLock<HashMap<u32, Box<[u8; 32]>>> =
    LazyLock::new(|| (0..black_box(50)).map(|i| (i, Box::new([i as u8; 32]))).collect());

#[inline(never)]
fn touch() {
    assert_eq!(TABLE.len(), 50);
}

fn main() {
    touch();
    scribble_stack();
}
