//! `profile_signal=NAME`: a signal asks for a heap profile.
//!
//! Writing a profile allocates, symbolizes and writes a file: nothing a signal handler
//! may do. So the handler only flips the recorder's state to `DUMP_PENDING`; the next
//! tracked allocation or free, on whichever thread, writes the profile to the `profile` path
//! with `.N` appended (N counts the dumps from 1) and sets the state back. A process
//! that never allocates after the signal writes nothing until it does.
//!
//! The writing itself (symbolization, JSON, a file) lives far above this module, in the
//! profile's top module, which hands it down once with [`set_writer`] when profiling is
//! turned on: the recorder below never imports it.

use super::recorder::{DUMP_PENDING, ON, STATE};
use crate::platform::{self, BlockWhileHandling, SignalHandler};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Dumps written so far on a signal.
static DUMPS: AtomicU64 = AtomicU64::new(0);

/// Writes the profile to the `profile` path with `.N` appended; see [`set_writer`].
pub(crate) type Writer = fn(n: u64);

/// The [`Writer`] as an address; 0 until [`set_writer`].
static WRITER: AtomicUsize = AtomicUsize::new(0);

/// Sets the function that writes a profile a signal asked for.
pub(crate) fn set_writer(f: Writer) {
    WRITER.store(f as usize, Ordering::Release);
}

/// Installs the handler for `sig`. A failure is printed as a warning.
pub(crate) fn install(sig: i32) {
    let handler = SignalHandler::Plain(on_signal);
    // SAFETY: the handler only does an atomic compare-and-swap, which is
    // async-signal-safe; the signal is the one the user named for this.
    let installed = unsafe { platform::set_signal_handler(sig, handler, BlockWhileHandling::Nothing) };
    if installed.is_err() {
        warning!("profile_signal: cannot install a handler for signal {}", sig);
    }
}

extern "C" fn on_signal(_sig: i32) {
    let _ = STATE.compare_exchange(ON, DUMP_PENDING, Ordering::Relaxed, Ordering::Relaxed);
}

/// Called after a recorded allocation saw `DUMP_PENDING`: one thread wins the state back
/// to `ON` and writes the profile.
#[cold]
pub(crate) fn dump_if_pending() {
    if STATE.compare_exchange(DUMP_PENDING, ON, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        let n = DUMPS.fetch_add(1, Ordering::Relaxed) + 1;
        let f = WRITER.load(Ordering::Acquire);
        if f != 0 {
            // SAFETY: a non-zero value was stored by `set_writer` from a `Writer`, a plain
            // `fn` pointer of the same type, valid for the life of the process.
            let write = unsafe { core::mem::transmute::<usize, Writer>(f) };
            write(n);
        }
    }
}
