//! Test that an `Rc` that points to itself is one direct, cyclic leak (LSan calls it indirect).
//!
// EXPECT: leaked_blocks=1 leaked_bytes=32 direct_blocks=1 indirect_blocks=0 cyclic_blocks=1
// EXPECT-GROUP: kind=direct cyclic=true blocks=1 bytes=32 function~=leak_rc_self_cycle::leak
// EXPECT-EXIT: 23

use std::cell::RefCell;
use std::rc::Rc;
use test_programs::scribble_stack;

struct Node {
    next: RefCell<Option<Rc<Node>>>,
}

// An `Rc` block is the two counts (16 bytes) and the value: 16 + 16 = 32 bytes.
const _: () = assert!(std::mem::size_of::<Node>() == 16);

#[inline(never)]
fn leak() {
    let a = Rc::new(Node { next: RefCell::new(None) });
    *a.next.borrow_mut() = Some(Rc::clone(&a));
}

fn main() {
    leak();
    scribble_stack();
}
