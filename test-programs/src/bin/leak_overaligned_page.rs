//! Test that a leak of a 4096-byte-aligned type is found at its size.
//!
// EXPECT: leaked_blocks=1 leaked_bytes=4096 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=4096 function~=leak_overaligned_page::leak
// EXPECT-EXIT: 23

use std::hint::black_box;
use test_programs::scribble_stack;

#[repr(align(4096))]
struct PageAligned {
    _bytes: [u8; 100],
}

// A type's size is a multiple of its alignment.
const _: () = assert!(std::mem::size_of::<PageAligned>() == 4096);

#[inline(never)]
fn leak() {
    let b = Box::new(PageAligned { _bytes: [1; 100] });
    assert_eq!(&*b as *const PageAligned as usize % 4096, 0);
    std::mem::forget(black_box(b));
}

fn main() {
    leak();
    scribble_stack();
}
