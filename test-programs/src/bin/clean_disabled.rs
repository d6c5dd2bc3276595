//! Test that blocks allocated while an `alloc_core::disable()` guard lives are not reported.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

use std::hint::black_box;
use test_programs::scribble_stack;

#[inline(never)]
fn leak_on_purpose(n: u8) {
    let _off = alloc_core::disable();
    for i in 0..n {
        std::mem::forget(black_box(Box::new([i; 40])));
    }
    std::mem::forget(black_box(String::from("leaked with the check disabled")));
}

fn main() {
    leak_on_purpose(black_box(10));
    scribble_stack();
}
