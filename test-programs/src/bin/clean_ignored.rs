//! Test that a leak marked with `alloc_core::ignore` is not reported.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[inline(never)]
fn leak_on_purpose() {
    let b: &'static mut [u8; 40] = Box::leak(Box::new([0u8; 40]));
    assert!(alloc_core::ignore(b.as_ptr()));
}

fn main() {
    leak_on_purpose();
    test_programs::scribble_stack();
}
