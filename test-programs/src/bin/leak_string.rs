//! Test that a forgotten `String` leaks exactly its bytes.
//!
// EXPECT: leaked_blocks=1 leaked_bytes=11 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0
// EXPECT-EXIT: 23

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[inline(never)]
fn leak() {
    std::mem::forget(black_box(String::from("hello world")));
}

fn main() {
    leak();
    test_programs::scribble_stack();
}
