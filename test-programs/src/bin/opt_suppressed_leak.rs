//! Test that a leak matched by a suppression is not reported, and is counted as suppressed.
//!
// OPTIONS: suppressions=src/bin/opt_suppressed_leak.supp
// EXPECT: clean suppressed_blocks=1
// EXPECT-EXIT: 0

use std::hint::black_box;
use test_programs::scribble_stack;

#[inline(never)]
fn fill_cache() {
    std::mem::forget(black_box(Box::new([5u8; 24])));
}

fn main() {
    fill_cache();
    scribble_stack();
}
