//! Whether every new block starts zeroed (the `zero_new` option): one process-wide flag,
//! read by the heap's allocation paths and by in-place growth, set at initialization
//! (`zero_new=1`) or when the first leak-check scope opens (`zero_new=scopes`).
//!
//! A conservative scan follows every word that looks like a pointer, including words a
//! program never wrote: padding, an enum's unused payload, a `Vec`'s spare capacity. Those
//! hold whatever the memory's earlier occupant left, and a stale pointer there names an
//! address that may now hold a leaked block, which the scan then counts as reachable.
//! Zeroing new blocks removes that source of missed leaks for blocks allocated from then on.
//! With the flag on, a large block is also placed off the address a freed one had in its
//! segment (`alloc_large`), since stale copies of that address are common.

use crate::sync::Isolated;
use core::sync::atomic::{AtomicBool, Ordering};

/// Set once, never cleared: blocks allocated before it was set keep what they hold.
#[used]
static ON: Isolated<AtomicBool> = Isolated(AtomicBool::new(false));

/// Whether new blocks start zeroed.
#[inline(always)]
pub(crate) fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Whether a block with page flags `flags` starts zeroed (and its in-place growth too):
/// always a leak-check scope's block (`SCOPED`: its unwritten bytes would otherwise hold
/// an earlier occupant's pointers, which could hide another scope's leaks), and every
/// block while the flag is on. The one rule every allocation and growth path asks.
#[inline(always)]
pub(crate) fn zeroes(flags: u8) -> bool {
    flags & crate::page::SCOPED != 0 || on()
}

/// From now on, every new block (and every in-place growth) starts zeroed, and large
/// blocks move on in their segments.
pub(crate) fn enable() {
    if !ON.load(Ordering::Relaxed) {
        ON.store(true, Ordering::Relaxed);
    }
}
