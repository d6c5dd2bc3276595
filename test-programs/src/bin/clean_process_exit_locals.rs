//! Test that `process::exit` with live locals in `main`: they are still on the stack, reachable.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

// Each `Box` is a heap block of its own: that is what the scenario is about.
#![allow(clippy::vec_box)]

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

fn main() {
    let locals: Vec<Box<[u8; 128]>> = (0..32).map(|i| Box::new([i; 128])).collect();
    black_box(&locals);
    std::process::exit(0);
}
