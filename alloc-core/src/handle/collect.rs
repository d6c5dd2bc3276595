//! One collection: CPython's `deduce_unreachable` and the destruction of the garbage.
//!
//! # Algorithm
//! The boxes of the collected generations are on one list, `young`; a box's `label`
//! says whether it is in the set (see [`label`]), and its `gc_refs` is 0:
//! 1. `subtract_refs`: every box traces its handles; each one pointing into the set adds
//!    one to its target's `gc_refs`. A box whose strong count exceeds that is referenced
//!    from outside. (CPython copies the counts first, in an `update_refs` pass; counting
//!    up from 0 saves that pass over every box, about a fifth of a collection's time.)
//! 2. `move_unreachable`: one forward walk of `young`. A box referenced from outside is
//!    reachable: it traces its handles and revives their targets (`REVIVED`, or back
//!    from the `unreachable` list to the end of `young`, where the walk will reach it),
//!    then takes the older generation's label (promoted, and out of the set: scanned) and
//!    `gc_refs = 0`. Any other box moves, tentatively, to `unreachable`. The list itself
//!    is the work queue: no recursion, no allocation.
//!
//! Tracing is one type-erased call per box and pass (two passes for a reachable box, one
//! for garbage); the visits inside are inlined into each type's `trace` (see
//! [`Tracer`]).
//!
//! Weak handles into the garbage are cleared as it is found. If a finalizer is due, the
//! garbage is held (one extra strong count each, flag `HELD`), finalized (once per
//! value) and re-checked (a finalizer may resurrect: `deduce_unreachable` again, on the
//! garbage only). Then [`delete_garbage`] drops the values one box at a time; each box is
//! freed once no handle refers to it (see there why no `Drop` can reach freed memory).
//! For garbage without finalizers that is three walks in all: two over the collected
//! generations and one over the garbage.
//!
//! # Panics
//! A panic in a `Drop` or a finalizer is caught; the collection completes and the first
//! panic is returned to the caller, which resumes it. A panic in a `Trace` impl unwinds
//! out of the collection: the caller's guard ([`recover`]) puts every box back on a
//! generation with its label, count and flags reset (garbage held at that moment leaks).

use super::gc::{State, GENERATIONS};
use super::list::{Link, List};
use super::{
    hdr_ref, Header, Tracer, FINALIZED, HAS_FINALIZER, HELD, LINKED, UNREACHABLE, VALUE_DROPPED, WEAK_CLEARED,
};
use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

/// A caught panic, resumed after the collection.
pub(super) type Panic = Box<dyn Any + Send>;

/// What one collection found.
#[derive(Default)]
pub(super) struct Outcome {
    /// Garbage boxes dropped and freed.
    pub(super) collected: usize,
    /// Garbage boxes kept (`DEBUG_SAVEALL`).
    pub(super) uncollectable: usize,
    /// The first panic of a `Drop` or a finalizer.
    pub(super) panic: Option<Panic>,
}

/// Labels: the list a box is on, kept in its header so that a collection knows which
/// boxes are in its set without a pass to mark them (CPython's `update_refs` pass). A
/// collection's set is a mask of labels. Generation 2 has two labels that alternate at
/// each full collection: its survivors take the other one, which both promotes them and
/// marks them scanned. Labels are below 8, so a mask fits in a byte.
pub(super) mod label {
    pub(crate) const GEN0: u8 = 0;
    pub(crate) const GEN1: u8 = 1;
    pub(crate) const GEN2_A: u8 = 2;
    pub(crate) const PERMANENT: u8 = 3;
    pub(crate) const SAVED: u8 = 4;
    /// On no list (destroyed garbage kept by a handle that escaped).
    pub(crate) const NONE: u8 = 5;
    pub(crate) const GEN2_B: u8 = 6;
    /// Garbage being re-checked after its finalizers ran.
    pub(crate) const RECHECK: u8 = 7;
}

/// `gc_refs` of a box `move_unreachable` knows to be reachable but has not scanned yet
/// (CPython sets `gc_refs = 1`).
const REVIVED: isize = isize::MIN;

#[inline]
fn is_member(members: u8, label: u8) -> bool {
    (members >> label) & 1 != 0
}

#[inline]
fn header_of(l: NonNull<Link>) -> NonNull<Header> {
    // SAFETY: only boxes' links are on the lists walked here (sentinels end the walks).
    unsafe { Header::of_link(l) }
}

/// The `subtract_refs` visit: one more reference from inside the set. (`gc_refs` counts
/// those up from 0 instead of down from the strong count, so it needs no initializing
/// pass: it is 0 outside collections.)
#[inline]
pub(super) fn visit_subtract(members: u8, c: NonNull<Header>) {
    let y = hdr_ref(c);
    if is_member(members, y.label.get()) {
        y.gc_refs.set(y.gc_refs.get() + 1);
    }
}

/// What the `move_unreachable` visit needs: the list it walks, the set, and how many
/// boxes it brought back from `unreachable`.
pub(super) struct Revive<'a> {
    young: &'a List,
    members: u8,
    revived: Cell<usize>,
}

/// The `move_unreachable` visit: `c` is referred to by a reachable box.
#[inline]
pub(super) fn visit_reachable(r: &Revive<'_>, c: NonNull<Header>) {
    let y = hdr_ref(c);
    if !is_member(r.members, y.label.get()) {
        return; // outside the set, or already scanned (relabelled)
    }
    let f = y.flags.get();
    if f & UNREACHABLE != 0 {
        let l = Header::link_ptr(c);
        // SAFETY: `c` is on the unreachable list; `young` is initialized.
        unsafe {
            List::unlink(l);
            r.young.push_back(l);
        }
        y.flags.set(f & !(UNREACHABLE | WEAK_CLEARED));
        r.revived.set(r.revived.get() + 1);
    }
    y.gc_refs.set(REVIVED);
}

#[inline]
fn trace(h: NonNull<Header>, t: &mut Tracer<'_>) {
    let x = hdr_ref(h);
    if !x.has(VALUE_DROPPED) {
        // SAFETY: the box is live (on a list) and its value not dropped.
        unsafe { (x.vtable.trace)(h, t) };
    }
}

/// What [`deduce_unreachable`] found.
pub(super) struct Deduced {
    /// Boxes left on `young` (reachable from outside the set).
    pub(super) reachable: usize,
    /// Boxes moved to `unreachable`.
    pub(super) unreachable: usize,
    /// Whether a box with a finalizer yet to run went to `unreachable` (perhaps to come
    /// back: conservative).
    pub(super) finalizable: bool,
}

/// Splits `young` (exactly the boxes whose label is in `members`) into what is reachable
/// from outside it (left on `young`, relabelled `survivor`, `gc_refs` back to 0) and what
/// is not (moved to `unreachable`, `UNREACHABLE | WEAK_CLEARED` set: weak handles into
/// garbage stop upgrading at once). `survivor` must not be in `members`.
pub(super) fn deduce_unreachable(young: &List, unreachable: &List, members: u8, survivor: u8) -> Deduced {
    debug_assert!(!is_member(members, survivor));
    let mut t = Tracer::subtract(members);
    young.for_each(|l| trace(header_of(l), &mut t));
    move_unreachable(young, unreachable, members, survivor)
}

fn move_unreachable(young: &List, unreachable: &List, members: u8, survivor: u8) -> Deduced {
    let revive = Revive { young, members, revived: Cell::new(0) };
    let mut t = Tracer::reachable(&revive);
    let mut p = young.first();
    let mut d = Deduced { reachable: 0, unreachable: 0, finalizable: false };
    while let Some(l) = p {
        let h = header_of(l);
        let x = hdr_ref(h);
        let inside = x.gc_refs.get();
        if inside == REVIVED || x.strong.get() as isize - isize::from(x.has(HELD)) > inside {
            trace(h, &mut t);
            x.gc_refs.set(0);
            x.label.set(survivor);
            d.reachable += 1;
            // Read after tracing, which may have appended to `young`.
            p = next_of(young, l);
        } else {
            p = next_of(young, l);
            // SAFETY: `l` is on `young`; `unreachable` is initialized.
            unsafe {
                List::unlink(l);
                unreachable.push_back(l);
            }
            x.set(UNREACHABLE | WEAK_CLEARED);
            d.finalizable |= x.flags.get() & (HAS_FINALIZER | FINALIZED) == HAS_FINALIZER;
            d.unreachable += 1;
        }
    }
    d.unreachable -= revive.revived.get();
    d
}

fn next_of(list: &List, l: NonNull<Link>) -> Option<NonNull<Link>> {
    // SAFETY: `l` is a live link on `list`.
    let n = unsafe { l.as_ref().next.get() };
    if list.is_end(n) {
        None
    } else {
        NonNull::new(n)
    }
}

/// Collects generation `g` with the younger ones (merged into it here).
pub(super) fn collect_generation(s: &State, g: usize) -> Outcome {
    for i in 0..g {
        s.gens[i].append_to(&s.gens[g]);
    }
    let older = (g + 1).min(GENERATIONS - 1);
    let (members, survivor) = s.labels_for(g);
    let d = deduce_unreachable(&s.gens[g], &s.unreachable, members, survivor);
    if g == GENERATIONS - 1 {
        s.gen2_label.set(survivor);
    }
    s.gens[g].append_to(&s.gens[older]);
    let mut out = Outcome::default();
    let mut survivors = d.reachable;
    let mut found = d.unreachable;
    if d.finalizable {
        let resurrected = finalize_and_recheck(s, older, &mut out);
        survivors += resurrected;
        found -= resurrected;
    }
    if g == 1 {
        s.long_lived_pending.set(s.long_lived_pending.get() + survivors);
    }
    if g == GENERATIONS - 1 {
        s.long_lived_pending.set(0);
        s.long_lived_total.set(survivors);
    }
    if s.debug.get() & super::gc::DEBUG_SAVEALL != 0 {
        s.unreachable.for_each(|l| {
            let x = hdr_ref(header_of(l));
            if !x.has(HELD) {
                x.strong.set(x.strong.get() + 1);
            }
            x.set(HELD);
            x.clear(UNREACHABLE);
            x.gc_refs.set(0);
            x.label.set(label::SAVED);
        });
        s.unreachable.append_to(&s.saved);
        out.uncollectable = found;
        return out;
    }
    delete_garbage(&s.unreachable, &mut out);
    out.collected = found;
    out
}

/// Holds the garbage (one extra strong count each, flag `HELD`: nothing a finalizer does
/// frees a box), runs the finalizers (once per value), then re-checks reachability and
/// moves what they resurrected to `older`. Returns how many boxes were resurrected.
fn finalize_and_recheck(s: &State, older: usize, out: &mut Outcome) -> usize {
    // Finalizers see the garbage intact, weak handles included.
    s.unreachable.for_each(|l| {
        let x = hdr_ref(header_of(l));
        x.strong.set(x.strong.get() + 1);
        x.set(HELD);
        x.clear(WEAK_CLEARED | UNREACHABLE);
        x.gc_refs.set(0);
        x.label.set(label::RECHECK);
    });
    let mut ran = false;
    s.unreachable.for_each(|l| {
        let h = header_of(l);
        let x = hdr_ref(h);
        if x.flags.get() & (HAS_FINALIZER | FINALIZED) == HAS_FINALIZER {
            x.set(FINALIZED);
            ran = true;
            // SAFETY: the value is live (garbage is not dropped yet) and the box held.
            let r = catch_unwind(AssertUnwindSafe(|| unsafe { (x.vtable.finalize)(h) }));
            if let Err(p) = r {
                out.panic.get_or_insert(p);
            }
        }
    });
    if !ran {
        s.unreachable.for_each(|l| hdr_ref(header_of(l)).set(WEAK_CLEARED));
        return 0;
    }
    let d = deduce_unreachable(&s.unreachable, &s.still, 1 << label::RECHECK, s.list_label(older));
    s.unreachable.for_each(|l| {
        let x = hdr_ref(header_of(l));
        x.clear(HELD);
        // Reachable from outside the garbage, so referenced by more than our hold.
        x.strong.set(x.strong.get() - 1);
    });
    s.unreachable.append_to(&s.gens[older]);
    s.still.append_to(&s.unreachable);
    d.reachable
}

/// Destroys the garbage, CPython's `delete_garbage` with "drop the value" for `tp_clear`:
/// take the first box off the list, hold it, drop its value, let go of it (freeing it if
/// nothing else refers to it). Dropping a value drops the handles it holds, so its
/// siblings' counts fall and those reaching zero are released at once (and taken off the
/// list) by the ordinary `Handle` drop: a box is only freed once no handle refers to it,
/// so no `Drop` can reach freed memory (a dropped value panics on deref). Weak handles
/// into the garbage were cleared when it was found. A panicking `Drop` is caught and the
/// walk goes on.
fn delete_garbage(garbage: &List, out: &mut Outcome) {
    let current: Cell<Option<NonNull<Header>>> = Cell::new(None);
    loop {
        let r = catch_unwind(AssertUnwindSafe(|| {
            while let Some(l) = garbage.first() {
                let h = header_of(l);
                let x = hdr_ref(h);
                if !x.has(HELD) {
                    x.strong.set(x.strong.get() + 1);
                }
                x.clear(HELD | LINKED | UNREACHABLE);
                x.label.set(label::NONE);
                // SAFETY: `l` is on `garbage`.
                unsafe { List::unlink(l) };
                current.set(Some(h));
                if !x.has(VALUE_DROPPED) {
                    x.set(VALUE_DROPPED);
                    // SAFETY: the value is live and dropped once (flag set first); our
                    // hold keeps the box allocated meanwhile.
                    unsafe { (x.vtable.drop_value)(h) };
                }
                current.set(None);
                let_go(h);
            }
        }));
        if let Some(h) = current.take() {
            let_go(h);
        }
        match r {
            Ok(()) => return,
            Err(p) => {
                out.panic.get_or_insert(p);
            }
        }
    }
}

/// Drops the collector's hold on a box whose value is dropped; frees it if that was the
/// last reference.
fn let_go(h: NonNull<Header>) {
    let x = hdr_ref(h);
    let n = x.strong.get() - 1;
    x.strong.set(n);
    if n == 0 && x.weak.get() == 0 {
        // SAFETY: the value is dropped, the box is on no list, nothing refers to it.
        unsafe { (x.vtable.dealloc)(h) };
    }
}

/// After a start callback or a `Trace` impl panicked mid-collection: put every box back
/// on a generation, with its label, `gc_refs` and flags as outside a collection. Boxes the
/// collector held keep the hold when it is their last count (they leak; nothing is freed
/// twice).
pub(super) fn recover(s: &State) {
    for list in [&s.unreachable, &s.still] {
        list.for_each(|l| {
            let x = hdr_ref(header_of(l));
            if x.has(HELD) && x.strong.get() > 1 {
                x.clear(HELD);
                x.strong.set(x.strong.get() - 1);
            }
        });
        list.append_to(&s.gens[GENERATIONS - 1]);
    }
    for (g, list) in s.gens.iter().enumerate() {
        let lab = s.list_label(g);
        list.for_each(|l| {
            let x = hdr_ref(header_of(l));
            x.clear(UNREACHABLE);
            x.gc_refs.set(0);
            x.label.set(lab);
        });
    }
}
