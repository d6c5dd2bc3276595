//! Test that memory behind a `LazyLock` static (a hash map of boxes) is reachable.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

// Each `Box` is a heap block of its own: that is what the scenario is about.
#![allow(clippy::vec_box)]

use std::collections::HashMap;
use std::sync::LazyLock;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

static TABLE: LazyLock<HashMap<u32, Box<[u8; 32]>>> =
    LazyLock::new(|| (0..50).map(|i| (i, Box::new([i as u8; 32]))).collect());

fn main() {
    assert_eq!(TABLE.len(), 50);
}
