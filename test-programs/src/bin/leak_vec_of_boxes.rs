//! Test that a forgotten `Vec<Box<u64>>` leaks its buffer (direct) and the boxes (indirect).
//!
// EXPECT: leaked_blocks=6 leaked_bytes=80 direct_blocks=1 indirect_blocks=5 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=40 function~=leak_vec_of_boxes::leak
// EXPECT-GROUP: kind=indirect cyclic=false blocks=5 bytes=40 function~=leak_vec_of_boxes::leak
// EXPECT-EXIT: 23

// Each `Box` is a heap block of its own: that is what the scenario is about.
#![allow(clippy::vec_box)]

use std::hint::black_box;
use test_programs::scribble_stack;

#[inline(never)]
fn leak(n: u64) {
    // The buffer: 5 pointers, 40 bytes; each box: 8 bytes.
    let mut v: Vec<Box<u64>> = Vec::with_capacity(5);
    for i in 0..n {
        v.push(Box::new(i));
    }
    std::mem::forget(black_box(v));
}

fn main() {
    leak(black_box(5));
    scribble_stack();
}
