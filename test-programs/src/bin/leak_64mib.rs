//! Test that a 64 MiB leak is reported at its exact size.
//!
// EXPECT: leaked_blocks=1 leaked_bytes=67108864 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=67108864 function~=leak_64mib::leak
// EXPECT-EXIT: 23

use std::hint::black_box;

#[inline(never)]
fn leak() {
    let mut v: Vec<u8> = Vec::with_capacity(64 << 20);
    v.push(1);
    std::mem::forget(black_box(v));
}

fn main() {
    // Made on a thread that then ends: a 64 MiB block is a 64 MiB target, and a stale word
    // pointing anywhere into it would keep it reachable; the dead thread's stack is not
    // scanned.
    test_programs::leak_on_thread(leak);
}
