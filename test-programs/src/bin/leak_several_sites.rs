//! Test that leaks at several sites give one group each, sorted by bytes, largest first.
//!
// EXPECT: leaked_blocks=6 leaked_bytes=288 direct_blocks=6 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=128 function~=leak_several_sites::big
// EXPECT-GROUP: kind=direct cyclic=false blocks=3 bytes=96 function~=leak_several_sites::medium
// EXPECT-GROUP: kind=direct cyclic=false blocks=2 bytes=64 function~=leak_several_sites::small
// EXPECT-EXIT: 23
//
// Sorted by the group's bytes, not by its blocks: 128 (1 block) comes before 96 (3).
// Called in the opposite order, so that the report's order is not the allocation order.

use std::hint::black_box;
use test_programs::scribble_stack;

#[inline(never)]
fn small(n: usize) {
    for _ in 0..n {
        std::mem::forget(black_box(Box::new([1u8; 32])));
    }
}

#[inline(never)]
fn medium(n: usize) {
    for _ in 0..n {
        std::mem::forget(black_box(Box::new([2u8; 32])));
    }
}

#[inline(never)]
fn big() {
    std::mem::forget(black_box(Box::new([3u8; 128])));
}

fn main() {
    small(black_box(2));
    medium(black_box(3));
    big();
    scribble_stack();
}
