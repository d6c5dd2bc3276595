//! Test that a leaked linked list is one direct head and an indirect tail.
//!
// EXPECT: leaked_blocks=10 leaked_bytes=160 direct_blocks=1 indirect_blocks=9 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=16 function~=leak_linked_list::make_list
// EXPECT-GROUP: kind=indirect cyclic=false blocks=9 bytes=144 function~=leak_linked_list::make_list
// EXPECT-EXIT: 23
//
// All ten nodes come from the one `Box::new` in the loop: one stack, two kinds.

use std::hint::black_box;
use test_programs::scribble_stack;

struct Node {
    _next: Option<Box<Node>>,
    _value: u64,
}

const _: () = assert!(std::mem::size_of::<Node>() == 16);

/// Builds a list of `n` nodes (the last one allocated is the head) and forgets it.
#[inline(never)]
fn make_list(n: u64) {
    let mut head = None;
    for v in 0..n {
        head = Some(Box::new(Node { _next: head, _value: v }));
    }
    std::mem::forget(black_box(head));
}

fn main() {
    make_list(black_box(10));
    scribble_stack();
}
