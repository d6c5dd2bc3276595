//! Test that with `exitcode=0` a leak is still reported, but the exit status is the program's.
//!
// OPTIONS: exitcode=0
// EXPECT: leaked_blocks=1 leaked_bytes=24 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=24 function~=opt_exitcode_zero::leak
// EXPECT-EXIT: 0

use std::hint::black_box;
use test_programs::scribble_stack;

#[inline(never)]
fn leak() {
    std::mem::forget(black_box(Box::new([5u8; 24])));
}

fn main() {
    leak();
    scribble_stack();
}
