//! Test that a leak made by a thread that has exited is found.
//!
// EXPECT: leaked_blocks=1 leaked_bytes=48 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=48 function~=leak_from_exited_thread
// EXPECT-EXIT: 23

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

fn main() {
    std::thread::spawn(|| std::mem::forget(black_box(Box::new([3u8; 48])))).join().unwrap();
}
