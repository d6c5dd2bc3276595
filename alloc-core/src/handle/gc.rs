//! The cycle collector, with Python's `gc` module API and meanings.
//!
//! # Algorithm (CPython's)
//! Tracked boxes sit on intrusive per-generation lists (`handle::list`: 0, 1, 2, a
//! permanent list for frozen boxes, and a list for the garbage `DEBUG_SAVEALL` keeps).
//! Collecting generation `g` merges generations `0..=g` (a constant-time splice) and
//! runs CPython's `deduce_unreachable` on them: see `handle::collect` for the passes and
//! the destruction of the garbage. Survivors move to the next generation (a splice).
//!
//! Garbage is destroyed in phases: its weak handles are cleared, finalizers run (once per
//! value, with weak handles still working) and reachability is re-checked (a finalizer
//! may resurrect), then each value is dropped while the collector holds its box; a box
//! is freed only once no handle refers to it, so no sibling's `Drop` can reach freed
//! memory. A panic in a `Drop` or a finalizer is caught, the collection completes, then
//! the panic resumes.
//!
//! # When
//! The count of generation 0 is allocations minus deallocations of handles since its last
//! collection; passing `threshold0` (700) collects. Each collection of generation `g`
//! adds one to the count of `g + 1`, whose threshold (10) collects it in turn. A full
//! collection also waits until the boxes that survived into generation 2 since the last
//! full one exceed a quarter of those there (the long-lived guard). A threshold of 0
//! disables automatic collection. Everything is per thread: handles are not `Send`.
//!
//! # State
//! The per-thread `State` has no destructor (the callbacks live apart), so reaching it
//! costs one thread-local address computation and it outlives every other thread-local:
//! a handle dropped from another thread-local's destructor still works. Its `trigger`
//! folds every reason to collect or not into one number, so that `Handle::new` makes a
//! single comparison; it starts at 0 so that the first allocation also initializes the
//! lists.

use super::collect::{self, label, Outcome};
use super::list::{Link, List};
use super::{hdr_ref, Header, Tracer, DROP_DEPTH, HELD, LINKED};
use std::cell::{Cell, RefCell};
use std::ptr::NonNull;

/// `set_debug` flag: keep unreachable values in [`garbage`] instead of freeing them.
pub const DEBUG_SAVEALL: u32 = 32;
/// `set_debug` flag: print a line per collection to stderr.
pub const DEBUG_STATS: u32 = 1;

pub(super) const GENERATIONS: usize = 3;
const PERMANENT: usize = 3;

/// Per-generation statistics, as `gc.get_stats()` gives them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenerationStats {
    /// Collections of this generation.
    pub collections: u64,
    /// Boxes found unreachable and collected.
    pub collected: u64,
    /// Boxes found unreachable and kept (`DEBUG_SAVEALL`).
    pub uncollectable: u64,
}

/// One tracked value, as `get_objects`, `get_referents` and `get_referrers` describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its identifier ([`Handle::id`](super::Handle::id)).
    pub id: usize,
    /// Its type's name.
    pub type_name: &'static str,
    /// Its strong count.
    pub ref_count: usize,
}

/// The phase a collection callback is called in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the collection.
    Start,
    /// After it.
    Stop,
}

/// What a callback is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallbackInfo {
    /// The generation collected.
    pub generation: usize,
    /// Boxes collected (0 at `Start`).
    pub collected: usize,
    /// Boxes kept as uncollectable (0 at `Start`).
    pub uncollectable: usize,
}

/// A collection callback.
pub type Callback = fn(Phase, CallbackInfo);

/// The collector of one thread. Invariants:
/// - once `initialized`, every list is circular (see [`List::init`]);
/// - `trigger == isize::MAX` while `collecting`, when disabled or when `thresholds[0] == 0`;
///   else `thresholds[0]` (0 before initialization);
/// - `unreachable` and `still` are empty outside a collection;
/// - every box on `saved` is `HELD`.
pub(super) struct State {
    pub(super) gens: [List; GENERATIONS],
    permanent: List,
    pub(super) saved: List,
    pub(super) unreachable: List,
    pub(super) still: List,
    initialized: Cell<bool>,
    count0: Cell<isize>,
    trigger: Cell<isize>,
    counts: [Cell<usize>; GENERATIONS],
    thresholds: [Cell<usize>; GENERATIONS],
    enabled: Cell<bool>,
    collecting: Cell<bool>,
    pub(super) debug: Cell<u32>,
    stats: [Cell<GenerationStats>; GENERATIONS],
    pub(super) long_lived_total: Cell<usize>,
    pub(super) long_lived_pending: Cell<usize>,
    /// The label of generation 2 (`label::GEN2_A` or `label::GEN2_B`, swapped by each
    /// full collection).
    pub(super) gen2_label: Cell<u8>,
    depth: Cell<u32>,
    deferred: Cell<*mut Link>,
}

thread_local! {
    static STATE: State = const {
        State {
            gens: [const { List::new() }; GENERATIONS],
            permanent: List::new(),
            saved: List::new(),
            unreachable: List::new(),
            still: List::new(),
            initialized: Cell::new(false),
            count0: Cell::new(0),
            trigger: Cell::new(0),
            counts: [const { Cell::new(0) }; GENERATIONS],
            thresholds: [Cell::new(700), Cell::new(10), Cell::new(10)],
            enabled: Cell::new(true),
            collecting: Cell::new(false),
            debug: Cell::new(0),
            stats: [const { Cell::new(GenerationStats { collections: 0, collected: 0, uncollectable: 0 }) }; GENERATIONS],
            long_lived_total: Cell::new(0),
            long_lived_pending: Cell::new(0),
            gen2_label: Cell::new(label::GEN2_A),
            depth: Cell::new(0),
            deferred: Cell::new(std::ptr::null_mut()),
        }
    };
    static CALLBACKS: RefCell<Vec<Callback>> = const { RefCell::new(Vec::new()) };
}

const _: () = assert!(!std::mem::needs_drop::<State>(), "the collector state must have no destructor");

impl State {
    /// Makes the lists circular (the first time) and recomputes the trigger.
    fn init(&self) {
        if !self.initialized.get() {
            self.gens.iter().for_each(List::init);
            for l in [&self.permanent, &self.saved, &self.unreachable, &self.still] {
                l.init();
            }
            self.initialized.set(true);
        }
        self.update_trigger();
    }

    fn update_trigger(&self) {
        let t0 = self.thresholds[0].get();
        let off = !self.enabled.get() || self.collecting.get() || t0 == 0 || !self.initialized.get();
        let t = if off { isize::MAX } else { isize::try_from(t0).unwrap_or(isize::MAX) };
        self.trigger.set(if self.initialized.get() { t } else { 0 });
    }

    /// The label of the boxes on list `g` (0..=PERMANENT, or the saved list).
    pub(super) fn list_label(&self, g: usize) -> u8 {
        match g {
            0 => label::GEN0,
            1 => label::GEN1,
            2 => self.gen2_label.get(),
            PERMANENT => label::PERMANENT,
            _ => label::SAVED,
        }
    }

    /// The labels of the set a collection of generation `g` takes (a mask), and the
    /// label its survivors get.
    pub(super) fn labels_for(&self, g: usize) -> (u8, u8) {
        let young = (1 << label::GEN0) | (1 << label::GEN1);
        let l2 = self.gen2_label.get();
        match g {
            0 => (1 << label::GEN0, label::GEN1),
            1 => (young, l2),
            _ => (young | (1 << l2), if l2 == label::GEN2_A { label::GEN2_B } else { label::GEN2_A }),
        }
    }

    fn list(&self, g: usize) -> &List {
        match g {
            0..GENERATIONS => &self.gens[g],
            PERMANENT => &self.permanent,
            _ => &self.saved,
        }
    }

    fn members(&self, g: usize) -> Vec<NonNull<Header>> {
        let mut v = Vec::new();
        // SAFETY: only boxes are on the lists.
        self.list(g).for_each(|l| v.push(unsafe { Header::of_link(l) }));
        v
    }

    /// Links a box last on list `g` (0..=PERMANENT, or the saved list).
    fn link(&self, h: NonNull<Header>, g: usize) {
        let x = hdr_ref(h);
        x.set(LINKED);
        x.label.set(self.list_label(g));
        x.gc_refs.set(0);
        // SAFETY: the box is live and on no list (callers unlinked it or it is new).
        unsafe { self.list(g).push_back(Header::link_ptr(h)) };
    }
}

/// Tracks a new box (flag `LINKED` already set) last in generation 0, counts it and collects
/// when generation 0's count passes the trigger. About 10 instructions when no collection
/// is due.
#[inline]
pub(super) fn track(h: NonNull<Header>) {
    STATE.with(|s| {
        let c = s.count0.get() + 1;
        s.count0.set(c);
        if c > s.trigger.get() {
            allocation_slow(s);
        }
        // SAFETY: the lists are initialized (the trigger starts at 0, so the first
        // allocation ran `allocation_slow`); the box is new.
        unsafe { s.gens[0].push_back(Header::link_ptr(h)) };
    });
}

/// Links a box that is on no list last on generation 0 (for unit tests that move boxes
/// by hand).
#[cfg(test)]
pub(super) fn link_for_tests(h: NonNull<Header>) {
    STATE.with(|s| s.link(h, 0));
}

#[cold]
#[inline(never)]
fn allocation_slow(s: &State) {
    s.init();
    if s.count0.get() > s.trigger.get() {
        collect_generations();
    }
}

/// The strong count of a box reached zero: unlink it and run `destroy` (drop the value,
/// free the box), or defer that when drops nest deeper than `DROP_DEPTH`; the outermost
/// release drains the deferred ones (type-erased), so the stack depth stays bounded.
#[inline]
pub(super) fn release(h: NonNull<Header>, destroy: impl FnOnce(NonNull<Header>)) {
    untrack(h);
    STATE.with(|s| {
        let d = s.depth.get();
        if d >= DROP_DEPTH {
            // SAFETY: the box is unreferenced and on no list: its `next` link is free to
            // thread it onto the deferred queue.
            unsafe { Header::link_ptr(h).as_ref().next.set(s.deferred.get()) };
            s.deferred.set(Header::link_ptr(h).as_ptr());
            return;
        }
        s.depth.set(d + 1);
        let guard = Depth(s);
        destroy(h);
        drop(guard);
    });
}

/// Takes a box whose strong count reached zero off its list (the release of a value
/// without drop glue, which needs no depth bookkeeping).
#[inline]
pub(super) fn untrack(h: NonNull<Header>) {
    let x = hdr_ref(h);
    if x.has(LINKED) {
        x.clear(LINKED);
        // SAFETY: a linked box is on an initialized list.
        unsafe { List::unlink(Header::link_ptr(h)) };
        STATE.with(|s| s.count0.set(s.count0.get() - 1));
    }
}

/// Restores the drop depth, even when a `Drop` panics; the outermost one drains the
/// deferred queue.
struct Depth<'a>(&'a State);

impl Drop for Depth<'_> {
    #[inline]
    fn drop(&mut self) {
        let s = self.0;
        let d = s.depth.get() - 1;
        s.depth.set(d);
        if d == 0 && !s.deferred.get().is_null() && !std::thread::panicking() {
            drain_deferred(s);
        }
    }
}

#[cold]
#[inline(never)]
fn drain_deferred(s: &State) {
    while let Some(l) = NonNull::new(s.deferred.get()) {
        // SAFETY: deferred boxes are live, unreferenced and off every list; `next`
        // threads the queue.
        s.deferred.set(unsafe { l.as_ref().next.get() });
        // SAFETY: `l` is a box's link.
        let h = unsafe { Header::of_link(l) };
        s.depth.set(1);
        let guard = Depth(s);
        destroy_erased(h);
        std::mem::forget(guard);
        s.depth.set(0);
    }
}

/// `Handle::destroy` through the vtable (for deferred boxes): drops the value (once; the
/// flag is set after, as there) and frees the box if no weak handle refers to it.
fn destroy_erased(h: NonNull<Header>) {
    let x = hdr_ref(h);
    if !x.has(super::VALUE_DROPPED) {
        // SAFETY: the value is live, no handle can reach it (strong == 0), and it is
        // dropped once (the flag is set right after).
        unsafe { (x.vtable.drop_value)(h) };
        x.set(super::VALUE_DROPPED);
    }
    if x.weak.get() == 0 {
        // SAFETY: nothing refers to the box any more and its value is dropped.
        unsafe { (x.vtable.dealloc)(h) };
    }
}

fn trace(h: NonNull<Header>, mut f: impl FnMut(NonNull<Header>)) {
    let x = hdr_ref(h);
    if x.has(super::VALUE_DROPPED) {
        return;
    }
    let mut visit = |c: NonNull<Header>| f(c);
    let mut t = Tracer::each(&mut visit);
    // SAFETY: the box is live and its value not dropped.
    unsafe { (x.vtable.trace)(h, &mut t) };
}

/// On unwind out of a collection (a start callback or a `Trace` impl panicked): repair
/// the lists and flags, end the collection.
struct Collecting<'a>(&'a State);

impl Drop for Collecting<'_> {
    fn drop(&mut self) {
        collect::recover(self.0);
        self.0.collecting.set(false);
        self.0.update_trigger();
    }
}

fn run_collection(g: usize) -> usize {
    let started = std::time::Instant::now();
    let proceed = STATE.with(|s| {
        s.init();
        if s.collecting.get() {
            return false;
        }
        s.collecting.set(true);
        s.update_trigger();
        true
    });
    if !proceed {
        return 0;
    }
    let callbacks: Vec<Callback> = CALLBACKS.try_with(|c| c.borrow().clone()).unwrap_or_default();
    let Outcome { collected, uncollectable, panic } = STATE.with(|s| {
        // Ends the collection cleanly if a start callback or a `Trace` impl panics.
        let guard = Collecting(s);
        callbacks
            .iter()
            .for_each(|cb| cb(Phase::Start, CallbackInfo { generation: g, collected: 0, uncollectable: 0 }));
        let r = collect::collect_generation(s, g);
        std::mem::forget(guard);
        end_collection(s, g, &r);
        r
    });
    tracing::debug!(target: "heapsweep::gc", generation = g, collected, uncollectable, duration_us = started.elapsed().as_micros() as u64, "collection");
    callbacks.iter().for_each(|cb| cb(Phase::Stop, CallbackInfo { generation: g, collected, uncollectable }));
    if let Some(p) = panic {
        std::panic::resume_unwind(p);
    }
    collected + uncollectable
}

/// The counts and statistics after collecting generation `g`.
fn end_collection(s: &State, g: usize, r: &Outcome) {
    let mut st = s.stats[g].get();
    st.collections += 1;
    st.collected += r.collected as u64;
    st.uncollectable += r.uncollectable as u64;
    s.stats[g].set(st);
    if g + 1 < GENERATIONS {
        s.counts[g + 1].set(s.counts[g + 1].get() + 1);
    }
    for c in &s.counts[..=g] {
        c.set(0);
    }
    s.count0.set(0);
    s.collecting.set(false);
    s.update_trigger();
    if s.debug.get() & DEBUG_STATS != 0 {
        eprintln!("gc: collected generation {g}: {} unreachable, {} kept", r.collected, r.uncollectable);
    }
}

/// The automatic collection: the oldest generation whose count passed its threshold.
fn collect_generations() {
    let g = STATE.with(|s| {
        (0..GENERATIONS).rev().find(|&i| {
            let count = if i == 0 { s.count0.get().max(0) as usize } else { s.counts[i].get() };
            let t = s.thresholds[i].get();
            let due = t != 0 && count > t;
            let guarded = i == GENERATIONS - 1 && s.long_lived_pending.get() < s.long_lived_total.get() / 4;
            due && !guarded
        })
    });
    if let Some(g) = g {
        run_collection(g);
    }
}

/// Collects generation `generation` (0, 1 or 2; larger means 2) and the younger ones, now.
/// Returns the number of unreachable handles found, like Python's `gc.collect`. A call
/// made while a collection runs (from a `Drop` or a finalizer) returns 0.
///
/// ```
/// use alloc_core::{gc, Handle, Trace, Tracer};
/// use std::cell::RefCell;
///
/// struct Node(RefCell<Option<Handle<Node>>>);
/// // SAFETY: visits the one handle a node owns.
/// unsafe impl Trace for Node {
///     fn trace(&self, t: &mut Tracer<'_>) { self.0.trace(t) }
/// }
///
/// let a = Handle::new(Node(RefCell::new(None)));
/// *a.0.borrow_mut() = Some(a.clone()); // a cycle
/// drop(a);
/// assert_eq!(gc::collect(2), 1);
/// ```
pub fn collect(generation: usize) -> usize {
    run_collection(generation.min(GENERATIONS - 1))
}

/// `(count0, count1, count2)`: generation 0's allocations minus deallocations, and the
/// collections of the younger generation since each older one's last collection.
pub fn get_count() -> (usize, usize, usize) {
    STATE.with(|s| (s.count0.get().max(0) as usize, s.counts[1].get(), s.counts[2].get()))
}

/// The thresholds `(700, 10, 10)` by default.
pub fn get_threshold() -> (usize, usize, usize) {
    STATE.with(|s| (s.thresholds[0].get(), s.thresholds[1].get(), s.thresholds[2].get()))
}

/// Sets the thresholds; `threshold0 == 0` disables automatic collection.
pub fn set_threshold(threshold0: usize, threshold1: usize, threshold2: usize) {
    STATE.with(|s| {
        s.thresholds[0].set(threshold0);
        s.thresholds[1].set(threshold1);
        s.thresholds[2].set(threshold2);
        s.init();
    });
}

/// Turns automatic collection on.
pub fn enable() {
    STATE.with(|s| {
        s.enabled.set(true);
        s.init();
    });
}

/// Turns automatic collection off ([`collect`] still works).
pub fn disable() {
    STATE.with(|s| {
        s.enabled.set(false);
        s.init();
    });
}

/// Whether automatic collection is on.
pub fn is_enabled() -> bool {
    STATE.with(|s| s.enabled.get())
}

/// Moves every tracked box to the permanent generation: never collected until
/// [`unfreeze`] (as before a `fork`, to keep pages shared). A walk of every box.
pub fn freeze() {
    STATE.with(|s| {
        s.init();
        for g in &s.gens {
            // SAFETY: only boxes are on the lists.
            g.for_each(|l| hdr_ref(unsafe { Header::of_link(l) }).label.set(label::PERMANENT));
            g.append_to(&s.permanent);
        }
    });
}

/// Moves the permanent generation back to the oldest generation.
pub fn unfreeze() {
    STATE.with(|s| {
        s.init();
        let l2 = s.gen2_label.get();
        // SAFETY: only boxes are on the lists.
        s.permanent.for_each(|l| hdr_ref(unsafe { Header::of_link(l) }).label.set(l2));
        s.permanent.append_to(&s.gens[GENERATIONS - 1]);
    });
}

/// Boxes in the permanent generation (a walk of its list).
pub fn get_freeze_count() -> usize {
    STATE.with(|s| {
        s.init();
        s.permanent.len()
    })
}

fn info(h: NonNull<Header>) -> ObjectInfo {
    let x = hdr_ref(h);
    ObjectInfo { id: h.as_ptr() as usize, type_name: (x.vtable.type_name)(), ref_count: x.strong.get() }
}

/// Every list a tracked box can be on: the generations, the permanent one, the saved
/// garbage.
const ALL_LISTS: std::ops::RangeInclusive<usize> = 0..=PERMANENT + 1;

/// The tracked values of generation `generation` (3 is the permanent generation), or of
/// all of them (the permanent generation and the [`garbage`] included) with `None`.
pub fn get_objects(generation: Option<usize>) -> Vec<ObjectInfo> {
    STATE.with(|s| {
        s.init();
        let gens: Vec<usize> = match generation {
            Some(g) => vec![g.min(PERMANENT)],
            None => ALL_LISTS.collect(),
        };
        gens.into_iter().flat_map(|g| s.members(g)).map(info).collect()
    })
}

/// The values `handle`'s value holds handles to.
pub fn get_referents<T: super::Trace + 'static>(handle: &super::Handle<T>) -> Vec<ObjectInfo> {
    let mut v = Vec::new();
    trace(handle.ptr.cast(), |c| v.push(info(c)));
    v
}

/// The tracked values that hold a handle to `handle`'s value (a walk of every list).
pub fn get_referrers<T: super::Trace + 'static>(handle: &super::Handle<T>) -> Vec<ObjectInfo> {
    let target: NonNull<Header> = handle.ptr.cast();
    let all: Vec<NonNull<Header>> = STATE.with(|s| {
        s.init();
        ALL_LISTS.flat_map(|g| s.members(g)).collect()
    });
    all.into_iter()
        .filter(|&h| {
            let mut holds = false;
            trace(h, |c| holds |= c == target);
            holds
        })
        .map(info)
        .collect()
}

/// Whether the collector ran `handle`'s finalizer (Python's `gc.is_finalized`).
pub fn is_finalized<T: super::Trace + 'static>(handle: &super::Handle<T>) -> bool {
    hdr_ref(handle.ptr.cast()).has(super::FINALIZED)
}

/// The unreachable values kept because of [`DEBUG_SAVEALL`].
pub fn garbage() -> Vec<ObjectInfo> {
    STATE.with(|s| {
        s.init();
        s.members(PERMANENT + 1).into_iter().map(info).collect()
    })
}

/// Lets go of the values [`garbage`] kept (like `del gc.garbage[:]`): they go back to the
/// oldest generation, and the next collection frees them unless `DEBUG_SAVEALL` keeps
/// them again.
pub fn clear_garbage() {
    while let Some(h) = STATE.with(|s| {
        s.init();
        let l = s.saved.first()?;
        // SAFETY: only boxes are on the saved list.
        let h = unsafe { Header::of_link(l) };
        // SAFETY: `l` is on the saved list.
        unsafe { List::unlink(l) };
        s.link(h, GENERATIONS - 1);
        Some(h)
    }) {
        let x = hdr_ref(h);
        x.clear(HELD);
        let n = x.strong.get() - 1;
        x.strong.set(n);
        if n == 0 {
            release(h, destroy_erased);
        }
    }
}

/// Sets the debug flags ([`DEBUG_SAVEALL`], [`DEBUG_STATS`]).
pub fn set_debug(flags: u32) {
    STATE.with(|s| s.debug.set(flags));
}

/// The debug flags.
pub fn get_debug() -> u32 {
    STATE.with(|s| s.debug.get())
}

/// Per-generation statistics.
pub fn get_stats() -> [GenerationStats; GENERATIONS] {
    STATE.with(|s| [s.stats[0].get(), s.stats[1].get(), s.stats[2].get()])
}

/// Adds a function called at the start and the end of every collection (Python's
/// `gc.callbacks`).
pub fn add_callback(f: Callback) {
    CALLBACKS.with(|c| c.borrow_mut().push(f));
}

/// Removes every callback.
pub fn clear_callbacks() {
    CALLBACKS.with(|c| c.borrow_mut().clear());
}
