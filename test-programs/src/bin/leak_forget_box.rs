//! Test that a `Box` dropped with `mem::forget` is one direct leak of its size.
//!
// EXPECT: leaked_blocks=1 leaked_bytes=40 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=40 function~=leak_forget_box::leak
// EXPECT-EXIT: 23

use std::hint::black_box;
use test_programs::scribble_stack;

#[inline(never)]
fn leak() {
    std::mem::forget(black_box(Box::new([7u8; 40])));
}

fn main() {
    leak();
    scribble_stack();
}
