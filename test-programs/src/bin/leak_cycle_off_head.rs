//! Test that a cycle reachable only from a leaked head is indirect and cyclic; the head is direct.
//!
// EXPECT: leaked_blocks=3 leaked_bytes=72 direct_blocks=1 indirect_blocks=2 cyclic_blocks=2
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=8 function~=leak_cycle_off_head::leak
// EXPECT-GROUP: kind=indirect cyclic=true blocks=2 bytes=64 function~=leak_cycle_off_head::make_ring
// EXPECT-EXIT: 23

use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use test_programs::scribble_stack;

struct Node {
    next: RefCell<Option<Rc<Node>>>,
}

// An `Rc` block is the two counts (16 bytes) and the value: 16 + 16 = 32 bytes.
const _: () = assert!(std::mem::size_of::<Node>() == 16);

/// A ring of `n` nodes, all from the one `Rc::new` below; returns one handle on it.
#[inline(never)]
fn make_ring(n: usize) -> Rc<Node> {
    let mut nodes: Vec<Rc<Node>> = Vec::with_capacity(n);
    for _ in 0..n {
        nodes.push(Rc::new(Node { next: RefCell::new(None) }));
    }
    for (i, node) in nodes.iter().enumerate() {
        *node.next.borrow_mut() = Some(Rc::clone(&nodes[(i + 1) % n]));
    }
    Rc::clone(&nodes[0])
}

#[inline(never)]
fn leak() {
    // The head: a box holding one handle (8 bytes) on the ring.
    let head: Box<Rc<Node>> = Box::new(make_ring(black_box(2)));
    std::mem::forget(black_box(head));
}

fn main() {
    leak();
    scribble_stack();
}
