//! Shared by the `Handle<T>` test files: a node type that counts its drops, and helpers
//! to make and link nodes.

use alloc_core::{gc, Handle, Trace, Tracer};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// A node that counts its drops and holds handles to other nodes.
pub struct Node {
    pub next: RefCell<Vec<Handle<Node>>>,
    pub drops: Rc<Cell<usize>>,
}

// SAFETY: visits exactly the handles in `next`.
unsafe impl Trace for Node {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.next.trace(t);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

/// A new node counting its drop in `drops`.
pub fn node(drops: &Rc<Cell<usize>>) -> Handle<Node> {
    Handle::new(Node { next: RefCell::new(Vec::new()), drops: drops.clone() })
}

/// Adds the edge `a -> b`.
pub fn link(a: &Handle<Node>, b: &Handle<Node>) {
    a.next.borrow_mut().push(b.clone());
}

/// Only explicit collections from now on (on this thread), and a fresh drop counter.
pub fn counter() -> Rc<Cell<usize>> {
    gc::set_threshold(0, 10, 10);
    Rc::new(Cell::new(0))
}
