//! Following a scope into the threads it spawns, through the signal mask.
//!
//! # How a thread is known to belong to a scope
//! `pthread_create` gives a new thread a copy of its creator's signal mask (POSIX), and
//! every Rust thread is made by `pthread_create`. While a scope is open on a thread, that
//! thread blocks a pattern of the 13 highest real-time signals (`SIGRTMAX - 12` to
//! `SIGRTMAX`): the highest is a marker, the other 12 are the scope's slot. A thread it
//! creates meanwhile starts with the same pattern; at its first allocation the runtime
//! reads the pattern and joins the scope if it is still open. A thread that joined keeps
//! the pattern, so that the threads it creates join too; it unblocks the 13 signals when
//! it finds the scope ended (at its next allocation after), and a thread whose scope had
//! ended before its first allocation unblocks them at once.
//!
//! # What is not covered
//! - Threads that existed before the scope opened (a shared pool started earlier): their
//!   allocations are not the scope's, even when they run the scope's work.
//! - Threads created in the scope whose first allocation comes after the scope ended.
//! - Programs that use these real-time signals themselves: when one of the 13 is already
//!   blocked as the scope opens, the pattern cannot be written; the scope then covers its
//!   own thread only (with a warning, once per process).
//! - A thread created in the scope keeps the 13 signals blocked until its first
//!   allocation after the scope ended (forever, if it never allocates again).

use crate::platform;
use core::sync::atomic::{AtomicBool, Ordering};

/// Signals used: `SIGRTMAX - SLOT_BITS ..= SIGRTMAX`.
pub(crate) const SLOT_BITS: u32 = 12;
// The stop signal may be none of them: `config` refuses the same highest signals.
const _: () = assert!(SLOT_BITS as i32 + 1 == crate::config::SCOPE_SIGNALS);
/// The marker: the highest of the signals.
const MARKER: u32 = 1 << SLOT_BITS;
/// All the bits of a pattern.
const ALL: u32 = MARKER | (MARKER - 1);

static WARNED: AtomicBool = AtomicBool::new(false);

/// The first signal of the pattern.
fn first_signal() -> i32 {
    platform::rt_signal_max() - SLOT_BITS as i32
}

/// The pattern of this thread's mask: `Some(slot)` when it carries a scope's slot, `None`
/// when the 13 signals are all unblocked; `Err` when they hold something else (the
/// program's own use of them).
fn read() -> Result<Option<u32>, ()> {
    match platform::blocked_signal_bits(first_signal(), SLOT_BITS + 1) {
        Ok(0) => Ok(None),
        Ok(bits) if bits & MARKER != 0 => Ok(Some(bits & (MARKER - 1))),
        _ => Err(()),
    }
}

/// Writes `slot`'s pattern into this thread's mask (or clears it, with `None`), in place
/// of `previous`'s. Fails (and changes nothing) when the mask holds the program's own
/// use of the signals.
pub(crate) fn write(previous: Option<u32>, slot: Option<u32>) -> bool {
    if read() != Ok(previous) {
        if !WARNED.swap(true, Ordering::Relaxed) {
            warning!(
                "real-time signals {}..{} are blocked by the program: leak-check scopes cover their own thread only, \
                 not the threads they spawn",
                first_signal(),
                platform::rt_signal_max()
            );
        }
        return false;
    }
    let new = slot.map_or(0, |s| MARKER | s);
    let old = previous.map_or(0, |s| MARKER | s);
    platform::change_blocked_signals(first_signal(), new & !old, old & !new & ALL).is_ok()
}

/// At a thread's first allocation: the slot of the scope its creator was in, if any (the
/// pattern stays in the mask: see [`clear`]).
pub(crate) fn inherited() -> Option<u32> {
    read().ok()?
}

/// Takes `slot`'s pattern out of this thread's mask (a thread that joined a scope, once
/// the scope ended).
pub(crate) fn clear(slot: u32) {
    let _ = platform::change_blocked_signals(first_signal(), 0, MARKER | slot);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_is_written_inherited_by_new_threads_and_cleared() {
        assert_eq!(read(), Ok(None));
        assert!(write(None, Some(0x5a5)));
        assert_eq!(read(), Ok(Some(0x5a5)));
        let (child, grandchild, cleared) = std::thread::spawn(|| {
            let child = inherited();
            let grandchild = std::thread::spawn(inherited).join().unwrap();
            clear(0x5a5);
            (child, grandchild, read())
        })
        .join()
        .unwrap();
        assert_eq!((child, grandchild, cleared), (Some(0x5a5), Some(0x5a5), Ok(None)));
        assert!(write(Some(0x5a5), Some(7)), "a nested scope replaces the pattern");
        assert_eq!(read(), Ok(Some(7)));
        assert!(write(Some(7), None));
        assert_eq!(read(), Ok(None));
        assert_eq!(std::thread::spawn(inherited).join().unwrap(), None);
    }
}
