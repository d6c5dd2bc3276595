//! Test that boxes held by the main thread's `thread_local!` at exit are reachable.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

// Each `Box` is a heap block of its own: that is what the scenario is about.
#![allow(clippy::vec_box)]

use std::cell::RefCell;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

thread_local! {
    static LOCAL: RefCell<Vec<Box<[u64; 4]>>> = const { RefCell::new(Vec::new()) };
}

fn main() {
    LOCAL.with(|l| l.borrow_mut().extend((0..20).map(|i| Box::new([i; 4]))));
}
