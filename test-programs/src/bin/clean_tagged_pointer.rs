//! Test that a block reachable only through a pointer with tag bits set is reachable.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

use std::sync::atomic::{AtomicUsize, Ordering};

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

static TAGGED: AtomicUsize = AtomicUsize::new(0);

#[inline(never)]
fn keep() {
    let b: &'static mut u64 = Box::leak(Box::new(42u64));
    TAGGED.store(b as *mut u64 as usize | 0b11, Ordering::SeqCst);
}

fn main() {
    keep();
    test_programs::scribble_stack();
}
