//! HeapSweep's file formats: the leak report (`heapsweep-leaks`, the JSON of the contract)
//! and the heap profile (`heapsweep-profile`), as Rust types.
//!
//! # What it owns
//! - [`report`]: the leak report model.
//! - [`profile`]: the heap profile model and its invariants.
//! - `pretty_json`: the JSON writer both models are written with (what
//!   `serde_json::to_string_pretty` prints, without `serde_json`).
//! - [`text`]: the LeakSanitizer-style text report.
//! - `de` (with the `deserialize` feature): reading a report's `status` with errors that
//!   name it.
//!
//! `alloc-core` builds these values and writes them at exit; `leak-report` reads and
//! renders them. `alloc-core` re-exports the modules at their old paths
//! (`alloc_core::report::model`, `alloc_core::profile::model`, `alloc_core::report::text`).
//!
//! # Dependencies and features
//! Only `serde`: this crate is in the dependency graph of every program that uses the
//! allocator, so nothing here may add trait impls to std or primitive types (`serde_json`
//! does: `u64: PartialEq<Value>` breaks type inference in the user's code). The models
//! always derive `Serialize` (the writer is driven by it). The `deserialize` feature adds
//! `Deserialize`; the reading itself (`serde_json::from_str`, then `validate()`) is left
//! to the reader, `leak-report`, so `serde_json` never enters this crate's graph, whatever
//! features a build turns on.

pub mod baseline;
#[cfg(feature = "deserialize")]
mod de;
pub(crate) mod pretty_json;
pub mod profile;
pub mod report;
pub mod sweep;
pub mod text;
