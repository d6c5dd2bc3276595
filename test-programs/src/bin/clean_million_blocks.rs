//! Test that a million small blocks reachable from a static are all reachable.
//!
// EXPECT: clean reachable_blocks>=1000001
// EXPECT-EXIT: 0
//
// A million boxes and the vector's buffer: at least 1 000 001 reachable blocks.

// Each `Box` is a heap block of its own: that is what the scenario is about.
#![allow(clippy::vec_box)]

use std::hint::black_box;
use std::sync::Mutex;
use test_programs::scribble_stack;

static HOLD: Mutex<Vec<Box<u32>>> = Mutex::new(Vec::new());

#[inline(never)]
fn fill(n: u32) {
    let v: Vec<Box<u32>> = (0..n).map(Box::new).collect();
    *HOLD.lock().unwrap() = v;
}

fn main() {
    fill(black_box(1_000_000));
    scribble_stack();
}
