use super::unwind::{hash_frames, walk_from};
use super::*;
use std::hint::black_box;

/// The one capture site most tests go through, so that loops over it record the same
/// return addresses whatever the optimizer does to the loop.
#[inline(never)]
fn probe(depth: usize, walker: impl Into<Walker>, bounds: StackBounds, cache: &mut StackCache) -> StackId {
    let id = capture(depth, walker, bounds, cache);
    black_box(0u8);
    id
}

/// Runs `f` under `n` more frames of this function.
#[inline(never)]
fn nested<R>(n: usize, f: &mut dyn FnMut() -> R) -> R {
    if n == 0 {
        return f();
    }
    let r = nested(n - 1, f);
    black_box(n); // not a tail call: every level keeps its frame
    r
}

// The two sites differ in their bodies so that the optimizer cannot merge them.
#[inline(never)]
fn site_a(cache: &mut StackCache) -> StackId {
    let id = capture(32, true, current_thread_stack_bounds(), cache);
    black_box(1u8);
    id
}

#[inline(never)]
fn site_b(cache: &mut StackCache) -> StackId {
    let id = capture(32, true, current_thread_stack_bounds(), cache);
    black_box(2u16);
    id
}

/// Function names of each frame (the innermost inlined name first).
fn names(frames: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    for &ip in frames {
        let mut name = String::from("?");
        // A return address may belong to the next line (or function): resolve ip - 1.
        backtrace::resolve((ip - 1) as *mut core::ffi::c_void, |s| {
            if name == "?" {
                if let Some(n) = s.name() {
                    name = format!("{n:#}");
                }
            }
        });
        out.push(name);
    }
    out
}

/// The outermost frame whose name contains `function` (a closure's name contains its
/// function's).
fn position_of(frames: &[usize], function: &str) -> Option<usize> {
    names(frames).iter().rposition(|n| n.contains(function))
}

#[test]
fn same_site_same_id_and_different_sites_differ() {
    let mut cache = StackCache::new();
    let cached: Vec<StackId> = (0..black_box(200)).map(|_| site_a(&mut cache)).collect();
    let uncached: Vec<StackId> = (0..black_box(200)).map(|_| site_a(&mut StackCache::new())).collect();
    assert_ne!(cached[0], StackId::NONE);
    assert!(cached.iter().all(|&x| x == cached[0]), "through the cache");
    assert!(uncached.iter().all(|&x| x == uncached[0]), "through the depot");
    assert_eq!(frames(cached[0])[0], frames(uncached[0])[0]);
    let b = site_b(&mut cache);
    assert_ne!(b, StackId::NONE);
    assert_ne!(cached[0], b);
    assert_eq!(position_of(frames(b), "site_b"), Some(0));
}

#[test]
fn frames_start_at_the_caller_and_resolve() {
    let id = site_a(&mut StackCache::new());
    let f = frames(id);
    assert_eq!(position_of(f, "site_a"), Some(0), "{:?}", names(f));
    assert!(position_of(f, "frames_start_at_the_caller_and_resolve").is_some(), "{:?}", names(f));
    assert!(!names(f).iter().any(|n| n.contains("capture")), "{:?}", names(f));
}

#[test]
fn depth_limits_are_respected() {
    let bounds = current_thread_stack_bounds();
    assert_eq!(capture(0, true, bounds, &mut StackCache::new()), StackId::NONE);
    let by_depth: Vec<(usize, StackId)> = nested(70, &mut || {
        black_box([1usize, 2, 3, 8, 32, 64, 100])
            .iter()
            .map(|&d| (d, probe(d, true, bounds, &mut StackCache::new())))
            .collect()
    });
    let deepest = frames(by_depth.last().unwrap().1);
    assert_eq!(deepest.len(), MAX_DEPTH, "depth is capped at {MAX_DEPTH}");
    for (d, id) in by_depth {
        let f = frames(id);
        assert_eq!(f.len(), d.min(MAX_DEPTH), "depth {d}");
        assert_eq!(f, &deepest[..f.len()], "depth {d} is a prefix of the deepest stack");
    }
}

#[test]
fn the_three_walks_agree_in_code_with_frame_pointers() {
    assert!(unwind::rules_agree_with_dwarf(current_thread_stack_bounds()));
    let bounds = current_thread_stack_bounds();
    let ids: Vec<StackId> = black_box([Walker::FramePointers, Walker::Rules, Walker::Dwarf])
        .iter()
        .map(|&w| probe(32, w, bounds, &mut StackCache::new()))
        .collect();
    let (fp, rules, dw) = (frames(ids[0]), frames(ids[1]), frames(ids[2]));
    assert_eq!(position_of(fp, "probe"), Some(0), "{:?}", names(fp));
    let test_fn = position_of(dw, "the_three_walks_agree_in_code_with_frame_pointers")
        .unwrap_or_else(|| panic!("{:?}\n{:?}", names(fp), names(dw)));
    assert_eq!(fp[..=test_fn], dw[..=test_fn], "fp {:?}\ndwarf {:?}", names(fp), names(dw));
    assert_eq!(rules, dw, "rules {:?}\ndwarf {:?}", names(rules), names(dw));
}

#[test]
fn the_dwarf_walk_runs_when_asked_or_when_bounds_are_unknown() {
    let unknown = StackBounds { lo: 0, hi: 0 };
    for (fast, bounds) in [(false, current_thread_stack_bounds()), (true, unknown)] {
        let id = nested(3, &mut || probe(8, fast, bounds, &mut StackCache::new()));
        let f = frames(id);
        assert_eq!(f.len(), 8);
        assert_eq!(position_of(f, "probe"), Some(0), "{:?}", names(f));
        let test_fn = position_of(f, "the_dwarf_walk_runs_when_asked_or_when_bounds_are_unknown");
        assert!(test_fn.is_some_and(|i| i > 2), "{:?}", names(f));
    }
}

#[test]
fn the_cache_answers_repeated_stacks() {
    let mut cache = StackCache::new();
    let bounds = current_thread_stack_bounds();
    let before = depot_stats();
    let ids: Vec<StackId> = (0..black_box(10)).map(|_| probe(16, true, bounds, &mut cache)).collect();
    assert!(ids.iter().all(|&i| i == ids[0] && i != StackId::NONE));
    assert_eq!(cache.hits, 9);
    let other = nested(1, &mut || probe(16, true, bounds, &mut cache)); // a miss
    assert_ne!(other, ids[0]);
    assert_eq!(cache.hits, 9);
    let after = depot_stats();
    assert!(after.lookups >= before.lookups + 2);
}

#[test]
fn threads_interning_concurrently_get_consistent_ids() {
    let barrier = std::sync::Barrier::new(8);
    let per_thread: Vec<Vec<StackId>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let bounds = current_thread_stack_bounds();
                    barrier.wait();
                    (0..black_box(24usize))
                        .map(|n| nested(n, &mut || probe(32, true, bounds, &mut StackCache::new())))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ids in &per_thread[1..] {
        assert_eq!(ids, &per_thread[0]);
    }
    let mut distinct = per_thread[0].clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 24, "each nesting depth is its own stack");
    assert!(!distinct.contains(&StackId::NONE));
}

#[test]
fn walking_deep_on_a_small_thread_stack_is_safe() {
    let (shallow, deep) = std::thread::Builder::new()
        .stack_size(64 << 10)
        .spawn(|| {
            let bounds = current_thread_stack_bounds();
            assert!(bounds.hi - bounds.lo < 1 << 20, "{bounds:?}");
            let shallow = probe(64, true, bounds, &mut StackCache::new());
            let deep = nested(300, &mut || probe(64, true, bounds, &mut StackCache::new()));
            (shallow, deep)
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(!frames(shallow).is_empty());
    assert_eq!(frames(deep).len(), 64);
    assert_eq!(names(&frames(deep)[2..10]).iter().filter(|n| n.ends_with("nested")).count(), 8);
}

/// Two pages, the second inaccessible: a fake stack whose every read past its first page
/// would fault. Used by the frame-record walk's tests here and the rule walk's
/// (`rule_tests`).
pub(super) struct FakeStack {
    pub(super) base: usize,
}

impl FakeStack {
    pub(super) const PAGE: usize = 4096;

    pub(super) fn new() -> Self {
        let p = crate::platform::mmap_anonymous(2 * Self::PAGE, crate::platform::Reserve::Committed).unwrap().as_ptr();
        // SAFETY: the second page of our fresh mapping is page aligned, and never accessed:
        // it lies past the fake stack's bounds, where the walk must never read.
        unsafe { crate::platform::mprotect_none(p.add(Self::PAGE), Self::PAGE) }.unwrap();
        FakeStack { base: p as usize }
    }

    /// The address of word `word`.
    pub(super) fn at(&self, word: usize) -> usize {
        self.base + word * 8
    }

    /// Writes `value` at word `word` of the first page.
    pub(super) fn put(&self, word: usize, value: usize) {
        assert!(word < Self::PAGE / 8);
        // SAFETY: the word lies in the first, writable page.
        unsafe { (self.at(word) as *mut usize).write(value) };
    }

    /// The first page, as stack bounds.
    pub(super) fn bounds(&self) -> StackBounds {
        StackBounds { lo: self.base, hi: self.base + Self::PAGE }
    }

    /// A frame record at word `word`: next frame pointer, then return address.
    fn frame(&self, word: usize, next: usize, ret: usize) {
        self.put(word, next);
        self.put(word + 1, ret);
    }

    fn walk(&self, fp: usize, max: usize) -> Vec<usize> {
        let mut out = [MaybeUninit::uninit(); MAX_DEPTH];
        // SAFETY: `[lo, hi)` is the first page, readable.
        let w = unsafe { walk_from(fp, &mut out[..max], self.bounds()) };
        // SAFETY: the walk initialized `out[..w.len]`.
        let frames: Vec<usize> = out[..w.len].iter().map(|f| unsafe { f.assume_init() }).collect();
        assert_eq!(w.hash, hash_frames(&frames));
        frames
    }
}

impl Drop for FakeStack {
    fn drop(&mut self) {
        // SAFETY: our mapping, unused from here on.
        let _ = unsafe { crate::platform::munmap(self.base as *mut u8, 2 * Self::PAGE) };
    }
}

#[test]
fn the_frame_pointer_walk_validates_every_step() {
    let s = FakeStack::new();
    let last_word = FakeStack::PAGE / 8 - 1;
    s.frame(100, s.at(200), 0xA);
    s.frame(200, s.at(300), 0xB);
    s.frame(300, 0, 0xC);
    assert_eq!(s.walk(s.at(100), 64), [0xA, 0xB, 0xC], "a chain ends at a lower next pointer");
    assert_eq!(s.walk(s.at(100), 2), [0xA, 0xB], "depth");
    assert_eq!(s.walk(s.at(100), 0), [0usize; 0]);
    for (bad_next, why) in [
        (s.at(last_word), "its return address would lie past the stack"),
        (s.at(last_word + 1), "past the stack"),
        (s.at(200) + 4, "misaligned"),
        (s.at(50), "below the current frame"),
        (s.at(100), "the current frame itself"),
        (usize::MAX - 7, "far away"),
    ] {
        s.frame(100, bad_next, 0xA);
        assert_eq!(s.walk(s.at(100), 64), [0xA], "{why}");
    }
    s.frame(100, s.at(200), 0xA);
    s.frame(200, s.at(300), 0);
    assert_eq!(s.walk(s.at(100), 64), [0xA], "a zero return address ends the walk");
    assert!(s.walk(s.base - 8, 64).is_empty(), "a start below the stack");
    assert!(s.walk(s.at(last_word), 64).is_empty(), "a start at the stack's last word");
}

#[test]
fn hashes_cover_frames_and_their_count() {
    let a = hash_frames(&[0x1000, 0x2000]);
    assert_ne!(a, hash_frames(&[0x2000, 0x1000]));
    assert_ne!(a, hash_frames(&[0x1000, 0x2000, 0]));
    assert_ne!(a, hash_frames(&[0x1000, 0x2001]));
    assert_eq!(a, hash_frames(&[0x1000, 0x2000]));
}

#[test]
#[ignore = "prints timings; run with cargo test -p alloc-core --release --lib -- --ignored capture_cost"]
fn capture_cost() {
    // Wall time and this thread's CPU time: on a machine shared with other work the CPU
    // time is the steadier of the two.
    fn time(label: &str, n: u32, mut f: impl FnMut()) {
        let (t, cpu) = (std::time::Instant::now(), crate::platform::thread_cpu_ns());
        for _ in 0..n {
            f();
        }
        let cpu = (crate::platform::thread_cpu_ns() - cpu) as f64 / n as f64;
        println!("{label}: {:.1} ns ({cpu:.1} ns of CPU)", t.elapsed().as_nanos() as f64 / n as f64);
    }
    let bounds = current_thread_stack_bounds();
    nested(40, &mut || {
        let mut cache = StackCache::new();
        for depth in [8, 32] {
            for walker in [Walker::FramePointers, Walker::Rules, Walker::Dwarf] {
                let n = if walker == Walker::Dwarf { 2_000 } else { 2_000_000 };
                time(&format!("capture depth {depth} {walker:?}"), n, || {
                    black_box(probe(depth, walker, bounds, &mut cache));
                });
            }
        }
    });
    let known: Vec<usize> = (0..20).map(|i| 0x7000_0000 + i * 16).collect();
    let h = hash_frames(&known);
    depot::intern(&known, h);
    time("depot lookup of a known 20-frame stack", 1_000_000, || {
        black_box(depot::intern(black_box(&known), h));
    });
    let mut i = 0usize;
    time("depot insert of a new 20-frame stack", 200_000, || {
        i += 1;
        let f: [usize; 20] = core::array::from_fn(|k| 0x6000_0000_0000 + i * 64 + k);
        black_box(depot::intern(&f, hash_frames(&f)));
    });
}

#[test]
fn a_thread_exits_on_the_bottom_of_its_stack_only_when_it_is_there() {
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(|| {
            let bounds = current_thread_stack_bounds();
            let here = crate::platform::frame_pointer_and_sp().1;
            let top = exit_stack_top(bounds).expect("a 1 MiB thread stack has room");
            assert_eq!(top, exit_region_top(bounds));
            assert!(
                top.is_multiple_of(16) && top > bounds.lo + (32 << 10) && top + (64 << 10) < here,
                "{top:#x} in {bounds:?}"
            );
            // Too small, unknown, or not this thread's stack: no switch.
            let small = StackBounds { lo: here - (100 << 10), hi: bounds.hi };
            assert_eq!(exit_stack_top(small), None);
            assert_eq!(exit_stack_top(StackBounds { lo: 0, hi: 0 }), None);
            let elsewhere = StackBounds { lo: 0x1000, hi: 0x10_0000 };
            assert_eq!(exit_stack_top(elsewhere), None);
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Writes `value` over a frame of `N` bytes, then returns (leaving the words behind, below
/// the caller's stack pointer); the address of the frame's array.
#[inline(never)]
fn leave_words<const N: usize>(value: usize) -> usize {
    let mut frame = [value; N];
    black_box(&mut frame);
    frame.as_ptr() as usize
}

#[test]
fn a_scrub_clears_what_deep_frames_left_below_it() {
    // On a thread of its own, with a stack big enough for everything scrub_below clears.
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(|| {
            let bounds = current_thread_stack_bounds();
            const MARK: usize = 0x5CB0_5CB0_5CB0_5CB0;
            // Near (across the part cleared whole and the next) and far (cleared page by
            // page). The near frame's top KiB is left out of the check: scrub_below's own
            // frame lies there, live while it runs (the far frame starts there too).
            let near = leave_words::<2048>(MARK);
            let far = leave_words::<{ 48 << 7 }>(MARK);
            let left = |from: usize, words: usize| {
                // SAFETY: dead stack of this thread, inside its bounds (mapped, readable);
                // volatile reads of plain words.
                (0..words)
                    .filter(|&k| unsafe { core::ptr::read_volatile((from as *const usize).add(k)) } == MARK)
                    .count()
            };
            assert!(left(near, 2048) > 0 && left(far, 48 << 7) > 0, "the frames were written");
            scrub_below(bounds);
            assert_eq!(left(near, 2048 - 128), 0, "left near the caller");
            assert_eq!(left(far, (48 << 7) - 128), 0, "left deep below");
        })
        .unwrap()
        .join()
        .unwrap();
}

/// The records a frame-record walk read (`unwind::RecordReads`), by their addresses.
#[derive(Default)]
struct ReadRecords(Vec<usize>);

impl unwind::RecordReads for ReadRecords {
    fn record(&mut self, i: usize, fp: usize, _: usize, _: usize) {
        assert_eq!(i, self.0.len());
        self.0.push(fp);
    }
}

/// What a frame-record walk over `s` from `fp` with room for `room` frames returns (not
/// kept anywhere), its frames, and the records it read.
fn walk_records_over(s: &FakeStack, fp: usize, room: usize) -> (unwind::Records, Vec<usize>, Vec<usize>) {
    let mut out = [MaybeUninit::uninit(); MAX_DEPTH];
    let mut read = ReadRecords::default();
    // SAFETY: `[lo, hi)` is the fake stack's first page, readable.
    let at = unsafe { unwind::walk_records_traced(fp, &mut out[..room], s.bounds(), &mut read) };
    // SAFETY: the walk initialized `out[..at.len]`.
    let frames = out[..at.len].iter().map(|f| unsafe { f.assume_init() }).collect();
    (at, frames, read.0)
}

fn same_records(a: unwind::Records, b: unwind::Records) -> bool {
    (a.len, a.hash, a.sp, a.fp, a.ret) == (b.len, b.hash, b.sp, b.fp, b.ret)
}

/// How a fake stack changes between the kept walk and the replay.
#[derive(Clone, Copy, Debug)]
enum Change {
    Nothing,
    /// A word of a record the walk read.
    ReadWord(usize, usize),
    /// Any word of the page (read or not).
    AnyWord(usize, usize),
    Room(usize),
}

fn change() -> impl proptest::strategy::Strategy<Value = Change> {
    use proptest::prelude::*;
    prop_oneof![
        Just(Change::Nothing),
        (any::<usize>(), any::<usize>()).prop_map(|(i, v)| Change::ReadWord(i, v)),
        (0..FakeStack::PAGE / 8, any::<usize>()).prop_map(|(w, v)| Change::AnyWord(w, v)),
        (0usize..=40).prop_map(Change::Room),
    ]
}

proptest::proptest! {
    /// A replayed frame-record walk returns what a walk over the stack as it is now
    /// returns, whatever changed since the kept one; with nothing changed that it read,
    /// it replays; with a word it read changed, it does not.
    #[test]
    fn a_replayed_frame_record_walk_is_the_walk(
        gaps in proptest::collection::vec(2usize..9, 0..40),
        rets in proptest::collection::vec(0usize..6, 40),
        end in 0usize..5,
        room in 0usize..=40,
        change in change(),
    ) {
        let s = FakeStack::new();
        let last_word = FakeStack::PAGE / 8 - 1;
        // Records at increasing words from word 4, each pointing at the next; return
        // addresses from a small set, 0 among them (a zero ends a walk).
        let mut words = vec![4usize];
        for g in &gaps {
            let next = words.last().unwrap() + g;
            if next + 1 > last_word { break; }
            words.push(next);
        }
        for (k, &w) in words.iter().enumerate() {
            let next = match words.get(k + 1) {
                Some(&n) => s.at(n),
                // How the chain ends: a lower record, past the stack, misaligned, zero,
                // or the stack's last word.
                None => [s.at(1), s.base + FakeStack::PAGE, s.at(w + 2) + 4, 0, s.at(last_word)][end],
            };
            s.frame(w, next, [0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0][rets[k]]);
        }
        let fp = s.at(words[0]);
        let mut memos = record_memo::RecordMemos::new();
        let mut out = [MaybeUninit::uninit(); MAX_DEPTH];
        // SAFETY: `[lo, hi)` is the fake stack's first page, readable.
        let kept = unsafe { memos.walk(fp, &mut out[..room], s.bounds()) };
        let (walked, _, read) = walk_records_over(&s, fp, room);
        proptest::prop_assert!(same_records(kept, walked));
        let mut replay_room = room;
        let mut read_changed = false;
        match change {
            Change::Nothing => {}
            Change::ReadWord(i, v) if !read.is_empty() => {
                let addr = read[i % read.len()] + 8 * (v % 2);
                // SAFETY: a word the walk read: in the fake stack's first page.
                let old = unsafe { *(addr as *const usize) };
                read_changed = old != v;
                s.put((addr - s.base) / 8, v);
            }
            Change::ReadWord(..) => {}
            Change::AnyWord(w, v) => {
                let addr = s.at(w);
                // SAFETY: a word of the fake stack's first page.
                let old = unsafe { *(addr as *const usize) };
                read_changed = old != v && (read.contains(&addr) || read.contains(&(addr - 8)));
                s.put(w, v);
            }
            Change::Room(r) => replay_room = r,
        }
        // SAFETY: as above.
        let replayed = unsafe { memos.replay(fp, s.bounds(), replay_room, 0) }.map(|r| r.at);
        let (now, frames, _) = walk_records_over(&s, fp, replay_room);
        match replayed {
            Some(at) => {
                proptest::prop_assert!(!read_changed);
                proptest::prop_assert!(same_records(at, now), "{at:?} {now:?}");
                let mut written = [MaybeUninit::uninit(); MAX_DEPTH];
                memos.write_frames(&mut written[..replay_room]);
                // SAFETY: `write_frames` wrote `written[..at.len]`.
                let written: Vec<usize> = written[..at.len].iter().map(|f| unsafe { f.assume_init() }).collect();
                proptest::prop_assert_eq!(written, frames);
            }
            None => proptest::prop_assert!(
                // A walk with no room, or more than a slot keeps, is not kept.
                read_changed || replay_room != room || room == 0 || room > record_memo::FRAMES,
                "{change:?}"
            ),
        }
    }
}

#[test]
fn captures_replayed_from_the_record_memo_are_the_captures() {
    let bounds = current_thread_stack_bounds();
    let mut cache = StackCache::new();
    for depth in 0..black_box(40) {
        let ids = nested(depth, &mut || {
            // One call site for all four (a loop the optimizer cannot unroll): the first
            // three with the shared cache (the third answered by the record memo alone).
            let mut fresh = StackCache::new();
            (0..black_box(4))
                .map(|k| probe(32, Walker::Rules, bounds, if k < 3 { &mut cache } else { &mut fresh }))
                .collect::<Vec<StackId>>()
        });
        assert_ne!(ids[0], StackId::NONE);
        assert_eq!(ids[..3], [ids[0]; 3], "depth {depth}");
        assert_eq!(frames(ids[0]), frames(ids[3]), "depth {depth}");
    }
    assert!(cache.records.replays() >= 40, "{} replays", cache.records.replays());
    assert!(cache.whole_hits >= 30, "{} captures answered by the record memo", cache.whole_hits);
    // Two sites in turn, with one cache: each keeps its own stack (from the same place
    // in this loop).
    let mut seen = Vec::new();
    for k in 0..black_box(100) {
        let site = if k % 2 == 0 { site_a } else { site_b };
        let (cached, fresh) = (site(&mut cache), site(&mut StackCache::new()));
        seen.push((frames(cached)[0], frames(cached)[2..].to_vec()));
        assert_eq!(frames(cached)[0], frames(fresh)[0], "{k}");
        assert_eq!(frames(cached)[2..], frames(fresh)[2..], "{k}");
    }
    assert_ne!(seen[0].0, seen[1].0);
    assert!(seen.iter().step_by(2).all(|s| *s == seen[0]));
    assert!(seen.iter().skip(1).step_by(2).all(|s| *s == seen[1]));
}

#[test]
fn a_record_memo_knows_a_stack_while_its_walk_on_holds() {
    let s = FakeStack::new();
    s.frame(10, s.at(20), 0xA);
    s.frame(20, s.at(30), 0xB);
    s.frame(30, s.at(1), 0xC);
    // Two words of the walk on past the records, as `tail::TailMemo` keeps them.
    s.put(40, 0x1111);
    s.put(44, 0x2222);
    let tail = [(s.at(40), 0x1111), (s.at(44), 0x2222)];
    let (fp, room) = (s.at(10), 8);
    let mut memos = record_memo::RecordMemos::new();
    let mut out = [MaybeUninit::uninit(); MAX_DEPTH];
    let replay = |memos: &mut record_memo::RecordMemos, generation| {
        // SAFETY: `[lo, hi)` is the fake stack's first page, readable.
        unsafe { memos.replay(fp, s.bounds(), room, generation) }.map(|r| (r.at.len, r.id))
    };
    // SAFETY: as above.
    let at = unsafe { memos.walk(fp, &mut out[..room], s.bounds()) };
    assert_eq!(at.len, 3);
    assert_eq!(replay(&mut memos, 7), Some((3, None)), "no id yet");
    memos.remember(Some(&tail), StackId(42), 7);
    assert_eq!(replay(&mut memos, 7), Some((3, Some(StackId(42)))));
    assert_eq!(replay(&mut memos, 8), Some((3, None)), "other rules");
    s.put(44, 0x2223);
    assert_eq!(replay(&mut memos, 7), Some((3, None)), "a word of the walk on changed");
    s.put(44, 0x2222);
    assert_eq!(replay(&mut memos, 7), Some((3, Some(StackId(42)))));
    s.frame(20, s.at(30), 0xD);
    assert_eq!(replay(&mut memos, 7), None, "a record changed");
    // Walked again: the slot forgets the id.
    // SAFETY: as above.
    unsafe { memos.walk(fp, &mut out[..room], s.bounds()) };
    assert_eq!(replay(&mut memos, 7), Some((3, None)));
    // Words outside the walk's bounds are not remembered; neither is no tail at all
    // mistaken for one.
    memos.remember(Some(&[(s.base - 8, 0)]), StackId(43), 7);
    assert_eq!(replay(&mut memos, 7), Some((3, None)));
    memos.remember(None, StackId(44), 7);
    assert_eq!(replay(&mut memos, 7), Some((3, Some(StackId(44)))));
    // A walk with more room than a slot keeps, from the same place: not kept, and the
    // id of its stack is not given to the walk the slot holds.
    let wide = FRAMES_NOT_KEPT;
    // SAFETY: as above.
    unsafe {
        assert!(memos.replay(fp, s.bounds(), wide, 7).is_none());
        memos.walk(fp, &mut out[..wide], s.bounds());
    }
    memos.remember(None, StackId(45), 7);
    assert_eq!(replay(&mut memos, 7), Some((3, Some(StackId(44)))));
}

const FRAMES_NOT_KEPT: usize = record_memo::FRAMES + 1;
