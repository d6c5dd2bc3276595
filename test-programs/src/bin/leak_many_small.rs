//! Test that a thousand leaks from one allocation site are reported as one group.
//!
// EXPECT: leaked_blocks=1000 leaked_bytes=24000 direct_blocks=1000 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1000 bytes=24000 function~=leak_many_small::leak
// EXPECT-EXIT: 23

use std::hint::black_box;
use test_programs::scribble_stack;

#[inline(never)]
fn leak(n: usize) {
    // The trip count is opaque to the optimizer, so the loop (it calls the allocator) is
    // not unrolled: one call site, one stack.
    for i in 0..n {
        std::mem::forget(black_box(Box::new([i as u8; 24])));
    }
}

fn main() {
    leak(black_box(1000));
    scribble_stack();
}
