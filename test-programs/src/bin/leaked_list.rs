//! Test that a leaked linked list is one direct head and an indirect tail.
//!
// EXPECT: leaked_blocks=10 leaked_bytes=160 direct_blocks=1 indirect_blocks=9 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=16 function~=leaked_list::leak
// EXPECT-GROUP: kind=indirect cyclic=false blocks=9 bytes=144 function~=leaked_list::leak
// EXPECT-EXIT: 23

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

struct Node {
    _next: Option<Box<Node>>,
    _value: u64,
}

#[inline(never)]
fn leak() {
    let mut head = None;
    for v in 0..black_box(10u64) {
        head = Some(Box::new(Node { _next: head, _value: v }));
    }
    std::mem::forget(head);
}

fn main() {
    leak();
    test_programs::scribble_stack();
}
