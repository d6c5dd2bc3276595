//! HeapSweep as the global allocator, as README.md's first lines put it.

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();
