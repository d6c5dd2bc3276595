//! The intrusive, circular, doubly linked lists the collector keeps boxes on.
//!
//! # Layout
//! Every box starts with a [`Link`]; every list is a sentinel `Link` that lives in the
//! thread's collector state (a fixed address for the thread's life). An empty list's
//! sentinel points to itself; a list never holds a null link, so linking and unlinking
//! have no branches:
//!
//! ```text
//!   sentinel <-> box <-> box <-> box <-> (sentinel)
//! ```
//!
//! A sentinel starts as two nulls (so the state can be `const`-initialized) and is made
//! circular by [`List::init`] before first use.
//!
//! # Who calls it
//! [`super::gc`] (generations, the permanent and the saved-garbage lists) and
//! [`super::collect`] (the unreachable lists of a collection), on the owning thread only.

use std::cell::Cell;
use std::ptr::{self, NonNull};

/// The two words of a box (or of a list's sentinel) that link it into a list.
/// Invariant, once linked: `(*self.next).prev == self` and `(*self.prev).next == self`.
#[repr(C)]
pub(crate) struct Link {
    pub(crate) next: Cell<*mut Link>,
    pub(crate) prev: Cell<*mut Link>,
}

impl Link {
    pub(crate) const fn new() -> Self {
        Link { next: Cell::new(ptr::null_mut()), prev: Cell::new(ptr::null_mut()) }
    }
}

/// A list of boxes, through their [`Link`]s. It must not move once [`List::init`] ran
/// (it lives in thread-local storage).
pub(crate) struct List {
    head: Link,
}

impl List {
    pub(crate) const fn new() -> Self {
        List { head: Link::new() }
    }

    fn sentinel(&self) -> *mut Link {
        ptr::from_ref(&self.head).cast_mut()
    }

    /// Makes the sentinel circular (an empty list). Idempotent.
    pub(crate) fn init(&self) {
        if self.head.next.get().is_null() {
            self.head.next.set(self.sentinel());
            self.head.prev.set(self.sentinel());
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.next.get() == self.sentinel()
    }

    /// The first box, if any.
    pub(crate) fn first(&self) -> Option<NonNull<Link>> {
        let n = self.head.next.get();
        if n == self.sentinel() {
            None
        } else {
            NonNull::new(n)
        }
    }

    /// Whether `l` is this list's sentinel (the end of a walk).
    pub(crate) fn is_end(&self, l: *mut Link) -> bool {
        l == self.sentinel()
    }

    /// Links `x` last. About 4 stores, no branch.
    ///
    /// # Safety
    /// - The list is initialized; `x` is a live link on no list.
    #[inline]
    pub(crate) unsafe fn push_back(&self, x: NonNull<Link>) {
        let s = self.sentinel();
        let last = self.head.prev.get();
        // SAFETY: `x` is live (contract); `last` is a link on this list or the sentinel.
        unsafe {
            x.as_ref().prev.set(last);
            x.as_ref().next.set(s);
            (*last).next.set(x.as_ptr());
        }
        self.head.prev.set(x.as_ptr());
    }

    /// Unlinks `x` from whichever list holds it. About 2 stores, no branch.
    ///
    /// # Safety
    /// - `x` is a live link on an initialized list.
    #[inline]
    pub(crate) unsafe fn unlink(x: NonNull<Link>) {
        // SAFETY: `x` is on a list (contract), so its neighbours are live links.
        unsafe {
            let (p, n) = (x.as_ref().prev.get(), x.as_ref().next.get());
            (*p).next.set(n);
            (*n).prev.set(p);
        }
    }

    /// Moves every link of `self` to the end of `to`, in order; `self` is left empty.
    pub(crate) fn append_to(&self, to: &List) {
        if self.is_empty() || ptr::eq(self, to) {
            return;
        }
        let (first, last) = (self.head.next.get(), self.head.prev.get());
        let tail = to.head.prev.get();
        // SAFETY: both lists are initialized and non-empty or circular: `first`, `last`
        // and `tail` are live links (or `to`'s sentinel).
        unsafe {
            (*tail).next.set(first);
            (*first).prev.set(tail);
            (*last).next.set(to.sentinel());
        }
        to.head.prev.set(last);
        self.head.next.set(self.sentinel());
        self.head.prev.set(self.sentinel());
    }

    /// Calls `f` on each link, first to last. `f` must not unlink the link after the one
    /// it is given (it may unlink its own).
    pub(crate) fn for_each(&self, mut f: impl FnMut(NonNull<Link>)) {
        let mut p = self.head.next.get();
        while p != self.sentinel() {
            // SAFETY: every link on the list is live; read `next` before `f` may move `p`.
            let next = unsafe { (*p).next.get() };
            // SAFETY: links on a list are never null.
            f(unsafe { NonNull::new_unchecked(p) });
            p = next;
        }
    }

    /// The number of links (a walk).
    pub(crate) fn len(&self) -> usize {
        let mut n = 0;
        self.for_each(|_| n += 1);
        n
    }
}
