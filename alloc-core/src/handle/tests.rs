//! Unit tests of the collector's pure logic: the intrusive lists, `deduce_unreachable` on
//! small graphs, the destruction order. Nothing here depends on the allocator, so these
//! run under Miri (see the module note of [`super`]); the scenarios with the real
//! allocator are in `alloc-core/tests/handles*.rs`.

use super::collect::deduce_unreachable;
use super::collect::label;
use super::list::{Link, List};
use super::{gc, hdr_ref, Handle, Header, Trace, Tracer, UNREACHABLE, WEAK_CLEARED};
use std::cell::{Cell, RefCell};
use std::ptr::NonNull;
use std::rc::Rc;

/// Links at fixed addresses (the vector is never grown).
fn links(n: usize) -> Vec<Link> {
    (0..n).map(|_| Link::new()).collect()
}

fn ptr(l: &Link) -> NonNull<Link> {
    NonNull::from(l)
}

fn order(list: &List) -> Vec<NonNull<Link>> {
    let mut v = Vec::new();
    list.for_each(|l| v.push(l));
    v
}

#[test]
fn list_push_unlink_and_append_keep_order() {
    let (a, b) = (List::new(), List::new());
    a.init();
    b.init();
    let ls = links(4);
    // SAFETY: the links are live and on no list.
    unsafe { ls.iter().for_each(|l| a.push_back(ptr(l))) };
    assert_eq!(a.len(), 4);
    // SAFETY: `ls[1]` is on `a`.
    unsafe { List::unlink(ptr(&ls[1])) };
    assert_eq!(order(&a), vec![ptr(&ls[0]), ptr(&ls[2]), ptr(&ls[3])]);
    // SAFETY: `ls[1]` is on no list now.
    unsafe { b.push_back(ptr(&ls[1])) };
    a.append_to(&b);
    assert!(a.is_empty() && a.first().is_none());
    assert_eq!(order(&b), vec![ptr(&ls[1]), ptr(&ls[0]), ptr(&ls[2]), ptr(&ls[3])]);
    b.append_to(&b); // onto itself: no change
    assert_eq!(b.len(), 4);
    let empty = List::new();
    empty.init();
    empty.append_to(&b);
    assert_eq!(b.len(), 4);
    assert!(!b.is_end(ptr(&ls[3]).as_ptr()));
}

/// A node of a test graph: the handles it holds, and a drop counter.
struct Node {
    edges: RefCell<Vec<Handle<Node>>>,
    drops: Rc<Cell<usize>>,
}

// SAFETY: visits exactly the handles in `edges`.
unsafe impl Trace for Node {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.edges.trace(t);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

fn graph(n: usize, edges: &[(usize, usize)], drops: &Rc<Cell<usize>>) -> Vec<Handle<Node>> {
    gc::set_threshold(0, 10, 10);
    let nodes: Vec<Handle<Node>> =
        (0..n).map(|_| Handle::new(Node { edges: RefCell::new(Vec::new()), drops: drops.clone() })).collect();
    for &(a, b) in edges {
        nodes[a].edges.borrow_mut().push(nodes[b].clone());
    }
    nodes
}

fn header<T: Trace>(h: &Handle<T>) -> NonNull<Header> {
    h.ptr.cast()
}

#[test]
fn deduce_unreachable_splits_a_small_graph_exactly() {
    let drops = Rc::new(Cell::new(0));
    // 0 <-> 1 and 1 -> 4 -> 0 are garbage; 2 <-> 3 is held from outside through 2; 5
    // alone is held from outside.
    let nodes = graph(6, &[(0, 1), (1, 0), (2, 3), (3, 2), (1, 4), (4, 0)], &drops);
    let ids: Vec<NonNull<Header>> = nodes.iter().map(header).collect();
    let mut nodes = nodes.into_iter().map(Some).collect::<Vec<_>>();
    for i in [0, 1, 3, 4] {
        nodes[i] = None; // keep 2 and 5 held from outside
    }
    let (young, unreachable) = (List::new(), List::new());
    young.init();
    unreachable.init();
    // Move the six boxes from generation 0 to a private list.
    for &h in &ids {
        // SAFETY: each box is on generation 0 and live (held by the cycles or `nodes`).
        unsafe {
            List::unlink(Header::link_ptr(h));
            young.push_back(Header::link_ptr(h));
        }
    }
    let d = deduce_unreachable(&young, &unreachable, 1 << label::GEN0, label::GEN1);
    assert_eq!((d.reachable, d.unreachable, d.finalizable), (3, 3, false));
    // SAFETY: only boxes are on the lists.
    let found: Vec<NonNull<Header>> = order(&unreachable).into_iter().map(|l| unsafe { Header::of_link(l) }).collect();
    let mut expected = vec![ids[0], ids[1], ids[4]];
    expected.sort();
    let mut got = found.clone();
    got.sort();
    assert_eq!(got, expected);
    for &h in &found {
        let x = hdr_ref(h);
        assert!(x.has(UNREACHABLE) && x.has(WEAK_CLEARED));
        assert_eq!(x.label.get(), label::GEN0);
    }
    for l in order(&young) {
        let x = hdr_ref(unsafe_header(l));
        assert!(!x.has(UNREACHABLE | WEAK_CLEARED));
        assert_eq!((x.label.get(), x.gc_refs.get()), (label::GEN1, 0), "promoted, count reset");
    }
    // Put everything back and let the real collector finish the job.
    unreachable.for_each(|l| hdr_ref(unsafe_header(l)).clear(UNREACHABLE | WEAK_CLEARED));
    for list in [&young, &unreachable] {
        list.for_each(|l| {
            // SAFETY: `l` is on `list`; generation 0 is initialized (boxes were made).
            unsafe { List::unlink(l) };
            gc_link_young(l);
        });
    }
    assert_eq!(gc::collect(2), 3);
    assert_eq!(drops.get(), 3);
    drop(nodes);
    assert_eq!(gc::collect(2), 2);
    assert_eq!(drops.get(), 6);
}

fn unsafe_header(l: NonNull<Link>) -> NonNull<Header> {
    // SAFETY: only boxes' links are passed here.
    unsafe { Header::of_link(l) }
}

/// Links a box (taken off its list) back last on generation 0.
fn gc_link_young(l: NonNull<Link>) {
    gc::link_for_tests(unsafe_header(l));
}

#[test]
fn a_deep_garbage_chain_is_destroyed_without_recursion() {
    let drops = Rc::new(Cell::new(0));
    let n = if cfg!(miri) { 200 } else { 20_000 };
    let edges: Vec<(usize, usize)> = (0..n).map(|i| (i, (i + 1) % n)).collect();
    let nodes = graph(n, &edges, &drops);
    drop(nodes);
    assert_eq!(gc::collect(2), n);
    assert_eq!(drops.get(), n);
    assert!(gc::get_objects(None).is_empty());
}

#[test]
fn the_trigger_is_one_compare_and_collects_past_threshold0() {
    let drops = Rc::new(Cell::new(0));
    gc::set_threshold(5, 10, 10);
    for _ in 0..6 {
        let n = Handle::new(Node { edges: RefCell::new(Vec::new()), drops: drops.clone() });
        n.edges.borrow_mut().push(n.clone());
    }
    // The sixth allocation passed 5: the first five self-cycles were collected.
    assert_eq!(drops.get(), 5);
    assert_eq!(gc::get_stats()[0].collections, 1);
    gc::set_threshold(0, 10, 10);
    assert_eq!(gc::collect(2), 1);
}

#[test]
fn weak_and_strong_counts_and_release_of_a_box_kept_by_a_weak_handle() {
    let drops = Rc::new(Cell::new(0));
    let nodes = graph(1, &[(0, 0)], &drops);
    let w = Handle::downgrade(&nodes[0]);
    assert_eq!((Handle::ref_count(&nodes[0]), Handle::weak_count(&nodes[0])), (2, 1));
    drop(nodes);
    assert_eq!(gc::collect(0), 1);
    assert!(w.upgrade().is_none());
    assert_eq!(drops.get(), 1);
    drop(w); // frees the box (Miri checks it is freed exactly once)
}
