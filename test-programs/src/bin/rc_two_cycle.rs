//! Test that two `Rc` nodes pointing at each other are two direct, cyclic leaks.
//!
// EXPECT: leaked_blocks=2 leaked_bytes=64 direct_blocks=2 indirect_blocks=0 cyclic_blocks=2
// EXPECT-GROUP: kind=direct cyclic=true blocks=2 bytes=64 function~=rc_two_cycle::leak
// EXPECT-EXIT: 23

use std::cell::RefCell;
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
}

fn main() {
    leak();
    test_programs::scribble_stack();
}
