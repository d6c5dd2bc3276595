//! Test that a program that frees what it allocates is clean, and exits with its own status.
//!
// EXPECT: clean
// EXPECT-EXIT: 3

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

fn main() {
    let v: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    black_box(&v);
    drop(v);
    std::process::exit(3);
}
