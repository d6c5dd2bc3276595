//! Test that an `Arc` kept only as `Arc::into_raw` (a pointer past its counts) is reachable.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

static RAW: AtomicPtr<Vec<u32>> = AtomicPtr::new(std::ptr::null_mut());

#[inline(never)]
fn keep() {
    let a = Arc::new(vec![1u32, 2, 3]);
    RAW.store(Arc::into_raw(a) as *mut Vec<u32>, Ordering::SeqCst);
}

fn main() {
    keep();
    test_programs::scribble_stack();
}
