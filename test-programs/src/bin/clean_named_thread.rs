//! Test that a named thread running at exit (whose name std keeps in memory it allocates) is clean.
//!
// EXPECT: clean
// EXPECT-EXIT: 0

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

fn main() {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("worker-with-a-long-name".into())
        .spawn(move || {
            let data = vec![String::from("held"); 8];
            ready_tx.send(()).unwrap();
            loop {
                std::thread::park();
                black_box(&data);
            }
        })
        .unwrap();
    ready_rx.recv().unwrap();
}
