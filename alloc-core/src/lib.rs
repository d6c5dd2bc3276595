//! HeapSweep: a global allocator that finds memory leaks.
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();
//! # fn main() {}
//! ```
//!
//! # Glossary
//! - **segment**: a 4 MiB-aligned region mapped from the OS (`segment` module), split
//!   into 64 KiB **slices**; a **page** is a run of slices holding blocks of one size.
//! - **block**: one allocation handed to the program; **size class**: the block sizes a
//!   page can hold (88 classes, 8 bytes to 64 KiB); larger blocks get a segment each.
//! - **heap**: a thread's set of pages, with lock-free fast paths; the **internal heap**
//!   serves the allocator's own allocations and is never tracked.
//! - **stack id**: a 32-bit handle on an interned allocation backtrace.
//! - **generation**: 0 for new blocks, raised when a block survives a leak check.
//! - **root**: memory the leak check scans without knowing it is reachable: stacks,
//!   registers, globals, TLS, registered regions.
//!
//! # Layers, bottom up
//! `platform` (system calls, `/proc`, registers: the only user of libc and `asm!`) →
//! `os` (mmap) → `segment` (segments, the segment map, large blocks) → `page` (blocks
//! and their metadata) → `heap` (per-thread heaps, allocate/free) → `global` (the
//! `GlobalAlloc` impl). Hooks: `stack` (capture and depot), `track` (counters),
//! [`profile`] (per-stack counters of heap profiles, when `profile=PATH` is set).
//! Above: `block` (address → block), `introspect` (statistics and block info), `leak`
//! (the check), `report`.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(rustdoc::broken_intra_doc_links)]

#[macro_use]
mod fatal;
mod block;
mod check;
pub mod config;
mod exit;
mod global;
pub mod handle;
mod heap;
mod introspect;
mod misuse;
mod os;
mod page;
mod platform;
pub mod profile;
mod segment;
mod size_class;
mod stack;
mod sync;
mod track;

pub(crate) mod leak;
pub mod report;

pub use check::check;
pub use global::HeapSweep;
pub use handle::{gc, Finalize, Handle, Trace, Tracer, WeakHandle};
pub use introspect::{
    block_info, disable, ignore, stack_frames, stats, usable_size, BlockInfo, ClassStats, DisableGuard, Stats,
};
pub use leak::regions::{register_root, unregister_root};
pub use report::model::LeakReport;
pub use stack::StackId;
/// `#[derive(Trace)]`: traces every field (see the `trace-derive` crate).
pub use trace_derive::Trace;

#[cfg(all(test, not(miri)))]
#[global_allocator]
static GLOBAL: HeapSweep = HeapSweep::new();
