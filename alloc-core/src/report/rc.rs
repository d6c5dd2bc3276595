//! `Rc`/`Arc` counts of leaked blocks: when a group's allocation stack shows that std's
//! `Rc` or `Arc` allocated the block, its strong and weak counts are read from the block,
//! so that the report can say why it is alive (a cycle of strong references, most often).
//!
//! # Layout read
//! std's `RcInner<T>` and `ArcInner<T>` are `#[repr(C)]` and start with the counts:
//!
//! ```text
//! block start ──► +0  strong: usize
//!                 +8  weak:   usize   (the Weaks, +1 held by the strong refs together)
//!                 +16 value: T        (later when T is more aligned)
//! ```
//!
//! # Who calls it
//! [`build`](super::build), after the world resumed. A leaked block is unreachable, so
//! no one frees it while it is read; the block is still checked to be live first.

use super::model::{Frame, RcCounts, RcKind};
use super::symbolize::is_plumbing;

/// Which reference-counted pointer allocated a block, judged from its trimmed stack: the
/// innermost frame that is not allocation glue (`Box::new`, the allocator) must belong
/// to `alloc::rc` (`Rc::new`, `Rc::new_cyclic`, `UniqueRc::new`, `Rc<[T]>::from`...)
/// or `alloc::sync`. Anything else (a `Vec` made inside `new_cyclic`'s closure, say)
/// is not an `RcInner`.
pub(crate) fn rc_kind(stack: &[Frame]) -> Option<RcKind> {
    for f in stack {
        let name = f.function.as_deref()?;
        let path = name.strip_prefix('<').unwrap_or(name);
        if path.starts_with("alloc::rc::") {
            return Some(RcKind::Rc);
        }
        if path.starts_with("alloc::sync::") {
            return Some(RcKind::Arc);
        }
        if !(path.starts_with("alloc::boxed::") || is_plumbing(f)) {
            return None;
        }
    }
    None
}

/// The counts of the `Rc`/`Arc` block starting at `start`, if `stack` shows one and the
/// block is live, large enough and holds plausible counts.
pub(crate) fn rc_counts(stack: &[Frame], start: usize) -> Option<RcCounts> {
    let kind = rc_kind(stack)?;
    let block = crate::block::live_containing(start)?;
    if block.start() != start || block.size() < 2 * core::mem::size_of::<usize>() {
        return None;
    }
    // SAFETY: `start` begins a live block of at least two words (checked just above),
    // which is word-aligned as every block is; nobody frees a leaked block.
    let (strong, weak) = unsafe { read_counts(start) };
    plausible(strong, weak).then_some(RcCounts { kind, strong, weak })
}

/// Reads the two count words at `start`.
///
/// # Safety
/// `start` must be word-aligned and point to two readable words.
unsafe fn read_counts(start: usize) -> (u64, u64) {
    let p = start as *const usize;
    // SAFETY: the caller guarantees two aligned readable words; volatile because the
    // words belong to the program, not to us.
    unsafe { (p.read_volatile() as u64, p.add(1).read_volatile() as u64) }
}

/// While an `RcInner` is allocated its weak count is at least 1, and no count passes
/// `isize::MAX` (std aborts first).
fn plausible(strong: u64, weak: u64) -> bool {
    let max = isize::MAX as u64;
    weak >= 1 && weak <= max && strong <= max
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::{Rc, Weak};
    use std::sync::Arc;

    fn stack(names: &[&str]) -> Vec<Frame> {
        names.iter().map(|n| Frame { function: Some(n.to_string()), ..Frame::unresolved(1) }).collect()
    }

    #[test]
    fn rc_and_arc_allocations_are_recognized_from_the_stack() {
        let rc = stack(&["alloc::boxed::Box<T>::new", "alloc::rc::Rc<T>::new", "demo::make"]);
        assert_eq!(rc_kind(&rc), Some(RcKind::Rc));
        assert_eq!(rc_kind(&stack(&["<alloc::rc::Rc<demo::Node>>::new_cyclic", "demo::make"])), Some(RcKind::Rc));
        assert_eq!(rc_kind(&stack(&["alloc::rc::UniqueRc<T,A>::new", "demo::make"])), Some(RcKind::Rc));
        assert_eq!(rc_kind(&stack(&["alloc::sync::Arc<T>::new", "demo::make"])), Some(RcKind::Arc));
        let from_vec = ["<alloc::sync::Arc<[T]> as core::convert::From<alloc::vec::Vec<T>>>::from", "demo::make"];
        assert_eq!(rc_kind(&stack(&from_vec)), Some(RcKind::Arc));
    }

    #[test]
    fn other_allocations_under_rc_frames_are_not_rc_blocks() {
        // A Vec made inside new_cyclic's closure: Rc frames are there, but further out.
        let inner = ["alloc::vec::Vec<T>::with_capacity", "demo::make::{{closure}}", "alloc::rc::Rc<T>::new_cyclic"];
        assert_eq!(rc_kind(&stack(&inner)), None);
        assert_eq!(rc_kind(&stack(&["alloc::boxed::Box<T>::new", "demo::make"])), None);
        assert_eq!(rc_kind(&[Frame::unresolved(1)]), None);
        assert_eq!(rc_kind(&[]), None);
    }

    struct Node {
        next: RefCell<Option<Rc<Node>>>,
        back: RefCell<Weak<Node>>,
    }

    /// The block start of an `Rc`: its value pointer less the two count words.
    fn block_of<T>(rc: &Rc<T>) -> usize {
        Rc::as_ptr(rc) as usize - 2 * core::mem::size_of::<usize>()
    }

    #[test]
    fn counts_are_read_from_a_real_rc() {
        let a = Rc::new(Node { next: RefCell::new(None), back: RefCell::new(Weak::new()) });
        let b = Rc::new(Node { next: RefCell::new(Some(a.clone())), back: RefCell::new(Weak::new()) });
        *a.back.borrow_mut() = Rc::downgrade(&b);
        let rc_stack = stack(&["alloc::rc::Rc<T>::new", "demo::make"]);
        // a: held by `a` and by b.next; b: held by `b`, one Weak in a.back.
        assert_eq!(rc_counts(&rc_stack, block_of(&a)), Some(RcCounts { kind: RcKind::Rc, strong: 2, weak: 1 }));
        assert_eq!(rc_counts(&rc_stack, block_of(&b)), Some(RcCounts { kind: RcKind::Rc, strong: 1, weak: 2 }));
        // Through into_raw, as a forgotten Rc would be.
        let raw = Rc::into_raw(b.clone());
        let start = raw as usize - 2 * core::mem::size_of::<usize>();
        assert_eq!(rc_counts(&rc_stack, start).map(|c| c.strong), Some(2));
        // SAFETY: `raw` came from Rc::into_raw just above.
        drop(unsafe { Rc::from_raw(raw) });
        // Not the block's start, or a stack without Rc frames: nothing read.
        assert_eq!(rc_counts(&rc_stack, block_of(&a) + 8), None);
        assert_eq!(rc_counts(&stack(&["demo::make"]), block_of(&a)), None);
        b.next.borrow_mut().take();
    }

    #[test]
    fn counts_are_read_from_a_real_arc() {
        let a = Arc::new([7u64; 4]);
        let _also = a.clone();
        let _weak = Arc::downgrade(&a);
        let start = Arc::as_ptr(&a) as usize - 2 * core::mem::size_of::<usize>();
        let s = stack(&["alloc::sync::Arc<T>::new", "demo::make"]);
        assert_eq!(rc_counts(&s, start), Some(RcCounts { kind: RcKind::Arc, strong: 2, weak: 2 }));
    }

    #[test]
    fn freed_or_foreign_memory_is_not_read() {
        let s = stack(&["alloc::rc::Rc<T>::new"]);
        let on_stack = [1usize, 1];
        assert_eq!(rc_counts(&s, on_stack.as_ptr() as usize), None);
        assert_eq!(rc_counts(&s, 0), None);
        assert!(!plausible(1, 0));
        assert!(!plausible(u64::MAX, 1));
        assert!(plausible(0, 1));
    }
}
