//! Shared helpers for the scenario programs (in progress).
