//! Test that a `HashMap` in a static, whose only pointer points into the middle of its table, is reachable.
//!
// EXPECT: clean reachable_blocks>=401
// EXPECT-EXIT: 0
//
// hashbrown keeps a pointer to the control bytes, which follow the buckets in the same
// block: the table is reachable through an interior pointer only; the keys and values
// through the table: 200 keys, 200 values and the table, at least 401 reachable blocks.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Mutex;
use test_programs::scribble_stack;

static MAP: Mutex<Option<HashMap<String, Vec<u8>>>> = Mutex::new(None);

#[inline(never)]
fn fill(n: usize) {
    let mut m = HashMap::new();
    for i in 0..n {
        m.insert(format!("key {i}"), vec![i as u8; i % 40 + 1]);
    }
    *MAP.lock().unwrap() = Some(m);
}

fn main() {
    fill(black_box(200));
    scribble_stack();
}
