//! `Handle<T>`: a single-thread reference-counted pointer whose unreachable cycles are
//! found exactly by a generational cycle collector (CPython's algorithm; see [`gc`]).
//!
//! # Layout
//! A handle points to a `GcBox<T>`, one heap block (so an uncollected cycle also shows in
//! the leak check, as a cyclic leak):
//!
//! ```text
//! GcBox { header: GcHeader { next, prev, strong, weak, gc_refs, flags, generation, vtable }, value: T }
//! ```
//!
//! The header links the box into its generation's list (intrusive, doubly linked), holds
//! the counts, the collector's scratch count and the box's type-erased operations.
//!
//! # Dropping
//! When the strong count reaches zero the value is dropped and the box freed (or kept for
//! the weak handles that still point to it). Nested drops deeper than [`DROP_DEPTH`] are
//! deferred to a per-thread queue and run by the outermost drop, like CPython's
//! "trashcan": dropping a million-node chain uses a few frames of stack, not a million.
//!
//! # Dropped values
//! A value the collector dropped (garbage) can still be named by a handle a finalizer or
//! a `Drop` impl smuggled out; dereferencing such a handle panics, it is never undefined
//! behaviour. Weak handles into collected garbage fail to upgrade.

pub mod gc;
mod trace;

pub use trace::Trace;

use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

/// Nested drops beyond this depth are deferred (see the module note).
const DROP_DEPTH: u32 = 32;

/// Box flags.
pub(crate) const COLLECTING: u8 = 1;
pub(crate) const REACHABLE: u8 = 2;
pub(crate) const VALUE_DROPPED: u8 = 4;
pub(crate) const FINALIZED: u8 = 8;
pub(crate) const WEAK_CLEARED: u8 = 16;
pub(crate) const LINKED: u8 = 32;
pub(crate) const GARBAGE: u8 = 64;

/// Type-erased operations on a box.
pub(crate) struct Vtable {
    pub(crate) trace: unsafe fn(NonNull<Header>, &mut Tracer<'_>),
    pub(crate) drop_value: unsafe fn(NonNull<Header>),
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
    pub(crate) finalize: unsafe fn(NonNull<Header>),
    pub(crate) type_name: fn() -> &'static str,
}

/// The header of every box. Invariants: `strong` counts the live `Handle`s (plus the
/// collector's temporary guard while it drops garbage); `weak` counts the live
/// `WeakHandle`s; `LINKED` is set iff the box is on the generation list `generation`;
/// once `VALUE_DROPPED` is set the value is never touched again.
pub(crate) struct Header {
    pub(crate) next: Cell<*mut Header>,
    pub(crate) prev: Cell<*mut Header>,
    pub(crate) strong: Cell<usize>,
    pub(crate) weak: Cell<usize>,
    pub(crate) gc_refs: Cell<isize>,
    pub(crate) flags: Cell<u8>,
    pub(crate) generation: Cell<u8>,
    pub(crate) vtable: &'static Vtable,
}

impl Header {
    pub(crate) fn has(&self, f: u8) -> bool {
        self.flags.get() & f != 0
    }
    pub(crate) fn set(&self, f: u8) {
        self.flags.set(self.flags.get() | f);
    }
    pub(crate) fn clear(&self, f: u8) {
        self.flags.set(self.flags.get() & !f);
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

/// Visits the handles a value holds; given to [`Trace::trace`].
pub struct Tracer<'a> {
    visit: &'a mut dyn FnMut(NonNull<Header>),
}

impl std::fmt::Debug for Tracer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tracer")
    }
}

impl<'a> Tracer<'a> {
    pub(crate) fn new(visit: &'a mut dyn FnMut(NonNull<Header>)) -> Self {
        Tracer { visit }
    }

    /// Reports one handle the traced value owns.
    pub fn visit<T: Trace + 'static>(&mut self, handle: &Handle<T>) {
        (self.visit)(handle.ptr.cast());
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
    /// - `h` is the header of a live `GcBox<T>` whose value is not dropped.
    unsafe fn trace(h: NonNull<Header>, t: &mut Tracer<'_>) {
        // SAFETY: per the contract.
        unsafe { (*(*h.cast::<GcBox<T>>().as_ptr()).value.get()).trace(t) }
    }

    /// # Safety
    /// - As `trace`; the value is dropped exactly once (the caller set VALUE_DROPPED).
    unsafe fn drop_value(h: NonNull<Header>) {
        // SAFETY: per the contract.
        unsafe { ManuallyDrop::drop(&mut *(*h.cast::<GcBox<T>>().as_ptr()).value.get()) }
    }

    /// # Safety
    /// - `h` is a box from `Handle::new` that nothing refers to any more.
    unsafe fn dealloc(h: NonNull<Header>) {
        // SAFETY: per the contract; the value was dropped (ManuallyDrop: not again).
        drop(unsafe { Box::from_raw(h.cast::<GcBox<T>>().as_ptr()) });
    }

    unsafe fn finalize_none(_: NonNull<Header>) {}
}

struct FinalizeOps<T>(PhantomData<T>);

impl<T: Trace + Finalize + 'static> FinalizeOps<T> {
    const VTABLE: Vtable = Vtable { finalize: Self::finalize, ..Ops::<T>::VTABLE };

    /// # Safety
    /// - As `Ops::trace`.
    unsafe fn finalize(h: NonNull<Header>) {
        // SAFETY: per the contract.
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
    pub fn new(value: T) -> Self {
        Self::with_vtable(value, &Ops::<T>::VTABLE)
    }

    fn with_vtable(value: T, vtable: &'static Vtable) -> Self {
        gc::on_allocation();
        let header = Header {
            next: Cell::new(std::ptr::null_mut()),
            prev: Cell::new(std::ptr::null_mut()),
            strong: Cell::new(1),
            weak: Cell::new(0),
            gc_refs: Cell::new(0),
            flags: Cell::new(0),
            generation: Cell::new(0),
            vtable,
        };
        let b = Box::new(GcBox { header, value: UnsafeCell::new(ManuallyDrop::new(value)) });
        let ptr = NonNull::from(Box::leak(b));
        gc::track(ptr.cast());
        Handle { ptr, _not_send: PhantomData }
    }

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
        this.header().weak.get()
    }

    /// Whether two handles point to the same value.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.ptr == b.ptr
    }

    /// A weak handle to this value.
    pub fn downgrade(this: &Self) -> WeakHandle<T> {
        let h = this.header();
        h.weak.set(h.weak.get() + 1);
        WeakHandle { ptr: this.ptr, _not_send: PhantomData }
    }

    /// The value, or `None` if the collector dropped it (this handle escaped from garbage).
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
}

impl<T: Trace + Finalize + 'static> Handle<T> {
    /// Like [`Handle::new`], for a value whose [`Finalize::finalize`] the collector runs
    /// (once) before dropping it as garbage.
    pub fn new_with_finalizer(value: T) -> Self {
        Self::with_vtable(value, &FinalizeOps::<T>::VTABLE)
    }
}

impl<T: Trace + 'static> std::ops::Deref for Handle<T> {
    type Target = T;

    /// # Panics
    /// If the cycle collector dropped the value (this handle escaped from garbage).
    fn deref(&self) -> &T {
        match Handle::try_get(self) {
            Some(v) => v,
            None => {
                panic!("dereferenced a Handle<{}> whose value the cycle collector dropped", std::any::type_name::<T>())
            }
        }
    }
}

impl<T: Trace + 'static> Clone for Handle<T> {
    fn clone(&self) -> Self {
        let h = self.header();
        h.strong.set(h.strong.get() + 1);
        Handle { ptr: self.ptr, _not_send: PhantomData }
    }
}

impl<T: Trace + 'static> Drop for Handle<T> {
    fn drop(&mut self) {
        let h = self.header();
        let n = h.strong.get() - 1;
        h.strong.set(n);
        if n == 0 {
            gc::release(self.ptr.cast());
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
        h.weak.set(h.weak.get() + 1);
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

/// Depth of nested releases on this thread, and the queue of deferred ones.
pub(crate) struct DropState {
    depth: Cell<u32>,
    deferred: Cell<*mut Header>,
}

impl DropState {
    pub(crate) const fn new() -> Self {
        DropState { depth: Cell::new(0), deferred: Cell::new(std::ptr::null_mut()) }
    }

    /// Runs `destroy(h)` now, or defers it when drops are nested too deep; the outermost
    /// call drains the queue, so the stack depth stays bounded.
    pub(crate) fn run(&self, h: NonNull<Header>, destroy: impl Fn(NonNull<Header>)) {
        if self.depth.get() >= DROP_DEPTH {
            // SAFETY: the box is unreferenced and off every list: its `next` link is free
            // to thread it onto the deferred queue.
            unsafe { (*h.as_ptr()).next.set(self.deferred.get()) };
            self.deferred.set(h.as_ptr());
            return;
        }
        self.depth.set(self.depth.get() + 1);
        destroy(h);
        self.depth.set(self.depth.get() - 1);
        if self.depth.get() == 0 {
            while let Some(d) = NonNull::new(self.deferred.get()) {
                // SAFETY: deferred boxes are live and unreferenced; `next` links the queue.
                self.deferred.set(unsafe { (*d.as_ptr()).next.get() });
                self.depth.set(1);
                destroy(d);
                self.depth.set(0);
            }
        }
    }
}
