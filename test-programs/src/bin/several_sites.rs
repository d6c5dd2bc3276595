//! Test that leaks at several sites give one group each, largest first.
//!
// EXPECT: leaked_blocks=3 leaked_bytes=112 direct_blocks=3 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=64 function~=several_sites::big
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=32 function~=several_sites::medium
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=16 function~=several_sites::small
// EXPECT-ORDER: 64 32 16
// EXPECT-EXIT: 23

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[inline(never)]
fn small() {
    std::mem::forget(black_box(Box::new([1u8; 16])));
}

#[inline(never)]
fn medium() {
    std::mem::forget(black_box(Box::new([2u8; 32])));
}

#[inline(never)]
fn big() {
    std::mem::forget(black_box(Box::new([3u8; 64])));
}

fn main() {
    small();
    medium();
    big();
    test_programs::scribble_stack();
}
