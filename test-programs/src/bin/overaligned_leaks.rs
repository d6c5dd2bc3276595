//! Test that leaks of over-aligned types (4 KiB and 2 MiB alignment) are found at their sizes.
//!
// EXPECT: leaked_blocks=2 leaked_bytes=2101248 direct_blocks=2 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=4096 function~=overaligned_leaks::leak_page
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=2097152 function~=overaligned_leaks::leak_huge
// EXPECT-EXIT: 23

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[repr(align(4096))]
struct PageAligned {
    _bytes: [u8; 100],
}

#[repr(align(2097152))]
struct HugeAligned {
    _bytes: [u8; 100],
}

#[inline(never)]
fn leak_page() {
    let b = Box::new(PageAligned { _bytes: [1; 100] });
    assert_eq!(&*b as *const PageAligned as usize % 4096, 0);
    std::mem::forget(black_box(b));
}

#[inline(never)]
fn leak_huge() {
    let b = Box::new(HugeAligned { _bytes: [2; 100] });
    assert_eq!(&*b as *const HugeAligned as usize % 2097152, 0);
    std::mem::forget(black_box(b));
}

fn main() {
    leak_page();
    leak_huge();
    test_programs::scribble_stack();
}
