//! Test that a block reachable only through a pointer into its middle is reachable.
//!
// EXPECT: clean reachable_blocks>=1
// EXPECT-EXIT: 0

use std::hint::black_box;
use std::sync::atomic::{AtomicPtr, Ordering};
use test_programs::scribble_stack;

/// Points 10 bytes into a leaked string: never at its start.
static INTERIOR: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

#[inline(never)]
fn keep() {
    let s: &'static mut str = String::from(black_box("a string of thirty-two bytes....")).leak();
    INTERIOR.store(s[10..].as_mut_ptr(), Ordering::SeqCst);
}

fn main() {
    keep();
    scribble_stack();
    // The static is read (by an opaque function): its store may not be optimized away.
    black_box(&INTERIOR);
}
