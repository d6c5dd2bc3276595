//! Test that two `Arc` nodes pointing at each other through `Mutex`es are two direct, cyclic leaks.
//!
// EXPECT: leaked_blocks=2 direct_blocks=2 indirect_blocks=0 cyclic_blocks=2
// EXPECT-GROUP: kind=direct cyclic=true blocks=2 function~=arc_two_cycle::leak
// EXPECT-EXIT: 23

use std::sync::{Arc, Mutex};

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

struct Node {
    next: Mutex<Option<Arc<Node>>>,
}

#[inline(never)]
fn leak() {
    let a = Arc::new(Node { next: Mutex::new(None) });
    let b = Arc::new(Node { next: Mutex::new(Some(a.clone())) });
    *a.next.lock().unwrap() = Some(b);
}

fn main() {
    leak();
    test_programs::scribble_stack();
}
