//! Test that a forgotten `String` made from an 11-byte literal leaks exactly 11 bytes.
//!
// EXPECT: leaked_blocks=1 leaked_bytes=11 direct_blocks=1 indirect_blocks=0 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=11 function~=leak_string::main::{{closure}}
// EXPECT-EXIT: 23

use std::hint::black_box;
use test_programs::leak_in_frame;

fn main() {
    // `String::from(&str)` allocates exactly the literal's length.
    leak_in_frame(|| std::mem::forget(black_box(String::from("hello world"))));
}
