//! Test that a suppression hides only the leaks it matches: the others are reported and fail the run.
//!
// OPTIONS: suppressions=src/bin/opt_partly_suppressed.supp
// EXPECT: leaked_blocks=1 leaked_bytes=40 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0 suppressed_blocks=3
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=40 function~=opt_partly_suppressed::real_leak
// EXPECT-EXIT: 23

use std::hint::black_box;
use test_programs::scribble_stack;

#[inline(never)]
fn fill_cache(n: usize) {
    for _ in 0..n {
        std::mem::forget(black_box(Box::new([5u8; 24])));
    }
}

#[inline(never)]
fn real_leak() {
    std::mem::forget(black_box(Box::new([6u8; 40])));
}

fn main() {
    fill_cache(black_box(3));
    real_leak();
    scribble_stack();
}
