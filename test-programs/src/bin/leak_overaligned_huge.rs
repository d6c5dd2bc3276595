//! Test that a leak of a 2 MiB-aligned type is found at its size.
//!
// EXPECT: leaked_blocks=1 leaked_bytes=2097152 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=2097152 function~=leak_overaligned_huge::leak
// EXPECT-EXIT: 23

use std::alloc::Layout;
use std::hint::black_box;

#[repr(align(2097152))]
struct HugeAligned {
    _bytes: [u8; 100],
}

// A type's size is a multiple of its alignment.
const _: () = assert!(std::mem::size_of::<HugeAligned>() == 2 << 20);

#[inline(never)]
fn leak() {
    // Allocated directly: `Box::new` would first build the value on the stack, realigning
    // the stack pointer by up to 2 MiB.
    let layout = Layout::new::<HugeAligned>();
    // SAFETY: the layout's size is not zero.
    let p = unsafe { std::alloc::alloc(layout) };
    assert!(!p.is_null());
    assert_eq!(p as usize % (2 << 20), 0);
    black_box(p);
}

fn main() {
    // On a thread that then ends, like every big leak: see `leak_64mib`.
    test_programs::leak_on_thread(leak);
}
