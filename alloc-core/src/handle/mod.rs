//! `Handle<T>`: a single-thread reference-counted pointer whose unreachable cycles are
//! found exactly by a generational cycle collector (CPython's algorithm; see [`gc`]).
//!
//! # Layout
//! A handle points to a `GcBox<T>`, one heap block (so an uncollected cycle also shows in
//! the leak check, as a cyclic leak):
//!
//! ```text
//! GcBox {
//!     header: Header { link: { next, prev }, strong, gc_refs, vtable, weak: u32, flags: u8, label: u8 },
//!     value: T,
//! }
//! ```
//!
//! `link` puts the box on its generation's list (`list`: intrusive, circular, doubly
//! linked, so linking and unlinking have no branch); the header also holds the counts, the
//! collector's scratch count, the label of its list and the box's type-erased
//! operations: 48 bytes before `T`, against `Rc`'s 16.
//!
//! # Cost
//! `Handle::new` is `Box::new` plus one thread-local access: link last on generation 0,
//! add one to generation 0's count and compare it with one precomputed trigger (which
//! folds in the threshold, `gc::disable` and a running collection). The last `drop`
//! unlinks, drops the value and frees the box, without a type-erased call. Measured
//! (`benches/benches/handles.rs`, BENCHMARKS.md): about 30 instructions more than
//! `Rc::new` + drop, 1.1x its time under HeapSweep.
//!
//! # Dropping
//! When the strong count reaches zero the value is dropped and the box freed (or kept for
//! the weak handles that still point to it). Nested drops deeper than `DROP_DEPTH` (32) are
//! deferred to a per-thread queue and run by the outermost drop, like CPython's
//! "trashcan": dropping a million-node chain uses a few frames of stack, not a million.
//!
//! # Dropped values
//! A value the collector dropped (garbage) can still be named by a handle a finalizer or
//! a `Drop` impl smuggled out; dereferencing such a handle panics, it is never undefined
//! behaviour. Weak handles into collected garbage fail to upgrade.
//!
//! # Checking the collector under Miri
//! The collector (`list`, `collect`, `gc`) uses no allocator internals, and its unit
//! tests (`handle/tests.rs`) scale down under `cfg(miri)`. The command:
//!
//! ```sh
//! cargo +nightly miri test -p alloc-core --lib handle::
//! ```
//!
//! It needs the crate's test-only `#[global_allocator]` (in `lib.rs`) left out under Miri
//! (`#[cfg(all(test, not(miri)))]`): HeapSweep itself maps memory in ways Miri does not
//! model, while the collector only needs `Box`. Not yet run in CI.

mod collect;
pub mod gc;
mod list;
#[cfg(test)]
mod tests;
mod trace;

pub use trace::Trace;

use list::Link;
use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

/// Nested drops beyond this depth are deferred (see the module note).
const DROP_DEPTH: u32 = 32;

/// Box flags. `UNREACHABLE` is set only while a collection runs (CPython's
/// `NEXT_MASK_UNREACHABLE`).
pub(crate) const UNREACHABLE: u8 = 2;
pub(crate) const VALUE_DROPPED: u8 = 4;
pub(crate) const FINALIZED: u8 = 8;
pub(crate) const WEAK_CLEARED: u8 = 16;
pub(crate) const LINKED: u8 = 32;
pub(crate) const HELD: u8 = 64;
pub(crate) const HAS_FINALIZER: u8 = 128;

/// Type-erased operations on a box.
pub(crate) struct Vtable {
    pub(crate) trace: unsafe fn(NonNull<Header>, &mut Tracer<'_>),
    pub(crate) drop_value: unsafe fn(NonNull<Header>),
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
    pub(crate) finalize: unsafe fn(NonNull<Header>),
    pub(crate) type_name: fn() -> &'static str,
}

/// The header of every box. Invariants:
/// - `strong` counts the live `Handle`s, plus one while the collector holds the box
///   (`HELD`: garbage being finalized, dropped or saved);
/// - `weak` counts the live `WeakHandle`s;
/// - `LINKED` is set iff `link` is on a list (a generation, the permanent or the saved
///   garbage list, or a collection's unreachable list);
/// - a box on a generation list has its value (`VALUE_DROPPED` clear); once
///   `VALUE_DROPPED` is set the value is never touched again;
/// - the box is freed when `strong == 0 && weak == 0` and the value is dropped;
/// - outside a collection, `gc_refs == 0`, and `label` names the list of a linked box;
/// - `vtable` is `Ops::<T>::VTABLE` or `FinalizeOps::<T>::VTABLE` for the `T` of the
///   `GcBox<T>` this header begins (set once, in `Handle::with_vtable`): a vtable
///   function given this header may cast it to that `GcBox<T>`.
///
/// 48 bytes: a box of a 16-byte value fills one 64-byte block (one cache line), which
/// matters for the collector's walks over millions of boxes.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) link: Link,
    pub(crate) strong: Cell<usize>,
    pub(crate) gc_refs: Cell<isize>,
    pub(crate) vtable: &'static Vtable,
    pub(crate) weak: Cell<u32>,
    pub(crate) flags: Cell<u8>,
    /// Which list the box is on, for the collector's membership test (see
    /// `collect::Labels`); 0 (generation 0) when new.
    pub(crate) label: Cell<u8>,
}

const _: () = assert!(std::mem::size_of::<Header>() == 48);

impl Header {
    #[inline]
    pub(crate) fn has(&self, f: u8) -> bool {
        self.flags.get() & f != 0
    }
    #[inline]
    pub(crate) fn set(&self, f: u8) {
        self.flags.set(self.flags.get() | f);
    }
    #[inline]
    pub(crate) fn clear(&self, f: u8) {
        self.flags.set(self.flags.get() & !f);
    }
    #[inline]
    pub(crate) fn link_ptr(h: NonNull<Header>) -> NonNull<Link> {
        h.cast()
    }
    /// The header of a box's link.
    ///
    /// # Safety
    /// - `l` is the link of a box (not a list's sentinel).
    #[inline]
    pub(crate) unsafe fn of_link(l: NonNull<Link>) -> NonNull<Header> {
        // `link` is the header's first field (`repr(C)`).
        l.cast()
    }
}

#[repr(C)]
struct GcBox<T> {
    header: Header,
    value: UnsafeCell<ManuallyDrop<T>>,
}

/// What a value does when the collector finds it in unreachable garbage, before any value
/// of that garbage is dropped (PEP 442 semantics): it runs at most once per value, may
/// look at the other garbage values (all still intact), and may resurrect the value by
/// storing a clone of a handle somewhere reachable.
pub trait Finalize {
    /// Called at most once, on a value about to be collected.
    fn finalize(&self) {}
}

/// What a [`Tracer`] does with each handle it is shown.
enum Visit<'a> {
    /// The collector's `subtract_refs`.
    /// The collector's `subtract_refs`: count the references from inside the set (the
    /// boxes whose label is in the mask).
    Subtract(u8),
    /// The collector's `move_unreachable`: revive what a reachable box refers to.
    Reachable(&'a collect::Revive<'a>),
    /// Anything else (`get_referents`, `get_referrers`).
    Each(&'a mut dyn FnMut(NonNull<Header>)),
}

/// Visits the handles a value holds; given to [`Trace::trace`]. The collector's own
/// visits are inlined into each type's `trace` (no call per handle).
pub struct Tracer<'a> {
    visit: Visit<'a>,
}

impl std::fmt::Debug for Tracer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tracer")
    }
}

impl<'a> Tracer<'a> {
    pub(crate) fn each(visit: &'a mut dyn FnMut(NonNull<Header>)) -> Self {
        Tracer { visit: Visit::Each(visit) }
    }

    fn subtract(members: u8) -> Self {
        Tracer { visit: Visit::Subtract(members) }
    }

    fn reachable(revive: &'a collect::Revive<'a>) -> Self {
        Tracer { visit: Visit::Reachable(revive) }
    }

    /// Reports one handle the traced value owns.
    #[inline]
    pub fn visit<T: Trace + 'static>(&mut self, handle: &Handle<T>) {
        let c: NonNull<Header> = handle.ptr.cast();
        match &mut self.visit {
            Visit::Subtract(members) => collect::visit_subtract(*members, c),
            Visit::Reachable(revive) => collect::visit_reachable(revive, c),
            Visit::Each(f) => f(c),
        }
    }
}

/// A reference-counted pointer to a `T`, like `Rc<T>`, whose cycles the collector frees.
/// Not `Send`: handles, their counts and the collector belong to one thread.
pub struct Handle<T: Trace + 'static> {
    ptr: NonNull<GcBox<T>>,
    _not_send: PhantomData<*const T>,
}

/// A weak pointer to a handle's value, like `std::rc::Weak`.
pub struct WeakHandle<T: Trace + 'static> {
    ptr: NonNull<GcBox<T>>,
    _not_send: PhantomData<*const T>,
}

struct Ops<T>(PhantomData<T>);

impl<T: Trace + 'static> Ops<T> {
    const VTABLE: Vtable = Vtable {
        trace: Self::trace,
        drop_value: Self::drop_value,
        dealloc: Self::dealloc,
        finalize: Self::finalize_none,
        type_name: std::any::type_name::<T>,
    };

    /// # Safety
    /// - `h` is the header of a live (allocated) `GcBox<T>`, for this `T`.
    /// - Its value is not dropped (`VALUE_DROPPED` clear), and nobody holds a `&mut` to it
    ///   (handles give out only `&T`).
    unsafe fn trace(h: NonNull<Header>, t: &mut Tracer<'_>) {
        // SAFETY:
        // - `h` heads a live `GcBox<T>` (caller, first bullet): the cast pointer is valid
        //   for reads, and `value` is that box's field.
        // - The value is initialized (caller, second bullet), so `&*value.get()` (through
        //   `ManuallyDrop`) is a valid `&T`; it is shared, alongside the handles' own
        //   `&T`s, and no `&mut T` exists (second bullet).
        unsafe { (*(*h.cast::<GcBox<T>>().as_ptr()).value.get()).trace(t) }
    }

    /// # Safety
    /// - `h` is the header of a live (allocated) `GcBox<T>`, for this `T`.
    /// - Its value is not dropped yet, and this is the one drop: the caller sets
    ///   `VALUE_DROPPED` (before or right after the call) so no other drop follows.
    /// - No reference to the value is used during or after the call: no strong handle can
    ///   reach it (`strong == 0`, or the collector holds the box as garbage).
    unsafe fn drop_value(h: NonNull<Header>) {
        // SAFETY:
        // - `h` heads a live `GcBox<T>` (caller, first bullet): the cast pointer is valid,
        //   and `value` is that box's field.
        // - `&mut *value.get()` is unique: no other reference to the value is used while
        //   it lives (caller, third bullet); the header is not part of it.
        // - `ManuallyDrop::drop`: the value is initialized and dropped only this once
        //   (caller, second bullet), and never used afterwards (third bullet).
        unsafe { ManuallyDrop::drop(&mut *(*h.cast::<GcBox<T>>().as_ptr()).value.get()) }
    }

    /// # Safety
    /// - `h` is the header of a `GcBox<T>` (for this `T`) allocated by
    ///   `Handle::with_vtable` through `Box::new`, and not freed yet.
    /// - Nothing refers to the box any more: `strong == 0` and no collector hold,
    ///   `weak == 0`, and it is on no list (unlinked).
    /// - Its value was dropped (`VALUE_DROPPED` set).
    unsafe fn dealloc(h: NonNull<Header>) {
        // SAFETY:
        // - `Box::from_raw`: the pointer is the one `Box::leak` gave for a
        //   `Box<GcBox<T>>` (first bullet), with the same type, so the same layout, and it
        //   is not freed yet.
        // - Nothing else uses the box afterwards (second bullet), so freeing it leaves no
        //   dangling user.
        // - Dropping the `Box` drops the `GcBox<T>`: the header (no drop glue) and a
        //   `ManuallyDrop<T>`, which does not drop the value again (third bullet).
        drop(unsafe { Box::from_raw(h.cast::<GcBox<T>>().as_ptr()) });
    }

    /// The `finalize` entry of a value without a finalizer: does nothing.
    ///
    /// # Safety
    /// - None of its own; it has the signature, and the callers' duties, of
    ///   `FinalizeOps::finalize`.
    unsafe fn finalize_none(_: NonNull<Header>) {}
}

struct FinalizeOps<T>(PhantomData<T>);

impl<T: Trace + Finalize + 'static> FinalizeOps<T> {
    const VTABLE: Vtable = Vtable { finalize: Self::finalize, ..Ops::<T>::VTABLE };

    /// # Safety
    /// - `h` is the header of a live (allocated) `GcBox<T>`, for this `T`.
    /// - Its value is not dropped (`VALUE_DROPPED` clear), and nobody holds a `&mut` to it
    ///   (handles give out only `&T`).
    unsafe fn finalize(h: NonNull<Header>) {
        // SAFETY:
        // - `h` heads a live `GcBox<T>` (caller, first bullet): the cast pointer is valid
        //   for reads, and `value` is that box's field.
        // - The value is initialized (caller, second bullet), so `&*value.get()` is a valid
        //   `&T` for the call, shared alongside the handles' own `&T`s, and no `&mut T`
        //   exists (second bullet).
        unsafe { (*(*h.cast::<GcBox<T>>().as_ptr()).value.get()).finalize() }
    }
}

impl<T: Trace + 'static> Handle<T> {
    /// Allocates `value` and tracks it for cycle collection. May run a collection first
    /// (when generation 0's count passes its threshold).
    ///
    /// ```
    /// use alloc_core::Handle;
    /// let h = Handle::new(5u32);
    /// assert_eq!(*h, 5);
    /// assert_eq!(Handle::ref_count(&h), 1);
    /// ```
    #[inline]
    pub fn new(value: T) -> Self {
        Self::with_vtable(value, &Ops::<T>::VTABLE, 0)
    }

    #[inline]
    fn with_vtable(value: T, vtable: &'static Vtable, flags: u8) -> Self {
        let header = Header {
            link: Link::new(),
            strong: Cell::new(1),
            weak: Cell::new(0),
            gc_refs: Cell::new(0),
            flags: Cell::new(flags | LINKED),
            label: Cell::new(0),
            vtable,
        };
        let b = Box::new(GcBox { header, value: UnsafeCell::new(ManuallyDrop::new(value)) });
        let ptr = NonNull::from(Box::leak(b));
        gc::track(ptr.cast());
        Handle { ptr, _not_send: PhantomData }
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: a live handle keeps its box allocated (strong > 0).
        unsafe { &(*self.ptr.as_ptr()).header }
    }

    /// The number of strong handles to this value, like `sys.getrefcount` (less its own
    /// temporary reference) or `Rc::strong_count`.
    pub fn ref_count(this: &Self) -> usize {
        this.header().strong.get()
    }

    /// The number of weak handles to this value.
    pub fn weak_count(this: &Self) -> usize {
        this.header().weak.get() as usize
    }

    /// Whether two handles point to the same value.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.ptr == b.ptr
    }

    /// A weak handle to this value.
    pub fn downgrade(this: &Self) -> WeakHandle<T> {
        let h = this.header();
        h.weak.set(h.weak.get().checked_add(1).expect("too many weak handles"));
        WeakHandle { ptr: this.ptr, _not_send: PhantomData }
    }

    /// The value, or `None` if the collector dropped it (this handle escaped from garbage).
    #[inline]
    pub fn try_get(this: &Self) -> Option<&T> {
        if this.header().has(VALUE_DROPPED) {
            return None;
        }
        // SAFETY: the value is not dropped and the box is live; shared access only.
        Some(unsafe { &*(*this.ptr.as_ptr()).value.get() })
    }

    /// An identifier of the value, stable while it lives (like Python's `id()`).
    pub fn id(this: &Self) -> usize {
        this.ptr.as_ptr() as usize
    }

    /// The last strong handle went: unlink, drop the value, free the box (or defer all
    /// that when drops nest too deeply). A value without drop glue cannot release other
    /// boxes, so it skips the depth bookkeeping.
    #[cold]
    #[inline(never)]
    fn release(&mut self) {
        if std::mem::needs_drop::<T>() {
            gc::release(self.ptr.cast(), Self::destroy);
        } else {
            gc::untrack(self.ptr.cast());
            Self::destroy(self.ptr.cast());
        }
    }

    /// Drops the value (if the collector did not) and frees the box unless a weak handle
    /// still points to it. `VALUE_DROPPED` is set after the drop: with no strong handle
    /// left nothing can reach the value meanwhile (`upgrade` sees `strong == 0`), and a
    /// weak handle the value owns to its own box, dropped with it, sees the flag clear and
    /// leaves the freeing to us.
    #[inline]
    fn destroy(h: NonNull<Header>) {
        let x = hdr_ref(h);
        if !x.has(VALUE_DROPPED) {
            // SAFETY: the value is live, no handle can reach it, and it is dropped once
            // (the flag is set right after); the box is a `GcBox<T>`.
            unsafe { ManuallyDrop::drop(&mut *(*h.cast::<GcBox<T>>().as_ptr()).value.get()) };
            x.set(VALUE_DROPPED);
        }
        if x.weak.get() == 0 {
            // SAFETY: no strong or weak handle refers to the box and its value is dropped.
            drop(unsafe { Box::from_raw(h.cast::<GcBox<T>>().as_ptr()) });
        }
    }
}

/// The header behind a pointer the caller knows to be a live box.
#[inline]
pub(crate) fn hdr_ref<'a>(h: NonNull<Header>) -> &'a Header {
    // SAFETY: callers pass headers of live boxes (tracked, held, or being destroyed by us).
    unsafe { &*h.as_ptr() }
}

impl<T: Trace + Finalize + 'static> Handle<T> {
    /// Like [`Handle::new`], for a value whose [`Finalize::finalize`] the collector runs
    /// (once) before dropping it as garbage.
    pub fn new_with_finalizer(value: T) -> Self {
        Self::with_vtable(value, &FinalizeOps::<T>::VTABLE, HAS_FINALIZER)
    }
}

impl<T: Trace + 'static> std::ops::Deref for Handle<T> {
    type Target = T;

    /// # Panics
    /// If the cycle collector dropped the value (this handle escaped from garbage).
    #[inline]
    fn deref(&self) -> &T {
        match Handle::try_get(self) {
            Some(v) => v,
            None => dropped_value::<T>(),
        }
    }
}

#[cold]
#[inline(never)]
fn dropped_value<T>() -> ! {
    panic!("dereferenced a Handle<{}> whose value the cycle collector dropped", std::any::type_name::<T>())
}

impl<T: Trace + 'static> Clone for Handle<T> {
    #[inline]
    fn clone(&self) -> Self {
        let h = self.header();
        h.strong.set(h.strong.get() + 1);
        Handle { ptr: self.ptr, _not_send: PhantomData }
    }
}

impl<T: Trace + 'static> Drop for Handle<T> {
    #[inline]
    fn drop(&mut self) {
        let h = self.header();
        let n = h.strong.get() - 1;
        h.strong.set(n);
        if n == 0 {
            self.release();
        }
    }
}

impl<T: Trace + std::fmt::Debug + 'static> std::fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match Handle::try_get(self) {
            Some(v) => f.debug_tuple("Handle").field(v).finish(),
            None => f.write_str("Handle(<collected>)"),
        }
    }
}

impl<T: Trace + 'static> WeakHandle<T> {
    fn header(&self) -> &Header {
        // SAFETY: a weak handle keeps its box allocated (weak > 0).
        unsafe { &(*self.ptr.as_ptr()).header }
    }

    /// A strong handle, if the value is still alive (not dropped, not collected).
    pub fn upgrade(&self) -> Option<Handle<T>> {
        let h = self.header();
        if h.strong.get() == 0 || h.has(VALUE_DROPPED | WEAK_CLEARED) {
            return None;
        }
        h.strong.set(h.strong.get() + 1);
        Some(Handle { ptr: self.ptr, _not_send: PhantomData })
    }
}

impl<T: Trace + 'static> Clone for WeakHandle<T> {
    fn clone(&self) -> Self {
        let h = self.header();
        h.weak.set(h.weak.get().checked_add(1).expect("too many weak handles"));
        WeakHandle { ptr: self.ptr, _not_send: PhantomData }
    }
}

impl<T: Trace + 'static> Drop for WeakHandle<T> {
    fn drop(&mut self) {
        let h = self.header();
        h.weak.set(h.weak.get() - 1);
        if h.weak.get() == 0 && h.strong.get() == 0 && h.has(VALUE_DROPPED) {
            // SAFETY: no handle of any kind refers to the box any more, and its value is
            // dropped: the box is ours to free.
            unsafe { (h.vtable.dealloc)(self.ptr.cast()) };
        }
    }
}

impl<T: Trace + 'static> std::fmt::Debug for WeakHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeakHandle")
    }
}
