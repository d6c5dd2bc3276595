//! The stop signal's action, borrowed from the program for the length of a check.
//!
//! # What it owns
//! The program's saved action for the stop signal, what forwarding a signal to it does,
//! and the decision to give the signal back.
//!
//! # Lifecycle
//! `stop` borrows the signal ([`borrow`]): the stop handler is installed and the
//! program's action saved. `resume`, once every stopped thread has left the handler,
//! gives it back ([`give_back`]): the saved action is put back, with its flags and mask,
//! as it was. While the signal is borrowed, a signal that is not a stop request (the
//! program's own, or the kernel's) is forwarded to the saved action ([`forward`]): its
//! handler is called with the same arguments, `SIG_IGN` drops it, and `SIG_DFL` ends the
//! process as the default action would.
//!
//! # Late signals
//! A stop request is a signal sent with a mark ([`MARK`], `rt_tgsigqueueinfo`). The
//! signal given back too early would deliver a request that is still on its way to the
//! program's handler (a thread that blocked the signal and timed out, or a thread whose
//! request was taken by the program's signal and whose marked one is still pending). So
//! when such a request may exist ([`may_owe`]), the signal is given back only once no
//! thread has it pending (`/proc/self/task/TID/status`); until then the handler stays
//! and keeps forwarding, and the late request, when it arrives, is swallowed and retries
//! the giving back ([`give_back_late`]). A late request can never reach the program.
//!
//! All of it is async-signal-safe: the handler calls [`forward`] and [`give_back_late`].

use super::STOPPING;
use crate::platform::{self, BlockWhileHandling, Forward, SavedSignalAction, SigInfo, SignalHandler};
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};

/// The value a stop request carries: "HeapSwep" in ASCII.
pub(super) const MARK: usize = 0x4865_6170_5377_6570;

/// The program's action while the signal is borrowed; `None` when it is not.
/// Invariant: read and written only by the holder of [`STOPPING`].
struct Borrowed(UnsafeCell<Option<SavedSignalAction>>);

// SAFETY: the cell is accessed only by the thread holding STOPPING (see `with_borrowed`).
unsafe impl Sync for Borrowed {}

static BORROWED: Borrowed = Borrowed(UnsafeCell::new(None));

/// What [`forward`] does, in one word: one of the `FWD_*` values shifted by
/// [`KIND_SHIFT`], or'ed with the handler's address (a user-space address, below 2^47).
static FORWARD: AtomicUsize = AtomicUsize::new(FWD_DROP);
const KIND_SHIFT: u32 = 56;
const FWD_DROP: usize = 0;
const FWD_DEFAULT: usize = 1;
const FWD_PLAIN: usize = 2;
const FWD_WITH_INFO: usize = 3;
/// Added to a handler's kind when it was installed `SA_RESETHAND`.
const FWD_ONCE: usize = 4;

/// A one-shot (`SA_RESETHAND`) handler of the program's ran: the default comes back.
static RESET_FIRED: AtomicBool = AtomicBool::new(false);
/// A stop request may still be pending at some thread: see the module docs.
static MAY_OWE: AtomicBool = AtomicBool::new(false);

/// Runs `f` on the borrowed action.
///
/// # Safety
/// The caller holds [`STOPPING`] and does not call this again inside `f`.
unsafe fn with_borrowed<R>(f: impl FnOnce(&mut Option<SavedSignalAction>) -> R) -> R {
    // SAFETY: per the caller, this thread alone holds STOPPING, which guards the cell;
    // no other reference to it lives meanwhile.
    f(unsafe { &mut *BORROWED.0.get() })
}

/// The stop handler's address.
fn ours() -> usize {
    super::on_stop_signal as *const () as usize
}

/// Installs the stop handler for `sig`, unless it is still installed from an earlier
/// check; returns the signal the handler is installed for (the earlier one's, if still
/// borrowed). The caller holds [`STOPPING`].
pub(super) fn borrow(sig: i32) -> i32 {
    debug_assert!(STOPPING.load(Relaxed));
    // SAFETY: the caller holds STOPPING.
    unsafe {
        with_borrowed(|b| {
            if let Some(saved) = b {
                if platform::current_handler(saved.signal()) == Ok(Some(ours())) {
                    return saved.signal();
                }
                // The program set its own action meanwhile: that is the one to keep.
                *b = None;
            }
            let handler = SignalHandler::WithContext(super::on_stop_signal);
            // SAFETY: `on_stop_signal` is async-signal-safe (atomics, raw system calls,
            // errno kept); the program's action is saved and forwarded to until it is put
            // back.
            if let Ok(saved) = platform::set_signal_handler(sig, handler, BlockWhileHandling::AllButFaults) {
                publish(&saved);
                *b = Some(saved);
            }
            sig
        })
    }
}

/// Makes `saved` what [`forward`] calls.
fn publish(saved: &SavedSignalAction) {
    let (kind, address) = match saved.forward_target() {
        // Our own handler, saved and installed again by the program: never call it
        // from itself.
        Forward::Handler { address, .. } if address == ours() => (FWD_DROP, 0),
        Forward::Handler { address, with_info, once } => {
            let kind = if with_info { FWD_WITH_INFO } else { FWD_PLAIN };
            (kind + if once { FWD_ONCE } else { 0 }, address)
        }
        Forward::Drop => (FWD_DROP, 0),
        Forward::DefaultAction => (FWD_DEFAULT, 0),
    };
    debug_assert!(address >> KIND_SHIFT == 0, "a user-space address");
    FORWARD.store((kind << KIND_SHIFT) | address, Relaxed);
    RESET_FIRED.store(false, Relaxed);
}

/// Notes that a stop request may still be pending at some thread.
pub(super) fn may_owe() {
    MAY_OWE.store(true, SeqCst);
}

/// Puts the program's action back, unless a stop request may still be pending: then the
/// handler stays until a later attempt. The caller holds [`STOPPING`], and no thread is
/// in the stop protocol.
pub(super) fn give_back() {
    debug_assert!(STOPPING.load(Relaxed));
    // SAFETY: the caller holds STOPPING.
    unsafe {
        with_borrowed(|b| {
            let Some(saved) = b else { return };
            if MAY_OWE.load(SeqCst) {
                if !nothing_pending(saved.signal()) {
                    return;
                }
                MAY_OWE.store(false, SeqCst);
            }
            if RESET_FIRED.swap(false, Relaxed) {
                saved.reset_to_default();
            }
            // A program that set its own action meanwhile keeps it.
            if platform::current_handler(saved.signal()) == Ok(Some(ours())) {
                let _ = platform::restore_signal_action(saved);
            }
            *b = None;
        })
    }
}

/// A late stop request arrived (none is open for it): gives the signal back if no check
/// is under way. Async-signal-safe; never waits.
pub(super) fn give_back_late() {
    if STOPPING.compare_exchange(false, true, Acquire, Relaxed).is_ok() {
        give_back();
        STOPPING.store(false, Release);
    }
}

/// No thread of the process has `sig` pending (nor could the threads be listed).
fn nothing_pending(sig: i32) -> bool {
    let mut clear = true;
    let listed = platform::for_each_task(|tid| {
        if clear && platform::thread_has_pending(tid, sig) != Ok(false) {
            clear = false;
        }
    });
    clear && listed.is_ok()
}

/// Hands a signal that is not a stop request to the program's saved action. Called from
/// the stop handler.
///
/// # Safety
/// `sig`, `info` and `ctx` are the arguments of the running stop handler.
pub(super) unsafe fn forward(sig: i32, info: *mut SigInfo, ctx: *mut c_void) {
    let word = FORWARD.load(Relaxed);
    let (kind, address) = (word >> KIND_SHIFT, word & ((1 << KIND_SHIFT) - 1));
    match kind {
        FWD_DROP => {}
        FWD_DEFAULT => {
            let _ = platform::resend_with_default_action(sig);
        }
        _ => {
            if kind & FWD_ONCE != 0 {
                // The kernel would have put the default back on delivery.
                RESET_FIRED.store(true, Relaxed);
                FORWARD.store(FWD_DEFAULT << KIND_SHIFT, Relaxed);
            }
            let with_info = kind & !FWD_ONCE == FWD_WITH_INFO;
            // SAFETY: `address` is the program's handler for `sig`, taken from its saved
            // action with its kind; the arguments are the running handler's, per the
            // caller.
            unsafe { platform::forward_to_handler(address, with_info, sig, info, ctx) };
        }
    }
}

#[cfg(test)]
mod tests;
