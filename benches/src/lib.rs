//! Allocator workloads, in the spirit of mimalloc-bench, shared by one binary per
//! allocator (a `#[global_allocator]` is per binary).
//!
//! # Layout
//! - [`workloads`]: the workloads and [`Workload::measure`] (best of a few
//!   repetitions); `programs`: the two made of real programs' work (JSON, regular
//!   expressions).
//! - [`ring`]: the lock-free single-producer single-consumer ring of the
//!   `producer-consumer` workload.
//! - [`child`]: the per-allocator process, `alloc-<allocator> <workload> [ops] [reps]`,
//!   which prints one JSON line ([`Measurement`]).
//! - `src/bin/alloc-*.rs`: one binary per allocator, each a `#[global_allocator]` and a
//!   call to [`child_main`].
//! - `benches/alloc.rs`: the driver, `cargo bench -p benches --bench alloc`, which runs
//!   every (allocator, workload) pair in a process of its own and prints the table (see
//!   `README.md`).

pub mod child;
mod programs;
pub mod ring;
pub mod workloads;

pub use child::{child_main, parse_reported, parse_sweeps, Measurement, REPORTED_LINE, SWEEPS_LINE};
pub use workloads::{workload, Block, Outcome, Rep, Rng, Workload, WORKLOADS};

// The tests of this crate run under HeapSweep like every test binary of the workspace
// (its at-exit leak check then also checks that the workloads free what they allocate).
#[cfg(test)]
#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_does_its_work_at_a_tiny_op_count() {
        for w in WORKLOADS {
            // Structures and runs a thousand times smaller than in a full run (4000
            // operations at most): whole vectors, maps, larson rounds, documents, sets.
            let ops = (w.full_ops / 1_000).min(4_000);
            let o = w.measure_with(ops, (w.full_set / 1_000).max(1), 2);
            assert_eq!((o.ops, o.reps), (ops, 2), "{}: {o:?}", w.name);
            assert!(o.checksum > 0 && o.min_ns > 0.0, "{}: {o:?}", w.name);
        }
        assert!(workload("nope").is_none());
    }

    #[test]
    fn workload_names_are_unique() {
        for (i, w) in WORKLOADS.iter().enumerate() {
            assert!(WORKLOADS[..i].iter().all(|o| o.name != w.name), "{} twice", w.name);
        }
    }
}
