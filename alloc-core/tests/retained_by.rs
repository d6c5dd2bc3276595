//! `retained_by`: the chain from a root to a block, on real heaps.

use alloc_core::retain::{RetainError, RootKind};
use alloc_core::retained_by;
use std::hint::black_box;
use std::sync::Mutex;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

/// The searches stop the world: one at a time keeps the tests' answers independent.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

struct Node {
    _payload: [u64; 3],
    next: Option<Box<Node>>,
}

static LIST: Mutex<Option<Box<Node>>> = Mutex::new(None);

#[inline(never)]
fn build_list(len: usize) {
    let mut head = None;
    for i in 0..len {
        head = Some(Box::new(Node { _payload: [i as u64; 3], next: head }));
    }
    *LIST.lock().unwrap() = head;
}

#[test]
fn a_list_in_a_static_is_followed_node_by_node() {
    let _s = serial();
    build_list(5);
    let last: *const u8 = {
        let list = LIST.lock().unwrap();
        let mut n = list.as_deref().unwrap();
        while let Some(next) = n.next.as_deref() {
            n = next;
        }
        n as *const Node as *const u8
    };
    let why = retained_by(last).expect("the list is reachable");
    assert_eq!(why.root.kind, RootKind::Globals, "{why}");
    let symbol = why.root.symbol.as_deref().unwrap_or("");
    assert!(symbol.contains("LIST"), "the static is named: {symbol:?}\n{why}");
    assert_eq!(why.steps.len(), 5, "{why}");
    let next_at = std::mem::offset_of!(Node, next);
    for s in &why.steps[..4] {
        assert_eq!(s.next_offset, Some(next_at), "{why}");
        assert_eq!(s.size, std::mem::size_of::<Node>());
    }
    assert_eq!(why.steps[4].next_offset, None);
    assert_eq!(why.steps[4].address, last as usize);
    let site = why.steps[4].site().and_then(|f| f.function.as_deref()).unwrap_or("");
    assert!(site.contains("build_list"), "the allocation site is the builder: {site}\n{why}");
    let text = why.to_string();
    println!("{text}");
    assert!(text.contains("chain of 5 block(s)") && text.contains("LIST"), "{text}");
    *LIST.lock().unwrap() = None;
}

#[test]
fn an_interior_pointer_names_its_block() {
    let _s = serial();
    #[allow(clippy::vec_box)] // the box is the block asked about
    static HOLD: Mutex<Vec<Box<[u64; 8]>>> = Mutex::new(Vec::new());
    HOLD.lock().unwrap().push(Box::new([7; 8]));
    let inside = HOLD.lock().unwrap()[0].as_ptr().wrapping_add(5) as *const u8;
    let why = retained_by(inside).unwrap();
    assert_eq!(why.steps.last().unwrap().size, 64, "{why}");
    assert_eq!(why.steps.last().unwrap().address, inside as usize - 40);
    HOLD.lock().unwrap().clear();
}

#[inline(never)]
fn leak_one() -> usize {
    let b = Box::new([3u64; 6]);
    let addr = &*b as *const [u64; 6] as usize;
    std::mem::forget(b);
    // Hidden from the conservative scan: stored flipped.
    !addr
}

#[test]
fn a_leaked_block_is_unreachable() {
    let _s = serial();
    let hidden = std::thread::spawn(leak_one).join().unwrap();
    match retained_by((!black_box(hidden)) as *const u8) {
        Err(RetainError::Unreachable { size, .. }) => assert_eq!(size, 48),
        other => panic!("expected unreachable, got {other:?}"),
    }
    // Leaked on purpose: not for the at-exit check to report.
    assert!(alloc_core::ignore((!black_box(hidden)) as *const u8));
}

#[test]
fn an_address_outside_the_heap_is_not_a_block() {
    let _s = serial();
    let local = 5u64;
    let got = retained_by(&local as *const u64 as *const u8);
    assert_eq!(got, Err(RetainError::NotABlock { address: &local as *const u64 as usize }));
}

#[test]
fn another_threads_stack_is_a_root() {
    let _s = serial();
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let held = black_box(Box::new([9u64; 4]));
        tx.send(!(&*held as *const [u64; 4] as usize)).unwrap();
        done_rx.recv().unwrap();
        black_box(&held);
    });
    let addr = !rx.recv().unwrap();
    let why = retained_by(addr as *const u8).expect("the other thread holds it");
    assert!(matches!(why.root.kind, RootKind::Stack | RootKind::Registers), "{why}");
    assert_eq!(why.steps.len(), 1, "{why}");
    done_tx.send(()).unwrap();
    t.join().unwrap();
}

#[test]
fn an_ignored_block_is_a_root_of_its_own() {
    let _s = serial();
    let holder: &'static mut Vec<Box<u128>> = Box::leak(Box::new(vec![Box::new(1u128)]));
    assert!(alloc_core::ignore(holder as *const Vec<Box<u128>> as *const u8));
    let inner = &*holder[0] as *const u128 as *const u8;
    let holder_addr = !(holder as *const Vec<Box<u128>> as usize);
    let why = retained_by(inner).unwrap();
    // The Vec header block is ignored; or the static-free chain may start elsewhere, but
    // it must end at the box and pass through the Vec's buffer.
    assert_eq!(why.steps.last().unwrap().size, 16, "{why}");
    if why.root.kind == RootKind::IgnoredBlock {
        assert_eq!(why.root.start, !holder_addr, "{why}");
        assert_eq!(why.steps.len(), 2, "the buffer, then the box: {why}");
    }
}
