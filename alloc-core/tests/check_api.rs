//! `alloc_core::check()` in a running program: what it reports and what it does not.
//! Leaks are made on threads that then end, so no stale copy of a pointer survives in a
//! live stack frame (the scan is conservative).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

mod common;
use common::on_thread;

/// Checks see the whole process: run these tests one at a time. They leak on purpose: no
/// at-exit report for this binary.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    alloc_core::config::set_check_at_exit(false);
    common::serial()
}

#[inline(never)]
fn make_list(n: usize) {
    struct Node {
        _next: Option<Box<Node>>,
        _pad: [u64; 3],
    }
    let mut head: Option<Box<Node>> = None;
    for _ in 0..n {
        head = Some(Box::new(Node { _next: head, _pad: [0; 3] }));
    }
    std::mem::forget(head);
}

#[test]
fn a_leaked_list_is_one_direct_head_and_an_indirect_tail() {
    let _s = serial();
    on_thread(|| make_list(5));
    let r = alloc_core::check();
    let groups = r.groups_with_function("make_list");
    let direct: u64 =
        groups.iter().filter(|g| g.kind == alloc_core::report::model::LeakKind::Direct).map(|g| g.blocks).sum();
    let indirect: u64 =
        groups.iter().filter(|g| g.kind == alloc_core::report::model::LeakKind::Indirect).map(|g| g.blocks).sum();
    assert_eq!((direct, indirect), (1, 4), "{:#?}", groups);
    assert!(groups.iter().all(|g| !g.cyclic && g.bytes == 32 * g.blocks));
}

struct RcNode {
    next: RefCell<Option<Rc<RcNode>>>,
}

#[inline(never)]
fn make_rc_cycle() {
    let a = Rc::new(RcNode { next: RefCell::new(None) });
    let b = Rc::new(RcNode { next: RefCell::new(Some(a.clone())) });
    *a.next.borrow_mut() = Some(b);
}

#[test]
fn an_rc_cycle_is_direct_and_cyclic_with_its_counts() {
    let _s = serial();
    on_thread(make_rc_cycle);
    let r = alloc_core::check();
    let groups = r.groups_with_function("make_rc_cycle");
    assert_eq!(groups.iter().map(|g| g.blocks).sum::<u64>(), 2, "{:#?}", r.leaks);
    for g in &groups {
        assert_eq!(g.kind, alloc_core::report::model::LeakKind::Direct);
        assert!(g.cyclic);
        let rc = g.rc.expect("Rc counts");
        assert_eq!((rc.strong, rc.weak), (1, 1));
    }
}

/// Boxes, each its own heap block, kept reachable from a static.
#[allow(clippy::vec_box)]
static KEEP: Mutex<Vec<Box<[u8; 40]>>> = Mutex::new(Vec::new());

#[test]
fn reachable_ignored_and_registered_blocks_are_not_reported() {
    let _s = serial();
    #[inline(never)]
    fn kept() {
        KEEP.lock().unwrap().push(Box::new([1; 40]));
    }
    #[inline(never)]
    fn ignored() {
        let b = Box::leak(Box::new([2u8; 56]));
        assert!(alloc_core::ignore(b.as_ptr()));
    }
    #[inline(never)]
    fn registered() -> usize {
        // A root region outside the heap, holding the only pointer to a block.
        let region = Box::leak(Box::new(std::mem::MaybeUninit::<[usize; 4]>::zeroed()));
        let b = Box::leak(Box::new([3u8; 72]));
        let r = region.as_mut_ptr().cast::<usize>();
        // SAFETY: the region holds four words.
        unsafe { r.write(b.as_ptr() as usize) };
        assert!(alloc_core::ignore(r.cast()));
        assert!(alloc_core::register_root(r.cast(), 32));
        r as usize
    }
    on_thread(kept);
    on_thread(ignored);
    let region = on_thread(registered);
    let r = alloc_core::check();
    for f in ["kept", "ignored", "registered"] {
        assert!(r.groups_with_function(f).is_empty(), "{f} reported: {:#?}", r.groups_with_function(f));
    }
    assert!(alloc_core::unregister_root(region as *const u8));
}

#[test]
fn results_are_the_same_three_times_in_a_row() {
    // One at a time, as the other tests here: their whole-process checks see every block
    // of the process, this test's in-flight work included (the stale copies of addresses
    // it leaves, in stacks and in blocks freed and handed out again, can hide their
    // leaks). A scope's own answer does not depend on other tests: `scopes.rs` runs
    // sixteen scoped tests in parallel, half of them leaking.
    let _s = serial();
    let run = || alloc_core::check_scope(|| on_thread(|| make_list(3))).1;
    let (a, b, c) = (run(), run(), run());
    let leaks = |r: &alloc_core::LeakReport| {
        let s = &r.summary;
        let groups: Vec<_> = r.leaks.iter().map(|g| (g.kind, g.cyclic, g.blocks, g.bytes, g.stack.clone())).collect();
        (s.leaked_blocks, s.leaked_bytes, s.direct_blocks, s.indirect_blocks, s.cyclic_blocks, groups)
    };
    assert_eq!(leaks(&a), leaks(&b));
    assert_eq!(leaks(&b), leaks(&c));
    assert_eq!((a.summary.leaked_blocks, a.summary.direct_blocks, a.summary.indirect_blocks), (3, 1, 2));
}

#[test]
fn reachable_blocks_are_promoted_by_each_check_up_to_generation_2() {
    let _s = serial();
    let kept = Box::new([0u8; 24]);
    let p = kept.as_ptr();
    assert_eq!(alloc_core::block_info(p).unwrap().generation, 0);
    alloc_core::check();
    assert_eq!(alloc_core::block_info(p).unwrap().generation, 1);
    alloc_core::check();
    alloc_core::check();
    assert_eq!(alloc_core::block_info(p).unwrap().generation, 2);
    drop(kept);
}

/// The address of a block freed by [`free_a_holder_of_a_leak`], kept where the check scans
/// (a writable static): a dangling pointer, as programs keep them.
static DANGLING: AtomicUsize = AtomicUsize::new(0);
/// A live block of the freed one's size, allocated just before it (so in the same page),
/// kept reachable: the page stays in use when the thread ends. Both are of an odd size
/// that nothing else allocates on the thread, so the freed one's slot is not handed out
/// again before the check.
static NEIGHBOUR: AtomicUsize = AtomicUsize::new(0);

#[inline(never)]
fn free_a_holder_of_a_leak() {
    let target = Box::into_raw(Box::new([7u64; 6]));
    let neighbour = Box::into_raw(Box::new([1usize; 301]));
    NEIGHBOUR.store(neighbour as usize, Relaxed);
    // The pointer past the first word: a free writes its list link there, and nothing
    // else of the block.
    let mut holder = Box::new([0usize; 301]);
    holder[2] = target as usize;
    DANGLING.store(std::hint::black_box(&*holder).as_ptr() as usize, Relaxed);
    drop(holder);
}

#[test]
fn a_freed_block_still_holding_a_pointer_does_not_keep_its_target() {
    // A freed block's memory and metadata keep what they held (a free clears one live
    // bit); the check must not take the block for a live one when a dangling pointer
    // names it, or the leak its stale words point to would be hidden.
    let _s = serial();
    on_thread(free_a_holder_of_a_leak);
    let (dangling, neighbour) = (DANGLING.load(Relaxed), NEIGHBOUR.load(Relaxed));
    assert!(alloc_core::block_info(dangling as *const u8).is_none(), "the holder is free");
    assert!(alloc_core::block_info(neighbour as *const u8).is_some(), "its page is in use");
    let r = alloc_core::check();
    let groups = r.groups_with_function("free_a_holder_of_a_leak");
    let leaked: Vec<_> = groups.iter().map(|g| (g.blocks, g.bytes)).collect();
    assert_eq!(leaked, [(1, 48)], "{:#?} {:?}", groups, r.summary);
    DANGLING.store(0, Relaxed);
    NEIGHBOUR.store(0, Relaxed);
    // SAFETY: made by `Box::into_raw` in `free_a_holder_of_a_leak`, freed only here.
    drop(unsafe { Box::from_raw(neighbour as *mut [usize; 301]) });
}
