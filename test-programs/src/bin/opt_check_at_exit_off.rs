//! Test that with `check_at_exit=0` a leaking program is not checked: no report, no text, status 0.
//!
// OPTIONS: check_at_exit=0
// EXPECT: no-report
// EXPECT-EXIT: 0

use std::hint::black_box;
use test_programs::scribble_stack;

#[inline(never)]
fn leak() {
    std::mem::forget(black_box(Box::new([5u8; 24])));
}

fn main() {
    leak();
    scribble_stack();
}
