//! Test that a thousand leaks from one allocation site are reported as one site.
//!
// EXPECT: leaked_blocks=1000 leaked_bytes=24000 direct_blocks=1000 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1000 bytes=24000 function~=many_small_leaks::leak
// EXPECT-EXIT: 23

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[inline(never)]
fn leak() {
    for i in 0..black_box(1000) {
        std::mem::forget(Box::new([i as u8; 24]));
    }
}

fn main() {
    leak();
    test_programs::scribble_stack();
}
