//! Test that the `&'static mut` returned by `Box::leak`, once discarded, is a direct leak.
//!
// EXPECT: leaked_blocks=1 leaked_bytes=64 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=64 function~=leak_box_leak::leak
// EXPECT-EXIT: 23

use std::hint::black_box;
use test_programs::scribble_stack;

#[inline(never)]
fn leak() {
    let r: &'static mut [u64; 8] = Box::leak(Box::new([1u64; 8]));
    black_box(r);
}

fn main() {
    leak();
    scribble_stack();
}
