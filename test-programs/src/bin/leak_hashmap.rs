//! Test that a forgotten `HashMap` leaks its table (direct) and the boxes it owns (indirect).
//!
// EXPECT: leaked_blocks=11 direct_blocks=1 indirect_blocks=10 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 function~=leak_hashmap::leak
// EXPECT-GROUP: kind=indirect cyclic=false blocks=10 bytes=240 function~=leak_hashmap::leak
// EXPECT-EXIT: 23
//
// The table (buckets and control bytes in one block) has a size that is hashbrown's
// business: only its count and kind are asserted. Its capacity (16) is reserved up front,
// so inserting never reallocates it.

use std::collections::HashMap;
use std::hint::black_box;
use test_programs::scribble_stack;

#[inline(never)]
fn leak(n: u64) {
    let mut m: HashMap<u64, Box<[u8; 24]>> = HashMap::with_capacity(16);
    for k in 0..n {
        m.insert(k, Box::new([k as u8; 24]));
    }
    std::mem::forget(black_box(m));
}

fn main() {
    leak(black_box(10));
    scribble_stack();
}
