//! Test that a cycle reachable only from a leaked head is indirect and cyclic; the head is direct.
//!
// EXPECT: leaked_blocks=3 leaked_bytes=72 direct_blocks=1 indirect_blocks=2 cyclic_blocks=2
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=8 function~=cycle_off_head::leak
// EXPECT-GROUP: kind=indirect cyclic=true blocks=2 bytes=64 function~=cycle_off_head::leak
// EXPECT-EXIT: 23

use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

struct Node {
    next: RefCell<Option<Rc<Node>>>,
}

#[inline(never)]
fn leak() {
    let a = Rc::new(Node { next: RefCell::new(None) });
    let b = Rc::new(Node { next: RefCell::new(Some(a.clone())) });
    *a.next.borrow_mut() = Some(b);
    let head: Box<Rc<Node>> = Box::new(a);
    std::mem::forget(black_box(head));
}

fn main() {
    leak();
    test_programs::scribble_stack();
}
