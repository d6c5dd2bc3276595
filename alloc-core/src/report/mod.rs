//! Reporting: the report model (the JSON of the contract), building it from a check's raw
//! output (grouping, in-process symbolization, suppressions, `Rc`/`Arc` counts), and the
//! text and JSON renderings. Runs after the world resumed, with the reentrancy guard set:
//! its allocations go to the internal heap.

pub(crate) mod build;
pub(crate) mod json;
pub mod model;
pub(crate) mod suppress;
pub(crate) mod symbolize;
pub(crate) mod text;
