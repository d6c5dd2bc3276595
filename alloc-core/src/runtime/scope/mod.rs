//! Leak checks scoped to one piece of work: [`check_scope`] and [`assert_no_leaks`].
//!
//! `cargo test` runs tests in parallel threads of one process, so a whole-process check
//! inside one test sees every other test's leaks. A scope reports only the blocks
//! allocated inside it: by the thread that opened it, and by threads created inside it
//! (see `inherit` for how a thread is known to belong, and what is not covered), and it
//! gives the same answer whatever other threads of the process allocate or leak
//! meanwhile.
//!
//! # How
//! - Opening a scope takes a slot in [`OPEN`] (its id: a generation above the slot
//!   number), sets the thread's scope, and writes the slot into the thread's signal mask
//!   for the threads it creates.
//! - While it is open, the scope's threads allocate their blocks with the `SCOPED` flag,
//!   and record them in the scope map (`map`): off the fast path, one shard lock.
//! - Closing it restores the thread, takes every shard lock, and runs a leak check whose
//!   reported blocks are those the map attributes to this scope (every block is still
//!   marked: any may lead to one of the scope's). Then its map entries go to the
//!   enclosing scope (nested scopes) or die.
//!
//! A block is the scope's if it was allocated inside it and is still live at the end:
//! freeing it inside or outside the scope both remove it.

pub(crate) mod inherit;
pub(crate) mod map;

use crate::page::SCOPED;
use crate::report::model::LeakReport;
use crate::thread_state::{self, ThreadState};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Slots of open scopes: `OPEN[slot]` is the id of the scope open in it, 0 when free.
/// Slot 0 is never used (an id is never 0).
static OPEN: [AtomicU32; 1 << inherit::SLOT_BITS] = [const { AtomicU32::new(0) }; 1 << inherit::SLOT_BITS];
/// Where the search for a free slot starts: slots are taken round the table, so that a
/// slot is reused as late as possible.
static NEXT_SLOT: AtomicU32 = AtomicU32::new(1);
/// Generations, for ids: `generation << SLOT_BITS | slot`.
static GENERATION: AtomicU32 = AtomicU32::new(1);
/// Some scope was ever opened: thread start reads its mask only then.
static USED: AtomicBool = AtomicBool::new(false);

const SLOT_MASK: u32 = (1 << inherit::SLOT_BITS) - 1;

/// Whether the scope `id` is still open.
#[inline]
pub(crate) fn is_open(id: u32) -> bool {
    id != 0 && OPEN[(id & SLOT_MASK) as usize].load(Ordering::Acquire) == id
}

/// Takes a free slot; the new scope's id, or `None` when every slot is taken.
fn take_slot() -> Option<u32> {
    let n = OPEN.len() as u32;
    let start = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
    for k in 0..n {
        let slot = (start + k) % n;
        if slot == 0 {
            continue;
        }
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed) & (u32::MAX >> inherit::SLOT_BITS);
        let id = (generation.max(1) << inherit::SLOT_BITS) | slot;
        if OPEN[slot as usize].compare_exchange(0, id, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            return Some(id);
        }
    }
    None
}

/// A scope open on this thread; closed (without a check) if dropped, as on a panic.
struct Scope {
    id: u32,
    /// The thread's scope before this one (0: none).
    outer: u32,
    /// The scope's slot is in the thread's signal mask (threads created meanwhile follow).
    in_mask: bool,
}

impl Scope {
    fn open() -> Scope {
        USED.store(true, Ordering::Relaxed);
        if crate::config::current().zero_new == crate::config::ZeroNew::Scopes && crate::track::zero_new_blocks() {
            crate::heap::registry::note_not_plain();
        }
        let outer = thread_state::with(|s| s.scope());
        let Some(id) = take_slot() else {
            warning!("more than {} leak-check scopes open at once: this one checks nothing of its own", OPEN.len());
            return Scope { id: 0, outer, in_mask: false };
        };
        let outer_slot = is_open(outer).then_some(outer & SLOT_MASK);
        let in_mask = inherit::write(outer_slot, Some(id & SLOT_MASK));
        thread_state::with(|s| s.set_scope(id));
        Scope { id, outer, in_mask }
    }

    /// Frees the slot and takes the scope off the thread (which allocates outside any
    /// scope until [`Scope::restore_outer`]); returns the id.
    fn close(&mut self) -> u32 {
        let id = core::mem::take(&mut self.id);
        if id == 0 {
            return 0;
        }
        thread_state::with(|s| s.set_scope(0));
        if self.in_mask {
            let outer_slot = is_open(self.outer).then_some(self.outer & SLOT_MASK);
            inherit::write(Some(id & SLOT_MASK), outer_slot);
        }
        OPEN[(id & SLOT_MASK) as usize].store(0, Ordering::Release);
        id
    }

    /// Closes the scope and checks it: the leaks among the blocks it allocated. The
    /// thread allocates in no scope meanwhile: the check holds every shard lock.
    #[inline(never)]
    fn finish(mut self) -> LeakReport {
        let id = self.close();
        let mut locked = map::lock_all();
        // No promotion: generations are the whole process's, and a scope must not change
        // what a parallel test's check or sweep finds.
        let report = crate::check::check_selected(&|d| d.scoped && id != 0 && locked.get(d.start) == id, false);
        map::forget(&mut locked, id, self.heir());
        drop(locked);
        self.restore_outer();
        report
    }

    /// The enclosing scope, if still open: it inherits this one's blocks.
    fn heir(&self) -> u32 {
        if is_open(self.outer) {
            self.outer
        } else {
            0
        }
    }

    /// The thread allocates in the enclosing scope again.
    fn restore_outer(&self) {
        let outer = self.heir();
        thread_state::with(|s| s.set_scope(outer));
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let id = self.close();
        if id != 0 {
            map::forget(&mut map::lock_all(), id, self.heir());
            self.restore_outer();
        }
    }
}

/// Runs `f` and returns its result with the leaks among the blocks allocated inside it.
///
/// The report holds only blocks allocated while `f` ran, by this thread or by threads
/// created while it ran (their first allocation inside it), that are still live and
/// unreachable when `f` returns. Blocks of other threads, allocated or leaked meanwhile,
/// are never in it, so tests running in parallel each get their own answer:
///
/// ```
/// #[global_allocator]
/// static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();
///
/// let other = std::thread::spawn(|| std::mem::forget(Box::new([1u8; 200])));
/// let ((), report) = alloc_core::check_scope(|| {
///     std::mem::forget(vec![7u8; 48]);
///     let kept = Box::new(5u32);
///     drop(kept);
/// });
/// other.join().unwrap();
/// assert_eq!((report.summary.leaked_blocks, report.summary.leaked_bytes), (1, 48));
/// # alloc_core::config::set_check_at_exit(false);
/// ```
///
/// What is reachable is decided as for [`check`](crate::check()) (the whole process's
/// roots; the scan is conservative), and the same report model comes back, its
/// `reachable_*` totals counting the scope's blocks only. A thread that belonged to the
/// scope and still runs is stopped and scanned like every other. Scopes nest: the leaks
/// of an inner scope are in its own report, and in the outer one's too. If `f` panics,
/// the scope ends without a check and the panic goes on.
///
/// Not covered: threads that existed before the scope (a shared thread pool started
/// earlier) allocate outside it even when they run its work; see the module notes.
pub fn check_scope<R>(f: impl FnOnce() -> R) -> (R, LeakReport) {
    let scope = Scope::open();
    let r = run(f);
    // `f`'s frames were below this one: the check's own frames will lie there, and the
    // words they leave unwritten would still hold `f`'s pointers.
    crate::stack::scrub_below(crate::check::this_thread_stack());
    let report = scope.finish();
    (r, report)
}

/// Runs `f` in a frame of its own, gone before the check scans this thread's stack.
#[inline(never)]
fn run<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Runs `f` and panics with the text report if anything allocated inside it leaked (see
/// [`check_scope`]), or if the check could not run to the end.
///
/// ```should_panic
/// #[global_allocator]
/// static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();
///
/// alloc_core::assert_no_leaks(|| std::mem::forget(Box::new(7u64)));
/// ```
#[track_caller]
pub fn assert_no_leaks<R>(f: impl FnOnce() -> R) -> R {
    let (r, report) = check_scope(f);
    if !report.is_clean() || report.check_failed() {
        let text =
            crate::report::text::render(&report, &crate::report::text::TextOptions { color: false, max_leaks: 0 });
        panic!("leaks inside assert_no_leaks:\n{text}");
    }
    r
}

/// A thread's start: joins the scope its creator was in, if it is still open.
pub(crate) fn on_thread_start(s: &ThreadState) {
    if !USED.load(Ordering::Relaxed) {
        return;
    }
    if let Some(slot) = inherit::inherited() {
        let id = OPEN[slot as usize].load(Ordering::Acquire);
        if id != 0 {
            s.set_scope(id);
        } else {
            inherit::clear(slot);
        }
    }
}

/// The flags of a block allocated now by a thread in scope `id`: `SCOPED` while the scope
/// is open. A thread whose scope ended leaves it (a thread that joined it also takes the
/// scope's pattern out of its signal mask; the thread that opened it did so at the end).
#[inline]
pub(crate) fn flags_for(s: &ThreadState, id: u32) -> u8 {
    if is_open(id) {
        return SCOPED;
    }
    s.set_scope(0);
    if inherit::inherited() == Some(id & SLOT_MASK) {
        inherit::clear(id & SLOT_MASK);
    }
    0
}

/// Records a block allocated in scope `id` at `addr`.
#[inline]
pub(crate) fn record(addr: *mut u8, id: u32) {
    map::record(addr as usize, id);
}
