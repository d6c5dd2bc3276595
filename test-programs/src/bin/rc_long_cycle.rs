//! Test that a ring of 100 `Rc` nodes is 100 direct, cyclic leaks.
//!
// EXPECT: leaked_blocks=100 leaked_bytes=3200 direct_blocks=100 indirect_blocks=0 cyclic_blocks=100
// EXPECT-GROUP: kind=direct cyclic=true blocks=100 bytes=3200 function~=rc_long_cycle::leak
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
    let first = Rc::new(Node { next: RefCell::new(None) });
    let mut prev = first.clone();
    for _ in 1..black_box(100) {
        let n = Rc::new(Node { next: RefCell::new(None) });
        *prev.next.borrow_mut() = Some(n.clone());
        prev = n;
    }
    *prev.next.borrow_mut() = Some(first);
}

fn main() {
    leak();
    test_programs::scribble_stack();
}
