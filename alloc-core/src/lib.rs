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
//! - **generation**: 0 for new blocks, raised when a block survives a leak check or a
//!   leak sweep (`sweep`: a check of the younger generations while the program runs).
//! - **root**: memory the leak check scans without knowing it is reachable: stacks,
//!   registers, globals, TLS, registered regions.
//!
//! - **listener**: a subsystem told of every tracked allocation and free through the
//!   one **tracking hook** (`track`): the counters, the heap profile.
//! - **runtime**: the process and thread lifecycle (`runtime`): initialization, the
//!   allocation entry points, thread start and exit, `fork`, the at-exit check.
//! - **check**: always the leak check (`check()`, `check_at_exit`, the `leak` phases);
//!   nothing else in the crate is called a check.
//!
//! # Layers
//! Every file of the crate sits in one layer, and its imports (`use crate::...`, paths,
//! `super::`) go only to its own layer or below: arrows point down. Within a layer files
//! may use each other, but a loop of imports stays inside one concern (one top-level
//! module, such as `heap` or `report`). Where a lower layer must reach a higher one (a
//! misuse report wants a symbolized allocation site; a signal asks the recorder for a
//! profile file), the higher layer hands a function down at initialization. The test
//! `tests/layers.rs` reads the table below and checks every file against it.
//!
//! ```text
//! 9 api: lib, global, preload — the GlobalAlloc impl, the public API, and the C allocation API of the LD_PRELOAD library
//! 8 runtime: runtime — init, entry points, thread start/exit, fork lock order, at-exit
//! 7 services: check, introspect, profile, handle, retain — what users call: the leak check, statistics, heap profiles, Handle<T>, why a block is alive
//! 6 report: report — building reports, symbolization, suppressions, writing JSON (the models, their JSON and the text report are the `heapsweep-format` crate's)
//! 5 heap: heap — per-thread heaps, locked heaps, the registry, allocate/free/realloc, the heap walk
//! 4 hooks: track, misuse — the tracking hook, misuse reports
//! 3 listeners: counters, sweep_count, profile/recorder, profile/events, profile/timeline, profile/signal — what the hook feeds
//! 2 memory: segment, page, block, stack, leak — segments and pages, address to block, stack capture, the check's phases
//! 1 primitives: fatal, sync, os, size_class, config, thread_state — messages, locks, mappings, options, per-thread state
//! 0 platform: platform — system calls, /proc, signals, the dynamic loader, registers: the only user of libc and asm!
//! ```
//!
//! In words, from the bottom: `platform` is the one place that talks to the kernel, libc
//! and the CPU (another target gets one clear `compile_error!` there); `os` maps memory; `segment` carves it into pages, `page`
//! holds blocks and their metadata, `block` finds the block of any address; `stack`
//! captures allocation stacks; the `leak` phases (stop, roots, mark, classify) work on any
//! heap through a trait. `counters` and the profile's recorder listen to the `track` hook,
//! which `heap` calls on every tracked allocation and free. `report` turns a check into
//! the contract's report; `check`, `introspect` and `profile` are what users call. The
//! `runtime` starts all of it on the first allocation and ends it at exit; `global` is
//! the `GlobalAlloc` impl over the runtime's entry points, and `preload` the same entry
//! points as C's `malloc` family, for the `LD_PRELOAD` library (`heapsweep-preload`)
//! that runs programs without a `#[global_allocator]`, C programs included.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(rustdoc::broken_intra_doc_links)]

#[macro_use]
mod fatal;
mod block;
mod check;
pub mod config;
mod counters;
mod global;
pub mod handle;
mod heap;
mod introspect;
mod misuse;
mod os;
mod page;
mod platform;
#[doc(hidden)]
pub mod preload;
pub mod profile;
pub mod retain;
mod runtime;
mod segment;
mod size_class;
mod stack;
mod sweep_count;
mod sync;
mod thread_state;
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
/// `#[leak_check]` on a test: its body runs under [`assert_no_leaks`] (see the
/// `leak-check-attr` crate).
pub use leak_check_attr::leak_check;
pub use report::model::LeakReport;
pub use retain::retained_by;
pub use runtime::scope::{assert_no_leaks, check_scope};
pub use runtime::sweep;
pub use stack::StackId;
/// `#[derive(Trace)]`: traces every field (see the `trace-derive` crate).
pub use trace_derive::Trace;

#[cfg(all(test, not(miri)))]
#[global_allocator]
static GLOBAL: HeapSweep = HeapSweep::new();
