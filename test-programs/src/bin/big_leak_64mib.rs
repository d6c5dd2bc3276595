//! Test that a 64 MiB leak is reported at its exact size.
//!
// EXPECT: leaked_blocks=1 leaked_bytes=67108864 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=67108864 function~=big_leak_64mib::leak
// EXPECT-EXIT: 23

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[inline(never)]
fn leak() {
    std::mem::forget(black_box(vec![1u8; 64 << 20]));
}

fn main() {
    // Leaked on a thread that then ends: any stale copy of the pointer dies with that
    // thread's stack. (A 64 MiB block is a 64 MiB target: one stale word pointing
    // anywhere into it, say left in the main thread's stack, would keep it reachable.)
    std::thread::spawn(leak).join().unwrap();
    test_programs::scribble_stack();
}
