//! Test that a leak made by a thread that has exited is found, with that thread's stack.
//!
// EXPECT: leaked_blocks=1 leaked_bytes=48 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=48 function~=leak_from_exited_thread::leak_on_worker
// EXPECT-EXIT: 23

use std::hint::black_box;

#[inline(never)]
fn leak_on_worker() {
    std::mem::forget(black_box(Box::new([3u8; 48])));
}

fn main() {
    std::thread::Builder::new().name("worker".into()).spawn(leak_on_worker).unwrap().join().unwrap();
    test_programs::scribble_stack();
}
