//! `fork`: the handlers that leave the child with consistent allocator state.
//!
//! # Lock order
//! Every lock the allocator's code may hold while taking another is taken here, before
//! `fork`, in one order, so that no thread holds any of them at the moment of the fork:
//!
//! -1. the unwinder's misses (`stack`): `prepare` waits until no thread is inside one (a
//!    miss holds the loader's lock inside `dl_iterate_phdr`, which a child could never
//!    take if a thread held it at the fork); a miss may run inside a locked heap's
//!    allocation, so this comes first;
//! 0. the leak sweeps' lock (a sweep takes the pool and the internal heap under it);
//! 1. the heap registry;
//! 2. the internal heap, 3. the shared heap (a locked heap's slow path may take the pool);
//! 4. the segment pool;
//! 5. the heap profile's recorder, 6. the scope map's shards in index order (leaves:
//!    held, they wait for nothing).
//!
//! The parent releases them after `fork`; so does the child, which then retires the heaps
//! of the threads it did not inherit (their pages go to the abandoned lists, so their free
//! blocks are reused).
//!
//! # The main thread's stack
//! A child forked by a thread other than the main one has no thread on the process's first
//! stack (`[stack]`): `prepare` notes whether the forking thread is the main one (its
//! thread id is the process id), and the child tells the root set (`leak::roots`), which
//! stops scanning that stack. Its words are the parent's, stale in the child: a leak by
//! any of the child's threads whose block reused an address they name looked reachable.

use super::scope::map::SHARDS;
use crate::heap::{current_heap, locked, registry};
use crate::platform;
use crate::profile::recorder::RECORDER;
use crate::segment::POOL;
use core::sync::atomic::{AtomicBool, Ordering};

/// The thread in `prepare` is the process's main thread (read by `child`).
static FORKER_IS_MAIN: AtomicBool = AtomicBool::new(false);

/// Installs the handlers. Called once, by the process's initialization.
pub(crate) fn install() {
    // SAFETY: `prepare` takes every lock `parent` and `child` release, on the forking
    // thread; `child` only releases those locks and retires heaps under them, touching
    // nothing another thread could hold (the child has no other thread).
    if let Err(e) = unsafe { platform::atfork(prepare, parent, child) } {
        warning!("cannot register the fork handlers ({}); a child forked mid-allocation may deadlock", e);
    }
}

extern "C" fn prepare() {
    FORKER_IS_MAIN.store(platform::gettid() == platform::getpid(), Ordering::Relaxed);
    crate::stack::hold_unwinder_for_fork();
    super::sweep::SWEEP_LOCK.lock_raw();
    registry::REGISTRY.lock_raw();
    locked::INTERNAL_HEAP.lock_raw();
    locked::SHARED_HEAP.lock_raw();
    POOL.lock_raw();
    RECORDER.lock_raw();
    for shard in &SHARDS {
        shard.lock_raw();
    }
}

extern "C" fn parent() {
    unlock_all();
    crate::stack::release_unwinder_after_fork(false);
}

/// Releases what `prepare` locked, in the reverse order.
fn unlock_all() {
    // SAFETY: each lock was taken by `prepare` on this thread (the forking one), in the
    // order undone here; no guard exists for them.
    unsafe {
        for shard in SHARDS.iter().rev() {
            shard.force_unlock();
        }
        RECORDER.force_unlock();
        POOL.force_unlock();
        locked::SHARED_HEAP.force_unlock();
        locked::INTERNAL_HEAP.force_unlock();
        registry::REGISTRY.force_unlock();
        super::sweep::SWEEP_LOCK.force_unlock();
    }
}

extern "C" fn child() {
    crate::stack::unwinder_forget_pid_after_fork();
    // The child's only thread is the one that forked, which took the locks.
    unlock_all();
    crate::stack::release_unwinder_after_fork(true);
    let me = current_heap();
    while let Some(other) = registry::any_other_than(me) {
        // SAFETY: its thread does not exist in this process: nobody uses that heap.
        unsafe { registry::retire(other) };
    }
    crate::leak::roots::after_fork_in_child(FORKER_IS_MAIN.load(Ordering::Relaxed));
    // SAFETY: a holder of the check lock is another thread of the parent (the forking
    // thread holds it only inside a check, which never forks): it does not exist here, and
    // no guard of it exists in this process's only thread; the lock guards no data, only
    // the order of checks.
    unsafe { crate::check::CHECKS.force_unlock() };
    // No sweeper thread here: automatic sweeps stop until enabled again.
    super::sweep::after_fork_in_child();
}
