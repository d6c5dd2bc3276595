//! Tests of the root set, on this very process.

use super::*;
use crate::leak::stop::{stop_the_world, test_serial};
use crate::leak::view::{BlockDesc, Marks, Promotion, Walk};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// A heap that owns `[start, end)` in 4 MiB slots, and holds no block.
struct Owns(usize, usize);

impl HeapView for Owns {
    fn block_slots(&self) -> usize {
        0
    }
    fn block_containing(&self, _: usize) -> Option<(u32, BlockDesc)> {
        None
    }
    fn for_each_block(&self, _: &mut dyn FnMut(u32, BlockDesc)) {}
    fn owned_region_end(&self, addr: usize) -> Option<usize> {
        (addr >= self.0 && addr < self.1).then(|| (addr / SEGMENT_SIZE + 1) * SEGMENT_SIZE)
    }
    fn walk_promoting(&self, _: Walk, _: &Marks, _: Promotion, _: &mut dyn FnMut(u32, BlockDesc)) {}
    fn set_reported(&self, _: usize) {}
    fn for_each_owned_region(&self, _: &mut dyn FnMut(usize, usize)) {}
    fn for_each_block_in_region(&self, _: usize, _: &mut dyn FnMut(u32, BlockDesc)) {}
}

const NO_HEAP: Owns = Owns(0, 0);

fn roots(view: &dyn HeapView, world: &StoppedWorld, opts: &RootOptions, sp: usize) -> MmapVec<RootRange> {
    let plan = RootPlan::prepare();
    let (mut maps, mut out) = (MmapVec::new(), MmapVec::new());
    assert!(maps.reserve(1 << 14));
    assert_eq!(collect_roots(view, world, &plan, opts, sp, &mut maps, &mut out), Ok(()));
    out
}

fn kind_at(roots: &[RootRange], addr: usize) -> Option<RootKind> {
    roots.iter().find(|r| r.start <= addr && addr < r.end).map(|r| r.kind)
}

fn current_sp() -> usize {
    let mut spill = [0usize; 6];
    crate::leak::spill_registers(&mut spill)
}

static GLOBAL_SLOT: AtomicUsize = AtomicUsize::new(0);
static mut GLOBAL_BSS: [usize; 4] = [0; 4];

thread_local! {
    static TLS_SLOT: Cell<usize> = const { Cell::new(0) };
}

#[test]
fn globals_tls_and_the_current_stack_are_roots() {
    GLOBAL_SLOT.store(1, SeqCst);
    let world = StoppedWorld::new();
    let local = 5u64;
    let sp = current_sp();
    let out = roots(&NO_HEAP, &world, &RootOptions::default(), sp);
    assert_eq!(kind_at(&out, &GLOBAL_SLOT as *const _ as usize), Some(RootKind::Globals));
    assert_eq!(kind_at(&out, core::ptr::addr_of!(GLOBAL_BSS) as usize), Some(RootKind::Globals));
    let tls = TLS_SLOT.with(|c| c as *const Cell<usize> as usize);
    assert_eq!(kind_at(&out, tls), Some(RootKind::Tls));
    assert_eq!(kind_at(&out, std::hint::black_box(&local) as *const u64 as usize), Some(RootKind::Stack));
    // Nothing below the stack pointer's red zone, nor twice.
    let stack = out.iter().filter(|r| r.kind == RootKind::Stack && r.start <= sp && sp < r.end + 128);
    assert!(stack.clone().count() == 1 && stack.clone().all(|r| r.start == sp - 128));
    // (Registered regions are the program's business: another test's may lie anywhere.)
    let mut sorted: Vec<RootRange> = out.iter().copied().filter(|r| r.kind != RootKind::Registered).collect();
    sorted.sort_by_key(|r| r.start);
    assert!(sorted.windows(2).all(|w| w[0].end <= w[1].start), "root ranges overlap");
}

#[test]
fn each_kind_has_its_switch() {
    let world = StoppedWorld::new();
    let only = |k: RootKind| RootOptions {
        stacks: k == RootKind::Stack,
        registers: k == RootKind::Registers,
        globals: k == RootKind::Globals,
        tls: k == RootKind::Tls,
        root_regions: k == RootKind::Registered,
        other_mappings: k == RootKind::OtherMapping,
    };
    for k in [RootKind::Stack, RootKind::Globals, RootKind::Tls, RootKind::OtherMapping] {
        let out = roots(&NO_HEAP, &world, &only(k), current_sp());
        assert!(!out.is_empty() && out.iter().all(|r| r.kind == k), "{k:?}");
    }
    let none =
        RootOptions { stacks: false, globals: false, tls: false, other_mappings: false, ..only(RootKind::Stack) };
    assert_eq!(roots(&NO_HEAP, &world, &none, current_sp()).len(), 0);
}

#[test]
fn registered_regions_are_roots() {
    let region = [0usize; 8];
    assert!(crate::register_root(region.as_ptr().cast(), 64));
    let out = roots(&NO_HEAP, &StoppedWorld::new(), &RootOptions::default(), current_sp());
    assert!(crate::unregister_root(region.as_ptr().cast()));
    let start = region.as_ptr() as usize;
    assert!(out.iter().any(|r| r.kind == RootKind::Registered && r.start == start && r.end == start + 64));
}

#[test]
fn the_heap_and_the_allocators_own_mappings_are_cut_out_at_4_mib_granularity() {
    // One mapping of four slots, the middle two "owned by the heap".
    let base = os::map_aligned(4 * SEGMENT_SIZE, SEGMENT_SIZE).unwrap().as_ptr() as usize;
    let heap = Owns(base + SEGMENT_SIZE, base + 3 * SEGMENT_SIZE);
    // Written, so that they hold data (untouched anonymous pages are never roots).
    for at in [0, SEGMENT_SIZE - 8, SEGMENT_SIZE, 3 * SEGMENT_SIZE - 8, 3 * SEGMENT_SIZE, 4 * SEGMENT_SIZE - 8] {
        // SAFETY: inside the mapping made above, writable, 8-byte aligned.
        unsafe { ((base + at) as *mut u64).write(1) };
    }
    let mut own_table: MmapVec<u64> = MmapVec::new();
    assert!(own_table.resize(1000, 7));
    let out = roots(&heap, &StoppedWorld::new(), &RootOptions::default(), current_sp());
    let covered = |a: usize| kind_at(&out, a).is_some();
    assert!(covered(base) && covered(base + SEGMENT_SIZE - 8));
    assert!(!covered(base + SEGMENT_SIZE) && !covered(base + 3 * SEGMENT_SIZE - 8));
    assert!(covered(base + 3 * SEGMENT_SIZE) && covered(base + 4 * SEGMENT_SIZE - 8));
    assert!(!covered(own_table.as_ptr() as usize), "an MmapVec's mapping is a root");
    // SAFETY: unmapping the mapping made above, which nothing uses any more.
    unsafe { os::unmap(base as *mut u8, 4 * SEGMENT_SIZE) };
}

#[test]
fn own_mappings_are_cut_out() {
    let mut out = MmapVec::new();
    let range = RootRange { start: 50, end: 350, kind: RootKind::OtherMapping };
    assert!(emit_minus_own(&[(100, 200), (300, 400)], None, range, &mut out));
    let got: Vec<(usize, usize)> = out.iter().map(|r| (r.start, r.end)).collect();
    assert_eq!(got, vec![(50, 100), (200, 300)]);
}

#[test]
fn labels_relabel_pieces_without_adding_any() {
    let l = |start, end, kind| RootRange { start, end, kind };
    let labels =
        [l(0, 20, RootKind::Globals), l(30, 40, RootKind::Tls), l(35, 60, RootKind::Globals), l(90, 95, RootKind::Tls)];
    let mut got = Vec::new();
    split_by_labels(&labels, 10, 70, RootKind::Stack, &mut |s, e, k| got.push((s, e, k)));
    use RootKind::*;
    assert_eq!(got, vec![(10, 20, Globals), (20, 30, Stack), (30, 40, Tls), (40, 60, Globals), (60, 70, Stack)]);
}

#[test]
fn a_stopped_threads_stack_tls_and_registers_are_roots_from_its_sp() {
    let _serial = test_serial();
    let (local, tls, quit) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (l, t, q) = (local.clone(), tls.clone(), quit.clone());
    let h = std::thread::spawn(move || {
        let marker = [0usize; 4];
        t.store(TLS_SLOT.with(|c| c as *const Cell<usize> as usize), SeqCst);
        l.store(std::hint::black_box(&marker).as_ptr() as usize, SeqCst);
        while q.load(SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    while local.load(SeqCst) == 0 {
        std::thread::yield_now();
    }
    let (plan, mut maps, mut out) = (RootPlan::prepare(), MmapVec::new(), MmapVec::new());
    assert!(maps.reserve(1 << 14));
    let mut world = stop_the_world(Duration::from_secs(10));
    let ok = collect_roots(&NO_HEAP, &world, &plan, &RootOptions::default(), current_sp(), &mut maps, &mut out);
    let me =
        world.threads().iter().find(|t| t.sp <= local.load(SeqCst) && local.load(SeqCst) - t.sp < 1 << 20).copied();
    let regs_at = me.map(|_| world.threads().iter().position(|t| t.sp == me.unwrap().sp).unwrap());
    let regs_addr = regs_at.map(|i| world.threads()[i].regs.as_ptr() as usize);
    let (k_local, k_tls) = (kind_at(&out, local.load(SeqCst)), kind_at(&out, tls.load(SeqCst)));
    let k_regs = regs_addr.and_then(|a| kind_at(&out, a));
    let below = me.and_then(|t| kind_at(&out, t.sp - 256));
    world.resume();
    quit.store(1, SeqCst);
    h.join().unwrap();
    assert_eq!(ok, Ok(()));
    let me = me.expect("the helper thread was stopped");
    assert!(me.stopped);
    assert_eq!((k_local, k_tls, k_regs), (Some(RootKind::Stack), Some(RootKind::Tls), Some(RootKind::Registers)));
    assert_eq!(below, None, "scanned below the red zone");
}

#[test]
fn untouched_pages_of_anonymous_memory_are_no_roots() {
    const PAGE: usize = 4096;
    let len = 64 * PAGE;
    let base = crate::os::map(len).unwrap().as_ptr();
    // Written: pages 3 and 4 (one run), and page 10. The rest never was.
    for page in [3, 4, 10] {
        // SAFETY: inside the fresh mapping of `len` bytes, writable.
        unsafe { base.add(page * PAGE + 8).cast::<usize>().write(0x5eed) };
    }
    let world = StoppedWorld::new();
    let out = roots(&NO_HEAP, &world, &RootOptions::default(), current_sp());
    let start = base as usize;
    let mut inside: Vec<(usize, usize)> = out
        .iter()
        .filter(|r| r.start < start + len && r.end > start)
        .map(|r| ((r.start.max(start) - start) / PAGE, (r.end.min(start + len) - start).div_ceil(PAGE)))
        .collect();
    inside.sort_unstable();
    // The kernel may merge the mapping with a neighbour: only its own pages are looked at.
    assert_eq!(inside, vec![(3, 5), (10, 11)], "the written pages and nothing else");
    // SAFETY: the whole mapping made above; nothing refers to it any more.
    unsafe { crate::os::unmap(base, len) };
}

#[test]
fn the_page_map_gives_runs_of_written_pages() {
    const PAGE: usize = 4096;
    let len = 40 * PAGE;
    let base = crate::os::map(len).unwrap().as_ptr();
    for page in [0, 1, 2, 20, 39] {
        // SAFETY: inside the fresh mapping, writable.
        unsafe { base.add(page * PAGE).write(1) };
    }
    let pagemap = platform::Pagemap::open().expect("/proc/self/pagemap");
    assert!(pagemap.answers_for(current_sp()), "this thread's stack reads as untouched");
    let mut runs = Vec::new();
    let start = base as usize;
    pagemap
        .for_each_touched_run(start, start + len, |s, e| runs.push(((s - start) / PAGE, (e - start) / PAGE)))
        .unwrap();
    assert_eq!(runs, vec![(0, 3), (20, 21), (39, 40)]);
    // SAFETY: the whole mapping made above.
    unsafe { crate::os::unmap(base, len) };
}

#[test]
fn an_ended_threads_control_block_is_a_root_and_the_rest_of_its_stack_is_not() {
    let _serial = test_serial();
    // The thread allocates (so that its start is noted) and says where its control block
    // and its frames are. Its stack is too big for glibc to give to any thread of the
    // usual sizes (it reuses a cached stack at most 4 times the size asked), so it stays
    // cached, unused, until the roots are taken.
    let (tp, frame) = std::thread::Builder::new()
        .stack_size(9 << 20)
        .spawn(|| {
            let _local = std::hint::black_box(Box::new(1u8));
            (platform::thread_pointer(), current_sp())
        })
        .unwrap()
        .join()
        .unwrap();
    // Every other thread stopped: a stack no stopped thread runs on is an ended one's.
    let (plan, mut maps, mut out) = (RootPlan::prepare(), MmapVec::new(), MmapVec::new());
    assert!(maps.reserve(1 << 14));
    let mut world = stop_the_world(Duration::from_secs(10));
    let ok = collect_roots(&NO_HEAP, &world, &plan, &RootOptions::default(), current_sp(), &mut maps, &mut out);
    let all_stopped = world.all_stopped();
    world.resume();
    assert_eq!(ok, Ok(()));
    assert!(all_stopped, "a thread could not be stopped");
    assert!(
        out.iter().any(|r| r.kind == RootKind::Tls && r.start == tp && r.end == tp + 16),
        "no root at the ended thread's control block {tp:#x}"
    );
    assert_eq!(kind_at(&out, frame), None, "a dead frame is a root");
}
