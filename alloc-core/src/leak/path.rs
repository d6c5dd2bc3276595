//! Why a block is alive: a shortest chain of pointers from a root to it.
//!
//! # What it owns
//! [`shortest_chain`]: a breadth-first search over the same graph the mark phase floods
//! (root words → blocks → the blocks their words point into), remembering for every block
//! the word through which it was first reached. The first time the search reaches the
//! target, following those words back gives a chain with the fewest blocks, as Python's
//! `gc.get_referrers`, applied until a root, would find by hand.
//!
//! # Order
//! Ignored blocks are roots, as in marking, and come first; then every root range in the
//! order the root phase lists them; then blocks, level by level. So among the chains of
//! equal length the one found starts at the earliest root.
//!
//! # Who calls it
//! `retain` (the services layer), with the world stopped. Everything lives in `MmapVec`s.

use super::failure::Failure;
use super::roots::RootRange;
use super::view::{BlockDesc, HeapView};
use crate::os::MmapVec;

/// Not reached yet.
const UNSEEN: u32 = u32::MAX;
/// Reached from a root word (not from a block).
const FROM_ROOT: u32 = u32::MAX - 1;

/// Where a chain starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChainRoot {
    /// A word of a root range: the range, and the word's address.
    Range { range: RootRange, word: usize },
    /// An ignored block (`ignore`, `disable`): a root by the user's say.
    Ignored { block: BlockDesc },
}

/// One block of a chain, and the address of the word in it that points to the next
/// block (`None` for the last one, the target).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChainLink {
    pub(crate) block: BlockDesc,
    pub(crate) next_word: Option<usize>,
}

/// A shortest chain: the root, then the blocks from the one the root points into to
/// the target. The root's word (or the ignored block) points into `links[0]`.
pub(crate) struct Chain {
    pub(crate) root: ChainRoot,
    pub(crate) links: MmapVec<ChainLink>,
}

/// Root words the search passes over: those in `[start, end)` whose value is `value`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Skip {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) value: usize,
}

impl Skip {
    const NONE: Skip = Skip { start: 0, end: 0, value: 0 };
}

/// The search's state: for each block id, the id of the block it was reached from
/// (`UNSEEN`, `FROM_ROOT`, or a block id) and the address of the word that reached it.
struct Search<'v, V: HeapView> {
    view: &'v V,
    parent: MmapVec<u32>,
    via: MmapVec<usize>,
    /// Reached blocks not scanned yet: id and the bytes to scan.
    queue: MmapVec<(u32, usize, usize)>,
    target: u32,
    skip: Skip,
    lost: bool,
}

impl<V: HeapView> Search<'_, V> {
    /// Records that `word` (at address `at`, inside block `from` or a root) reaches a
    /// block; queues the block if it is new. Returns whether it is the target.
    #[inline]
    fn reach(&mut self, word: usize, at: usize, from: u32) -> bool {
        let Some((id, d)) = self.view.block_containing(word) else { return false };
        if self.parent[id as usize] != UNSEEN {
            return false;
        }
        self.parent[id as usize] = from;
        self.via[id as usize] = at;
        self.lost |= !self.queue.push((id, d.start, d.scan_end()));
        id == self.target
    }

    /// Scans `[start, end)` word by word; returns whether the target was reached.
    fn scan(&mut self, start: usize, end: usize, from: u32) -> bool {
        let mut p = (start + 7) & !7;
        while p + 8 <= end {
            // SAFETY: the range is readable memory (a root range of the stopped world, or
            // a live block's requested bytes) and `p` is 8-byte aligned.
            let word = unsafe { core::ptr::read_volatile(p as *const usize) };
            let skipped = from == FROM_ROOT && word == self.skip.value && self.skip.start <= p && p < self.skip.end;
            if !skipped && self.reach(word, p, from) {
                return true;
            }
            p += 8;
        }
        false
    }

    /// Ignored blocks, then root ranges: the first level. Returns whether the target was
    /// reached.
    fn scan_roots(&mut self, roots: &[RootRange]) -> bool {
        let view = self.view;
        let mut found = false;
        view.for_each_block(&mut |id, d| {
            if !found && d.ignored && self.parent[id as usize] == UNSEEN {
                self.parent[id as usize] = FROM_ROOT;
                self.via[id as usize] = 0;
                self.lost |= !self.queue.push((id, d.start, d.scan_end()));
                found = id == self.target;
            }
        });
        found || roots.iter().any(|r| self.scan(r.start, r.end, FROM_ROOT))
    }

    /// Breadth-first through the blocks; returns whether the target was reached.
    fn flood(&mut self) -> bool {
        let mut head = 0;
        while head < self.queue.len() {
            let (id, start, end) = self.queue[head];
            head += 1;
            if self.scan(start, end, id) {
                return true;
            }
        }
        false
    }

    /// The descriptor of a reached block, found again through the word that reached it
    /// (ignored blocks, reached from no word, are looked up by a walk).
    fn desc_of(&self, id: u32) -> Option<BlockDesc> {
        let at = self.via[id as usize];
        if at == 0 {
            let mut found = None;
            self.view.for_each_block(&mut |i, d| {
                if i == id {
                    found = Some(d);
                }
            });
            return found;
        }
        // SAFETY: `at` is the address of a word the search read before (in a root range
        // or a live block of the stopped world), still readable and aligned.
        let word = unsafe { core::ptr::read_volatile(at as *const usize) };
        self.view.block_containing(word).map(|(_, d)| d)
    }
}

/// A shortest chain from the roots (ignored blocks count as roots) to the block with id
/// `target`; `Ok(None)` when no root reaches it (it is leaked).
pub(crate) fn shortest_chain<V: HeapView>(
    view: &V,
    roots: &[RootRange],
    target: u32,
) -> Result<Option<Chain>, Failure> {
    shortest_chain_skipping(view, roots, target, Skip::NONE)
}

/// [`shortest_chain`], passing over the root words `skip` names.
pub(crate) fn shortest_chain_skipping<V: HeapView>(
    view: &V,
    roots: &[RootRange],
    target: u32,
    skip: Skip,
) -> Result<Option<Chain>, Failure> {
    let n = view.block_slots();
    let (parent, via, queue) = (MmapVec::new(), MmapVec::new(), MmapVec::new());
    let mut s = Search { view, parent, via, queue, target, skip, lost: false };
    if !(s.parent.resize(n, UNSEEN) && s.via.resize(n, 0) && s.queue.reserve(1024)) {
        return Err(Failure::OutOfMemory { what: "the path search's tables" });
    }
    let found = s.scan_roots(roots) || s.flood();
    if !found {
        // A block that could not be queued may have led to the target.
        return if s.lost { Err(Failure::OutOfMemory { what: "the path search's queue" }) } else { Ok(None) };
    }
    unwind(&s, roots).map(Some).ok_or(Failure::OutOfMemory { what: "the chain" })
}

/// Follows the recorded words back from the target to a root. `None` when out of memory.
fn unwind<V: HeapView>(s: &Search<'_, V>, roots: &[RootRange]) -> Option<Chain> {
    let mut links = MmapVec::new();
    let (mut id, mut next_word) = (s.target, None);
    loop {
        debug_assert!(s.parent[id as usize] != UNSEEN, "every block on the chain was reached");
        let block = s.desc_of(id)?;
        if !links.push(ChainLink { block, next_word }) {
            return None;
        }
        let (parent, at) = (s.parent[id as usize], s.via[id as usize]);
        if parent == FROM_ROOT {
            links.as_mut_slice().reverse();
            let root = match roots.iter().find(|r| r.start <= at && at < r.end) {
                Some(&range) if at != 0 => ChainRoot::Range { range, word: at },
                _ => ChainRoot::Ignored { block },
            };
            if let ChainRoot::Ignored { .. } = root {
                // The ignored block is the root itself, not a link of the chain.
                links.as_mut_slice().rotate_left(1);
                links.pop();
            }
            return Some(Chain { root, links });
        }
        (id, next_word) = (parent, Some(at));
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeHeap;
    use super::*;
    use crate::leak::roots::RootKind;

    /// Root ranges over the contents of fake blocks: the tests' stand-ins for stacks.
    fn roots_over(h: &FakeHeap, ids: &[(u32, usize)]) -> Vec<RootRange> {
        ids.iter()
            .map(|&(id, words)| RootRange { start: h.addr(id), end: h.addr(id) + words * 8, kind: RootKind::Stack })
            .collect()
    }

    fn chain_ids(h: &FakeHeap, c: &Chain) -> Vec<(u32, Option<usize>)> {
        c.links
            .iter()
            .map(|l| {
                let id = h.block_containing(l.block.start).unwrap().0;
                (id, l.next_word.map(|w| w - l.block.start))
            })
            .collect()
    }

    #[test]
    fn the_chain_is_a_shortest_one_with_field_offsets() {
        // r → a → b → c → t (long way) and r → d → t (short way, through d's word 3).
        let mut h = FakeHeap::new();
        let [r, a, b, c, d, t] = [0; 6].map(|_| h.add(4));
        h.link(r, 0, a, 0);
        h.link(a, 1, b, 0);
        h.link(b, 2, c, 8);
        h.link(c, 0, t, 0);
        h.link(r, 2, d, 16);
        h.link(d, 3, t, 24);
        let roots = roots_over(&h, &[(r, 4)]);
        let chain = shortest_chain(&h, &roots, t).unwrap().expect("t is reachable");
        assert_eq!(chain_ids(&h, &chain), vec![(d, Some(24)), (t, None)]);
        assert_eq!(chain.root, ChainRoot::Range { range: roots[0], word: h.addr(r) + 16 });
    }

    #[test]
    fn skipped_root_words_are_passed_over() {
        let mut h = FakeHeap::new();
        let [r, t] = [0; 2].map(|_| h.add(3));
        h.link(r, 0, t, 0);
        h.link(r, 2, t, 8);
        let roots = roots_over(&h, &[(r, 3)]);
        let (start, end) = (roots[0].start, roots[0].end);
        let skip = Skip { start, end, value: h.addr(t) };
        let chain = shortest_chain_skipping(&h, &roots, t, skip).unwrap().unwrap();
        assert_eq!(chain.root, ChainRoot::Range { range: roots[0], word: h.addr(r) + 16 }, "the interior pointer");
        h.link(r, 2, t, 0);
        assert!(shortest_chain_skipping(&h, &roots, t, skip).unwrap().is_none());
    }

    #[test]
    fn an_unreachable_block_has_no_chain() {
        let mut h = FakeHeap::new();
        let [r, a, leaked, tail] = [0; 4].map(|_| h.add(2));
        h.link(r, 0, a, 0);
        h.link(leaked, 0, tail, 0);
        h.link(tail, 1, leaked, 0);
        let roots = roots_over(&h, &[(r, 2)]);
        assert!(shortest_chain(&h, &roots, tail).unwrap().is_none());
        assert!(shortest_chain(&h, &roots, leaked).unwrap().is_none());
    }

    #[test]
    fn an_ignored_block_is_a_root() {
        let mut h = FakeHeap::new();
        let [keeper, a, t] = [0; 3].map(|_| h.add(3));
        h.link(keeper, 2, a, 0);
        h.link(a, 1, t, 8);
        h.ignore(keeper);
        let chain = shortest_chain(&h, &[], t).unwrap().expect("reached from the ignored block");
        let ChainRoot::Ignored { block } = chain.root else { panic!("root: {:?}", chain.root) };
        assert_eq!(block.start, h.addr(keeper));
        assert_eq!(chain_ids(&h, &chain), vec![(a, Some(8)), (t, None)]);
    }

    #[test]
    fn a_block_a_root_points_to_is_a_chain_of_one() {
        let mut h = FakeHeap::new();
        let [r, t] = [0; 2].map(|_| h.add(2));
        h.link(r, 1, t, 8);
        let roots = roots_over(&h, &[(r, 2)]);
        let chain = shortest_chain(&h, &roots, t).unwrap().unwrap();
        assert_eq!(chain_ids(&h, &chain), vec![(t, None)]);
        assert_eq!(chain.root, ChainRoot::Range { range: roots[0], word: h.addr(r) + 8 });
    }

    #[test]
    fn a_long_chain_does_not_recurse() {
        let mut h = FakeHeap::new();
        let ids: Vec<u32> = (0..20_000).map(|_| h.add(1)).collect();
        for w in ids.windows(2) {
            h.link(w[0], 0, w[1], 0);
        }
        let r = h.add(1);
        h.link(r, 0, ids[0], 0);
        let roots = roots_over(&h, &[(r, 1)]);
        let chain = shortest_chain(&h, &roots, *ids.last().unwrap()).unwrap().unwrap();
        assert_eq!(chain.links.len(), ids.len());
        assert!(chain.links.iter().rev().skip(1).all(|l| l.next_word == Some(l.block.start)));
    }
}
