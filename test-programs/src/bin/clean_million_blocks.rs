//! Test that a million small blocks reachable from a static are all reachable.
//!
// EXPECT: clean reachable_blocks>=1000000
// EXPECT-EXIT: 0

// Each `Box` is a heap block of its own: that is what the scenario is about.
#![allow(clippy::vec_box)]

use std::sync::Mutex;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

static HOLD: Mutex<Vec<Box<u32>>> = Mutex::new(Vec::new());

fn main() {
    let v: Vec<Box<u32>> = (0..1_000_000u32).map(Box::new).collect();
    *HOLD.lock().unwrap() = v;
}
