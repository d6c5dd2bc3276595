//! Test that a forgotten `Vec` leaks its buffer at the capacity requested, not its length.
//!
// EXPECT: leaked_blocks=1 leaked_bytes=100 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=100 function~=leak_vec_capacity::leak
// EXPECT-EXIT: 23

use std::hint::black_box;
use test_programs::scribble_stack;

#[inline(never)]
fn leak() {
    // 25 × 4 bytes requested, 1 element used.
    let mut v: Vec<u32> = Vec::with_capacity(25);
    v.push(1);
    std::mem::forget(black_box(v));
}

fn main() {
    leak();
    scribble_stack();
}
