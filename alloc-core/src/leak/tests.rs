//! The whole analysis on a fake heap whose blocks live in the real heap, with this
//! process's real roots, the other threads stopped as in a real check.

use super::fake::FakeHeap;
use super::stop::{stop_the_world, test_serial};
use super::*;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

/// Builds the graph in a frame of its own, gone before the analysis scans the stack:
/// `root` → a → b; c → d (leaked list); e → e (leaked self-cycle); f ignored → g.
#[inline(never)]
fn build(root: &AtomicUsize) -> FakeHeap {
    let mut h = FakeHeap::new();
    let ids: Vec<u32> = (0..7).map(|_| h.add(37)).collect();
    let [a, b, c, d, e, f, g] = ids[..] else { unreachable!() };
    h.link(a, 3, b, 0);
    h.link(c, 36, d, 8);
    h.link(e, 0, e, 100);
    h.link(f, 1, g, 0);
    h.ignore(f);
    root.store(h.addr(a) + 16, SeqCst);
    h
}

/// [`build`] on a thread of its own, which ends before the analysis: no stale copy of a
/// block's address stays in this thread's registers or frames (the scan is conservative).
fn built_elsewhere(root: &'static AtomicUsize) -> FakeHeap {
    std::thread::spawn(move || build(root)).join().unwrap()
}

/// Stops the world, analyzes `h`, resumes. Nothing allocates in between. `sp` is the
/// test's own: the frames below it (this one, and `build`'s before it) are not scanned.
#[inline(never)]
fn analyze_stopped(h: &FakeHeap, opts: &RootOptions, sp: usize) -> Analysis {
    try_analyze_stopped(h, opts, sp).expect("the analysis ran to the end")
}

#[inline(never)]
fn try_analyze_stopped(h: &FakeHeap, opts: &RootOptions, sp: usize) -> Result<Analysis, Failure> {
    let _serial = test_serial();
    let plan = RootPlan::prepare();
    let mut world = stop_the_world(Duration::from_secs(10));
    let a = analyze(h, &world, &plan, opts, sp, &|_| true, true);
    let stop = world.failure();
    world.resume();
    assert_eq!(stop, None, "the world stopped");
    a
}

#[test]
fn analyze_reports_what_no_root_reaches() {
    static ROOT: AtomicUsize = AtomicUsize::new(0);
    let h = std::hint::black_box(built_elsewhere(&ROOT));
    let mut spill = [0usize; 6];
    let a = analyze_stopped(&h, &RootOptions::default(), spill_registers(&mut spill));
    let got: Vec<(u32, LeakKind, bool)> = a.leaked.iter().map(|l| (l.id, l.kind, l.cyclic)).collect();
    assert_eq!(got, vec![(2, LeakKind::Direct, false), (3, LeakKind::Indirect, false), (4, LeakKind::Direct, true)]);
    assert_eq!(a.leaked[0].desc.size, 37 * 8);
    // g counts: it is reached (from the ignored f).
    assert_eq!((a.live_blocks, a.reachable_blocks, a.reachable_bytes), (7, 3, 3 * 37 * 8));
    assert_eq!(h.survivors.get(), 4, "a, b and the ignored f and g survive");
    assert!(a.root_bytes > 0 && a.words_scanned >= a.root_bytes / 8);
    ROOT.store(0, SeqCst);
}

#[test]
fn without_the_globals_a_static_root_no_longer_counts() {
    static ROOT: AtomicUsize = AtomicUsize::new(0);
    let h = std::hint::black_box(built_elsewhere(&ROOT));
    let mut spill = [0usize; 6];
    let opts = RootOptions { globals: false, ..RootOptions::default() };
    let a = analyze_stopped(&h, &opts, spill_registers(&mut spill));
    let got: Vec<(u32, LeakKind)> = a.leaked.iter().map(|l| (l.id, l.kind)).collect();
    use LeakKind::*;
    assert_eq!(got, vec![(0, Direct), (1, Indirect), (2, Direct), (3, Indirect), (4, Direct)]);
    ROOT.store(0, SeqCst);
}

#[test]
fn an_unreadable_root_list_fails_the_analysis_instead_of_reporting_leaks() {
    static ROOT: AtomicUsize = AtomicUsize::new(0);
    let h = std::hint::black_box(built_elsewhere(&ROOT));
    let mut spill = [0usize; 6];
    let sp = spill_registers(&mut spill);
    let result = {
        let _fail = super::maps::tests::fail_reads_with(libc_eacces());
        try_analyze_stopped(&h, &RootOptions::default(), sp)
    };
    // Every block would have looked leaked (no root was read): none is reported.
    assert_eq!(result.err(), Some(Failure::RootsUnreadable { errno: libc_eacces() }));
    assert_eq!(h.survivors.get(), 0, "a failed analysis promotes nothing");
    ROOT.store(0, SeqCst);
}

/// `EACCES`, as `/proc/self/maps` fails for a process that may not read it.
fn libc_eacces() -> i32 {
    13
}
