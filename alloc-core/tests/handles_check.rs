//! `Handle` cycles and the leak check: a cycle the collector never ran on is reported by
//! `alloc_core::check()` as a cyclic leak with its allocation stack; once collected it is
//! gone from the report. Cycles are made on threads that then end, so no stale copy of a
//! pointer survives in a live stack frame (the scan is conservative).

use alloc_core::{gc, Handle, Trace};
use std::cell::RefCell;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

#[derive(Trace)]
struct Pair {
    other: RefCell<Option<Handle<Pair>>>,
}

#[inline(never)]
fn make_handle_cycle() {
    gc::set_threshold(0, 10, 10);
    let a = Handle::new(Pair { other: RefCell::new(None) });
    let b = Handle::new(Pair { other: RefCell::new(Some(a.clone())) });
    *a.other.borrow_mut() = Some(b);
}

#[inline(never)]
fn make_and_collect_handle_cycle() -> usize {
    make_handle_cycle();
    gc::collect(2)
}

#[test]
fn an_uncollected_handle_cycle_is_a_cyclic_leak_and_a_collected_one_is_not() {
    // This test leaks on purpose: no at-exit report for this binary. One test only, so no
    // other test's handles are live during the checks.
    alloc_core::config::set_check_at_exit(false);
    std::thread::spawn(make_handle_cycle).join().unwrap();
    let r = alloc_core::check();
    let groups = r.groups_with_function("make_handle_cycle");
    assert_eq!(groups.iter().map(|g| g.blocks).sum::<u64>(), 2, "{:#?}", r.leaks);
    for g in &groups {
        assert_eq!(g.kind, alloc_core::report::model::LeakKind::Direct);
        assert!(g.cyclic, "{g:#?}");
    }
    assert_eq!(std::thread::spawn(make_and_collect_handle_cycle).join().unwrap(), 2);
    let r = alloc_core::check();
    assert!(r.groups_with_function("make_and_collect_handle_cycle").is_empty(), "{:#?}", r.leaks);
}
