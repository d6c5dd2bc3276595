//! Test that a block grown by `realloc` is reported once, at its final requested size.
//!
// EXPECT: leaked_blocks=1 leaked_bytes=800 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=800 function~=leak_realloc_grown::leak
// EXPECT-EXIT: 23

use std::hint::black_box;
use test_programs::scribble_stack;

#[inline(never)]
fn leak() {
    // 2 × 8 bytes, then grown in place or moved: 100 × 8 = 800 bytes, exactly
    // (`reserve_exact` asks for `len + additional` elements).
    let mut v: Vec<u64> = Vec::with_capacity(2);
    v.push(1);
    v.reserve_exact(black_box(99));
    assert_eq!(v.capacity(), 100);
    std::mem::forget(black_box(v));
}

fn main() {
    leak();
    scribble_stack();
}
