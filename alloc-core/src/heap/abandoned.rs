//! Pages whose owner thread ended with blocks still live in them.
//!
//! # What it owns
//! One lock-free queue per size class (`crossbeam_queue::SegQueue`, whose own
//! allocations go to the internal heap under the reentrancy guard). A retiring heap
//! pushes its non-empty pages here with their owner set to `page::NO_OWNER`; a heap of another thread
//! adopts one on its allocation slow path, collects the blocks freed meanwhile and
//! allocates from it. Each page is on at most one queue, and is handed out once.

use crate::page::Page;
use crate::size_class::CLASS_COUNT;
use crate::thread_state::ReentrancyGuard;
use crossbeam_queue::SegQueue;

static ABANDONED: [SegQueue<usize>; CLASS_COUNT] = [const { SegQueue::new() }; CLASS_COUNT];

/// Puts a page whose owner is gone (its `heap` field `page::NO_OWNER`) on its class's
/// queue.
pub(crate) fn push(class: usize, page: *mut Page) {
    let _guard = ReentrancyGuard::enter();
    ABANDONED[class].push(page as usize);
}

/// Takes an abandoned page of `class`, if any: it has no owner and is on no queue.
pub(crate) fn adopt(class: usize) -> Option<*mut Page> {
    if ABANDONED[class].is_empty() {
        return None;
    }
    let _guard = ReentrancyGuard::enter();
    ABANDONED[class].pop().map(|p| p as *mut Page)
}
