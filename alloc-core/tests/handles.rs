//! `Handle<T>` and the cycle collector: the scenarios of the design notes. Each test runs
//! on its own thread, with its own collector (handles are per thread).

use alloc_core::{gc, Finalize, Handle, Trace, Tracer, WeakHandle};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

mod common;
use common::nodes::{counter, link, node, Node};

#[test]
fn a_self_cycle_is_collected() {
    let d = counter();
    let a = node(&d);
    link(&a, &a);
    drop(a);
    assert_eq!(d.get(), 0);
    assert_eq!(gc::collect(2), 1);
    assert_eq!(d.get(), 1);
}

#[test]
fn a_two_cycle_and_a_long_cycle_are_collected() {
    let d = counter();
    let (a, b) = (node(&d), node(&d));
    link(&a, &b);
    link(&b, &a);
    drop((a, b));
    assert_eq!(gc::collect(0), 2);
    let first = node(&d);
    let mut prev = first.clone();
    for _ in 1..10_000 {
        let n = node(&d);
        link(&prev, &n);
        prev = n;
    }
    link(&prev, &first);
    drop((first, prev));
    assert_eq!(gc::collect(2), 10_000);
    assert_eq!(d.get(), 10_002);
}

#[test]
fn a_cycle_reachable_from_outside_survives_and_moves_to_an_older_generation() {
    let d = counter();
    let (a, b) = (node(&d), node(&d));
    link(&a, &b);
    link(&b, &a);
    let root = a.clone();
    drop((a, b));
    assert_eq!(gc::collect(0), 0);
    assert_eq!(d.get(), 0);
    assert!(gc::get_objects(Some(1)).iter().any(|o| o.id == Handle::id(&root)));
    drop(root);
    assert_eq!(gc::collect(2), 2);
}

trait Shape: Trace {
    fn area(&self) -> u32;
}

struct Holder {
    other: RefCell<Option<Handle<Box<dyn Shape>>>>,
}

// SAFETY: visits the one handle it may hold.
unsafe impl Trace for Holder {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.other.trace(t);
    }
}

impl Shape for Holder {
    fn area(&self) -> u32 {
        1
    }
}

#[test]
fn a_cycle_through_trait_objects_is_collected() {
    gc::set_threshold(0, 10, 10);
    let a: Handle<Box<dyn Shape>> = Handle::new(Box::new(Holder { other: RefCell::new(None) }));
    let b: Handle<Box<dyn Shape>> = Handle::new(Box::new(Holder { other: RefCell::new(Some(a.clone())) }));
    assert_eq!(a.area() + b.area(), 2);
    // Close the cycle through the concrete type behind the first trait object.
    let holder: &Holder = unsafe_downcast(&a);
    *holder.other.borrow_mut() = Some(b.clone());
    drop((a, b));
    assert_eq!(gc::collect(2), 2);
}

fn unsafe_downcast(h: &Handle<Box<dyn Shape>>) -> &Holder {
    let p: *const dyn Shape = &***h;
    // SAFETY: every `dyn Shape` in this test is a `Holder`.
    unsafe { &*(p as *const Holder) }
}

#[test]
fn weak_handles_into_collected_garbage_stop_upgrading() {
    let d = counter();
    let (a, b) = (node(&d), node(&d));
    link(&a, &b);
    link(&b, &a);
    let w: WeakHandle<Node> = Handle::downgrade(&a);
    assert!(w.upgrade().is_some());
    drop((a, b));
    gc::collect(2);
    assert!(w.upgrade().is_none());
    drop(w); // frees the box the weak handle kept
}

struct Phoenix {
    me: RefCell<Option<Handle<Phoenix>>>,
    finalized: Rc<Cell<usize>>,
    saved: Rc<RefCell<Option<Handle<Phoenix>>>>,
}

// SAFETY: visits the one handle it holds.
unsafe impl Trace for Phoenix {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.me.trace(t);
    }
}

impl Finalize for Phoenix {
    fn finalize(&self) {
        self.finalized.set(self.finalized.get() + 1);
        // Resurrect: store a handle to ourselves somewhere reachable.
        *self.saved.borrow_mut() = self.me.borrow().clone();
    }
}

#[test]
fn finalizers_run_once_and_may_resurrect() {
    gc::set_threshold(0, 10, 10);
    let finalized = Rc::new(Cell::new(0));
    let saved = Rc::new(RefCell::new(None));
    let p = Handle::new_with_finalizer(Phoenix {
        me: RefCell::new(None),
        finalized: finalized.clone(),
        saved: saved.clone(),
    });
    *p.me.borrow_mut() = Some(p.clone());
    drop(p);
    assert_eq!(gc::collect(2), 0, "resurrected, so not collected");
    assert_eq!(finalized.get(), 1);
    assert!(saved.borrow().is_some());
    // Unreachable again: the finalizer does not run a second time, and it is freed.
    *saved.borrow_mut() = None;
    assert_eq!(gc::collect(2), 1);
    assert_eq!(finalized.get(), 1);
}

struct Collector {
    me: RefCell<Option<Handle<Collector>>>,
    nested: Rc<Cell<Option<usize>>>,
}

// SAFETY: visits the one handle it holds.
unsafe impl Trace for Collector {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.me.trace(t);
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.nested.set(Some(gc::collect(2)));
    }
}

#[test]
fn a_collection_started_inside_a_drop_during_collection_returns_zero() {
    gc::set_threshold(0, 10, 10);
    let nested = Rc::new(Cell::new(None));
    let c = Handle::new(Collector { me: RefCell::new(None), nested: nested.clone() });
    *c.me.borrow_mut() = Some(c.clone());
    drop(c);
    assert_eq!(gc::collect(2), 1);
    assert_eq!(nested.get(), Some(0));
}

struct Bomb {
    me: RefCell<Option<Handle<Bomb>>>,
}

// SAFETY: visits the one handle it holds.
unsafe impl Trace for Bomb {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.me.trace(t);
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("boom");
    }
}

#[test]
fn a_panicking_drop_leaves_the_collector_consistent() {
    let d = counter();
    let b = Handle::new(Bomb { me: RefCell::new(None) });
    *b.me.borrow_mut() = Some(b.clone());
    let (x, y) = (node(&d), node(&d));
    link(&x, &y);
    link(&y, &x);
    drop((b, x, y));
    let r = std::panic::catch_unwind(|| gc::collect(2));
    assert!(r.is_err(), "the panic resumes after the collection");
    assert_eq!(d.get(), 2, "the other garbage was still dropped");
    assert!(gc::get_objects(None).is_empty());
    // The collector still works.
    let z = node(&d);
    link(&z, &z);
    drop(z);
    assert_eq!(gc::collect(2), 1);
}

#[test]
fn threshold_zero_disables_and_set_threshold_takes_effect() {
    let d = counter();
    for _ in 0..2_000 {
        let n = node(&d);
        link(&n, &n);
    }
    assert_eq!(d.get(), 0, "no automatic collection with threshold0 = 0");
    assert_eq!(gc::get_count().0, 2_000);
    gc::set_threshold(100, 10, 10);
    assert_eq!(gc::get_threshold(), (100, 10, 10));
    let n = node(&d);
    drop(n);
    assert!(d.get() >= 2_000, "the next allocation past the threshold collected: {}", d.get());
    assert!(gc::get_stats()[0].collections >= 1);
    assert_eq!(gc::get_count().1, 1);
}

#[test]
fn disable_and_enable_automatic_collection() {
    let d = counter();
    gc::set_threshold(10, 10, 10);
    gc::disable();
    assert!(!gc::is_enabled());
    for _ in 0..100 {
        let n = node(&d);
        link(&n, &n);
    }
    assert_eq!(d.get(), 0);
    gc::enable();
    drop(node(&d));
    assert!(d.get() >= 100);
}

#[test]
fn freeze_moves_everything_to_the_permanent_generation() {
    let d = counter();
    let a = node(&d);
    link(&a, &a);
    drop(a);
    gc::freeze();
    assert_eq!(gc::get_freeze_count(), 1);
    assert_eq!(gc::collect(2), 0, "frozen boxes are not collected");
    gc::unfreeze();
    assert_eq!(gc::get_freeze_count(), 0);
    assert_eq!(gc::collect(2), 1);
}

#[test]
fn debug_saveall_keeps_garbage() {
    let d = counter();
    gc::set_debug(gc::DEBUG_SAVEALL);
    let a = node(&d);
    link(&a, &a);
    drop(a);
    assert_eq!(gc::collect(2), 1);
    assert_eq!(d.get(), 0, "kept, not dropped");
    assert_eq!(gc::garbage().len(), 1);
    assert!(gc::garbage()[0].type_name.ends_with("Node"));
    assert_eq!(gc::get_stats()[2].uncollectable, 1);
    gc::set_debug(0);
    gc::clear_garbage();
    assert_eq!(gc::collect(2), 1);
    assert_eq!(d.get(), 1);
}

#[test]
fn a_refcell_borrowed_during_collection_counts_as_an_outside_reference() {
    let d = counter();
    let (a, b) = (node(&d), node(&d));
    link(&a, &b);
    link(&b, &a);
    let guard = a.next.borrow_mut();
    let pinned: *const Node = &*a;
    drop(b);
    // `a` is still held; `b` is reachable only through `a`'s borrowed RefCell, which the
    // collector cannot read: it must not free `b`.
    assert_eq!(gc::collect(2), 0);
    drop(guard);
    // SAFETY: `a` is alive.
    assert_eq!(unsafe { &*pinned }.next.borrow().len(), 1);
    drop(a);
    assert_eq!(gc::collect(2), 2);
}

#[test]
fn a_million_node_chain_drops_and_collects_on_a_2_mib_stack() {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let d = counter();
            let head = node(&d);
            let mut tail = head.clone();
            for _ in 1..1_000_000 {
                let n = node(&d);
                link(&tail, &n);
                tail = n;
            }
            drop(tail);
            drop(head); // a million nested drops, deferred: no stack overflow
            assert_eq!(d.get(), 1_000_000);
            let head = node(&d);
            let mut tail = head.clone();
            for _ in 1..1_000_000 {
                let n = node(&d);
                link(&tail, &n);
                tail = n;
            }
            link(&tail, &head);
            drop((head, tail));
            assert_eq!(gc::collect(2), 1_000_000);
            assert_eq!(d.get(), 2_000_000);
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn referents_referrers_objects_and_callbacks() {
    let d = counter();
    let (a, b, c) = (node(&d), node(&d), node(&d));
    link(&a, &b);
    link(&c, &b);
    let referents: Vec<usize> = gc::get_referents(&a).iter().map(|o| o.id).collect();
    assert_eq!(referents, vec![Handle::id(&b)]);
    let mut referrers: Vec<usize> = gc::get_referrers(&b).iter().map(|o| o.id).collect();
    referrers.sort();
    let mut expected = vec![Handle::id(&a), Handle::id(&c)];
    expected.sort();
    assert_eq!(referrers, expected);
    assert_eq!(gc::get_objects(None).len(), 3);
    assert_eq!(Handle::ref_count(&b), 3);
    thread_local!(static PHASES: RefCell<Vec<(gc::Phase, usize)>> = const { RefCell::new(Vec::new()) });
    fn record(p: gc::Phase, i: gc::CallbackInfo) {
        PHASES.with(|v| v.borrow_mut().push((p, i.collected)));
    }
    gc::add_callback(record);
    drop((a, b, c));
    gc::collect(1);
    gc::clear_callbacks();
    PHASES.with(|v| assert_eq!(*v.borrow(), vec![(gc::Phase::Start, 0), (gc::Phase::Stop, 0)]));
}

struct Escaper {
    me: RefCell<Option<Handle<Escaper>>>,
    out: Rc<RefCell<Option<Handle<Escaper>>>>,
}

// SAFETY: visits the one handle it holds.
unsafe impl Trace for Escaper {
    fn trace(&self, t: &mut Tracer<'_>) {
        self.me.trace(t);
    }
}

impl Drop for Escaper {
    fn drop(&mut self) {
        // Smuggle a handle out of the garbage while it is being dropped.
        *self.out.borrow_mut() = self.me.borrow_mut().take();
    }
}

#[test]
fn a_handle_smuggled_out_of_garbage_panics_on_deref_instead_of_being_undefined() {
    gc::set_threshold(0, 10, 10);
    let out = Rc::new(RefCell::new(None));
    let e = Handle::new(Escaper { me: RefCell::new(None), out: out.clone() });
    *e.me.borrow_mut() = Some(e.clone());
    drop(e);
    assert_eq!(gc::collect(2), 1);
    let smuggled = out.borrow_mut().take().unwrap();
    assert!(Handle::try_get(&smuggled).is_none());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = &smuggled.me;
    }));
    assert!(r.is_err());
    drop(smuggled); // frees the box
}

#[derive(Trace)]
struct Pair<T: Trace + 'static> {
    left: RefCell<Option<Handle<Pair<T>>>>,
    right: Vec<Handle<Pair<T>>>,
    value: T,
    #[trace(skip)]
    _note: std::path::PathBuf,
}

#[derive(Trace)]
enum Tree {
    Leaf(u32),
    Branch(Vec<Handle<RefCell<Tree>>>),
    Empty,
}

#[test]
fn derived_traces_find_cycles_in_structs_and_enums() {
    gc::set_threshold(0, 10, 10);
    let a = Handle::new(Pair { left: RefCell::new(None), right: Vec::new(), value: 1u64, _note: "a".into() });
    let b = Handle::new(Pair {
        left: RefCell::new(Some(a.clone())),
        right: vec![a.clone()],
        value: 2u64,
        _note: "b".into(),
    });
    *a.left.borrow_mut() = Some(b.clone());
    assert_eq!(gc::get_referents(&b).len(), 2);
    assert_eq!(a.value + b.value, 3);
    drop((a, b));
    assert_eq!(gc::collect(2), 2);

    let leaf = Handle::new(RefCell::new(Tree::Leaf(7)));
    let root = Handle::new(RefCell::new(Tree::Branch(vec![leaf.clone()])));
    *leaf.borrow_mut() = Tree::Branch(vec![root.clone()]);
    let empty = Handle::new(RefCell::new(Tree::Empty));
    drop((leaf, root));
    assert_eq!(gc::collect(2), 2);
    assert!(matches!(*empty.borrow(), Tree::Empty));
}
