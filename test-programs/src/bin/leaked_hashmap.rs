//! Test that a forgotten `HashMap` leaks its table (direct) and the boxes it owns (indirect).
//!
// EXPECT: leaked_blocks=11 direct_blocks=1 indirect_blocks=10 cyclic_blocks=0
// EXPECT-GROUP: kind=indirect cyclic=false blocks=10 bytes=240 function~=leaked_hashmap::leak
// EXPECT-EXIT: 23

// Each `Box` is a heap block of its own: that is what the scenario is about.
#![allow(clippy::vec_box)]

use std::collections::HashMap;
use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[inline(never)]
fn leak() {
    let mut m: HashMap<u64, Box<[u8; 24]>> = HashMap::with_capacity(16);
    for k in 0..black_box(10u64) {
        m.insert(k, Box::new([k as u8; 24]));
    }
    std::mem::forget(m);
}

fn main() {
    leak();
    test_programs::scribble_stack();
}
