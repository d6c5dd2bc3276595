//! The cycle collector, with Python's `gc` module API and meanings.
//!
//! # Algorithm (CPython's)
//! Tracked boxes sit on intrusive per-generation lists (0, 1, 2, and a permanent list
//! for frozen boxes). Collecting generation `g` takes generations `0..=g`:
//! 1. copy each box's strong count into `gc_refs`;
//! 2. for each box, subtract one from `gc_refs` of every box in the set it holds a handle
//!    to: what stays above zero is referenced from outside the set;
//! 3. those are reachable; so is everything they reach (a worklist, no recursion);
//! 4. the rest is cyclic garbage. Survivors move to the next generation.
//!
//! Garbage is destroyed in phases: finalizers run (once per value), reachability is
//! re-checked (a finalizer may resurrect), weak handles are cleared, then every value is
//! dropped while the collector holds one extra reference to each box (so no box is freed
//! while a sibling's `Drop` may still use it), then the boxes are freed. A panic in a
//! `Drop` or a finalizer is caught, the collection completes, then the panic resumes.
//!
//! # When
//! The count of generation 0 is allocations minus deallocations of handles since its last
//! collection; passing `threshold0` (700) collects. Each collection of generation `g`
//! adds one to the count of `g + 1`, whose threshold (10) collects it in turn. A full
//! collection also waits until the boxes that survived into generation 2 since the last
//! full one exceed a quarter of those there (the long-lived guard). A threshold of 0
//! disables automatic collection. Everything is per thread: handles are not `Send`.

use super::{
    DropState, Header, Tracer, COLLECTING, FINALIZED, GARBAGE, LINKED, REACHABLE, VALUE_DROPPED, WEAK_CLEARED,
};
use std::cell::{Cell, RefCell};
use std::ptr::NonNull;

/// `set_debug` flag: keep unreachable values in [`garbage`] instead of freeing them.
pub const DEBUG_SAVEALL: u32 = 32;
/// `set_debug` flag: print a line per collection to stderr.
pub const DEBUG_STATS: u32 = 1;

const GENERATIONS: usize = 3;
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

struct State {
    heads: [Cell<*mut Header>; 4],
    lens: [Cell<usize>; 4],
    count0: Cell<isize>,
    counts: [Cell<usize>; GENERATIONS],
    thresholds: [Cell<usize>; GENERATIONS],
    enabled: Cell<bool>,
    collecting: Cell<bool>,
    debug: Cell<u32>,
    stats: [Cell<GenerationStats>; GENERATIONS],
    long_lived_total: Cell<usize>,
    long_lived_pending: Cell<usize>,
    drops: DropState,
    garbage: RefCell<Vec<NonNull<Header>>>,
    callbacks: RefCell<Vec<Callback>>,
}

/// A collection callback.
pub type Callback = fn(Phase, CallbackInfo);

thread_local! {
    static STATE: State = const {
        State {
            heads: [const { Cell::new(std::ptr::null_mut()) }; 4],
            lens: [const { Cell::new(0) }; 4],
            count0: Cell::new(0),
            counts: [const { Cell::new(0) }; GENERATIONS],
            thresholds: [Cell::new(700), Cell::new(10), Cell::new(10)],
            enabled: Cell::new(true),
            collecting: Cell::new(false),
            debug: Cell::new(0),
            stats: [const { Cell::new(GenerationStats { collections: 0, collected: 0, uncollectable: 0 }) }; GENERATIONS],
            long_lived_total: Cell::new(0),
            long_lived_pending: Cell::new(0),
            drops: DropState::new(),
            garbage: RefCell::new(Vec::new()),
            callbacks: RefCell::new(Vec::new()),
        }
    };
}

fn hdr<'a>(h: NonNull<Header>) -> &'a Header {
    // SAFETY: callers pass headers of live boxes (tracked, or being destroyed by us).
    unsafe { &*h.as_ptr() }
}

impl State {
    fn link(&self, h: NonNull<Header>, g: usize) {
        let head = self.heads[g].get();
        let x = hdr(h);
        x.prev.set(std::ptr::null_mut());
        x.next.set(head);
        if let Some(old) = NonNull::new(head) {
            hdr(old).prev.set(h.as_ptr());
        }
        self.heads[g].set(h.as_ptr());
        self.lens[g].set(self.lens[g].get() + 1);
        x.generation.set(g as u8);
        x.set(LINKED);
    }

    fn unlink(&self, h: NonNull<Header>) {
        let x = hdr(h);
        if !x.has(LINKED) {
            return;
        }
        let g = x.generation.get() as usize;
        let (p, n) = (x.prev.get(), x.next.get());
        match NonNull::new(p) {
            Some(p) => hdr(p).next.set(n),
            None => self.heads[g].set(n),
        }
        if let Some(n) = NonNull::new(n) {
            hdr(n).prev.set(p);
        }
        self.lens[g].set(self.lens[g].get() - 1);
        x.clear(LINKED);
    }

    fn members(&self, g: usize) -> Vec<NonNull<Header>> {
        let mut v = Vec::with_capacity(self.lens[g].get());
        let mut p = self.heads[g].get();
        while let Some(h) = NonNull::new(p) {
            v.push(h);
            p = hdr(h).next.get();
        }
        v
    }
}

/// Tracks a new box in generation 0.
pub(super) fn track(h: NonNull<Header>) {
    STATE.with(|s| s.link(h, 0));
}

/// Counts an allocation and collects when generation 0's threshold is passed.
pub(super) fn on_allocation() {
    let due = STATE.with(|s| {
        s.count0.set(s.count0.get() + 1);
        let t0 = s.thresholds[0].get();
        s.enabled.get() && !s.collecting.get() && t0 != 0 && s.count0.get() > t0 as isize
    });
    if due {
        collect_generations();
    }
}

/// The strong count of a box reached zero: drop its value and free it (deferred when
/// drops nest deeply).
pub(super) fn release(h: NonNull<Header>) {
    STATE.with(|s| s.drops.run(h, |b| destroy(s, b)));
}

fn destroy(s: &State, h: NonNull<Header>) {
    let x = hdr(h);
    if x.has(LINKED) {
        s.unlink(h);
        s.count0.set(s.count0.get() - 1);
    }
    if !x.has(VALUE_DROPPED) {
        x.set(VALUE_DROPPED);
        // SAFETY: the value is live and dropped once (the flag is set first).
        unsafe { (x.vtable.drop_value)(h) };
    }
    if x.weak.get() == 0 && x.strong.get() == 0 {
        // SAFETY: nothing refers to the box any more.
        unsafe { (x.vtable.dealloc)(h) };
    }
}

fn trace(h: NonNull<Header>, mut f: impl FnMut(NonNull<Header>)) {
    let x = hdr(h);
    if x.has(VALUE_DROPPED) {
        return;
    }
    let mut visit = |c: NonNull<Header>| f(c);
    let mut t = Tracer::new(&mut visit);
    // SAFETY: the box is live and its value not dropped.
    unsafe { (x.vtable.trace)(h, &mut t) };
}

/// Marks `set` (flag COLLECTING) reachable or not: copy counts, subtract internal
/// references, propagate from what stays above zero. Returns the unreachable ones.
fn find_unreachable(set: &[NonNull<Header>]) -> Vec<NonNull<Header>> {
    for &h in set {
        let x = hdr(h);
        x.gc_refs.set(x.strong.get() as isize);
        x.set(COLLECTING);
        x.clear(REACHABLE);
    }
    for &h in set {
        trace(h, |c| {
            let y = hdr(c);
            if y.has(COLLECTING) {
                y.gc_refs.set(y.gc_refs.get() - 1);
            }
        });
    }
    let mut work: Vec<NonNull<Header>> = set.iter().copied().filter(|&h| hdr(h).gc_refs.get() > 0).collect();
    work.iter().for_each(|&h| hdr(h).set(REACHABLE));
    while let Some(h) = work.pop() {
        trace(h, |c| {
            let y = hdr(c);
            if y.has(COLLECTING) && !y.has(REACHABLE) {
                y.set(REACHABLE);
                work.push(c);
            }
        });
    }
    let unreachable = set.iter().copied().filter(|&h| !hdr(h).has(REACHABLE)).collect();
    for &h in set {
        hdr(h).clear(COLLECTING | REACHABLE);
    }
    unreachable
}

/// Collects generation `g` (and the younger ones). Returns the unreachable boxes found.
fn collect_generation(s: &State, g: usize) -> (usize, usize, Option<Box<dyn std::any::Any + Send>>) {
    let set: Vec<NonNull<Header>> = (0..=g).flat_map(|i| s.members(i)).collect();
    let mut unreachable = find_unreachable(&set);
    let older = (g + 1).min(GENERATIONS - 1);
    // Survivors move on; garbage leaves the lists.
    unreachable.iter().for_each(|&h| hdr(h).set(GARBAGE));
    for &h in &set {
        s.unlink(h);
        if !hdr(h).has(GARBAGE) {
            s.link(h, older);
        }
    }
    if g == 1 {
        s.long_lived_pending.set(s.long_lived_pending.get() + set.len() - unreachable.len());
    }
    let mut panic = None;
    // Finalizers, then the resurrection check.
    let mut ran_finalizer = false;
    for &h in &unreachable {
        let x = hdr(h);
        if !x.has(FINALIZED) {
            x.set(FINALIZED);
            ran_finalizer = true;
            // SAFETY: the value is live (garbage is not dropped yet).
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (x.vtable.finalize)(h) }));
            panic = panic.or(r.err());
        }
    }
    if ran_finalizer {
        let still = find_unreachable(&unreachable);
        unreachable.iter().for_each(|&h| hdr(h).clear(GARBAGE));
        still.iter().for_each(|&h| hdr(h).set(GARBAGE));
        for &h in &unreachable {
            if !hdr(h).has(GARBAGE) {
                s.link(h, older);
            }
        }
        unreachable = still;
    }
    let n = unreachable.len();
    if s.debug.get() & DEBUG_SAVEALL != 0 {
        for &h in &unreachable {
            let x = hdr(h);
            x.strong.set(x.strong.get() + 1);
        }
        s.garbage.borrow_mut().extend(unreachable);
        return (0, n, panic);
    }
    // Clear weak handles, hold every box, drop every value, then free.
    for &h in &unreachable {
        let x = hdr(h);
        x.set(WEAK_CLEARED);
        x.strong.set(x.strong.get() + 1);
    }
    for &h in &unreachable {
        let x = hdr(h);
        if !x.has(VALUE_DROPPED) {
            x.set(VALUE_DROPPED);
            // SAFETY: the value is live and dropped once; the collector's extra count
            // keeps every garbage box allocated while values drop.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (x.vtable.drop_value)(h) }));
            panic = panic.or(r.err());
        }
    }
    for &h in &unreachable {
        let x = hdr(h);
        x.strong.set(x.strong.get() - 1);
        s.count0.set(s.count0.get() - 1);
        if x.strong.get() == 0 && x.weak.get() == 0 {
            // SAFETY: value dropped, nothing refers to the box.
            unsafe { (x.vtable.dealloc)(h) };
        }
    }
    (n, 0, panic)
}

fn run_collection(g: usize) -> usize {
    let started = std::time::Instant::now();
    let (proceed, callbacks) = STATE.with(|s| {
        if s.collecting.get() {
            return (false, Vec::new());
        }
        s.collecting.set(true);
        (true, s.callbacks.borrow().clone())
    });
    if !proceed {
        return 0;
    }
    callbacks.iter().for_each(|cb| cb(Phase::Start, CallbackInfo { generation: g, collected: 0, uncollectable: 0 }));
    let (collected, uncollectable, panic) = STATE.with(|s| {
        let r = collect_generation(s, g);
        let mut st = s.stats[g].get();
        st.collections += 1;
        st.collected += r.0 as u64;
        st.uncollectable += r.1 as u64;
        s.stats[g].set(st);
        if g + 1 < GENERATIONS {
            s.counts[g + 1].set(s.counts[g + 1].get() + 1);
        }
        for i in 0..=g {
            s.counts[i].set(0);
        }
        s.count0.set(0);
        if g == GENERATIONS - 1 {
            s.long_lived_pending.set(0);
            s.long_lived_total.set(s.lens[GENERATIONS - 1].get());
        }
        s.collecting.set(false);
        if s.debug.get() & DEBUG_STATS != 0 {
            eprintln!("gc: collected generation {g}: {} unreachable, {} kept", r.0, r.1);
        }
        r
    });
    tracing::debug!(target: "heapsweep::gc", generation = g, collected, uncollectable, duration_us = started.elapsed().as_micros() as u64, "collection");
    callbacks.iter().for_each(|cb| cb(Phase::Stop, CallbackInfo { generation: g, collected, uncollectable }));
    if let Some(p) = panic {
        std::panic::resume_unwind(p);
    }
    collected + uncollectable
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
    });
}

/// Turns automatic collection on.
pub fn enable() {
    STATE.with(|s| s.enabled.set(true));
}

/// Turns automatic collection off ([`collect`] still works).
pub fn disable() {
    STATE.with(|s| s.enabled.set(false));
}

/// Whether automatic collection is on.
pub fn is_enabled() -> bool {
    STATE.with(|s| s.enabled.get())
}

/// Moves every tracked box to the permanent generation: never collected until
/// [`unfreeze`] (as before a `fork`, to keep pages shared).
pub fn freeze() {
    STATE.with(|s| {
        for g in 0..GENERATIONS {
            for h in s.members(g) {
                s.unlink(h);
                s.link(h, PERMANENT);
            }
        }
    });
}

/// Moves the permanent generation back to the oldest generation.
pub fn unfreeze() {
    STATE.with(|s| {
        for h in s.members(PERMANENT) {
            s.unlink(h);
            s.link(h, GENERATIONS - 1);
        }
    });
}

/// Boxes in the permanent generation.
pub fn get_freeze_count() -> usize {
    STATE.with(|s| s.lens[PERMANENT].get())
}

fn info(h: NonNull<Header>) -> ObjectInfo {
    let x = hdr(h);
    ObjectInfo { id: h.as_ptr() as usize, type_name: (x.vtable.type_name)(), ref_count: x.strong.get() }
}

/// The tracked values of generation `generation`, or of all generations (the permanent
/// one included) with `None`.
pub fn get_objects(generation: Option<usize>) -> Vec<ObjectInfo> {
    STATE.with(|s| {
        let gens: Vec<usize> = match generation {
            Some(g) => vec![g.min(PERMANENT)],
            None => (0..=PERMANENT).collect(),
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

/// The tracked values that hold a handle to `handle`'s value.
pub fn get_referrers<T: super::Trace + 'static>(handle: &super::Handle<T>) -> Vec<ObjectInfo> {
    let target: NonNull<Header> = handle.ptr.cast();
    STATE.with(|s| {
        (0..=PERMANENT)
            .flat_map(|g| s.members(g))
            .filter(|&h| {
                let mut holds = false;
                trace(h, |c| holds |= c == target);
                holds
            })
            .map(info)
            .collect()
    })
}

/// The unreachable values kept because of [`DEBUG_SAVEALL`].
pub fn garbage() -> Vec<ObjectInfo> {
    STATE.with(|s| s.garbage.borrow().iter().map(|&h| info(h)).collect())
}

/// Lets go of the values [`garbage`] kept (like `del gc.garbage[:]`): they go back to the
/// oldest generation, and the next collection frees them unless `DEBUG_SAVEALL` keeps
/// them again.
pub fn clear_garbage() {
    let kept: Vec<NonNull<Header>> = STATE.with(|s| std::mem::take(&mut *s.garbage.borrow_mut()));
    for h in kept {
        let x = hdr(h);
        x.clear(GARBAGE);
        STATE.with(|s| s.link(h, GENERATIONS - 1));
        x.strong.set(x.strong.get() - 1);
        if x.strong.get() == 0 {
            release(h);
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
    STATE.with(|s| s.callbacks.borrow_mut().push(f));
}

/// Removes every callback.
pub fn clear_callbacks() {
    STATE.with(|s| s.callbacks.borrow_mut().clear());
}
