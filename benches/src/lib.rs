//! Benchmark workloads (in progress).
