//! Renderers for HeapSweep's reports (in progress).
