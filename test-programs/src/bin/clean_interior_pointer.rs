//! Test that a block reachable only through a pointer into its middle is reachable.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

use std::sync::atomic::{AtomicPtr, Ordering};

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

static INTERIOR: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

#[inline(never)]
fn keep() {
    let b: &'static mut [u8; 100] = Box::leak(Box::new([0u8; 100]));
    INTERIOR.store(b[50..].as_mut_ptr(), Ordering::SeqCst);
}

fn main() {
    keep();
    test_programs::scribble_stack();
}
