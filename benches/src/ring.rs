//! A bounded lock-free single-producer single-consumer ring.
//!
//! # What it owns
//! The `producer-consumer` workload hands every block from the allocating thread to the
//! freeing thread through this ring, so the workload measures cross-thread frees and not a
//! channel: no allocation per message (the slots are allocated once, in [`channel`]), no
//! lock, one release store per push and per pop.
//!
//! # Algorithm
//! `head` and `tail` count pops and pushes since creation (they never wrap in practice:
//! 2^64 messages). Slot `i % capacity` holds message `i`. The producer owns the slots in
//! `tail..head + capacity`, the consumer those in `head..tail`; publishing `tail` (release)
//! hands a written slot to the consumer, publishing `head` (release) hands a read slot back.
//! Each side caches its last view of the other side's counter and reloads it only when the
//! ring looks full (or empty), so the two cores share a cache line only when they must.
//!
//! # Who calls it
//! [`Producer`] on one thread, [`Consumer`] on another; neither is `Clone`, so there is
//! exactly one of each.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Spins before a waiting side yields its core: on a 2-core machine the other side may
/// need this very core to make progress.
const SPINS_BEFORE_YIELD: u32 = 64;

/// A value alone on its cache line (128 bytes: adjacent-line prefetch pairs lines).
#[repr(align(128))]
#[derive(Debug)]
struct Padded<T>(T);

/// The shared state.
///
/// Invariant: `head <= tail <= head + slots.len()`; the slots of messages `head..tail`
/// (modulo `slots.len()`) are initialized, all others are not.
struct Inner<T> {
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    /// Messages popped so far; written by the consumer only.
    head: Padded<AtomicUsize>,
    /// Messages pushed so far; written by the producer only.
    tail: Padded<AtomicUsize>,
}

// SAFETY: a slot is accessed by one side at a time: the producer writes slots outside
// `head..tail` and publishes them with a release store of `tail`; the consumer reads slots
// inside `head..tail` after an acquire load of `tail` and returns them with a release
// store of `head`, which the producer loads with acquire before reusing the slot. Values
// move between threads, hence `T: Send`.
unsafe impl<T: Send> Sync for Inner<T> {}

impl<T> Inner<T> {
    fn slot(&self, index: usize) -> *mut MaybeUninit<T> {
        self.slots[index % self.slots.len()].get()
    }
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        // Both halves are gone: drop the messages pushed but never popped.
        let (head, tail) = (*self.head.0.get_mut(), *self.tail.0.get_mut());
        for i in head..tail {
            // SAFETY: by the invariant on `Inner`, the slots of messages `head..tail` are
            // initialized, and `&mut self` means no other side can touch them.
            unsafe { (*self.slot(i)).assume_init_drop() };
        }
    }
}

/// The sending half.
pub struct Producer<T> {
    ring: Arc<Inner<T>>,
    /// Equal to `ring.tail`: only this half writes it.
    tail: usize,
    /// A past value of `ring.head` (so a lower bound of the current one).
    head_seen: usize,
}

/// The receiving half.
pub struct Consumer<T> {
    ring: Arc<Inner<T>>,
    /// Equal to `ring.head`: only this half writes it.
    head: usize,
    /// A past value of `ring.tail` (so a lower bound of the current one).
    tail_seen: usize,
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("tail", &self.tail).field("head_seen", &self.head_seen).finish()
    }
}

impl<T> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").field("head", &self.head).field("tail_seen", &self.tail_seen).finish()
    }
}

/// A ring of `capacity` slots (at least 1) and its two halves.
pub fn channel<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    assert!(capacity > 0, "a ring needs at least one slot");
    let ring = Arc::new(Inner {
        slots: (0..capacity).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect(),
        head: Padded(AtomicUsize::new(0)),
        tail: Padded(AtomicUsize::new(0)),
    });
    (Producer { ring: ring.clone(), tail: 0, head_seen: 0 }, Consumer { ring, head: 0, tail_seen: 0 })
}

impl<T: Send> Producer<T> {
    /// Pushes `v`, or gives it back if the ring is full.
    pub fn try_push(&mut self, v: T) -> Result<(), T> {
        let cap = self.ring.slots.len();
        if self.tail - self.head_seen == cap {
            self.head_seen = self.ring.head.0.load(Ordering::Acquire);
            if self.tail - self.head_seen == cap {
                return Err(v);
            }
        }
        debug_assert!(self.head_seen <= self.tail && self.tail < self.head_seen + cap);
        // SAFETY: `tail - head < capacity`, so slot `tail` is outside `head..tail`: the
        // consumer is done with it (its release store of `head` was acquired above or in
        // an earlier call) and it holds no initialized value (see `Inner`).
        unsafe { (*self.ring.slot(self.tail)).write(v) };
        self.tail += 1;
        self.ring.tail.0.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Pushes `v`, waiting while the ring is full.
    pub fn push(&mut self, mut v: T) {
        let mut spins = 0;
        while let Err(back) = self.try_push(v) {
            v = back;
            backoff(&mut spins);
        }
    }
}

impl<T: Send> Consumer<T> {
    /// Pops the oldest message, if any.
    pub fn try_pop(&mut self) -> Option<T> {
        if self.head == self.tail_seen {
            self.tail_seen = self.ring.tail.0.load(Ordering::Acquire);
            if self.head == self.tail_seen {
                return None;
            }
        }
        debug_assert!(self.head < self.tail_seen && self.tail_seen <= self.head + self.ring.slots.len());
        // SAFETY: `head < tail`, so slot `head` holds message `head`, initialized by the
        // producer before its release store of `tail` that we acquired; reading it moves
        // the value out, and advancing `head` below marks the slot uninitialized again.
        let v = unsafe { (*self.ring.slot(self.head)).assume_init_read() };
        self.head += 1;
        self.ring.head.0.store(self.head, Ordering::Release);
        Some(v)
    }

    /// Pops the oldest message, waiting while the ring is empty.
    pub fn pop(&mut self) -> T {
        let mut spins = 0;
        loop {
            if let Some(v) = self.try_pop() {
                return v;
            }
            backoff(&mut spins);
        }
    }
}

/// One wait step: spin a while, then give the core away.
fn backoff(spins: &mut u32) {
    if *spins < SPINS_BEFORE_YIELD {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_empty_are_reported_and_order_is_kept() {
        let (mut tx, mut rx) = channel::<u32>(3);
        assert_eq!(rx.try_pop(), None);
        for i in 0..3 {
            tx.try_push(i).unwrap();
        }
        assert_eq!(tx.try_push(9), Err(9));
        assert_eq!(rx.try_pop(), Some(0));
        tx.try_push(3).unwrap();
        assert_eq!((rx.try_pop(), rx.try_pop(), rx.try_pop(), rx.try_pop()), (Some(1), Some(2), Some(3), None));
    }

    #[test]
    fn messages_cross_threads_in_order() {
        let (mut tx, mut rx) = channel::<u64>(8);
        let n = 100_000u64;
        let consumer = std::thread::spawn(move || {
            for expect in 0..n {
                assert_eq!(rx.pop(), expect);
            }
            rx.try_pop()
        });
        for i in 0..n {
            tx.push(i);
        }
        assert_eq!(consumer.join().unwrap(), None);
    }

    #[test]
    fn unpopped_messages_are_dropped_with_the_ring() {
        let counter = Arc::new(());
        let (mut tx, mut rx) = channel(4);
        for _ in 0..3 {
            tx.push(counter.clone());
        }
        drop(rx.pop());
        assert_eq!(Arc::strong_count(&counter), 3);
        drop((tx, rx));
        assert_eq!(Arc::strong_count(&counter), 1);
    }
}
