//! Test that two raw boxes pointing at each other (no `Rc`) are a direct, cyclic pair.
//!
// EXPECT: leaked_blocks=2 leaked_bytes=32 direct_blocks=2 indirect_blocks=0 cyclic_blocks=2
// EXPECT-GROUP: kind=direct cyclic=true blocks=1 bytes=16 function~=leak_box_pair_cycle::leak
// EXPECT-GROUP: kind=direct cyclic=true blocks=1 bytes=16 function~=leak_box_pair_cycle::leak
// EXPECT-EXIT: 23
//
// Two `Box::new` calls, two allocation stacks: two groups of one block each.

use std::hint::black_box;
use std::ptr;
use test_programs::scribble_stack;

struct Pair {
    other: *mut Pair,
    _tag: u64,
}

const _: () = assert!(std::mem::size_of::<Pair>() == 16);

#[inline(never)]
fn leak() {
    let a = black_box(Box::into_raw(Box::new(Pair { other: ptr::null_mut(), _tag: 1 })));
    let b = black_box(Box::into_raw(Box::new(Pair { other: a, _tag: 2 })));
    // SAFETY: `a` comes from `Box::into_raw` and is not otherwise borrowed.
    unsafe { (*a).other = b };
    black_box(a);
}

fn main() {
    leak();
    scribble_stack();
}
