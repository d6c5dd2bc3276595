//! HeapSweep's file formats: the leak report (`heapsweep-leaks`, the JSON of the contract)
//! and the heap profile (`heapsweep-profile`), as Rust types.
//!
//! # What it owns
//! - [`report`]: the leak report model.
//! - [`profile`]: the heap profile model and its invariants.
//! - `pretty_json`: the JSON writer both models are written with (what
//!   `serde_json::to_string_pretty` prints, without `serde_json`).
//! - [`text`]: the LeakSanitizer-style text report.
//!
//! `alloc-core` builds these values and writes them at exit; `leak-report` reads and
//! renders them. `alloc-core` re-exports the modules at their old paths
//! (`alloc_core::report::model`, `alloc_core::profile::model`, `alloc_core::report::text`).
//!
//! # Dependencies
//! Only `serde`: this crate is in the dependency graph of every program that uses the
//! allocator, so nothing here may add trait impls to std or primitive types (`serde_json`
//! does: `u64: PartialEq<Value>` breaks type inference in the user's code).

pub(crate) mod pretty_json;
pub mod profile;
pub mod report;
pub mod text;
