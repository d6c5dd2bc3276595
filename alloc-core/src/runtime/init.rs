//! One-time process initialization, on the first allocation (before `main` in practice).
//!
//! # Order
//! 1. The segment map (without it no block can be placed): failure leaves the allocator
//!    returning null, as out of memory.
//! 2. The options (`HEAPSWEEP`, read without allocating).
//! 3. The allocator's own statics registered as its own memory, never roots.
//! 4. The listeners: the heap profile (`profile=PATH`), the describer misuse reports use.
//! 5. The thread-exit key, the `fork` handlers, the at-exit hook.
//! 6. Leak sweeps (`sweep=`, `sweep_signal=`): their thresholds, signal and thread.
//!
//! A thread that allocates while another runs initialization spins until it is done.
//! The initializing thread itself may allocate too, once the segment map exists: steps
//! 2-5 run under the reentrancy guard, so what they allocate (the C library's `atexit`
//! and `pthread_atfork` tables, when `malloc` is ours under `LD_PRELOAD`) comes from the
//! internal heap instead of waiting for the initialization it is part of.

use crate::heap::{locked, registry};
use crate::thread_state::ReentrancyGuard;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

const INIT_NONE: u8 = 0;
const INIT_RUNNING: u8 = 1;
const INIT_DONE: u8 = 2;
const INIT_FAILED: u8 = 3;
static INIT: AtomicU8 = AtomicU8::new(INIT_NONE);
/// The segment map exists: the internal heap can serve the initializing thread.
static MAPPED: AtomicBool = AtomicBool::new(false);

/// Whether the internal heap can serve allocations: the segment map exists (set during
/// initialization, before the steps that may allocate).
#[inline]
pub(crate) fn internal_heap_ready() -> bool {
    MAPPED.load(Ordering::Acquire)
}

/// Initializes the process's allocator state once. False if the OS refused memory.
#[inline]
pub(crate) fn ensure() -> bool {
    match INIT.load(Ordering::Acquire) {
        INIT_DONE => true,
        INIT_FAILED => false,
        _ => init_slow(),
    }
}

#[cold]
fn init_slow() -> bool {
    if INIT.compare_exchange(INIT_NONE, INIT_RUNNING, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return wait_for_other();
    }
    let ok = crate::segment::map::init();
    if ok {
        MAPPED.store(true, Ordering::Release);
        let _guard = ReentrancyGuard::enter();
        let opts = crate::config::current();
        register_own_statics(opts);
        if opts.zero_new == crate::config::ZeroNew::Always && crate::track::zero_new_blocks() {
            crate::heap::registry::note_not_plain();
        }
        crate::profile::init(opts);
        crate::misuse::set_site_describer(crate::report::symbolize::describe_site);
        super::thread::create_exit_key();
        super::fork::install();
        super::exit::register();
        super::sweep::init(opts);
    }
    INIT.store(if ok { INIT_DONE } else { INIT_FAILED }, Ordering::Release);
    ok
}

/// Another thread runs initialization: wait for its outcome.
fn wait_for_other() -> bool {
    loop {
        match INIT.load(Ordering::Acquire) {
            INIT_DONE => return true,
            INIT_FAILED => return false,
            _ => core::hint::spin_loop(),
        }
    }
}

/// Keeps the allocator's own statics out of the leak check's roots. They hold no pointer
/// to a user block, but their padding bytes (and a locked heap's unused fields) may hold
/// stale words copied from a stack, some of which once pointed into address ranges the
/// heap later reuses for a block: scanned as roots, those words made leaks look
/// reachable (seen with a 64 MiB leak, about one run in twenty under load).
fn register_own_statics(opts: &crate::config::Options) {
    fn own<T>(r: &T) {
        crate::os::register_own_mapping(r as *const T as usize, core::mem::size_of::<T>());
    }
    own(opts);
    own(&locked::INTERNAL_HEAP);
    own(&locked::SHARED_HEAP);
    own(&registry::REGISTRY);
    own(&crate::segment::POOL);
}
