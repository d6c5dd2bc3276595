//! Pages whose owner thread ended with blocks still live in them.
//!
//! # What it owns
//! One lock-free queue per size class (`crossbeam_queue::SegQueue`, whose own
//! allocations go to the internal heap under the reentrancy guard). A retiring heap
//! pushes its non-empty pages here with their owner set to `page::NO_OWNER`; a heap of another thread
//! adopts one on its allocation slow path, collects the blocks freed meanwhile and
//! allocates from it. Each page is on at most one queue, and is handed out once.
//!
//! # Pages nobody adopts
//! A heap adopts a page of the class it needs, when it needs one: pages of other classes
//! wait, and those whose blocks other threads freed since hold them on their thread-free
//! lists, never collected, the page never empty to the pool. Before a heap takes a fresh
//! page, [`reclaim_empty`] looks at a few abandoned pages of any class, collects what was
//! freed into them, and gives back those left with no live block: a thread that made
//! blocks of some size and ended, their pages freed by others, no longer leaves those
//! pages resident for good.

use crate::misuse::{self, Misuse};
use crate::page::Page;
use crate::segment;
use crate::size_class::CLASS_COUNT;
use crate::thread_state::ReentrancyGuard;
use core::sync::atomic::{AtomicUsize, Ordering};
use crossbeam_queue::SegQueue;

static ABANDONED: [SegQueue<usize>; CLASS_COUNT] = [const { SegQueue::new() }; CLASS_COUNT];

/// Pages on the queues, or a few more (counted before each push, after each pop): 0 lets
/// [`reclaim_empty`] return without looking at the 88 queues, on every fresh page of a
/// program whose threads never end.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Puts a page whose owner is gone (its `heap` field `page::NO_OWNER`) on its class's
/// queue.
pub(crate) fn push(class: usize, page: *mut Page) {
    // Counted before it can be popped (and uncounted): the count never goes below 0.
    WAITING.fetch_add(1, Ordering::Relaxed);
    let _guard = ReentrancyGuard::enter();
    ABANDONED[class].push(page as usize);
}

/// Takes an abandoned page of `class`, if any: it has no owner and is on no queue.
pub(crate) fn adopt(class: usize) -> Option<*mut Page> {
    if ABANDONED[class].is_empty() {
        return None;
    }
    let _guard = ReentrancyGuard::enter();
    let page = ABANDONED[class].pop()?;
    WAITING.fetch_sub(1, Ordering::Relaxed);
    Some(page as *mut Page)
}

/// The class [`reclaim_empty`] looks at next: the one after the last it looked at, so that
/// every queue has its turn.
static CURSOR: AtomicUsize = AtomicUsize::new(0);

/// Looks at up to `limit` abandoned pages of the next class that has any (from the class
/// after the last one looked at): collects the blocks other threads freed into each,
/// gives a page left with no live block back to the pool, and puts the others back at the
/// end of their queue (with the collected blocks on their free lists, for their adopter).
/// No more pages than the queue held: a page put back is not looked at twice.
///
/// A popped page is this thread's alone: it has no owner and is on no queue (the queue
/// hands each page out once), and other threads only push onto its thread-free list.
pub(crate) fn reclaim_empty(limit: usize) {
    if WAITING.load(Ordering::Relaxed) == 0 {
        return;
    }
    let start = CURSOR.load(Ordering::Relaxed);
    let Some(class) = (0..CLASS_COUNT).map(|k| (start + k) % CLASS_COUNT).find(|&c| !ABANDONED[c].is_empty()) else {
        return;
    };
    CURSOR.store(class + 1, Ordering::Relaxed);
    for _ in 0..limit.min(ABANDONED[class].len()) {
        let popped = {
            let _guard = ReentrancyGuard::enter();
            ABANDONED[class].pop()
        };
        let Some(p) = popped else { return };
        WAITING.fetch_sub(1, Ordering::Relaxed);
        let page = p as *mut Page;
        // SAFETY: an abandoned page, popped: a valid in-use page of `class` with no owner
        // and on no queue, ours alone (see above), which is what collecting (as its owner
        // would) and giving it back need.
        unsafe {
            if let Err(block) = (*page).collect_thread_free() {
                misuse::report("free", block.cast(), Misuse::DoubleFree);
            }
            if (*page).used.load(Ordering::Relaxed) == 0 {
                // No live block: no thread may free into it any more.
                segment::release_page(page);
            } else {
                push(class, page);
            }
        }
    }
}
