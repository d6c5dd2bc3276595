//! Test that `process::exit(0)` after a leak still runs the check, and exits with 23.
//!
// EXPECT: leaked_blocks=1 leaked_bytes=56 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=56 function~=leak_then_process_exit::leak
// EXPECT-EXIT: 23

use std::hint::black_box;
use test_programs::scribble_stack;

#[inline(never)]
fn leak() {
    std::mem::forget(black_box(Box::new([5u8; 56])));
}

fn main() {
    leak();
    scribble_stack();
    std::process::exit(0);
}
