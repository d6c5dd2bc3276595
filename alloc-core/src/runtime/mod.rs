//! The process and thread lifecycle: the top of the allocator.
//!
//! # What it owns
//! - [`entry`]: the allocation entry points `GlobalAlloc` calls. Their fast path reads the
//!   thread's state and goes straight to its heap; everything that happens once per
//!   process or per thread starts from their cold path.
//! - [`init`]: one-time process initialization (the segment map, options, the allocator's
//!   own statics kept out of the roots, the listeners: heap profile, misuse reporting;
//!   then the thread-exit key, the `fork` handlers and the at-exit hook).
//! - [`thread`]: a thread's start (its heap made and registered, on its first allocation)
//!   and its end (listeners flushed, heap retired).
//! - [`fork`]: the `fork` handlers and the one order in which they take every lock.
//! - [`exit`]: what runs when the process ends: the heap profile, then the leak check,
//!   its report and the exit status.
//! - [`scope`]: leak checks scoped to one piece of work (`check_scope`), and the threads
//!   that belong to a scope.
//! - [`sweep`]: generational leak sweeps while the program runs (`alloc_core::sweep`),
//!   and the sweeper thread.
//!
//! # Why on top
//! Lower layers (the heap, the tracking hook, the leak check's phases) never call up into
//! this module; they expose what the lifecycle needs (make a heap, retire it, lock and
//! unlock) and the runtime calls them. A new subsystem that must start with the process,
//! flush at thread exit or hold a lock across `fork` adds a line here, not in the heap.

pub(crate) mod entry;
pub(crate) mod exit;
pub(crate) mod fork;
pub(crate) mod init;
pub(crate) mod scope;
pub mod sweep;
pub(crate) mod thread;
