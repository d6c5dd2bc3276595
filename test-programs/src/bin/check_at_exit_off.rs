//! Test that with `check_at_exit=0` nothing is checked, reported or written.
//!
// OPTIONS: check_at_exit=0
// EXPECT: no-report
// EXPECT-EXIT: 0

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[inline(never)]
fn leak() {
    std::mem::forget(black_box(Box::new([5u8; 24])));
}

fn main() {
    leak();
}
