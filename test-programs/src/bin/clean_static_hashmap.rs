//! Test that a `HashMap` in a static (whose table pointer points into its allocation) is reachable.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

use std::collections::HashMap;
use std::sync::Mutex;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

static MAP: Mutex<Option<HashMap<String, Vec<u8>>>> = Mutex::new(None);

fn main() {
    let mut m = HashMap::new();
    for i in 0..200 {
        m.insert(format!("key {i}"), vec![i as u8; i % 40]);
    }
    *MAP.lock().unwrap() = Some(m);
}
