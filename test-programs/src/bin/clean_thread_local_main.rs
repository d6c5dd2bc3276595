//! Test that a list held only by the main thread's `thread_local!` at exit is reachable.
//!
// EXPECT: clean reachable_blocks>=20
// EXPECT-EXIT: 0
//
// The thread-local is a `Cell` of a raw pointer: it has no destructor, so nothing frees
// the list while the main thread exits, and only the thread's TLS block points to its
// head: at least 20 reachable blocks.

use std::cell::Cell;
use std::hint::black_box;
use std::ptr;
use test_programs::scribble_stack;

struct Node {
    _next: *mut Node,
    _payload: [u64; 3],
}

thread_local! {
    static HEAD: Cell<*mut Node> = const { Cell::new(ptr::null_mut()) };
}

#[inline(never)]
fn fill(n: u64) {
    for i in 0..n {
        let node = Box::new(Node { _next: HEAD.get(), _payload: [i; 3] });
        HEAD.set(Box::into_raw(node));
    }
}

fn main() {
    fill(black_box(20));
    scribble_stack();
}
