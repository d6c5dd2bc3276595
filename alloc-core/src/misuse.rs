//! Misuse of the allocator: double free, freeing a pointer it never handed out, freeing
//! an interior pointer. Each is reported naming the operation, the address and, where
//! known, the block's allocation site; then the process aborts (a corrupted heap must not
//! run on).
//!
//! # What it owns
//! [`Misuse`] (what the heap detected), [`report`] (the message and the abort), and the
//! slot of the function that describes an allocation site, which the runtime fills at
//! initialization with the report layer's symbolizer (this module sits below the heap,
//! the symbolizer far above it). Without one (a misuse during initialization), the report
//! names the stack id instead of its frames.
//!
//! # Who calls it
//! The heap's free and realloc paths, and its slow paths that collect other threads'
//! frees (a double free is found there when two threads freed the same block).

use crate::thread_state::ReentrancyGuard;
use core::sync::atomic::{AtomicUsize, Ordering};

/// A misuse `free` or `realloc` detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Misuse {
    /// The pointer is not in any segment of ours.
    Foreign,
    /// In our memory, but not in a block (a header, a free span).
    NotABlock,
    /// Inside a block but not at its start.
    Interior,
    /// The block is not live: freed already.
    DoubleFree,
}

impl Misuse {
    /// What the pointer was, in words.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Misuse::Foreign => "a pointer HeapSweep never handed out (not in any of its segments)",
            Misuse::NotABlock => "a pointer into HeapSweep's memory that is not a block",
            Misuse::Interior => "a pointer into the middle of a block, not its start",
            Misuse::DoubleFree => "a block that is already free (double free)",
        }
    }
}

/// Describes an allocation stack: one line per frame, without the leading `#N`.
pub(crate) type SiteDescriber = fn(stack: u32) -> Vec<String>;

/// The [`SiteDescriber`] as an address; 0 until the runtime sets it.
static DESCRIBER: AtomicUsize = AtomicUsize::new(0);

/// Sets the function that describes allocation sites (called once, at initialization).
pub(crate) fn set_site_describer(f: SiteDescriber) {
    DESCRIBER.store(f as usize, Ordering::Release);
}

fn site_describer() -> Option<SiteDescriber> {
    let f = DESCRIBER.load(Ordering::Acquire);
    // SAFETY: a non-zero value was stored by `set_site_describer` from a `SiteDescriber`,
    // a plain `fn` pointer of the same type, valid for the life of the process.
    (f != 0).then(|| unsafe { core::mem::transmute::<usize, SiteDescriber>(f) })
}

/// Reports `op(ptr)` as `what` and aborts. Symbolization may allocate: it does so under
/// the reentrancy guard (from the internal heap).
#[cold]
#[inline(never)]
pub(crate) fn report(op: &str, ptr: *mut u8, what: Misuse) -> ! {
    let _guard = ReentrancyGuard::enter();
    let addr = ptr as usize;
    let mut out = format!("heapsweep: error: {op}({addr:#x}): {}\n", what.describe());
    if let Some(stack) = allocation_stack_of(addr) {
        out.push_str("heapsweep: the block was allocated at:\n");
        match site_describer() {
            Some(describe) => {
                for (i, line) in describe(stack).iter().enumerate() {
                    out.push_str(&format!("    #{i} {line}\n"));
                }
            }
            None => out.push_str(&format!("    (stack id {stack}, not symbolized)\n")),
        }
    }
    out.push_str("heapsweep: misuse detected; aborting\n");
    crate::fatal::write_all_fd(2, out.as_bytes());
    crate::fatal::abort()
}

/// The allocation stack id recorded for the block containing `addr`, live or freed.
fn allocation_stack_of(addr: usize) -> Option<u32> {
    let stack = crate::block::containing(addr)?.stack();
    (stack != 0).then_some(stack)
}
