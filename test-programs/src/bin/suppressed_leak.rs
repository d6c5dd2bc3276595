//! Test that a leak matched by a suppression is not reported, and counted as suppressed.
//!
// OPTIONS: suppressions=src/bin/suppressed_leak.supp
// EXPECT: leaked_blocks=0 leaked_bytes=0 direct_blocks=0 indirect_blocks=0 cyclic_blocks=0 suppressed_blocks=1
// EXPECT-EXIT: 0

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[inline(never)]
fn fill_cache() {
    std::mem::forget(black_box(Box::new([5u8; 24])));
}

fn main() {
    fill_cache();
    test_programs::scribble_stack();
}
