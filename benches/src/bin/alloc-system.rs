//! The workloads under the system allocator (glibc malloc).
#[global_allocator]
static GLOBAL: std::alloc::System = std::alloc::System;

fn main() {
    benches::child_main();
}
