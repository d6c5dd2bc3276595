//! Tests of the cached unwinder: the compact rules, the cache, the validated step, and
//! walks compared with the DWARF walk on many shapes of call chain.

use super::cfi::{self, compact};
use super::rules::{self, Base, Rule, Step};
use super::tests::FakeStack;
use super::unwind::{self, Frame};
use super::*;
use gimli::{CfaRule, Register, RegisterRule};
use std::hint::black_box;

/// The frames `walker` captures from here (the caller of this function first).
#[inline(never)]
fn stack_by(walker: Walker) -> Vec<usize> {
    let id = capture(MAX_DEPTH, walker, current_thread_stack_bounds(), &mut StackCache::new());
    black_box(3u8);
    frames(id).to_vec()
}

/// The frames the cached unwinder captures from here with `cache` (the caller first).
#[inline(never)]
fn stack_with(cache: &mut StackCache) -> Vec<usize> {
    let id = capture(MAX_DEPTH, Walker::Rules, current_thread_stack_bounds(), cache);
    black_box(3u8);
    frames(id).to_vec()
}

/// The cached unwinder's captures from one place with one cache (from the second on, the
/// frame-record walk with the prefix the first checked out, and the rule walk on from
/// where it stops), all asserted equal, and the DWARF walk's from the same place.
#[inline(never)]
fn again(cache: &mut StackCache) -> (Vec<usize>, Vec<usize>) {
    let fast = |c: &StackCache| c.prefixes.hits + c.alias_hits;
    let before = fast(cache);
    let mut seen = Vec::new();
    for _ in 0..black_box(4) {
        seen.push(stack_with(cache));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "repeated captures differ: {seen:x?}");
    assert!(fast(cache) >= before + 3, "the repeated captures did not take the checked prefix");
    let dwarf = stack_by(Walker::Dwarf);
    black_box((seen.pop().unwrap(), dwarf))
}

#[inline(never)]
fn recurse_again(n: usize, cache: &mut StackCache) -> (Vec<usize>, Vec<usize>) {
    if n == 0 {
        return again(cache);
    }
    let r = recurse_again(n - 1, cache);
    black_box(n);
    r
}

/// The stack seen by the cached unwinder and by the DWARF walk from the same place.
#[inline(never)]
fn both() -> (Vec<usize>, Vec<usize>) {
    let rules = stack_by(Walker::Rules);
    let dwarf = stack_by(Walker::Dwarf);
    black_box((rules, dwarf))
}

/// Asserts that the two walks agree on every frame but the second (the two call sites in
/// `both`), and that the stacks are not trivially short.
#[track_caller]
fn assert_same((rules, dwarf): (Vec<usize>, Vec<usize>), what: &str) {
    let message = || format!("{what}: rules {rules:x?}\ndwarf {dwarf:x?}");
    assert!(dwarf.len() >= 4, "{}", message());
    assert_eq!(rules.len(), dwarf.len(), "{}", message());
    assert_eq!(rules[0], dwarf[0], "{}", message());
    assert_ne!(rules[1], dwarf[1], "{}", message());
    assert_eq!(rules[2..], dwarf[2..], "{}", message());
}

#[inline(never)]
fn recurse(n: usize) -> (Vec<usize>, Vec<usize>) {
    if n == 0 {
        return both();
    }
    let r = recurse(n - 1);
    black_box(n);
    r
}

/// A frame of `N` bytes of locals around the capture.
#[inline(never)]
fn big_frame<const N: usize>() -> (Vec<usize>, Vec<usize>) {
    let mut buf = [0u8; N];
    black_box(&mut buf);
    let r = both();
    black_box(&mut buf);
    r
}

/// Frames of different sizes depending on a runtime value, as code with `alloca` has.
#[inline(never)]
fn sized_by(k: usize) -> (Vec<usize>, Vec<usize>) {
    match black_box(k) % 4 {
        0 => big_frame::<64>(),
        1 => big_frame::<4096>(),
        2 => big_frame::<{ 100 << 10 }>(),
        _ => recurse(k % 7),
    }
}

#[test]
fn rules_and_dwarf_agree_through_recursion_of_every_depth() {
    for depth in 0..black_box(40) {
        assert_same(recurse(depth), &format!("depth {depth}"));
    }
}

#[test]
fn frame_record_prefixes_that_checked_out_give_the_rule_walks_frames() {
    // One cache for every depth, as a thread's heap keeps one: stacks up to 64 frames
    // (the prefix ends in the thread's start code, where the rule walk goes on) and
    // deeper (the prefix is the whole capture).
    let mut cache = StackCache::new();
    for depth in 0..black_box(80) {
        let (rules, dwarf) = recurse_again(depth, &mut cache);
        // Frames 0 and 1 are the two capturing functions' calls (`stack_with` and
        // `stack_by`, in two places in `again`); from `again`'s caller on they agree.
        let message = format!("depth {depth}: rules {rules:x?}\ndwarf {dwarf:x?}");
        assert!(dwarf.len() >= 4, "{message}");
        assert_eq!(rules.len(), dwarf.len(), "{message}");
        assert_eq!(rules[2..], dwarf[2..], "{message}");
    }
    // The shallower stacks went on past their prefix (into the thread's start code), and
    // their repeated captures replayed that walk or found the stack by its alias.
    assert!(cache.tail.replays >= 20, "{} replays", cache.tail.replays);
    assert!(cache.alias_hits >= 2 * 40, "{} alias hits", cache.alias_hits);
}

#[test]
fn rules_and_dwarf_agree_through_large_and_varying_frames() {
    assert_same(big_frame::<{ 512 << 10 }>(), "a 512 KiB frame");
    for k in 0..black_box(24) {
        assert_same(sized_by(k), &format!("k {k}"));
    }
}

#[test]
fn rules_and_dwarf_agree_through_closures_iterators_and_dyn_calls() {
    let mut seen = Vec::new();
    let mut f = || seen.push(both());
    let g: &mut dyn FnMut() = &mut f;
    g();
    (0..black_box(3)).map(|i| recurse(black_box(i))).for_each(|r| seen.push(r));
    let boxed: Box<dyn Fn() -> (Vec<usize>, Vec<usize>)> = Box::new(|| sized_by(2));
    seen.push(boxed());
    for (i, r) in seen.into_iter().enumerate() {
        assert_same(r, &format!("closure {i}"));
    }
}

#[test]
fn rules_and_dwarf_agree_inside_and_after_a_caught_panic() {
    let mut inside = None;
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        inside = Some(recurse(3));
        panic!("expected by the test");
    }));
    assert!(caught.is_err());
    assert_same(inside.unwrap(), "inside catch_unwind");
    assert_same(recurse(5), "after the panic");
    // In a panic hook, running during the unwind's first phase.
    let hooked = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        s.spawn(|| {
            let r = std::panic::catch_unwind(|| {
                let _d = Defer(|| *hooked.lock().unwrap() = Some(recurse(2)));
                panic!("expected by the test");
            });
            assert!(r.is_err());
        });
    });
    assert_same(hooked.into_inner().unwrap().unwrap(), "in a destructor run by the unwind");
}

/// Runs its closure when dropped.
struct Defer<F: FnMut()>(F);

impl<F: FnMut()> Drop for Defer<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

#[test]
fn threads_capturing_while_the_cache_fills_agree_with_dwarf() {
    for round in 0..black_box(5) {
        cfi::clear_cache();
        let barrier = std::sync::Barrier::new(6);
        std::thread::scope(|s| {
            for t in 0..6 {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    for k in 0..black_box(12) {
                        assert_same(sized_by(k + t), &format!("round {round} thread {t} k {k}"));
                    }
                });
            }
        });
    }
}

#[test]
fn a_cached_rule_answers_only_its_own_address() {
    let _ = stack_by(Walker::Rules); // the table exists
    let base = 0x3000_0000_0000usize;
    let a = Rule::cfa(Base::Rsp, 40, 0).unwrap();
    let b = Rule::cfa(Base::Rbp, 16, 2).unwrap();
    cfi_insert(base, a);
    cfi_insert(base + 1, b);
    assert_eq!(rules::table().unwrap().lookup(base), Some(a));
    assert_eq!(rules::table().unwrap().lookup(base + 1), Some(b));
    assert_eq!(rules::table().unwrap().lookup(base + 2), None);
    // An address in the same set: tag differs.
    let same_set = base ^ (1 << 15) ^ 1;
    assert_eq!(rules::table().unwrap().lookup(same_set), None);
    assert_eq!(rules::table().unwrap().lookup(usize::MAX - 15), None, "not cacheable");
}

/// Inserts under the miss lock, as `cfi` does.
fn cfi_insert(addr: usize, rule: Rule) {
    cfi::with_lock(|| rules::insert(addr, rule));
}

#[test]
fn a_full_set_keeps_its_newest_two_entries() {
    let _ = stack_by(Walker::Rules);
    let base = 0x3100_0000_0000usize;
    // Three addresses of one set: equal `a ^ a >> SET_BITS` low bits, different tags.
    let bits = rules::SET_BITS;
    let [x, y, z] = [0usize, 1, 2].map(|i| {
        let hi = base + (i << bits);
        hi ^ ((hi >> bits) & ((1 << bits) - 1)) ^ 0x123
    });
    let rule = |o| Rule::cfa(Base::Rsp, o, 0).unwrap();
    cfi_insert(x, rule(8));
    cfi_insert(y, rule(16));
    cfi_insert(z, rule(24));
    assert_eq!(rules::table().unwrap().lookup(z), Some(rule(24)));
    assert_eq!(rules::table().unwrap().lookup(y), Some(rule(16)));
    assert_eq!(rules::table().unwrap().lookup(x), None, "evicted");
}

#[test]
fn rules_encode_and_decode() {
    for (base, offset, slot) in [(Base::Rsp, 8, 0), (Base::Rbp, 16, 2), (Base::Rsp, Rule::MAX_OFFSET, Rule::MAX_SLOT)] {
        let r = Rule::cfa(base, offset, slot).unwrap();
        assert_eq!(r.decode(), Step::Cfa { base, offset, rbp_slot: slot });
    }
    assert_eq!(Rule::cfa(Base::Rsp, Rule::MAX_OFFSET + 1, 0), None);
    assert_eq!(Rule::cfa(Base::Rsp, 8, Rule::MAX_SLOT + 1), None);
    assert_eq!(Rule::cfa(Base::Rbp, 16, 2), Some(Rule::FRAME_RECORD));
    assert_eq!(Rule::FRAME_POINTER.decode(), Step::FramePointer);
    assert_eq!(Rule::END.decode(), Step::End);
}

#[test]
fn rows_compact_to_rules() {
    let (rsp, rbp, rax) = (Register(7), Register(6), Register(0));
    let cfa = |register, offset| CfaRule::RegisterAndOffset { register, offset };
    let ra = Some(RegisterRule::Offset(-8));
    assert_eq!(compact(&cfa(rsp, 8), ra.clone(), None), Rule::cfa(Base::Rsp, 8, 0).unwrap(), "a function's entry");
    assert_eq!(compact(&cfa(rbp, 16), ra.clone(), Some(RegisterRule::Offset(-16))), Rule::FRAME_RECORD);
    assert_eq!(
        compact(&cfa(rsp, 0x1_0040), ra.clone(), Some(RegisterRule::Offset(-24))),
        Rule::cfa(Base::Rsp, 0x1_0040, 3).unwrap(),
        "a large frame, rbp saved as the second push"
    );
    assert_eq!(compact(&cfa(rsp, 8), ra.clone(), Some(RegisterRule::SameValue)), Rule::cfa(Base::Rsp, 8, 0).unwrap());
    assert_eq!(compact(&cfa(rsp, 8), Some(RegisterRule::Undefined), None), Rule::END, "the outermost frame");
    assert_eq!(compact(&cfa(rax, 8), ra.clone(), None), Rule::FRAME_POINTER, "CFA from another register");
    assert_eq!(compact(&cfa(rsp, 4 << 20), ra.clone(), None), Rule::FRAME_POINTER, "too large to hold");
    assert_eq!(compact(&cfa(rsp, 8), ra.clone(), Some(RegisterRule::Offset(-12))), Rule::FRAME_POINTER);
    assert_eq!(compact(&cfa(rsp, 8), ra.clone(), Some(RegisterRule::Register(rax))), Rule::FRAME_POINTER);
    assert_eq!(compact(&cfa(rsp, 8), Some(RegisterRule::Offset(-16)), None), Rule::FRAME_POINTER);
    assert_eq!(compact(&cfa(rsp, -8), ra, None), Rule::FRAME_POINTER, "a CFA below the stack pointer");
}

impl FakeStack {
    /// One step of the rule walk from a frame with `sp` and `fp` at these words.
    fn step(&self, rule: Rule, sp: usize, fp: usize) -> Option<(usize, usize, usize)> {
        let frame = Frame { addr: 0, sp: self.at(sp), fp: self.at(fp) };
        // SAFETY: the bounds are the first page, readable.
        unsafe { unwind::step(rule, frame, self.bounds()) }
    }
}

#[test]
fn every_step_of_the_rule_walk_is_validated() {
    let s = FakeStack::new();
    let last = FakeStack::PAGE / 8 - 1;
    s.put(14, 0xAAAA); // return address at CFA - 8 for CFA = word 15
    s.put(13, s.at(40)); // saved rbp at CFA - 16
    let sp_rule = |off: u32, slot| Rule::cfa(Base::Rsp, off, slot).unwrap();
    assert_eq!(s.step(sp_rule(40, 0), 10, 99), Some((s.at(15), 0xAAAA, s.at(99))), "rbp kept");
    assert_eq!(s.step(sp_rule(40, 2), 10, 99), Some((s.at(15), 0xAAAA, s.at(40))), "rbp restored");
    assert_eq!(s.step(Rule::FRAME_RECORD, 0, 13), Some((s.at(15), 0xAAAA, s.at(40))), "a frame record");
    assert_eq!(s.step(Rule::FRAME_POINTER, 0, 13), Some((s.at(15), 0xAAAA, s.at(40))));
    assert_eq!(s.step(Rule::END, 10, 13), None, "the end");
    assert_eq!(s.step(sp_rule(8, 0), 20, 13), Some((s.at(21), 0, s.at(13))), "a zero return address is returned");
    for (rule, sp, fp, why) in [
        (sp_rule(16, 0), last, 0, "the return address would lie past the stack"),
        (Rule::FRAME_RECORD, 0, last, "a frame record past the stack"),
        (Rule::cfa(Base::Rbp, 16, 0).unwrap(), 20, 10, "a CFA at or below the stack pointer"),
        (sp_rule(12, 0), 10, 0, "a misaligned CFA"),
        (sp_rule(8, 200), 10, 0, "rbp saved below the stack"),
    ] {
        assert_eq!(s.step(rule, sp, fp), None, "{why}");
    }
    let below = Frame { addr: 0, sp: s.base - 64, fp: 0 };
    // SAFETY: the bounds are the first page, readable.
    assert_eq!(unsafe { unwind::step(sp_rule(16, 0), below, s.bounds()) }, None, "reads below the stack");
    let huge = Frame { addr: 0, sp: usize::MAX - 8, fp: usize::MAX - 8 };
    // SAFETY: as above.
    assert_eq!(unsafe { unwind::step(Rule::FRAME_RECORD, huge, s.bounds()) }, None, "an overflowing CFA");
}

/// A walk on from a frame-record prefix over a fake stack: frame `A` (at word 20, its
/// rule `CFA = rsp + 16`) returns into `B` (the same rule, its frame at word 22), which
/// returns into `C`, whose rule ends the walk.
struct FakeTail {
    s: FakeStack,
    a: usize,
    b: usize,
    c: usize,
}

impl FakeTail {
    fn new() -> Self {
        let _ = stack_by(Walker::Rules); // the table exists
        let base = 0x3100_0000_0000usize;
        let t = FakeTail { s: FakeStack::new(), a: base + 0x100, b: base + 0x200, c: base + 0x300 };
        t.s.put(21, t.b + 1); // A's return address, at its CFA (word 22) - 8
        t.s.put(23, t.c + 1); // B's, at its CFA (word 24) - 8
        t
    }

    /// Walks on from `A` (after one frame-record frame returning into it) with room for
    /// `room` more frames; the frames found after `A`'s return address.
    fn walk_on(&self, memo: &mut rules::RuleMemo, tail: &mut super::tail::TailMemo, room: usize) -> Vec<usize> {
        // Rules may leave the table's two-entry sets to other tests' inserts: put them back.
        cfi_insert(self.a, Rule::cfa(Base::Rsp, 16, 0).unwrap());
        cfi_insert(self.b, Rule::cfa(Base::Rsp, 16, 0).unwrap());
        cfi_insert(self.c, Rule::END);
        let mut out = [MaybeUninit::<usize>::uninit(); 8];
        out[0].write(self.a + 1);
        let at = unwind::Records {
            len: 1,
            hash: unwind::mix(unwind::SEED, self.a + 1),
            sp: self.s.at(20),
            fp: self.s.at(40),
            ret: self.a + 1,
        };
        let bounds = StackBounds { lo: self.s.at(0), hi: self.s.base + FakeStack::PAGE };
        let walk = unwind::walk_rules_after(&mut out[..1 + room], at, bounds, memo, tail, rules::generation());
        // SAFETY: the walk wrote `out[..walk.len]`.
        let all: Vec<usize> = out[..walk.len].iter().map(|f| unsafe { f.assume_init() }).collect();
        assert_eq!(walk.hash, unwind::hash_frames(&all));
        all[1..].to_vec()
    }
}

#[test]
fn a_walk_on_is_replayed_only_while_the_words_it_read_hold() {
    let t = FakeTail::new();
    let (mut memo, mut tail) = (rules::RuleMemo::new(), super::tail::TailMemo::new());
    assert_eq!(t.walk_on(&mut memo, &mut tail, 4), [t.b + 1, t.c + 1]);
    assert_eq!(tail.replays, 0);
    assert_eq!(t.walk_on(&mut memo, &mut tail, 4), [t.b + 1, t.c + 1]);
    assert_eq!(tail.replays, 1, "the same start and words: replayed");
    t.s.put(21, t.c + 1);
    assert_eq!(t.walk_on(&mut memo, &mut tail, 4), [t.c + 1], "a word changed: walked again");
    assert_eq!(tail.replays, 1);
    assert_eq!(t.walk_on(&mut memo, &mut tail, 4), [t.c + 1]);
    assert_eq!(tail.replays, 2);
}

#[test]
fn a_walk_on_cut_short_by_its_room_is_replayed_only_with_no_more_room() {
    let t = FakeTail::new();
    let (mut memo, mut tail) = (rules::RuleMemo::new(), super::tail::TailMemo::new());
    assert_eq!(t.walk_on(&mut memo, &mut tail, 1), [t.b + 1], "room for one frame");
    assert_eq!(t.walk_on(&mut memo, &mut tail, 1), [t.b + 1]);
    assert_eq!(tail.replays, 1, "as much room: replayed");
    assert_eq!(t.walk_on(&mut memo, &mut tail, 4), [t.b + 1, t.c + 1], "more room: walked on");
    assert_eq!(tail.replays, 1);
    assert_eq!(t.walk_on(&mut memo, &mut tail, 1), [t.b + 1], "less room: the kept walk's first frame");
    assert_eq!(t.walk_on(&mut memo, &mut tail, 7), [t.b + 1, t.c + 1], "more room: it ended at a rule");
    assert_eq!(tail.replays, 3);
}
