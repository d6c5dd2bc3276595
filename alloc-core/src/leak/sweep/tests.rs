//! A sweep's phases on a fake heap whose blocks live in the real heap, with this
//! process's real roots and the other threads stopped.

use super::*;
use crate::leak::fake::FakeHeap;
use crate::leak::roots::RootKind;
use crate::leak::spill_registers;
use crate::leak::stop::{stop_the_world, test_serial};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

/// `root` → o (generation 1) → y0 (generation 0); o2 (generation 2, unreferenced);
/// y1 (generation 0, unreferenced) → y2 (generation 0); an ignored last block.
#[inline(never)]
fn build(root: &AtomicUsize) -> FakeHeap {
    let mut h = FakeHeap::new();
    let ids: Vec<u32> = (0..5).map(|_| h.add(9)).collect();
    let [o, y0, o2, y1, y2] = ids[..] else { unreachable!() };
    h.link(o, 4, y0, 8);
    h.link(y1, 0, y2, 0);
    h.generation[o as usize].set(1);
    h.generation[o2 as usize].set(2);
    // A last block, allocated after the others and reported by no test: in release
    // builds a stale copy of the address of a thread's last allocation outlives it.
    let last = h.add(9);
    h.ignore(last);
    root.store(h.addr(o), SeqCst);
    h
}

/// [`build`] on a thread of its own, so no stale copy of a block's address stays here.
fn built_elsewhere(root: &'static AtomicUsize) -> FakeHeap {
    std::thread::spawn(move || build(root)).join().unwrap()
}

/// Stops the world and sweeps `h`. The caller holds [`test_serial`] for its whole test:
/// a test that ran meanwhile could leave, on its thread's live stack, a stale copy of the
/// address of a block it freed, which this test's heap may reuse for a leak.
#[inline(never)]
fn sweep(h: &FakeHeap, g: u8, old: OldBlocks<'_>, sp: usize) -> SweepAnalysis {
    let plan = RootPlan::prepare();
    let mut world = stop_the_world(Duration::from_secs(10));
    let a = analyze_generation(h, &world, &plan, &RootOptions::default(), sp, g, old);
    world.resume();
    a.expect("the sweep ran to the end")
}

fn new_ids(a: &SweepAnalysis) -> Vec<u32> {
    a.new_leaks.iter().map(|l| l.id).collect()
}

#[test]
fn a_young_sweep_reports_young_leaks_once_and_promotes_survivors() {
    static ROOT: AtomicUsize = AtomicUsize::new(0);
    let _serial = test_serial();
    let h = std::hint::black_box(built_elsewhere(&ROOT));
    let mut spill = [0usize; 6];
    let sp = spill_registers(&mut spill);
    let a = sweep(&h, 0, OldBlocks::Scan, sp);
    assert_eq!(new_ids(&a), [3, 4], "y1 and y2; the unreferenced old o2 is not swept");
    assert_eq!(a.new_leaks[1].kind, classify::LeakKind::Indirect);
    assert_eq!((a.swept_blocks, a.survivors, a.old_leaks), (4, 1, 0), "the ignored last block is swept, not counted");
    let gens: Vec<u8> = h.generation.iter().map(|g| g.get()).collect();
    assert_eq!(gens, [1, 1, 2, 0, 0, 1], "y0 survived into generation 1; leaks stay young");
    assert!(h.reported[3].get() && h.reported[4].get() && !h.reported[1].get());
    let again = sweep(&h, 0, OldBlocks::Scan, sp);
    assert_eq!(new_ids(&again), Vec::<u32>::new(), "reported once only");
    assert_eq!(again.old_leaks, 2);
    ROOT.store(0, SeqCst);
}

#[test]
fn a_full_sweep_reports_old_leaks_and_promotes_to_the_oldest() {
    static ROOT: AtomicUsize = AtomicUsize::new(0);
    let _serial = test_serial();
    let h = std::hint::black_box(built_elsewhere(&ROOT));
    let mut spill = [0usize; 6];
    let a = sweep(&h, OLDEST, OldBlocks::Scan, spill_registers(&mut spill));
    assert_eq!(new_ids(&a), [2, 3, 4]);
    assert_eq!((a.swept_blocks, a.survivors, a.oldest_blocks), (6, 2, 3));
    assert_eq!(h.generation[0].get(), 2);
    assert_eq!(h.generation[1].get(), 2);
    ROOT.store(0, SeqCst);
}

#[test]
fn a_generation_one_sweep_leaves_the_oldest_alone() {
    static ROOT: AtomicUsize = AtomicUsize::new(0);
    let _serial = test_serial();
    let h = std::hint::black_box(built_elsewhere(&ROOT));
    let mut spill = [0usize; 6];
    let a = sweep(&h, 1, OldBlocks::Scan, spill_registers(&mut spill));
    assert_eq!(new_ids(&a), [3, 4]);
    assert_eq!(a.swept_blocks, 5);
    assert_eq!(h.generation[0].get(), 2, "o survived generation 1: now the oldest");
    assert_eq!(h.generation[1].get(), 2, "y0 too");
    ROOT.store(0, SeqCst);
}

#[test]
fn with_written_ranges_only_those_parts_of_old_blocks_are_roots() {
    static ROOT: AtomicUsize = AtomicUsize::new(0);
    let _serial = test_serial();
    let h = std::hint::black_box(built_elsewhere(&ROOT));
    let mut spill = [0usize; 6];
    let sp = spill_registers(&mut spill);
    // o's word 4 holds the only pointer to y0: a written range over it keeps y0.
    let word = h.addr(0) + 4 * 8;
    let written = [RootRange { start: word, end: word + 8, kind: RootKind::OtherMapping }];
    let a = sweep(&h, 0, OldBlocks::Written(&written), sp);
    assert_eq!(new_ids(&a), [3, 4]);
    // Without it, o's contents are not scanned: y0 looks unreachable.
    let h2 = std::hint::black_box(built_elsewhere(&ROOT));
    let b = sweep(&h2, 0, OldBlocks::Written(&[]), sp);
    assert_eq!(new_ids(&b), [1, 3, 4]);
    ROOT.store(0, SeqCst);
}
