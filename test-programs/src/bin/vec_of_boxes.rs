//! Test that a forgotten `Vec<Box<u64>>` leaks its buffer (direct) and the boxes (indirect).
//!
// EXPECT: leaked_blocks=6 leaked_bytes=80 direct_blocks=1 indirect_blocks=5 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=40 function~=vec_of_boxes::leak
// EXPECT-GROUP: kind=indirect cyclic=false blocks=5 bytes=40 function~=vec_of_boxes::leak
// EXPECT-EXIT: 23

// Each `Box` is a heap block of its own: that is what the scenario is about.
#![allow(clippy::vec_box)]

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[inline(never)]
fn leak() {
    let mut v: Vec<Box<u64>> = Vec::with_capacity(5);
    for i in 0..black_box(5u64) {
        v.push(Box::new(i));
    }
    std::mem::forget(v);
}

fn main() {
    leak();
    test_programs::scribble_stack();
}
