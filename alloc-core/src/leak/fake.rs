//! A fake heap for testing the phases: blocks are arrays of words the test allocates
//! itself, listed in a sorted table. Tests build pointer graphs by storing block
//! addresses into other blocks, then run mark and classify on them (and `leak::tests`
//! runs the whole analysis on it, with this process's real roots).

use super::classify::{classify, LeakKind, LeakedBlock};
use super::mark::Marker;
use super::view::{BlockDesc, HeapView, Marks, Promotion, Walk};
use crate::segment::{map::segment_start, SEGMENT_SIZE};
use std::cell::Cell;

/// Blocks are boxed word arrays (allocated by the test, so in the real heap when the
/// crate's tests run under HeapSweep); `by_start` lists `(start, id)` sorted, for
/// `block_containing` by binary search.
pub(crate) struct FakeHeap {
    blocks: Vec<Box<[usize]>>,
    ignored: Vec<bool>,
    /// Each block's generation and reported flag, written by a sweep's `walk_promoting`
    /// and by `set_reported` (and by tests).
    pub(crate) generation: Vec<Cell<u8>>,
    pub(crate) reported: Vec<Cell<bool>>,
    by_start: Vec<(usize, u32)>,
    /// How many blocks a check's `walk_promoting` promoted.
    pub(crate) survivors: Cell<usize>,
}

impl FakeHeap {
    pub(crate) fn new() -> Self {
        FakeHeap {
            blocks: Vec::new(),
            ignored: Vec::new(),
            generation: Vec::new(),
            reported: Vec::new(),
            by_start: Vec::new(),
            survivors: Cell::new(0),
        }
    }

    /// Adds a block of `words` words; returns its id.
    pub(crate) fn add(&mut self, words: usize) -> u32 {
        let id = self.blocks.len() as u32;
        self.blocks.push(vec![0usize; words].into_boxed_slice());
        self.ignored.push(false);
        self.generation.push(Cell::new(0));
        self.reported.push(Cell::new(false));
        let start = self.addr(id);
        let at = self.by_start.partition_point(|&(s, _)| s < start);
        self.by_start.insert(at, (start, id));
        id
    }

    pub(crate) fn addr(&self, id: u32) -> usize {
        self.blocks[id as usize].as_ptr() as usize
    }

    /// Stores a pointer to `to` (plus `offset` bytes) in word `slot` of `from`.
    pub(crate) fn link(&mut self, from: u32, slot: usize, to: u32, offset: usize) {
        let target = self.addr(to) + offset;
        self.blocks[from as usize][slot] = target;
    }

    pub(crate) fn ignore(&mut self, id: u32) {
        self.ignored[id as usize] = true;
    }

    fn desc(&self, id: usize) -> BlockDesc {
        let b = &self.blocks[id];
        BlockDesc {
            start: b.as_ptr() as usize,
            size: b.len() * 8,
            usable: b.len() * 8,
            stack: id as u32,
            ignored: self.ignored[id],
            scoped: false,
            generation: self.generation[id].get(),
            reported: self.reported[id].get(),
        }
    }

    /// Marks from `roots` (ids whose contents are treated as root ranges; they are
    /// marked too), then classifies.
    pub(crate) fn run(&self, roots: &[u32]) -> Vec<LeakedBlock> {
        let mut m = Marker::new(self).unwrap();
        for &r in roots {
            let d = self.desc(r as usize);
            m.scan_range(d.start, d.start + d.usable);
            m.marks.set(r);
        }
        m.mark_ignored();
        m.flood_fill();
        let marks = &m.marks;
        classify(self, Walk::All, &|id, d| !d.ignored && !marks.get(id)).unwrap().iter().copied().collect()
    }
}

impl HeapView for FakeHeap {
    fn block_slots(&self) -> usize {
        self.blocks.len()
    }
    fn block_containing(&self, addr: usize) -> Option<(u32, BlockDesc)> {
        let at = self.by_start.partition_point(|&(s, _)| s <= addr).checked_sub(1)?;
        let id = self.by_start[at].1;
        let d = self.desc(id as usize);
        (addr < d.start + d.usable).then_some((id, d))
    }
    fn for_each_block(&self, f: &mut dyn FnMut(u32, BlockDesc)) {
        for i in 0..self.blocks.len() {
            f(i as u32, self.desc(i));
        }
    }
    /// Exactly the blocks of generation 0 (the real heap may give some older ones too):
    /// a sweep of generation 0 must need no more.
    fn for_each_young_block(&self, f: &mut dyn FnMut(u32, BlockDesc)) {
        self.for_each_block(&mut |id, d| {
            if d.generation == 0 {
                f(id, d)
            }
        });
    }
    /// The real heap's segments, slot by slot: the fake blocks live there, and must be
    /// found only by following pointers, as real blocks are.
    fn owned_region_end(&self, addr: usize) -> Option<usize> {
        segment_start(addr).map(|_| (addr / SEGMENT_SIZE + 1) * SEGMENT_SIZE)
    }
    /// A check's promotion is only counted (`survivors`); a sweep's sets the generations.
    fn walk_promoting(&self, walk: Walk, marks: &Marks, promotion: Promotion, f: &mut dyn FnMut(u32, BlockDesc)) {
        self.walk(walk, &mut |id, d| {
            if marks.get(id) {
                match promotion {
                    Promotion::OneUp => self.survivors.set(self.survivors.get() + 1),
                    Promotion::PastSwept(_) => {
                        self.generation[id as usize].set(promotion.generation_after(d.generation))
                    }
                }
            }
            f(id, d);
        });
    }
    fn set_reported(&self, start: usize) {
        if let Some((id, _)) = self.block_containing(start) {
            self.reported[id as usize].set(true);
        }
    }
    /// None: the fake blocks live in the real heap, whose segments the tests do not
    /// track.
    fn for_each_owned_region(&self, _: &mut dyn FnMut(usize, usize)) {}
    fn for_each_block_in_region(&self, _: usize, _: &mut dyn FnMut(u32, BlockDesc)) {}
}

fn kinds(leaks: &[LeakedBlock]) -> Vec<(u32, LeakKind, bool)> {
    let mut v: Vec<_> = leaks.iter().map(|l| (l.id, l.kind, l.cyclic)).collect();
    v.sort_by_key(|x| x.0);
    v
}

use LeakKind::{Direct as D, Indirect as I};

#[test]
fn a_list_is_a_direct_head_and_an_indirect_tail() {
    let mut h = FakeHeap::new();
    let n: Vec<u32> = (0..4).map(|_| h.add(2)).collect();
    for w in n.windows(2) {
        h.link(w[0], 0, w[1], 0);
    }
    assert_eq!(kinds(&h.run(&[])), vec![(0, D, false), (1, I, false), (2, I, false), (3, I, false)]);
}

#[test]
fn a_pure_cycle_is_direct_and_cyclic() {
    let mut h = FakeHeap::new();
    let (a, b) = (h.add(2), h.add(2));
    h.link(a, 0, b, 0);
    h.link(b, 1, a, 0);
    assert_eq!(kinds(&h.run(&[])), vec![(0, D, true), (1, D, true)]);
}

#[test]
fn a_self_pointer_is_cyclic() {
    let mut h = FakeHeap::new();
    let a = h.add(1);
    h.link(a, 0, a, 0);
    assert_eq!(kinds(&h.run(&[])), vec![(0, D, true)]);
}

#[test]
fn a_cycle_hanging_off_a_head_is_indirect() {
    let mut h = FakeHeap::new();
    let (head, x, y) = (h.add(1), h.add(1), h.add(1));
    h.link(head, 0, x, 0);
    h.link(x, 0, y, 0);
    h.link(y, 0, x, 0);
    assert_eq!(kinds(&h.run(&[])), vec![(0, D, false), (1, I, true), (2, I, true)]);
}

#[test]
fn interior_pointers_keep_blocks_reachable_and_past_the_end_does_not() {
    let mut h = FakeHeap::new();
    let (root, a, b) = (h.add(2), h.add(4), h.add(4));
    h.link(root, 0, a, 17); // interior, with low bits set like a tagged pointer
    h.link(root, 1, b, 32); // one past the end of b
    assert_eq!(kinds(&h.run(&[root])), vec![(2, D, false)]);
}

#[test]
fn ignored_blocks_keep_their_children_reachable() {
    let mut h = FakeHeap::new();
    let (a, b) = (h.add(1), h.add(1));
    h.link(a, 0, b, 0);
    h.ignore(a);
    assert!(h.run(&[]).is_empty());
}

#[test]
fn a_diamond_has_one_direct_block() {
    let mut h = FakeHeap::new();
    let (top, l, r, bottom) = (h.add(2), h.add(1), h.add(1), h.add(1));
    h.link(top, 0, l, 0);
    h.link(top, 1, r, 0);
    h.link(l, 0, bottom, 0);
    h.link(r, 0, bottom, 0);
    assert_eq!(kinds(&h.run(&[])), vec![(0, D, false), (1, I, false), (2, I, false), (3, I, false)]);
}

/// A fast fake heap for big graphs: equal-sized blocks in one contiguous array (block
/// `i` is words `[i * per, (i + 1) * per)`). Only read while marking: two threads may
/// mark it at once (`mark::parallel`'s tests).
pub(crate) struct Slab {
    pub(crate) words: Vec<usize>,
    pub(crate) per: usize,
}

impl HeapView for Slab {
    fn block_slots(&self) -> usize {
        self.words.len() / self.per
    }
    fn block_containing(&self, addr: usize) -> Option<(u32, BlockDesc)> {
        let base = self.words.as_ptr() as usize;
        let off = addr.checked_sub(base)?;
        let id = off / (self.per * 8);
        (id < self.block_slots()).then(|| (id as u32, self.desc(id)))
    }
    fn for_each_block(&self, f: &mut dyn FnMut(u32, BlockDesc)) {
        for i in 0..self.block_slots() {
            f(i as u32, self.desc(i));
        }
    }
    fn owned_region_end(&self, _: usize) -> Option<usize> {
        None
    }
    fn walk_promoting(&self, walk: Walk, _: &Marks, _: Promotion, f: &mut dyn FnMut(u32, BlockDesc)) {
        self.walk(walk, f);
    }
    fn set_reported(&self, _: usize) {}
    fn for_each_owned_region(&self, _: &mut dyn FnMut(usize, usize)) {}
    fn for_each_block_in_region(&self, _: usize, _: &mut dyn FnMut(u32, BlockDesc)) {}
}

impl Slab {
    pub(crate) fn base(&self) -> usize {
        self.words.as_ptr() as usize
    }

    /// An address inside block `id` (at `offset` bytes, wrapped into the block).
    pub(crate) fn inside(&self, id: usize, offset: usize) -> usize {
        self.base() + id * self.per * 8 + offset % (self.per * 8)
    }

    fn desc(&self, id: usize) -> BlockDesc {
        let start = self.words.as_ptr() as usize + id * self.per * 8;
        BlockDesc {
            start,
            size: self.per * 8,
            usable: self.per * 8,
            stack: 0,
            ignored: false,
            scoped: false,
            generation: 0,
            reported: false,
        }
    }
}

#[test]
fn a_million_block_chain_and_cycle_classify_without_recursion_on_a_small_stack() {
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(|| {
            let n = 1_000_000;
            let mut slab = Slab { words: vec![0; n], per: 1 };
            let base = slab.words.as_ptr() as usize;
            for i in 0..n - 1 {
                slab.words[i] = base + (i + 1) * 8;
            }
            let leaks = classify(&slab, Walk::All, &|_, _| true).unwrap();
            assert_eq!(leaks.len(), n);
            assert_eq!(leaks.iter().filter(|l| l.kind == D).count(), 1);
            assert!(leaks.iter().all(|l| !l.cyclic));
            slab.words[n - 1] = base; // close the cycle
            let leaks = classify(&slab, Walk::All, &|_, _| true).unwrap();
            assert!(leaks.iter().all(|l| l.kind == D && l.cyclic));
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn a_reachable_chain_of_100k_blocks_is_all_marked() {
    let n = 100_000;
    let mut slab = Slab { words: vec![0; n], per: 1 };
    let base = slab.words.as_ptr() as usize;
    for i in 0..n - 1 {
        slab.words[i] = base + (i + 1) * 8;
    }
    let mut m = Marker::new(&slab).unwrap();
    let root = [base];
    m.scan_range(root.as_ptr() as usize, root.as_ptr() as usize + 8);
    m.flood_fill();
    assert_eq!(m.stats.reachable_blocks, n as u64);
}

#[test]
fn two_heads_sharing_a_tail_are_both_direct() {
    let mut h = FakeHeap::new();
    let (a, b, tail) = (h.add(1), h.add(1), h.add(1));
    h.link(a, 0, tail, 0);
    h.link(b, 0, tail, 8 - 1); // interior, tagged
    assert_eq!(kinds(&h.run(&[])), vec![(0, D, false), (1, D, false), (2, I, false)]);
}

#[test]
fn a_cycle_pointing_into_another_cycle_makes_the_second_indirect() {
    let mut h = FakeHeap::new();
    let ids: Vec<u32> = (0..4).map(|_| h.add(2)).collect();
    h.link(ids[0], 0, ids[1], 0);
    h.link(ids[1], 0, ids[0], 0);
    h.link(ids[2], 0, ids[3], 0);
    h.link(ids[3], 0, ids[2], 0);
    h.link(ids[1], 1, ids[2], 0);
    assert_eq!(kinds(&h.run(&[])), vec![(0, D, true), (1, D, true), (2, I, true), (3, I, true)]);
}

#[test]
fn a_leaked_block_pointing_at_a_reachable_one_leaves_it_reachable() {
    let mut h = FakeHeap::new();
    let (root, kept, lost) = (h.add(1), h.add(1), h.add(1));
    h.link(root, 0, kept, 0);
    h.link(lost, 0, kept, 0);
    assert_eq!(kinds(&h.run(&[root])), vec![(2, D, false)]);
}

#[test]
fn marking_counts_blocks_bytes_and_words() {
    let mut h = FakeHeap::new();
    let (a, b, c) = (h.add(3), h.add(5), h.add(2));
    h.link(a, 0, b, 0);
    h.link(b, 4, b, 0); // a self pointer is counted once
    let _ = c;
    let mut m = Marker::new(&h).unwrap();
    let d = h.desc(a as usize);
    m.scan_range(d.start + 1, d.start + d.usable); // an unaligned start skips the first word
    m.scan_range(d.start, d.start + d.usable);
    m.flood_fill();
    assert_eq!((m.stats.reachable_blocks, m.stats.reachable_bytes), (1, 40));
    assert_eq!(m.stats.words_scanned, 2 + 3 + 5);
    assert!(m.marks.get(b) && !m.marks.get(a) && !m.marks.get(c) && !m.lost);
}

#[test]
fn a_block_larger_than_a_chunk_is_scanned_to_its_last_word() {
    // 40,000 words (320 KB: 20 chunks), pointers in its first chunk, at a chunk's edge,
    // and in its last word; each target points on to one more block.
    let mut h = FakeHeap::new();
    let big = h.add(40_000);
    let slots = [0, 2047, 2048, 2049, 20_000, 39_999];
    let targets: Vec<(u32, u32)> = slots.iter().map(|_| (h.add(2), h.add(1))).collect();
    let unreached = h.add(4);
    for (&slot, &(t, next)) in slots.iter().zip(&targets) {
        h.link(big, slot, t, 8);
        h.link(t, 1, next, 0);
    }
    let mut m = Marker::new(&h).unwrap();
    let root = [h.addr(big)];
    m.scan_range(root.as_ptr() as usize, root.as_ptr() as usize + 8);
    m.flood_fill();
    assert!(targets.iter().all(|&(t, next)| m.marks.get(t) && m.marks.get(next)));
    assert!(m.marks.get(big) && !m.marks.get(unreached) && !m.lost);
    assert_eq!(m.stats.reachable_blocks, 1 + 2 * slots.len() as u64);
    assert_eq!(m.stats.words_scanned, 1 + 40_000 + 3 * slots.len() as u64);
}

/// The definitions, computed the slow way: `reach[i][j]` by transitive closure; a block
/// is cyclic if it reaches itself through another block or points at itself; direct if
/// no block outside its component points into the component (DESIGN.md: the source
/// components of the condensation).
fn reference(edges: &[Vec<usize>]) -> Vec<(LeakKind, bool)> {
    let n = edges.len();
    let mut reach = vec![vec![false; n]; n];
    for (i, es) in edges.iter().enumerate() {
        es.iter().for_each(|&j| reach[i][j] = true);
    }
    for k in 0..n {
        for i in 0..n {
            for j in 0..n {
                reach[i][j] |= reach[i][k] && reach[k][j];
            }
        }
    }
    let same = |i: usize, j: usize| i == j || (reach[i][j] && reach[j][i]);
    (0..n)
        .map(|v| {
            let pointed = (0..n).any(|u| !same(u, v) && edges[u].iter().any(|&w| same(w, v)));
            let cyclic = edges[v].contains(&v) || (0..n).any(|u| u != v && same(u, v));
            (if pointed { LeakKind::Indirect } else { LeakKind::Direct }, cyclic)
        })
        .collect()
}

proptest::proptest! {
    #[test]
    fn classify_agrees_with_the_definitions(
        edges in proptest::collection::vec(proptest::collection::vec(0usize..12, 0..4), 1..12)
    ) {
        let n = edges.len();
        let edges: Vec<Vec<usize>> = edges.into_iter().map(|es| es.into_iter().map(|j| j % n).collect()).collect();
        let mut h = FakeHeap::new();
        let ids: Vec<u32> = (0..n).map(|_| h.add(4)).collect();
        for (i, es) in edges.iter().enumerate() {
            for (slot, &j) in es.iter().enumerate() {
                h.link(ids[i], slot, ids[j], slot); // interior pointers, some tagged
            }
        }
        let got: Vec<(LeakKind, bool)> = kinds(&h.run(&[])).into_iter().map(|(_, k, c)| (k, c)).collect();
        proptest::prop_assert_eq!(got, reference(&edges));
    }
}

#[test]
fn marks_set_a_word_of_bits_at_any_offset_and_all_of_a_bitmap() {
    for first in [0usize, 1, 60, 63, 64, 100, 191] {
        let mut m = Marks::new(256).unwrap();
        let bits = 0b1011_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0111u64;
        m.set_word(first, bits);
        for i in 0..256u32 {
            let want = (i as usize) >= first && (i as usize) < first + 64 && bits >> (i as usize - first) & 1 != 0;
            assert_eq!(m.get(i), want, "first {first}, id {i}");
        }
    }
    let mut m = Marks::new(130).unwrap();
    m.set_word(3, 1);
    m.set_all_of(&[1 << 5, 0, 1 << 1]);
    let set: Vec<u32> = (0..130).filter(|&i| m.get(i)).collect();
    assert_eq!(set, [3, 5, 129]);
}
