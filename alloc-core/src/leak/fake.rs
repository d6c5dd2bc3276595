//! A fake heap for testing the phases: blocks are arrays of words the test allocates
//! itself, listed in a sorted table. Tests build pointer graphs by storing block
//! addresses into other blocks, then run mark and classify on them.

use super::classify::{classify, LeakKind, LeakedBlock};
use super::mark::Marker;
use super::view::{BlockDesc, HeapView};

pub(crate) struct FakeHeap {
    blocks: Vec<Box<[usize]>>,
    ignored: Vec<bool>,
}

impl FakeHeap {
    pub(crate) fn new() -> Self {
        FakeHeap { blocks: Vec::new(), ignored: Vec::new() }
    }

    /// Adds a block of `words` words; returns its id.
    pub(crate) fn add(&mut self, words: usize) -> u32 {
        self.blocks.push(vec![0usize; words].into_boxed_slice());
        self.ignored.push(false);
        (self.blocks.len() - 1) as u32
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
        }
    }

    /// Marks from `roots` (ids treated as root ranges), then classifies.
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
        classify(self, &|id, d| !d.ignored && !marks.get(id)).iter().copied().collect()
    }
}

impl HeapView for FakeHeap {
    fn block_slots(&self) -> usize {
        self.blocks.len()
    }
    fn block_containing(&self, addr: usize) -> Option<(u32, BlockDesc)> {
        (0..self.blocks.len())
            .map(|i| (i as u32, self.desc(i)))
            .find(|(_, d)| addr >= d.start && addr < d.start + d.usable)
    }
    fn for_each_block(&self, f: &mut dyn FnMut(u32, BlockDesc)) {
        for i in 0..self.blocks.len() {
            f(i as u32, self.desc(i));
        }
    }
    fn owned_region_end(&self, _: usize) -> Option<usize> {
        None
    }
    fn survived(&self, _: usize) {}
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

/// A fast fake heap for big graphs: equal-sized blocks in one contiguous array.
struct Slab {
    words: Vec<usize>,
    per: usize,
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
    fn survived(&self, _: usize) {}
}

impl Slab {
    fn desc(&self, id: usize) -> BlockDesc {
        let start = self.words.as_ptr() as usize + id * self.per * 8;
        BlockDesc { start, size: self.per * 8, usable: self.per * 8, stack: 0, ignored: false }
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
            let leaks = classify(&slab, &|_, _| true);
            assert_eq!(leaks.len(), n);
            assert_eq!(leaks.iter().filter(|l| l.kind == D).count(), 1);
            assert!(leaks.iter().all(|l| !l.cyclic));
            slab.words[n - 1] = base; // close the cycle
            let leaks = classify(&slab, &|_, _| true);
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
