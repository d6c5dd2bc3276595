//! Test that `process::exit` with live locals in `main` is clean: they are on main's stack.
//!
// EXPECT: clean reachable_blocks>=33
// EXPECT-EXIT: 0
//
// The 32 boxes and their vector: at least 33 reachable blocks.

// Each `Box` is a heap block of its own: that is what the scenario is about.
#![allow(clippy::vec_box)]

use std::hint::black_box;
use test_programs as _;

fn main() {
    let locals: Vec<Box<[u8; 128]>> = (0..black_box(32)).map(|i| Box::new([i; 128])).collect();
    black_box(&locals);
    std::process::exit(0);
}
