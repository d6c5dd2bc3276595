//! Test that leak groups already in a baseline report (`baseline=PATH`) are printed as
//! known and do not set the exit status, while a leak not in it does: here only `known_leak` is in it.
//!
// OPTIONS: baseline=src/bin/opt_baseline_new.baseline.json
// EXPECT: leaked_blocks=2 leaked_bytes=72 direct_blocks=2 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=40 function~=opt_baseline_new::known_leak
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=32 function~=opt_baseline_new::other_leak
// EXPECT-EXIT: 23

use std::hint::black_box;
use test_programs::scribble_stack;

#[inline(never)]
fn known_leak() {
    std::mem::forget(black_box(Box::new([1u8; 40])));
}

#[inline(never)]
fn other_leak() {
    std::mem::forget(black_box(Box::new([2u8; 32])));
}

fn main() {
    known_leak();
    other_leak();
    scribble_stack();
}
