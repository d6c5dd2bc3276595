//! Test that an `Rc` that points to itself is one direct, cyclic leak (LSan would call it indirect).
//!
// EXPECT: leaked_blocks=1 leaked_bytes=32 direct_blocks=1 indirect_blocks=0 cyclic_blocks=1
// EXPECT-GROUP: kind=direct cyclic=true blocks=1 bytes=32 function~=rc_self_cycle::leak
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
    *a.next.borrow_mut() = Some(a.clone());
}

fn main() {
    leak();
    test_programs::scribble_stack();
}
