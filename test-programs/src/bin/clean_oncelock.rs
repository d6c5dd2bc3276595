//! Test that memory behind a `OnceLock` static is reachable.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

use std::hint::black_box;
use std::sync::OnceLock;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

static CACHE: OnceLock<Vec<String>> = OnceLock::new();

fn main() {
    CACHE.get_or_init(|| (0..100).map(|i| format!("entry {i}")).collect());
    black_box(CACHE.get());
}
