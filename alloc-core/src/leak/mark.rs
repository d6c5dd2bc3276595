//! Marking: flood fill from the roots through every reachable block, word by word.
//!
//! # Algorithm
//! Every 8-byte-aligned word of a root range is a candidate pointer. If it points into a
//! live block — anywhere inside it: interior pointers count, as in LeakSanitizer, which
//! also keeps blocks behind tagged pointers (low bits set) and hashbrown's control
//! pointer reachable — and the block is not marked yet, it is marked and pushed on an
//! explicit stack (an `MmapVec`: no recursion, no allocation). Popped blocks have their
//! contents scanned the same way. Ignored blocks are roots: marked and scanned first.
//!
//! Tagged pointers need no special case: a pointer with low bits set (an alignment tag,
//! a packed discriminant) still points inside its block, so it counts as an interior
//! pointer. A pointer one past the end does not count (it may be the next block's start).
//!
//! # Who calls it
//! `leak::analyze` and the sweeps' analysis, with the world stopped: the mark bits and
//! the frontier are `MmapVec`s. If the frontier cannot grow (out of memory), `lost` is
//! set: a reachable block would go unscanned and its children look leaked, so the caller
//! then reports nothing. The fill takes the root ranges as it goes ([`RootQueue`]), and
//! the fill of a large heap may be shared with the mark helper thread (`parallel`,
//! `leak::helper`).

use super::roots::RootRange;
use super::view::{BlockDesc, HeapView, Walk};
use crate::os::MmapVec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

mod parallel;
pub(crate) use parallel::shared_fills;

/// Blocks the flood fill has prefetched ahead of the one it scans.
const PREFETCH_AHEAD: usize = 8;
/// How much of each block it prefetches: the lines the hardware's own prefetcher would
/// fetch only after the scan's first misses in the block (a working set of blocks of
/// 8 to 1024 bytes swept every 100 ms: 6% less time with 512 bytes than with the first
/// two lines; a heap of 53,000 blocks of 800 bytes checked 24.6 -> 18.5 ms).
const PREFETCH_BYTES: usize = 512;
/// Longest range one step of the flood fill scans; the rest of a larger block is queued
/// again under what that step found. A vector of ten million pointers was scanned whole
/// first, its ten million blocks queued (160 MB of queue) and scanned long after, out of
/// cache; a chunk at a time, the blocks each chunk finds are scanned while their lines
/// are fresh and the queue stays short (10M reachable boxes: the fill 194 -> 140 ms).
const CHUNK_BYTES: usize = 16 << 10;

/// A bitmap over block ids. Read with relaxed atomic loads and set either through
/// `&mut` (one marking thread) or with [`Marks::set_shared`] (the workers of a parallel
/// fill, which share it), never both at once.
pub(crate) struct Marks {
    bits: MmapVec<u64>,
}

impl Marks {
    /// A bitmap of `n` clear bits; `None` when out of memory.
    pub(crate) fn new(n: usize) -> Option<Self> {
        // Every page written now: the mark reads a word before it sets a bit in it, and a
        // page first read maps the shared zero page, faulting again (and flushing the TLB
        // of every CPU the process runs on) at the first write.
        Some(Marks { bits: MmapVec::zeroed_touched(n.div_ceil(64))? })
    }

    /// Word `w` of the bitmap, as an atomic.
    #[inline(always)]
    fn word(&self, w: usize) -> &AtomicU64 {
        assert!(w < self.bits.len());
        // SAFETY: `w` is in bounds (checked): the word lies in the vector's mapping, which
        // lives as long as `&self`, aligned for `u64` (so for `AtomicU64`) and
        // initialized. While `&self` lives no `&mut` access exists, so every concurrent
        // access to the word goes through this atomic view.
        unsafe { AtomicU64::from_ptr(self.bits.raw_ptr().add(w)) }
    }

    /// Sets bit `i`; returns whether it was clear.
    #[inline]
    pub(crate) fn set(&mut self, i: u32) -> bool {
        let (w, b) = ((i / 64) as usize, 1u64 << (i % 64));
        let bits = self.bits.as_mut_slice();
        let was_clear = bits[w] & b == 0;
        bits[w] |= b;
        was_clear
    }

    /// Sets bits `first + j` for each bit `j` set in `bits` (one or two words).
    #[inline]
    pub(crate) fn set_word(&mut self, first: usize, bits: u64) {
        let (w, s) = (first / 64, first % 64);
        let words = self.bits.as_mut_slice();
        words[w] |= bits << s;
        if s != 0 && bits >> (64 - s) != 0 {
            words[w + 1] |= bits >> (64 - s);
        }
    }

    /// Every bit set in `words` (bit `i` of word `w`: id `64 w + i`) set here too.
    pub(crate) fn set_all_of(&mut self, words: &[u64]) {
        for (m, &w) in self.bits.as_mut_slice().iter_mut().zip(words) {
            *m |= w;
        }
    }

    /// [`Marks::set`] for a bitmap other threads set bits in meanwhile: an atomic `or`.
    #[inline]
    pub(crate) fn set_shared(&self, i: u32) -> bool {
        let (w, b) = ((i / 64) as usize, 1u64 << (i % 64));
        let word = self.word(w);
        // Most blocks a scan finds were marked already: a load settles those.
        word.load(Ordering::Relaxed) & b == 0 && word.fetch_or(b, Ordering::Relaxed) & b == 0
    }

    #[inline]
    pub(crate) fn get(&self, i: u32) -> bool {
        self.word((i / 64) as usize).load(Ordering::Relaxed) & (1u64 << (i % 64)) != 0
    }
}

/// How a marker sets marks: in a bitmap of its own ([`Marks`]), or in one it shares with
/// the other workers of a parallel fill ([`SharedMarks`]).
pub(crate) trait MarkBits {
    fn bitmap(&self) -> &Marks;
    /// Sets bit `i`; returns whether it was clear (whether this marker marked the block).
    fn set(&mut self, i: u32) -> bool;
}

impl MarkBits for Marks {
    #[inline(always)]
    fn bitmap(&self) -> &Marks {
        self
    }

    #[inline(always)]
    fn set(&mut self, i: u32) -> bool {
        Marks::set(self, i)
    }
}

/// Marks shared by the workers of a parallel fill.
pub(crate) struct SharedMarks<'m>(pub(crate) &'m Marks);

impl MarkBits for SharedMarks<'_> {
    #[inline(always)]
    fn bitmap(&self) -> &Marks {
        self.0
    }

    #[inline(always)]
    fn set(&mut self, i: u32) -> bool {
        self.0.set_shared(i)
    }
}

/// What the flood fill found.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MarkStats {
    pub(crate) reachable_blocks: u64,
    pub(crate) reachable_bytes: u64,
    pub(crate) words_scanned: u64,
    /// The largest block marked so far: (address of the word, its value, block size).
    pub(crate) largest_hit: (usize, usize, u64),
}

impl MarkStats {
    /// Adds what another worker of the same fill found.
    pub(crate) fn add(&mut self, other: &MarkStats) {
        self.reachable_blocks += other.reachable_blocks;
        self.reachable_bytes += other.reachable_bytes;
        self.words_scanned += other.words_scanned;
        if other.largest_hit.2 > self.largest_hit.2 {
            self.largest_hit = other.largest_hit;
        }
    }
}

/// Root ranges the fill takes as its queue of blocks runs dry, from the root lists
/// themselves (not copied into the queue: a young sweep's roots, the written parts of old
/// blocks, can be a million ranges). The workers of a parallel fill share it, each taking
/// [`ROOT_BATCH`] ranges at a time (one atomic step per batch: a step per range moved the
/// counter's line between the cores some hundred thousand times a sweep).
pub(crate) struct RootQueue<'r> {
    parts: [&'r [RootRange]; 2],
    next: AtomicUsize,
}

/// Root ranges a marker takes from a [`RootQueue`] at once.
const ROOT_BATCH: usize = 64;

impl<'r> RootQueue<'r> {
    /// The ranges of `first`, then those of `then`.
    pub(crate) fn new(first: &'r [RootRange], then: &'r [RootRange]) -> Self {
        RootQueue { parts: [first, then], next: AtomicUsize::new(0) }
    }

    /// No root.
    pub(crate) fn empty() -> Self {
        Self::new(&[], &[])
    }

    fn len(&self) -> usize {
        self.parts[0].len() + self.parts[1].len()
    }

    /// Bytes of all the ranges.
    pub(crate) fn bytes(&self) -> u64 {
        self.parts.iter().flat_map(|p| p.iter()).map(|r| (r.end - r.start) as u64).sum()
    }

    /// Range `i` (below [`Self::len`]).
    fn range(&self, i: usize) -> (usize, usize) {
        let r = match i.checked_sub(self.parts[0].len()) {
            None => self.parts[0][i],
            Some(j) => self.parts[1][j],
        };
        (r.start, r.end)
    }

    /// The next batch of ranges not taken yet, as indexes `[from, to)`; empty when none
    /// is left.
    fn take_batch(&self) -> (usize, usize) {
        let len = self.len();
        if self.next.load(Ordering::Relaxed) >= len {
            return (len, len);
        }
        let from = self.next.fetch_add(ROOT_BATCH, Ordering::Relaxed).min(len);
        (from, (from + ROOT_BATCH).min(len))
    }
}

/// The marking state of one check (or of one worker of its parallel fill, with
/// [`SharedMarks`]).
pub(crate) struct Marker<'v, V: HeapView, M: MarkBits = Marks> {
    view: &'v V,
    pub(crate) marks: M,
    frontier: MmapVec<(usize, usize)>,
    pub(crate) stats: MarkStats,
    /// A reachable block could not be queued (out of memory): the marks are incomplete.
    pub(crate) lost: bool,
    /// Blocks of a higher generation are marked when found but their contents are not
    /// scanned (a young sweep's old blocks, whose written parts are roots of their own).
    pub(crate) scan_up_to_generation: u8,
    /// The root ranges taken from the fill's [`RootQueue`] and not scanned yet, as indexes.
    roots_taken: (usize, usize),
}

impl<'v, V: HeapView> Marker<'v, V> {
    pub(crate) fn new(view: &'v V) -> Option<Self> {
        let mut marks = Marks::new(view.block_slots())?;
        view.mark_empty_slots(&mut marks);
        Some(Marker {
            view,
            marks,
            frontier: MmapVec::new(),
            stats: MarkStats::default(),
            lost: false,
            scan_up_to_generation: u8::MAX,
            roots_taken: (0, 0),
        })
    }

    /// Marks the ignored blocks: they are roots.
    pub(crate) fn mark_ignored(&mut self) {
        if !self.view.may_hold_ignored() {
            return;
        }
        self.mark_roots(Walk::All, &|d| d.ignored, &|_| true);
    }

    /// Marks every block of `walk` that `is_root` chooses, as live without proof; queues
    /// those of them `scan` chooses, whose contents are then roots. (A young sweep takes
    /// the older generations as live; on its fallback path it also scans them all.) Not
    /// counted in the reachable totals.
    pub(crate) fn mark_roots(
        &mut self,
        walk: Walk,
        is_root: &dyn Fn(&BlockDesc) -> bool,
        scan: &dyn Fn(&BlockDesc) -> bool,
    ) {
        let view = self.view;
        view.walk(walk, &mut |id, desc| {
            if is_root(&desc) && self.marks.set(id) && scan(&desc) {
                self.lost |= !self.frontier.push((desc.start, desc.scan_end()));
            }
        });
    }

    /// Scans queued blocks until none is left (the fake heaps' tests: their roots are
    /// scanned first).
    #[cfg(test)]
    pub(crate) fn flood_fill(&mut self) {
        self.flood_fill_from(&RootQueue::empty());
    }

    /// Scans the root ranges of `roots` and every block they lead to: with the mark
    /// helper thread beside this one when it is there and the work is large enough to be
    /// worth it ([`parallel::worth_it`], [`parallel::MIN_WORDS_PER_RANGE`]), else alone.
    pub(crate) fn flood_fill_from(&mut self, roots: &RootQueue<'_>) {
        if !parallel::worth_it(self.view.block_slots()) {
            self.fill(None, roots, usize::MAX);
            return;
        }
        // Each block newly marked by two threads costs an atomic `or`, which small
        // blocks' scans do not repay (ten million boxes of 8 bytes: 208 ms on one thread,
        // 224 on two). A first stretch alone measures the ranges.
        let words = self.stats.words_scanned;
        if self.fill(None, roots, parallel::PROBE_RANGES) {
            return;
        }
        let per_range = (self.stats.words_scanned - words) / parallel::PROBE_RANGES as u64;
        if per_range >= parallel::MIN_WORDS_PER_RANGE && parallel::fill_with_helper(self, roots) {
            return;
        }
        self.fill(None, roots, usize::MAX);
    }
}

impl<'v, V: HeapView, M: MarkBits> Marker<'v, V, M> {
    /// Scans `[start, end)` for pointers to blocks; marks and queues what it finds.
    ///
    /// Four words at a time are first tested against the view's candidate range (four
    /// subtractions and compares, one branch): most words of most blocks are no heap
    /// address, and for them that test is the whole cost.
    pub(crate) fn scan_range(&mut self, start: usize, end: usize) {
        let (lo, hi) = self.view.candidate_range();
        let span = hi.wrapping_sub(lo);
        let maybe = |w: usize| w.wrapping_sub(lo) < span;
        let mut p = (start + 7) & !7;
        let first = p;
        while p + 32 <= end {
            // SAFETY: `[p, p + 32)` lies in the range, readable memory (a root mapping or
            // a live block), and `p` is 8-aligned; a volatile read because other code may
            // see it as typed data.
            let w = unsafe { core::ptr::read_volatile(p as *const [usize; 4]) };
            if maybe(w[0]) | maybe(w[1]) | maybe(w[2]) | maybe(w[3]) {
                for (k, &word) in w.iter().enumerate() {
                    self.visit(p + 8 * k, word);
                }
            }
            p += 32;
        }
        while p + 8 <= end {
            // SAFETY: as above, for one word.
            let word = unsafe { core::ptr::read_volatile(p as *const usize) };
            self.visit(p, word);
            p += 8;
        }
        self.stats.words_scanned += ((p - first) / 8) as u64;
    }

    /// One word found at `at`: marks and queues the block it points into, if any and not
    /// marked yet.
    #[inline(always)]
    fn visit(&mut self, at: usize, word: usize) {
        if let Some((id, desc)) = self.view.unmarked_block_containing(word, self.marks.bitmap()) {
            if self.marks.set(id) {
                self.stats.reachable_blocks += 1;
                self.stats.reachable_bytes += desc.size as u64;
                if desc.generation <= self.scan_up_to_generation {
                    self.lost |= !self.frontier.push((desc.start, desc.scan_end()));
                }
                if desc.size as u64 >= self.stats.largest_hit.2 {
                    self.stats.largest_hit = (at, word, desc.size as u64);
                }
            }
        }
    }

    /// The next root range this marker took, taking a batch when none is left.
    #[inline]
    fn next_root(&mut self, roots: &RootQueue<'_>) -> Option<(usize, usize)> {
        if self.roots_taken.0 == self.roots_taken.1 {
            self.roots_taken = roots.take_batch();
        }
        let (from, to) = self.roots_taken;
        (from < to).then(|| {
            self.roots_taken.0 += 1;
            roots.range(from)
        })
    }

    /// Scans queued blocks, and root ranges of `roots` when none is queued, until both
    /// are empty or `budget` ranges were scanned (those prefetched but not scanned then go
    /// back to the queue); returns whether both are empty. With `share`, gives half of its
    /// queue to the other workers whenever one of them waits for work.
    ///
    /// The blocks come off the stack into a ring of [`PREFETCH_AHEAD`], each prefetched as
    /// it enters (up to [`PREFETCH_BYTES`]) and scanned when it leaves: its lines are then
    /// on their way from memory while the blocks before it are scanned. (The reachable
    /// blocks of a large heap are scattered: scanning them in stack order, the mark spent
    /// most of its time waiting on each block's first load.) Blocks larger than
    /// [`CHUNK_BYTES`] are scanned a chunk at a time.
    fn fill(&mut self, share: Option<&parallel::Share>, roots: &RootQueue<'_>, budget: usize) -> bool {
        let mut ring = [(0usize, 0usize); PREFETCH_AHEAD];
        let (mut head, mut queued) = (0, 0);
        let mut scanned = 0;
        loop {
            if scanned == budget {
                for k in 0..queued {
                    self.lost |= !self.frontier.push(ring[(head + k) % PREFETCH_AHEAD]);
                }
                return false;
            }
            if let Some(share) = share {
                share.give_if_asked(&mut self.frontier);
            }
            while queued < PREFETCH_AHEAD {
                let Some((s, e)) = self.frontier.pop().or_else(|| self.next_root(roots)) else { break };
                let mut line = s;
                while line < e.min(s + PREFETCH_BYTES) {
                    crate::platform::prefetch(line);
                    line += 64;
                }
                ring[(head + queued) % PREFETCH_AHEAD] = (s, e);
                queued += 1;
            }
            if queued == 0 {
                return true;
            }
            scanned += 1;
            let (s, mut e) = ring[head];
            head = (head + 1) % PREFETCH_AHEAD;
            queued -= 1;
            if e - s > CHUNK_BYTES {
                self.lost |= !self.frontier.push((s + CHUNK_BYTES, e));
                e = s + CHUNK_BYTES;
            }
            self.scan_range(s, e);
        }
    }
}
