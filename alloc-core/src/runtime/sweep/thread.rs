//! The sweeper thread: waits for a wake-up (the schedule's count past its trigger, the
//! interval, the sweep signal) and runs the sweep it asks for.
//!
//! # Its life
//! Started (once) when sweeps are turned on: at initialization from `HEAPSWEEP`, by
//! `set_threshold` or `enable`. A detached `pthread_create` thread (`platform`): it does
//! not keep the process alive, and `exit` ends it wherever it waits. It allocates like
//! any thread (its heap, stack and TLS are roots as every thread's), except inside a
//! sweep, where the reentrancy guard sends its allocations to the internal heap. At exit
//! `shutdown` waits for a running sweep and stops further ones. The child of a `fork` has
//! no sweeper: [`forget`] lets the next `enable` start one.
//!
//! # The signal
//! `sweep_signal=USR1`: the handler only sets a flag and wakes the thread (an exchange
//! and a futex wake, both async-signal-safe); the full sweep runs on the thread.

use crate::platform::{self, BlockWhileHandling, SignalHandler};
use crate::sweep_count::{self, WAKE};
use core::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A sweeper thread runs (in this process).
static STARTED: AtomicBool = AtomicBool::new(false);
/// The sweep signal arrived.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// Starts the sweeper thread unless it runs.
pub(super) fn start() {
    if STARTED.swap(true, Ordering::AcqRel) {
        return;
    }
    if let Err(e) = platform::spawn_detached(main, 0) {
        STARTED.store(false, Ordering::Release);
        warning!("cannot start the leak sweeper thread ({}); automatic sweeps will not run", e);
    }
}

/// After `fork`, in the child: the thread does not exist here.
pub(super) fn forget() {
    STARTED.store(false, Ordering::Release);
}

/// Installs the handler of `sweep_signal`.
pub(super) fn install_signal(sig: i32) {
    // SAFETY: the handler does a store, an exchange and a futex wake: async-signal-safe.
    let installed =
        unsafe { platform::set_signal_handler(sig, SignalHandler::Plain(on_signal), BlockWhileHandling::Nothing) };
    if installed.is_err() {
        warning!("sweep_signal: cannot install a handler for signal {}", sig);
    }
}

extern "C" fn on_signal(_sig: i32) {
    SIGNALLED.store(true, Ordering::Relaxed);
    sweep_count::wake();
}

/// The thread: wait, sweep, forever.
extern "C" fn main(_: usize) {
    // Sweeps stop the world: the mark helper uses a core that would sit idle meanwhile.
    crate::leak::helper::start();
    let interval = Duration::from_millis(u64::from(crate::config::current().sweep_interval_ms));
    let mut last = Instant::now();
    // Tracked allocations at the last timed sweep's look.
    let mut allocations = crate::introspect::total_allocations();
    loop {
        let timeout =
            if interval.is_zero() { Duration::from_secs(3600) } else { interval.saturating_sub(last.elapsed()) };
        if WAKE.load(Ordering::Acquire) == 0 && !timeout.is_zero() {
            platform::futex_wait(&WAKE, 0, timeout);
        }
        WAKE.store(0, Ordering::Relaxed);
        // A panic (in the program's callback, say) must not end the thread silently.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(interval, last, &mut allocations)))
            .unwrap_or(true)
        {
            last = Instant::now();
        }
    }
}

/// One wake-up: the sweep it calls for, if any. True when a sweep ran, or the interval
/// of the timed sweeps was up (the next wait is a whole interval).
#[inline(never)]
fn step(interval: Duration, last: Instant, allocations: &mut u64) -> bool {
    let mut spill = [0usize; platform::CALLEE_SAVED_REGISTERS];
    let sp = crate::leak::spill_registers(&mut spill);
    let ran = if SIGNALLED.swap(false, Ordering::Relaxed) {
        super::sweep_now(crate::leak::sweep::OLDEST, sp, true);
        true
    } else if let Some(g) = super::due_generation() {
        super::sweep_now(g, sp, false);
        true
    } else if !interval.is_zero() && last.elapsed() >= interval {
        // The timed sweep runs if anything was allocated meanwhile (counted on every
        // heap: the schedule's own flag is set only when a heap's net count folds in,
        // which a program that frees as much as it allocates, leaking a little, seldom
        // does); either way the next one is an interval away (returning false here made
        // the thread spin, waiting for no time, as long as the program allocated nothing).
        let now = crate::introspect::total_allocations();
        let grew = sweep_count::take_allocated();
        if grew || now != *allocations {
            super::sweep_now(super::timed_generation(), sp, false);
        }
        *allocations = now;
        true
    } else {
        false
    };
    std::hint::black_box(&spill);
    ran
}
