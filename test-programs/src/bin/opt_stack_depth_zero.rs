//! Test that with `stack_depth=0` no stack is recorded, so leaks from every site share one group.
//!
// OPTIONS: stack_depth=0
// EXPECT: leaked_blocks=3 leaked_bytes=112 direct_blocks=3 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=3 bytes=112 frames=0
// EXPECT-EXIT: 23
//
// Groups are keyed by (kind, cyclic, stack); every stack is the empty one.

use std::hint::black_box;
use test_programs::scribble_stack;

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
    scribble_stack();
}
