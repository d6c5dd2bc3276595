//! Test that an `Arc` kept only as `Arc::into_raw` (a pointer past its counts) is reachable.
//!
// EXPECT: clean reachable_blocks>=2
// EXPECT-EXIT: 0
//
// The `Arc` block and its vector's buffer: at least 2 reachable blocks.

use std::hint::black_box;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;
use test_programs::scribble_stack;

static RAW: AtomicPtr<Vec<u32>> = AtomicPtr::new(std::ptr::null_mut());

#[inline(never)]
fn keep() {
    let a = Arc::new(vec![1u32, 2, 3]);
    RAW.store(Arc::into_raw(a).cast_mut(), Ordering::SeqCst);
}

fn main() {
    keep();
    scribble_stack();
    // The static is read (by an opaque function): its store may not be optimized away.
    black_box(&RAW);
}
