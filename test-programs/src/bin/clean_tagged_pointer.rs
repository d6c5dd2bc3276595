//! Test that a block reachable only through a pointer with its low tag bits set is reachable.
//!
// EXPECT: clean reachable_blocks>=2
// EXPECT-EXIT: 0
//
// An 8-byte-aligned pointer with its two low bits set points 3 bytes into its block:
// an interior pointer. The box and its vector's buffer: at least 2 reachable blocks.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use test_programs::scribble_stack;

static TAGGED: AtomicUsize = AtomicUsize::new(0);

#[inline(never)]
fn keep() {
    // A box (24 bytes) holding a vector: the box is reached through the tagged word
    // only, the vector's buffer through the box.
    let b: &'static mut Vec<u64> = Box::leak(Box::new(vec![42u64; 4]));
    TAGGED.store(b as *mut Vec<u64> as usize | 0b11, Ordering::SeqCst);
}

fn main() {
    keep();
    scribble_stack();
    // The static is read (by an opaque function): its store may not be optimized away.
    black_box(&TAGGED);
}
