//! Non-allocating locks for the allocator's slow paths.
//!
//! # What it owns
//! [`SpinLock`], a test-and-test-and-set lock that never allocates and never parks through
//! anything that could allocate. The fast paths of allocate and free take no lock; these
//! guard only the segment pool, the large-block cache, the locked heaps and the registry.
//! And [`Isolated`]: a global the fast paths read on every call, alone on its cache lines.
//!
//! # Why not `std::sync::Mutex`
//! A std mutex is fine on Linux today (futex based, no allocation), but its poisoning and
//! its guard types are built for code that may panic; code holding these locks never
//! panics, and a `fork` handler must be able to force-release a lock, which
//! [`SpinLock::force_unlock`] allows.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// A value alone on its 128 bytes (a cache line and the neighbor the hardware prefetches
/// with it): for the globals the allocation and free fast paths read on every call and
/// almost never write (the segment map's address, whether the profile records, whether
/// blocks start zeroed, the sweeps' step). Next to a global written often (a lock, a
/// shared counter), such a read misses on every call of every thread: larson with the
/// heap profile on ran 1.5x slower when the linker moved the sweeps' step next to the
/// profile's lock.
///
/// Declare each such static `#[used]`: LLVM splits an internal global whose fields are
/// only loaded and stored into one global per field, and the padding goes with the
/// split (the sweeps' step was 8 bytes at a 128-byte boundary, the next global on its
/// cache line); a global the compiler must keep whole keeps its 128 bytes.
#[repr(align(128))]
pub(crate) struct Isolated<T>(pub(crate) T);

impl<T> core::ops::Deref for Isolated<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A spin lock around a `T`. Waiters spin briefly, then yield the CPU.
///
/// Invariant: `locked` is true exactly while one holder has the lock: a [`SpinGuard`]
/// (made only by [`SpinLock::lock`] after its Acquire CAS from false to true, and
/// releasing with a Release store in its drop), or a [`SpinLock::lock_raw`] caller until
/// its [`SpinLock::force_unlock`]. Only that holder reaches `value`.
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: `&SpinLock<T>` reaches `value` only through a guard, and the lock gives it to
// one thread at a time, each taking over from the last (Acquire CAS after its Release
// store): sharing the lock hands the `T` from thread to thread, never to two at once,
// which is sound exactly when `T: Send`.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: a `SpinLock<T>` owns its `T` (in an `UnsafeCell`, like a `Mutex<T>`) and holds
// no thread-bound state: moving the lock moves the `T`, which `T: Send` allows.
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self { locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    /// The value, out of the lock (which nobody can hold: it is moved).
    #[cfg(test)]
    pub(crate) fn into_inner(self) -> T {
        self.value.into_inner()
    }

    /// Takes the lock, spinning (then yielding) until it is free.
    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        if self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            self.lock_contended();
        }
        SpinGuard { lock: self }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if spins < 64 {
                    core::hint::spin_loop();
                    spins += 1;
                } else {
                    crate::platform::sched_yield();
                }
            }
            if self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                return;
            }
        }
    }

    /// Acquires without a guard: for `fork`'s prepare handler, paired with
    /// [`SpinLock::force_unlock`] in the parent and the child.
    pub(crate) fn lock_raw(&self) {
        core::mem::forget(self.lock());
    }

    /// Releases a lock taken with [`SpinLock::lock_raw`].
    ///
    /// # Safety
    /// - The lock was taken with `lock_raw` by this thread (or, in a `fork` child, by the
    ///   thread that forked, whose copy this thread is), and not released since.
    /// - No guard exists for it (so nobody is using `value` through one).
    pub(crate) unsafe fn force_unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

/// Holds a [`SpinLock`]; releases it on drop.
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> core::ops::Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard was made by `lock` and not dropped, so this thread holds the
        // lock (type invariant) and nobody else reaches `value`; the reference borrows the
        // guard, so it ends before the drop releases the lock. Other shared borrows of the
        // same guard only read too.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> core::ops::DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard was made by `lock` and not dropped, so this thread holds the
        // lock (type invariant) and nobody else reaches `value`; the reference borrows the
        // guard mutably, so it is the only borrow of `value` and ends before the drop
        // releases the lock.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_exactly_under_contention() {
        let lock = Arc::new(SpinLock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *lock.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 40_000);
    }
}
