//! The report's `cycles`: each leaked cycle once, its members in order, with the offset of
//! each member's pointer to the next.

use alloc_core::check_scope;
use std::cell::RefCell;
use std::rc::Rc;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

struct Node {
    _tag: [u64; 2],
    next: RefCell<Option<Rc<Node>>>,
}

/// `n` Rc nodes in a ring, leaked; returns their addresses in ring order (hidden).
#[inline(never)]
fn leak_ring(n: usize) -> Vec<usize> {
    let nodes: Vec<Rc<Node>> =
        (0..n).map(|i| Rc::new(Node { _tag: [i as u64; 2], next: RefCell::new(None) })).collect();
    for (i, node) in nodes.iter().enumerate() {
        *node.next.borrow_mut() = Some(Rc::clone(&nodes[(i + 1) % n]));
    }
    // Rc points at the value; the block starts two counts earlier.
    nodes.iter().map(|r| !(Rc::as_ptr(r) as usize - 16)).collect()
}

#[test]
fn a_ring_of_rcs_is_one_cycle_in_ring_order() {
    alloc_core::config::set_check_at_exit(false);
    let (hidden, report) = check_scope(|| leak_ring(4));
    let addrs: Vec<usize> = hidden.iter().map(|a| !a).collect();
    assert_eq!(report.summary.cyclic_blocks, 4, "{report:#?}");
    assert_eq!(report.cycles.len(), 1, "one cycle, not four: {:#?}", report.cycles);
    let c = &report.cycles[0];
    assert_eq!((c.component_blocks, c.members.len(), c.more_members), (4, 4, 0));
    let shown: Vec<usize> =
        c.members.iter().map(|m| usize::from_str_radix(m.address.trim_start_matches("0x"), 16).unwrap()).collect();
    // The members follow the pointers: each is the next one's predecessor in the ring.
    let start = addrs.iter().position(|&a| a == shown[0]).expect("a member is a ring node");
    let expected: Vec<usize> = (0..4).map(|i| addrs[(start + i) % 4]).collect();
    assert_eq!(shown, expected);
    let next_at = 16 + std::mem::offset_of!(Node, next) as u64 + 8; // RefCell's flag, then the Rc
    for m in &c.members {
        assert_eq!(m.bytes, 48);
        assert_eq!(m.next_offset, next_at, "{:#?}", c.members);
        let g = &report.leaks[m.group];
        assert!(g.cyclic && g.stack.iter().any(|f| f.function.as_deref().is_some_and(|n| n.contains("leak_ring"))));
    }
    let text = alloc_core::report::text::render(&report, &Default::default());
    assert!(text.contains("Leaked cycle of 4 block(s)"), "{text}");
    assert!(text.contains("Rc on a reference cycle"), "{text}");
}

struct Link {
    _value: u64,
    _next: Option<Box<Link>>,
}

#[inline(never)]
fn leak_list(n: u64) {
    let mut head = None;
    for i in 0..n {
        head = Some(Box::new(Link { _value: i, _next: head }));
    }
    std::mem::forget(std::hint::black_box(head));
}

#[test]
fn a_list_is_no_cycle() {
    alloc_core::config::set_check_at_exit(false);
    let ((), report) = check_scope(|| leak_list(3));
    assert_eq!(report.summary.leaked_blocks, 3);
    assert!(report.cycles.is_empty(), "{:#?}", report.cycles);
}

#[test]
fn a_cycle_is_in_the_json_report() {
    alloc_core::config::set_check_at_exit(false);
    let (_, report) = check_scope(|| leak_ring(2));
    let json = report.to_json();
    assert!(json.contains("\"cycles\": ["), "{json}");
    assert!(json.contains("\"component_blocks\": 2") && json.contains("\"next_offset\": 40"), "{json}");
    let back: alloc_core::LeakReport = serde_json::from_str(&json).unwrap();
    back.validate().unwrap();
    assert_eq!(back.cycles, report.cycles);
}
