//! Test that a leaked block reached only through an interior pointer from another leaked block is indirect.
//!
// EXPECT: leaked_blocks=2 leaked_bytes=108 direct_blocks=1 indirect_blocks=1 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=8 function~=leak_interior_indirect::leak
// EXPECT-GROUP: kind=indirect cyclic=false blocks=1 bytes=100 function~=leak_interior_indirect::leak
// EXPECT-EXIT: 23

use std::hint::black_box;
use test_programs::scribble_stack;

/// Holds a pointer to the middle of the buffer, never to its start.
struct Holder {
    _middle: *const u8,
}

#[inline(never)]
fn leak() {
    let buffer: &'static mut [u8; 100] = Box::leak(Box::new([4u8; 100]));
    let holder = Box::new(Holder { _middle: buffer[50..].as_ptr() });
    std::mem::forget(black_box(holder));
}

fn main() {
    leak();
    scribble_stack();
}
