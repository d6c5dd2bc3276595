//! The workloads under HeapSweep. The driver runs this binary twice per workload, with
//! `HEAPSWEEP=stack_depth=0,check_at_exit=0` and with `HEAPSWEEP=check_at_exit=0`
//! (32-frame stacks, the default).
#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

fn main() {
    benches::child_main();
}
