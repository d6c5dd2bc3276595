//! Test that blocks allocated inside `alloc_core::disable()` are not reported.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[inline(never)]
fn leak_on_purpose() {
    let _off = alloc_core::disable();
    for i in 0..10u8 {
        std::mem::forget(Box::new([i; 40]));
    }
}

fn main() {
    leak_on_purpose();
    test_programs::scribble_stack();
}
