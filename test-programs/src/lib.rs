//! Shared helpers for the scenario programs in `src/bin/`: each program is one scenario
//! of the leak check, with its expected report written at its top (see `README.md`), run
//! by `tests/run_all.rs`.
//!
//! # The allocator
//! This library installs HeapSweep as the global allocator, once for every program of the
//! crate: a `#[global_allocator]` in a linked library applies to the whole program. A
//! program links this library by naming it, so every scenario starts with
//! `use test_programs as _;` (or calls a helper below) and declares no allocator of its
//! own. The library's own unit tests run under HeapSweep too.
//!
//! # Why the helpers exist
//! The leak check is conservative: any word on a live stack, in a register or in
//! writable global memory that looks like a pointer into a block keeps the block
//! reachable. A program that "leaks" a block must therefore leave no copy of its address
//! behind:
//! - make the leak in a frame of its own (`#[inline(never)]`, or [`leak_in_frame`]), so
//!   the pointer lives in that frame's slots and registers only;
//! - then overwrite the stack area that frame used ([`scribble_stack`]): the frames of the
//!   code that runs later (down to the at-exit check itself) reuse that area, and a slot
//!   they reserve but never write would still hold the old address;
//! - or make it on a thread that then ends ([`leak_on_thread`]): the check skips the
//!   stacks of threads that have exited.
//!
//! Allocations are kept observable with [`std::hint::black_box`]: the optimizer may
//! delete an allocation whose pointer never escapes.

use std::hint::black_box;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

/// Words of stack [`scribble_stack`] overwrites: 64 KiB, far more than any scenario's
/// leaking frames use, and far less than the 8 MiB main-thread stack or the 2 MiB stack
/// of a spawned thread.
pub const SCRIBBLE_WORDS: usize = 8192;

/// Overwrites [`SCRIBBLE_WORDS`] words of the stack below the caller's frame with small
/// integers (never heap addresses), so that no stale copy of a pointer left by an earlier
/// call, in a frame that has returned, survives there.
///
/// Call it from the frame that called the leaking function, after that function returned.
#[inline(never)]
pub fn scribble_stack() {
    let mut area = [0usize; SCRIBBLE_WORDS];
    for (i, w) in area.iter_mut().enumerate() {
        *w = i;
    }
    black_box(&mut area);
}

/// Runs `f` in a frame of its own, then overwrites the stack area it used
/// ([`scribble_stack`]), and returns what `f` returned. Use it for a leak made by a closure:
/// its pointers die with the closure's frame.
///
/// The value returned must not be (or hold) the leaked pointer, or the caller keeps it.
#[inline(never)]
pub fn leak_in_frame<R>(f: impl FnOnce() -> R) -> R {
    let r = run_framed(f);
    scribble_stack();
    r
}

/// The frame [`leak_in_frame`] runs its closure in.
#[inline(never)]
fn run_framed<R>(f: impl FnOnce() -> R) -> R {
    black_box(f())
}

/// Runs `f` on a new thread and waits until that thread has ended, then overwrites the
/// caller's dead stack area ([`scribble_stack`]). Every stale copy of a pointer `f` made
/// dies with the thread's stack, which the check does not scan once the thread is gone.
pub fn leak_on_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let r = std::thread::spawn(f).join().expect("the leaking thread panicked");
    scribble_stack();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The tests that leak and check run one at a time: a thread one of them ends leaves
    /// its stack to the C library's cache, and the next thread made (another test's)
    /// starts on it, stale words and all.
    fn serial() -> std::sync::MutexGuard<'static, ()> {
        static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hides an address from the conservative scan: the complement of a heap address is
    /// not a pointer into any block.
    fn hide(addr: usize) -> usize {
        !addr
    }

    /// The address [`hide`] hid.
    fn unhide(word: usize) -> usize {
        !word
    }

    #[test]
    fn the_global_allocator_is_heapsweep() {
        let b = Box::new([3u8; 40]);
        let info = alloc_core::block_info(b.as_ptr()).expect("a Box is a HeapSweep block");
        assert_eq!(info.requested_size, 40);
    }

    #[test]
    fn leak_in_frame_returns_what_the_closure_returns() {
        let _serial = serial();
        let mut calls = 0;
        assert_eq!(
            leak_in_frame(|| {
                calls += 1;
                7
            }),
            7
        );
        assert_eq!(calls, 1);
        assert_eq!(leak_on_thread(|| 9), 9);
    }

    /// The helpers do what the scenarios need: a block leaked through them is found.
    ///
    /// The scan is conservative and this binary's other tests run on other threads at the
    /// same time: a copy of the address left in a register, or in another thread's
    /// stack, may keep one block reachable at one check (the scenario programs run alone,
    /// in processes of their own). So the tests that leak run one at a time, up to three
    /// blocks are leaked, one a check, and one of the checks must find its block.
    #[test]
    fn a_block_leaked_in_a_frame_is_found_by_a_check() {
        let _serial = serial();
        static HIDDEN: AtomicUsize = AtomicUsize::new(0);
        let mut leaked = Vec::new();
        let mut found = None;
        for attempt in 0..3 {
            // 1234 bytes: a size no other test of this binary allocates.
            leak_in_frame(|| {
                let p = Box::into_raw(black_box(Box::new([0x5au8; 1234])));
                HIDDEN.store(hide(p as usize), Ordering::SeqCst);
            });
            leaked.push(HIDDEN.load(Ordering::SeqCst));
            let report = alloc_core::check();
            if report.leaks.iter().any(|g| g.blocks > 0 && g.bytes == 1234 * g.blocks) {
                found = Some(attempt);
                break;
            }
        }
        // Not leaks of this test binary: the at-exit check must not count them.
        for word in leaked {
            assert!(alloc_core::ignore(unhide(word) as *const u8));
        }
        assert!(found.is_some(), "no block leaked in a frame was reported in three checks");
    }

    #[test]
    fn a_block_leaked_on_a_thread_is_found_by_a_check() {
        let _serial = serial();
        let mut leaked = Vec::new();
        let mut found = None;
        for attempt in 0..3 {
            // 4321 bytes: a size no other test of this binary allocates.
            leaked.push(leak_on_thread(|| hide(Box::into_raw(black_box(Box::new([0xa5u8; 4321]))) as usize)));
            let report = alloc_core::check();
            if report.leaks.iter().any(|g| g.blocks > 0 && g.bytes == 4321 * g.blocks) {
                found = Some(attempt);
                break;
            }
        }
        for word in leaked {
            assert!(alloc_core::ignore(unhide(word) as *const u8));
        }
        assert!(found.is_some(), "no block leaked on a thread was reported in three checks");
    }
}
