//! Shared helpers for the scenario programs in `src/bin/`: each program is one scenario
//! of the leak check with its expected report written at its top (see `README.md`).

/// Overwrites a large area of the stack below the caller, so that no stale copy of a
/// pointer left by an earlier call (in a frame that has returned) survives there. The
/// leak check scans stacks conservatively: without this, a "leaked" block could still
/// look reachable through a dead frame's leftovers.
#[inline(never)]
pub fn scribble_stack() {
    let mut area = [0usize; 4096];
    for (i, w) in area.iter_mut().enumerate() {
        *w = i;
    }
    std::hint::black_box(&mut area);
}

#[cfg(test)]
#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[cfg(test)]
mod tests {
    #[test]
    fn scribbling_returns() {
        super::scribble_stack();
    }
}
