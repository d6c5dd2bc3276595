//! The workloads under HeapSweep (the driver sets `HEAPSWEEP`: with and without stacks).
#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

fn main() {
    benches::child_main();
}
