//! The scenario runner's parts, used by `tests/run_all.rs`:
//! - [`expect`]: reads the expectation lines at the top of a scenario program;
//! - [`run`]: runs a program as a subprocess under a `HEAPSWEEP` configuration, with a
//!   timeout, a bounded number at a time, and collects its exit status, stderr and report;
//! - [`compare`]: checks an outcome against the expectations and the contract's own rules
//!   for a report, and lists every mismatch.

pub mod compare;
pub mod expect;
pub mod run;
