//! Test that `process::exit(0)` after a leak still runs the check and exits with 23.
//!
// EXPECT: leaked_blocks=1 leaked_bytes=56 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0
// EXPECT-EXIT: 23

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[inline(never)]
fn leak() {
    std::mem::forget(black_box(Box::new([5u8; 56])));
}

fn main() {
    leak();
    test_programs::scribble_stack();
    std::process::exit(0);
}
