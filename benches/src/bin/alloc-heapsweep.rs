//! The workloads under HeapSweep. The driver runs this binary once per HeapSweep column
//! and workload, with the column's `HEAPSWEEP` options (`stack_depth=0`, the default
//! 32-frame stacks, the heap profile, young sweeps every 100 ms); each run ends with two
//! lines on stderr: how many leak sweeps ran, and how many blocks they reported.
#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

fn main() {
    benches::child_main();
    let s = alloc_core::stats();
    eprintln!("{}{:?}", benches::SWEEPS_LINE, s.sweeps);
    eprintln!("{}{}", benches::REPORTED_LINE, s.sweep_reported_blocks);
}
