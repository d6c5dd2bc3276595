//! Test that a ring of 100 `Rc` nodes is 100 direct, cyclic leaks.
//!
// EXPECT: leaked_blocks=100 leaked_bytes=3200 direct_blocks=100 indirect_blocks=0 cyclic_blocks=100
// EXPECT-GROUP: kind=direct cyclic=true blocks=100 bytes=3200 function~=leak_rc_hundred_cycle::leak_ring
// EXPECT-EXIT: 23
//
// Every node of a ring is in the same strongly connected component, which no other
// leaked block points to: all are direct. They come from one `Rc::new`: one group.

use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use test_programs::scribble_stack;

struct Node {
    next: RefCell<Option<Rc<Node>>>,
}

// An `Rc` block is the two counts (16 bytes) and the value: 16 + 16 = 32 bytes.
const _: () = assert!(std::mem::size_of::<Node>() == 16);

/// Builds a ring of `n` nodes, all allocated at the one `Rc::new` below, and drops every
/// handle on it but the ring's own.
#[inline(never)]
fn leak_ring(n: usize) {
    let mut nodes: Vec<Rc<Node>> = Vec::with_capacity(n);
    for _ in 0..n {
        nodes.push(Rc::new(Node { next: RefCell::new(None) }));
    }
    for (i, node) in nodes.iter().enumerate() {
        *node.next.borrow_mut() = Some(Rc::clone(&nodes[(i + 1) % n]));
    }
}

fn main() {
    leak_ring(black_box(100));
    scribble_stack();
}
