//! Test that a detached thread sleeping at exit keeps its data.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

fn main() {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    drop(std::thread::spawn(move || {
        let data: Vec<Vec<u8>> = (0..16).map(|i| vec![i; 100]).collect();
        ready_tx.send(()).unwrap();
        loop {
            std::thread::sleep(std::time::Duration::from_millis(50));
            black_box(&data);
        }
    }));
    ready_rx.recv().unwrap();
}
