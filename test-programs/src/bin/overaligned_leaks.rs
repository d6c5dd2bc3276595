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
    // Allocated directly: `Box::new` would first build the 2 MiB-aligned value on the
    // stack, realigning the stack pointer by up to 2 MiB.
    let layout = std::alloc::Layout::new::<HugeAligned>();
    // SAFETY: a non-zero-size layout.
    let p = unsafe { std::alloc::alloc(layout) };
    assert!(!p.is_null());
    assert_eq!(p as usize % 2097152, 0);
    black_box(p);
}

fn main() {
    leak_page();
    leak_huge();
    test_programs::scribble_stack();
}
