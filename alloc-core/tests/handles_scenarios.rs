//! More `Handle<T>` and cycle-collector scenarios (the numbered cases of the design notes):
//! containers, finalizers and weak handles, generations and thresholds, the `gc` API,
//! panics, re-entrancy, deep structures, thread exit, and random graphs against a model.
//! Each test runs on its own thread, with its own collector.

use alloc_core::{gc, Finalize, Handle, Trace, Tracer, WeakHandle};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

mod common;
use common::nodes::{counter, link, node, Node};

fn in_generation(g: usize, h: &Handle<Node>) -> bool {
    gc::get_objects(Some(g)).iter().any(|o| o.id == Handle::id(h))
}

// ---- A. Shapes and containers ----------------------------------------------------------

/// Holds handles in every std container `Trace` supports.
#[derive(Trace)]
struct Bag {
    map: RefCell<HashMap<u32, Handle<Bag>>>,
    tree: RefCell<BTreeMap<String, Handle<Bag>>>,
    deque: RefCell<VecDeque<Handle<Bag>>>,
    boxed: RefCell<Option<Box<Handle<Bag>>>>,
    pair: RefCell<Option<(u8, Handle<Bag>)>>,
}

fn bag() -> Handle<Bag> {
    Handle::new(Bag {
        map: RefCell::new(HashMap::new()),
        tree: RefCell::new(BTreeMap::new()),
        deque: RefCell::new(VecDeque::new()),
        boxed: RefCell::new(None),
        pair: RefCell::new(None),
    })
}

#[test]
fn cycles_through_hashmap_btreemap_vecdeque_box_and_tuple_are_collected() {
    gc::set_threshold(0, 10, 10);
    let bags: Vec<Handle<Bag>> = (0..6).map(|_| bag()).collect();
    bags[0].map.borrow_mut().insert(1, bags[1].clone());
    bags[1].tree.borrow_mut().insert("x".into(), bags[2].clone());
    bags[2].deque.borrow_mut().push_back(bags[3].clone());
    *bags[3].boxed.borrow_mut() = Some(Box::new(bags[4].clone()));
    *bags[4].pair.borrow_mut() = Some((7, bags[0].clone()));
    let outside = bags[5].clone();
    bags[5].map.borrow_mut().insert(9, bags[0].clone()); // an edge into the cycle
    assert_eq!(gc::get_referents(&bags[3]).len(), 1);
    drop(bags);
    assert_eq!(gc::collect(2), 0, "the cycle is reachable through `outside`");
    drop(outside); // frees bags[5] at once (nothing else refers to it)
    assert_eq!(gc::collect(2), 5);
    assert!(gc::get_objects(None).is_empty());
}

#[test]
fn a_complete_graph_on_four_nodes_is_collected_and_a_second_collect_finds_nothing() {
    let d = counter();
    let ns: Vec<Handle<Node>> = (0..4).map(|_| node(&d)).collect();
    for a in &ns {
        for b in &ns {
            link(a, b);
        }
    }
    drop(ns);
    assert_eq!(gc::collect(2), 4);
    assert_eq!(d.get(), 4);
    assert_eq!(gc::collect(2), 0);
}

#[test]
fn collecting_a_cycle_leaves_a_live_object_it_points_to_with_one_reference_less() {
    let d = counter();
    let (a, b, c) = (node(&d), node(&d), node(&d));
    link(&a, &b);
    link(&b, &a);
    link(&b, &c);
    assert_eq!(Handle::ref_count(&c), 2);
    drop((a, b));
    assert_eq!(gc::collect(2), 2);
    assert_eq!(Handle::ref_count(&c), 1);
    assert_eq!(d.get(), 2);
    assert!(c.next.borrow().is_empty());
}

#[test]
fn random_graphs_free_exactly_what_a_reachability_model_says() {
    // A small deterministic generator (xorshift): 300 graphs of 16 vertices.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    gc::set_threshold(0, 10, 10);
    for _ in 0..300 {
        let drops: Vec<Rc<Cell<usize>>> = (0..16).map(|_| Rc::new(Cell::new(0))).collect();
        let ns: Vec<Handle<Node>> = drops.iter().map(node).collect();
        let mut edges = vec![Vec::new(); 16];
        for _ in 0..rand(40) {
            let (a, b) = (rand(16) as usize, rand(16) as usize);
            link(&ns[a], &ns[b]);
            edges[a].push(b);
        }
        let kept: Vec<bool> = (0..16).map(|_| rand(3) == 0).collect();
        let mut roots = Vec::new();
        for (i, n) in ns.into_iter().enumerate() {
            if kept[i] {
                roots.push((i, n));
            }
        }
        // The model: reachable from a kept vertex.
        let mut reach = kept.clone();
        let mut work: Vec<usize> = (0..16).filter(|&i| kept[i]).collect();
        while let Some(v) = work.pop() {
            for &w in &edges[v] {
                if !reach[w] {
                    reach[w] = true;
                    work.push(w);
                }
            }
        }
        gc::collect(2);
        for i in 0..16 {
            assert_eq!(drops[i].get(), usize::from(!reach[i]), "vertex {i}, edges {edges:?}, kept {kept:?}");
        }
        // A kept vertex is held by its root handle and by each edge from a live vertex.
        for (i, r) in &roots {
            let incoming: usize =
                (0..16).filter(|&v| reach[v]).map(|v| edges[v].iter().filter(|&&w| w == *i).count()).sum();
            assert_eq!(Handle::ref_count(r), 1 + incoming);
        }
        drop(roots);
        gc::collect(2);
        assert!(drops.iter().all(|d| d.get() == 1));
    }
}

// ---- B. Finalizers, Drop and resurrection ---------------------------------------------

/// A finalizable node: counts finalizations, may look at its successor or resurrect.
struct Fin {
    next: RefCell<Option<Handle<Fin>>>,
    value: u32,
    log: Rc<RefCell<Vec<String>>>,
    stash: Rc<RefCell<Vec<Handle<Fin>>>>,
    resurrect: bool,
    weak_self: RefCell<Option<WeakHandle<Fin>>>,
}

// SAFETY: visits the one handle it may hold.
unsafe impl Trace for Fin {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.next.trace(t);
    }
}

impl Finalize for Fin {
    fn finalize(&self) {
        let next = self.next.borrow().as_ref().map(|n| n.value);
        let upgraded = self.weak_self.borrow().as_ref().map(|w| w.upgrade().is_some());
        self.log.borrow_mut().push(format!("finalize {} next={next:?} weak={upgraded:?}", self.value));
        if self.resurrect {
            let me = self.weak_self.borrow().as_ref().and_then(|w| w.upgrade()).expect("upgrade in finalize");
            self.stash.borrow_mut().push(me);
        }
    }
}

impl Drop for Fin {
    fn drop(&mut self) {
        let upgraded = self.weak_self.borrow().as_ref().map(|w| w.upgrade().is_some());
        self.log.borrow_mut().push(format!("drop {} weak={upgraded:?}", self.value));
    }
}

struct FinKit {
    log: Rc<RefCell<Vec<String>>>,
    stash: Rc<RefCell<Vec<Handle<Fin>>>>,
}

impl FinKit {
    fn new() -> Self {
        gc::set_threshold(0, 10, 10);
        FinKit { log: Rc::new(RefCell::new(Vec::new())), stash: Rc::new(RefCell::new(Vec::new())) }
    }

    fn make(&self, value: u32, resurrect: bool) -> Handle<Fin> {
        let h = Handle::new_with_finalizer(Fin {
            next: RefCell::new(None),
            value,
            log: self.log.clone(),
            stash: self.stash.clone(),
            resurrect,
            weak_self: RefCell::new(None),
        });
        *h.weak_self.borrow_mut() = Some(Handle::downgrade(&h));
        h
    }

    fn log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }
}

fn close(a: &Handle<Fin>, b: &Handle<Fin>) {
    *a.next.borrow_mut() = Some(b.clone());
}

#[test]
fn every_finalizer_runs_before_any_drop_and_sees_its_siblings_intact() {
    let k = FinKit::new();
    let (a, b) = (k.make(1, false), k.make(2, false));
    close(&a, &b);
    close(&b, &a);
    drop((a, b));
    assert_eq!(gc::collect(2), 2);
    let log = k.log();
    assert_eq!(log.len(), 4, "{log:?}");
    assert!(log[..2].iter().all(|l| l.starts_with("finalize")), "{log:?}");
    assert!(log.contains(&"finalize 1 next=Some(2) weak=Some(true)".to_string()), "{log:?}");
    assert!(log.contains(&"finalize 2 next=Some(1) weak=Some(true)".to_string()), "{log:?}");
    // Weak handles were cleared before any value was dropped.
    assert!(log[2..].iter().all(|l| l.ends_with("weak=Some(false)")), "{log:?}");
}

#[test]
fn resurrection_through_a_weak_upgrade_is_transitive_and_happens_once() {
    let k = FinKit::new();
    let (a, b) = (k.make(1, true), k.make(2, false));
    close(&a, &b);
    close(&b, &a);
    let (ida, idb) = (Handle::id(&a), Handle::id(&b));
    drop((a, b));
    assert_eq!(gc::collect(2), 0, "a resurrected itself, and b with it");
    assert_eq!(k.stash.borrow().len(), 1);
    let a = k.stash.borrow()[0].clone();
    assert_eq!(Handle::id(&a), ida);
    assert!(gc::is_finalized(&a));
    let b = a.next.borrow().clone().unwrap();
    assert_eq!((Handle::id(&b), b.value), (idb, 2), "b is intact");
    assert!(gc::get_objects(Some(2)).iter().any(|o| o.id == ida), "resurrected boxes move on");
    drop((a, b));
    k.stash.borrow_mut().clear();
    let before = k.log().len();
    assert_eq!(gc::collect(2), 2);
    let after: Vec<String> = k.log()[before..].to_vec();
    assert!(after.iter().all(|l| l.starts_with("drop")), "no second finalization: {after:?}");
}

#[test]
fn a_resurrection_does_not_keep_other_garbage_alive_or_count_as_collected() {
    let k = FinKit::new();
    let d = Rc::new(Cell::new(0));
    for _ in 0..5 {
        let n = node(&d);
        link(&n, &n);
    }
    let p = k.make(9, true);
    close(&p, &p);
    drop(p);
    assert_eq!(gc::collect(2), 5);
    assert_eq!(gc::get_stats()[2].collected, 5);
    assert_eq!(d.get(), 5);
    assert_eq!(k.stash.borrow().len(), 1);
    k.stash.borrow_mut().clear();
    assert_eq!(gc::collect(2), 1);
}

struct PanickyFinalizer {
    me: RefCell<Option<Handle<PanickyFinalizer>>>,
}

// SAFETY: visits the one handle it holds.
unsafe impl Trace for PanickyFinalizer {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.me.trace(t);
    }
}

impl Finalize for PanickyFinalizer {
    fn finalize(&self) {
        panic!("finalizer panics");
    }
}

#[test]
fn a_panicking_finalizer_still_lets_the_collection_finish() {
    let d = counter();
    let p = Handle::new_with_finalizer(PanickyFinalizer { me: RefCell::new(None) });
    *p.me.borrow_mut() = Some(p.clone());
    let n = node(&d);
    link(&n, &n);
    drop((p, n));
    let r = std::panic::catch_unwind(|| gc::collect(2));
    assert!(r.is_err());
    assert_eq!(d.get(), 1);
    assert!(gc::get_objects(None).is_empty(), "the panicking one was collected too");
    assert_eq!(gc::collect(2), 0);
}

/// A node that makes a new self-cycle while it is dropped as garbage.
struct Breeder {
    me: RefCell<Option<Handle<Breeder>>>,
    breed: bool,
}

// SAFETY: visits the one handle it holds.
unsafe impl Trace for Breeder {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.me.trace(t);
    }
}

impl Drop for Breeder {
    fn drop(&mut self) {
        if self.breed {
            let child = Handle::new(Breeder { me: RefCell::new(None), breed: false });
            *child.me.borrow_mut() = Some(child.clone());
        }
    }
}

#[test]
fn handles_created_in_a_drop_during_collection_are_tracked_and_collected_later() {
    gc::set_threshold(0, 10, 10);
    let b = Handle::new(Breeder { me: RefCell::new(None), breed: true });
    *b.me.borrow_mut() = Some(b.clone());
    drop(b);
    assert_eq!(gc::collect(2), 1);
    let objs = gc::get_objects(Some(0));
    assert_eq!(objs.len(), 1, "the child is tracked in generation 0");
    assert!(objs[0].type_name.ends_with("Breeder"));
    assert_eq!(gc::collect(0), 1);
    assert!(gc::get_objects(None).is_empty());
}

// ---- D. Generations, thresholds, triggers ---------------------------------------------

#[test]
fn survivors_are_promoted_and_counts_follow_cpython() {
    let d = counter();
    let a = node(&d);
    assert!(in_generation(0, &a));
    assert_eq!(gc::get_count().0, 1, "one allocation");
    let t = node(&d);
    assert_eq!(gc::get_count().0, 2);
    drop(t);
    assert_eq!(gc::get_count().0, 1, "allocations minus deallocations");
    gc::collect(0);
    assert!(in_generation(1, &a));
    assert_eq!(gc::get_count(), (0, 1, 0));
    gc::collect(1);
    assert!(in_generation(2, &a));
    assert_eq!(gc::get_count(), (0, 0, 1));
    gc::collect(2);
    assert!(in_generation(2, &a));
    assert_eq!(gc::get_count(), (0, 0, 0));
    let stats = gc::get_stats();
    assert_eq!([stats[0].collections, stats[1].collections, stats[2].collections], [1, 1, 1]);
    assert_eq!(gc::collect(9), 0, "larger than 2 means 2");
    assert_eq!(gc::get_stats()[2].collections, 2);
}

#[test]
fn a_young_collection_leaves_a_cycle_through_an_old_object_for_a_full_one() {
    let d = counter();
    let old = node(&d);
    gc::collect(2); // `old` is now in generation 2
    let young = node(&d);
    link(&old, &young);
    link(&young, &old);
    drop((old, young));
    assert_eq!(gc::collect(0), 0, "the old half is outside generation 0: conservative");
    assert_eq!(gc::collect(1), 0);
    assert_eq!(gc::collect(2), 2);
    assert_eq!(d.get(), 2);
}

#[test]
fn the_long_lived_guard_defers_full_collections() {
    let d = counter();
    let live: Vec<Handle<Node>> = (0..1_000).map(|_| node(&d)).collect();
    gc::collect(2); // long-lived total = 1000
    let full = gc::get_stats()[2].collections;
    gc::set_threshold(10, 1, 1);
    for _ in 0..500 {
        let n = node(&d);
        link(&n, &n);
    }
    let s = gc::get_stats();
    assert!(s[0].collections > 10 && s[1].collections > 2, "{s:?}");
    assert_eq!(s[2].collections, full, "pending survivors < a quarter of 1000: no full collection");
    assert!(d.get() >= 450, "the young garbage was collected: {}", d.get());
    gc::set_threshold(0, 10, 10);
    drop(live);
    gc::collect(2);
    assert_eq!(d.get(), 1_500);
}

#[test]
fn without_long_lived_objects_full_collections_run_automatically() {
    let d = counter();
    gc::set_threshold(10, 1, 1);
    for _ in 0..500 {
        let n = node(&d);
        link(&n, &n);
    }
    assert!(gc::get_stats()[2].collections > 0);
    assert!(d.get() >= 450);
    gc::collect(2);
    assert_eq!(d.get(), 500);
}

#[test]
fn set_threshold_and_disable_change_when_allocation_collects() {
    let d = counter();
    for _ in 0..50 {
        let n = node(&d);
        link(&n, &n);
    }
    assert_eq!(d.get(), 0);
    gc::set_threshold(20, 10, 10);
    gc::disable();
    drop(node(&d));
    assert_eq!(d.get(), 1, "disabled: only the acyclic node was freed");
    gc::enable();
    assert!(gc::is_enabled());
    drop(node(&d));
    assert_eq!(d.get(), 52, "the allocation past threshold0 collected");
}

#[test]
fn freeze_unfreeze_and_get_objects_of_the_permanent_generation() {
    let d = counter();
    let keep: Vec<Handle<Node>> = (0..3).map(|_| node(&d)).collect();
    let g = node(&d);
    link(&g, &g);
    drop(g);
    gc::freeze();
    assert_eq!(gc::get_freeze_count(), 4);
    assert_eq!(gc::get_objects(Some(3)).len(), 4);
    assert!(gc::get_objects(Some(0)).is_empty());
    let fresh = node(&d);
    assert!(in_generation(0, &fresh));
    assert_eq!(gc::collect(2), 0);
    assert_eq!(d.get(), 0);
    gc::unfreeze();
    assert_eq!(gc::get_freeze_count(), 0);
    assert!(keep.iter().all(|k| in_generation(2, k)));
    assert_eq!(gc::collect(2), 1);
    drop((keep, fresh));
}

// ---- The gc API --------------------------------------------------------------------------

thread_local! {
    static EVENTS: RefCell<Vec<(gc::Phase, gc::CallbackInfo)>> = const { RefCell::new(Vec::new()) };
    static HELD: RefCell<Option<Handle<Node>>> = const { RefCell::new(None) };
    static NESTED: Cell<Option<usize>> = const { Cell::new(None) };
}

fn record(p: gc::Phase, i: gc::CallbackInfo) {
    EVENTS.with(|e| e.borrow_mut().push((p, i)));
}

fn drop_held_and_collect(p: gc::Phase, _: gc::CallbackInfo) {
    if p == gc::Phase::Start {
        HELD.with(|h| h.borrow_mut().take());
        NESTED.with(|n| n.set(Some(gc::collect(2))));
    }
}

#[test]
fn callbacks_see_start_and_stop_with_generation_and_counts() {
    let d = counter();
    gc::add_callback(record);
    let (a, b) = (node(&d), node(&d));
    link(&a, &b);
    link(&b, &a);
    drop((a, b));
    assert_eq!(gc::collect(0), 2);
    gc::collect(1);
    gc::clear_callbacks();
    gc::collect(2);
    let events = EVENTS.with(|e| e.borrow().clone());
    let zero = |g| gc::CallbackInfo { generation: g, collected: 0, uncollectable: 0 };
    assert_eq!(
        events,
        vec![
            (gc::Phase::Start, zero(0)),
            (gc::Phase::Stop, gc::CallbackInfo { generation: 0, collected: 2, uncollectable: 0 }),
            (gc::Phase::Start, zero(1)),
            (gc::Phase::Stop, zero(1)),
        ]
    );
}

#[test]
fn a_callback_may_drop_a_handle_and_its_nested_collect_returns_zero() {
    let d = counter();
    let a = node(&d);
    link(&a, &a);
    HELD.with(|h| *h.borrow_mut() = Some(a));
    gc::add_callback(drop_held_and_collect);
    // The callback drops the last outside handle before the collection looks.
    assert_eq!(gc::collect(2), 1);
    gc::clear_callbacks();
    assert_eq!(NESTED.with(Cell::get), Some(0));
    assert_eq!(d.get(), 1);
}

fn panicking_callback(p: gc::Phase, _: gc::CallbackInfo) {
    if p == gc::Phase::Start {
        panic!("callback panics");
    }
}

#[test]
fn a_panicking_start_callback_ends_the_collection_cleanly() {
    let d = counter();
    let a = node(&d);
    link(&a, &a);
    drop(a);
    gc::add_callback(panicking_callback);
    assert!(std::panic::catch_unwind(|| gc::collect(2)).is_err());
    gc::clear_callbacks();
    assert_eq!(d.get(), 0, "the collection did not run");
    assert_eq!(gc::collect(2), 1, "and the next one does");
    assert_eq!(d.get(), 1);
}

#[test]
fn get_stats_counts_collections_collected_and_uncollectable_per_generation() {
    let d = counter();
    let make_garbage = |n: usize| {
        for _ in 0..n {
            let x = node(&d);
            link(&x, &x);
        }
    };
    make_garbage(3);
    gc::collect(0);
    make_garbage(2);
    gc::set_debug(gc::DEBUG_SAVEALL);
    gc::collect(1);
    gc::set_debug(0);
    let s = gc::get_stats();
    assert_eq!(s[0], gc::GenerationStats { collections: 1, collected: 3, uncollectable: 0 });
    assert_eq!(s[1], gc::GenerationStats { collections: 1, collected: 0, uncollectable: 2 });
    assert_eq!(s[2], gc::GenerationStats::default());
    gc::clear_garbage();
    assert_eq!(gc::collect(2), 2);
}

#[test]
fn saved_garbage_keeps_identity_is_listed_and_is_freed_after_clear_garbage() {
    let d = counter();
    gc::set_debug(gc::DEBUG_SAVEALL);
    assert_eq!(gc::get_debug(), gc::DEBUG_SAVEALL);
    let (a, b) = (node(&d), node(&d));
    link(&a, &b);
    link(&b, &a);
    let mut ids = vec![Handle::id(&a), Handle::id(&b)];
    ids.sort();
    let w = Handle::downgrade(&a);
    drop((a, b));
    assert_eq!(gc::collect(2), 2);
    let mut saved: Vec<usize> = gc::garbage().iter().map(|o| o.id).collect();
    saved.sort();
    assert_eq!(saved, ids);
    assert!(gc::garbage().iter().all(|o| o.ref_count == 2), "one handle each, plus the list's");
    assert_eq!(gc::get_objects(None).len(), 2, "saved garbage is still tracked");
    assert_eq!(gc::collect(2), 0, "saved garbage is not found again");
    assert!(w.upgrade().is_none(), "weak handles into garbage are cleared, saved or not");
    gc::set_debug(0);
    gc::clear_garbage();
    assert!(gc::garbage().is_empty());
    assert_eq!(gc::collect(2), 2);
    assert_eq!(d.get(), 2);
}

#[test]
fn referents_and_referrers_follow_edges_across_generations() {
    let d = counter();
    let hub = node(&d);
    gc::collect(2); // the hub is old
    let spokes: Vec<Handle<Node>> = (0..3).map(|_| node(&d)).collect();
    spokes.iter().for_each(|s| link(s, &hub));
    link(&hub, &spokes[1]);
    let mut referrers: Vec<usize> = gc::get_referrers(&hub).iter().map(|o| o.id).collect();
    referrers.sort();
    let mut expected: Vec<usize> = spokes.iter().map(Handle::id).collect();
    expected.sort();
    assert_eq!(referrers, expected);
    let referents = gc::get_referents(&hub);
    assert_eq!(referents.len(), 1);
    assert_eq!(referents[0].id, Handle::id(&spokes[1]));
    assert_eq!(referents[0].ref_count, 2);
    assert!(gc::get_referrers(&spokes[0]).is_empty());
    drop((hub, spokes));
    assert_eq!(gc::collect(2), 2, "hub <-> spokes[1] was the one cycle");
    assert_eq!(d.get(), 4);
}

// ---- E. Re-entrancy, panics, threads ---------------------------------------------------

struct FinalizerCollects {
    me: RefCell<Option<Handle<FinalizerCollects>>>,
    nested: Rc<Cell<Option<usize>>>,
}

// SAFETY: visits the one handle it holds.
unsafe impl Trace for FinalizerCollects {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.me.trace(t);
    }
}

impl Finalize for FinalizerCollects {
    fn finalize(&self) {
        self.nested.set(Some(gc::collect(2)));
    }
}

#[test]
fn collect_called_from_a_finalizer_returns_zero() {
    gc::set_threshold(0, 10, 10);
    let nested = Rc::new(Cell::new(None));
    let f = Handle::new_with_finalizer(FinalizerCollects { me: RefCell::new(None), nested: nested.clone() });
    *f.me.borrow_mut() = Some(f.clone());
    drop(f);
    assert_eq!(gc::collect(2), 1);
    assert_eq!(nested.get(), Some(0));
}

/// Traces its handle, or panics when told to.
struct BadTrace {
    me: RefCell<Option<Handle<BadTrace>>>,
    panic: Rc<Cell<bool>>,
}

// SAFETY: visits the one handle it holds (or panics before visiting anything).
unsafe impl Trace for BadTrace {
    fn trace(&self, t: &mut Tracer<'_>) {
        if self.panic.get() {
            panic!("trace panics");
        }
        self.me.trace(t);
    }
}

#[test]
fn a_panicking_trace_leaves_every_box_tracked_and_the_collector_usable() {
    let d = counter();
    let panic = Rc::new(Cell::new(true));
    let b = Handle::new(BadTrace { me: RefCell::new(None), panic: panic.clone() });
    *b.me.borrow_mut() = Some(b.clone());
    let keep = node(&d);
    let (x, y) = (node(&d), node(&d));
    link(&x, &y);
    link(&y, &x);
    drop((b, x, y));
    let r = std::panic::catch_unwind(|| gc::collect(2));
    assert!(r.is_err());
    assert_eq!(d.get(), 0, "nothing was freed");
    assert_eq!(gc::get_objects(None).len(), 4, "every box is still tracked");
    assert_eq!(Handle::ref_count(&keep), 1);
    panic.set(false);
    assert_eq!(gc::collect(2), 3);
    assert_eq!(d.get(), 2);
    assert_eq!(gc::collect(2), 0);
}

/// A node whose drops are counted across threads.
#[derive(Trace)]
struct Shared {
    next: RefCell<Option<Handle<Shared>>>,
    #[trace(skip)]
    drops: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.drops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_handle_in_a_thread_local_is_dropped_safely_at_thread_exit() {
    thread_local! {
        static KEEP: RefCell<Option<Handle<Shared>>> = const { RefCell::new(None) };
    }
    let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let d = drops.clone();
    std::thread::spawn(move || {
        let b = Handle::new(Shared { next: RefCell::new(None), drops: d.clone() });
        let a = Handle::new(Shared { next: RefCell::new(Some(b)), drops: d });
        // Dropped by the thread-local's destructor, after the thread's code returned.
        KEEP.with(|k| *k.borrow_mut() = Some(a));
    })
    .join()
    .unwrap();
    assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 2);
}

#[test]
fn a_live_million_node_doubly_linked_list_survives_a_collection_on_a_2_mib_thread() {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let d = counter();
            let head = node(&d);
            let mut tail = head.clone();
            for _ in 1..1_000_000 {
                let n = node(&d);
                link(&tail, &n);
                link(&n, &tail);
                tail = n;
            }
            drop(tail);
            assert_eq!(gc::collect(2), 0, "all reachable from the head");
            assert_eq!(d.get(), 0);
            drop(head);
            assert_eq!(gc::collect(2), 1_000_000, "now a million garbage 2-cycles, chained");
            assert_eq!(d.get(), 1_000_000);
        })
        .unwrap()
        .join()
        .unwrap();
}
