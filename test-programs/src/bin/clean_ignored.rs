//! Test that a leaked box marked with `alloc_core::ignore` is not reported, nor what it owns.
//!
// EXPECT: clean reachable_blocks>=11
// EXPECT-EXIT: 0
//
// An ignored block's contents count as roots: the vector it holds, and the vector's
// 10 boxes, stay reachable: at least 11 reachable blocks.

// Each `Box` is a heap block of its own: that is what the scenario is about.
#![allow(clippy::vec_box)]

use std::hint::black_box;
use test_programs::scribble_stack;

#[inline(never)]
fn leak_on_purpose(n: u8) {
    let owned: Vec<Box<[u8; 16]>> = (0..n).map(|i| Box::new([i; 16])).collect();
    let outer: &'static mut Vec<Box<[u8; 16]>> = Box::leak(Box::new(owned));
    assert!(alloc_core::ignore((outer as *const Vec<Box<[u8; 16]>>).cast()));
}

fn main() {
    leak_on_purpose(black_box(10));
    scribble_stack();
}
