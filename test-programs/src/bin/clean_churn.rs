//! Test that heavy multi-thread churn that frees everything leaves nothing behind.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

fn main() {
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut keep: Vec<Vec<u8>> = Vec::new();
                for i in 0..50_000usize {
                    keep.push(vec![t as u8; (i * 7) % 700 + 1]);
                    if keep.len() > 100 {
                        keep.swap_remove(i % 100);
                    }
                }
                keep.len()
            })
        })
        .collect();
    for h in handles {
        black_box(h.join().unwrap());
    }
}
