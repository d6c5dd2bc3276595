//! A bounded single-producer single-consumer ring of `(usize, usize)` pairs: the
//! producer/consumer workload passes blocks through it without allocating per message.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The ring. One thread pushes, one thread pops.
#[derive(Debug)]
pub struct Ring {
    slots: Box<[(AtomicUsize, AtomicUsize)]>,
    head: AtomicUsize,
    tail: AtomicUsize,
}

impl Ring {
    /// A ring of `capacity` slots.
    pub fn new(capacity: usize) -> Self {
        Ring {
            slots: (0..capacity).map(|_| (AtomicUsize::new(0), AtomicUsize::new(0))).collect(),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    /// Pushes, spinning while the ring is full.
    pub fn push_blocking(&self, v: (usize, usize)) {
        let tail = self.tail.load(Ordering::Relaxed);
        while tail - self.head.load(Ordering::Acquire) == self.slots.len() {
            std::hint::spin_loop();
        }
        let s = &self.slots[tail % self.slots.len()];
        s.0.store(v.0, Ordering::Relaxed);
        s.1.store(v.1, Ordering::Relaxed);
        self.tail.store(tail + 1, Ordering::Release);
    }

    /// Pops, spinning while the ring is empty.
    pub fn pop_blocking(&self) -> (usize, usize) {
        let head = self.head.load(Ordering::Relaxed);
        while self.tail.load(Ordering::Acquire) == head {
            std::hint::spin_loop();
        }
        let s = &self.slots[head % self.slots.len()];
        let v = (s.0.load(Ordering::Relaxed), s.1.load(Ordering::Relaxed));
        self.head.store(head + 1, Ordering::Release);
        v
    }
}
