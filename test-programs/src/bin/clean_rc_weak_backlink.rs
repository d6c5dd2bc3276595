//! Test that a parent/child `Rc` graph whose back links are `Weak` is freed whole: no leak.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

use std::cell::RefCell;
use std::hint::black_box;
use std::rc::{Rc, Weak};
use test_programs::scribble_stack;

struct TreeNode {
    parent: RefCell<Weak<TreeNode>>,
    children: RefCell<Vec<Rc<TreeNode>>>,
}

impl TreeNode {
    fn new() -> Rc<TreeNode> {
        Rc::new(TreeNode { parent: RefCell::new(Weak::new()), children: RefCell::new(Vec::new()) })
    }
}

#[inline(never)]
fn build_and_drop(n: usize) {
    let root = TreeNode::new();
    for _ in 0..n {
        let child = TreeNode::new();
        *child.parent.borrow_mut() = Rc::downgrade(&root);
        root.children.borrow_mut().push(child);
    }
    let first = Rc::clone(&root.children.borrow()[0]);
    assert!(first.parent.borrow().upgrade().is_some());
    black_box(&root);
}

fn main() {
    build_and_drop(black_box(10));
    scribble_stack();
}
