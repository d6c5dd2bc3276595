//! Test that two `Arc` nodes pointing at each other through `Mutex`es are two direct, cyclic leaks.
//!
// EXPECT: leaked_blocks=2 leaked_bytes=64 direct_blocks=2 indirect_blocks=0 cyclic_blocks=2
// EXPECT-GROUP: kind=direct cyclic=true blocks=2 bytes=64 function~=leak_arc_two_cycle::leak_ring
// EXPECT-EXIT: 23

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use test_programs::scribble_stack;

struct Node {
    next: Mutex<Option<Arc<Node>>>,
}

// An `Arc` block is the two atomic counts (16 bytes) and the value; the value is the
// mutex's futex word and poison flag (padded to 8) and the pointer: 16 + 16 = 32 bytes.
const _: () = assert!(std::mem::size_of::<Node>() == 16);

/// Builds a ring of `n` nodes, all allocated at the one `Arc::new` below, and drops every
/// handle on it but the ring's own.
#[inline(never)]
fn leak_ring(n: usize) {
    let mut nodes: Vec<Arc<Node>> = Vec::with_capacity(n);
    for _ in 0..n {
        nodes.push(Arc::new(Node { next: Mutex::new(None) }));
    }
    for (i, node) in nodes.iter().enumerate() {
        *node.next.lock().unwrap() = Some(Arc::clone(&nodes[(i + 1) % n]));
    }
}

fn main() {
    leak_ring(black_box(2));
    scribble_stack();
}
