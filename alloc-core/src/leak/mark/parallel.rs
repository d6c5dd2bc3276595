//! The flood fill on two threads: the one that stopped the world and the mark helper.
//!
//! # What it owns
//! [`fill_with_helper`]: the fill shared with the helper thread (`leak::helper`) when one
//! waits idle, and the work sharing between the two: a pool of queued blocks ([`Share`])
//! that a worker whose queue ran dry takes from and a busy worker gives half its queue to
//! when the other asks.
//!
//! # Why it is exact
//! The workers share the mark bitmap: a block is marked by an atomic `or`
//! (`Marks::set_shared`), so exactly one worker sees its bit clear and queues it. Every
//! queued block is in one worker's queue or in the pool until scanned; a worker counts as
//! busy from the moment it takes blocks from the pool (under its lock) until its queue is
//! empty again, and the fill ends when, under the lock, the pool is empty and no worker is
//! busy: then every marked block was scanned, as in the fill on one thread. What each
//! worker found (counts, the largest block reached) is added up at the end. The heap view
//! is only read while the world is stopped: both threads may call it.
//!
//! # When
//! Only for heaps of at least [`MIN_BLOCKS`] block slots (the hand-over costs tens of
//! microseconds: a futex wake and the helper's first look at the pool), and only when the
//! helper is idle; otherwise the thread that stopped the world fills alone. Both workers
//! take root ranges from the same [`RootQueue`].

use super::{MarkStats, Marker, Marks, RootQueue, SharedMarks};
use crate::leak::view::HeapView;
use crate::os::MmapVec;
use crate::sync::SpinLock;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Heaps with fewer block slots are filled by one thread.
const MIN_BLOCKS: usize = 1 << 16;
/// Ranges the thread that stopped the world scans alone first, to measure them.
pub(super) const PROBE_RANGES: usize = 4096;
/// Words a range must have on average, over that first stretch, for the fill to be
/// shared (128 bytes: larger blocks' scans repay the atomic `or` of their marks).
pub(super) const MIN_WORDS_PER_RANGE: u64 = 16;
/// Most blocks a worker gives away at once.
const MAX_GIVE: usize = 1 << 12;

/// Whether a heap of `slots` block slots is worth a second thread.
pub(super) fn worth_it(slots: usize) -> bool {
    slots >= MIN_BLOCKS
}

/// The blocks queued for whichever worker asks, and who is busy.
struct Pool {
    ranges: MmapVec<(usize, usize)>,
    /// Workers holding blocks to scan (their queues non-empty or being scanned).
    busy: u32,
    /// The fill is over: every worker returns.
    done: bool,
}

/// What the workers share besides the marks.
pub(crate) struct Share {
    pool: SpinLock<Pool>,
    /// A worker waits for blocks and the pool is empty: the other should give.
    asked: AtomicBool,
}

impl Share {
    fn new(busy: u32) -> Self {
        Share { pool: SpinLock::new(Pool { ranges: MmapVec::new(), busy, done: false }), asked: AtomicBool::new(false) }
    }

    /// Gives half of `queue` (at most [`MAX_GIVE`] blocks) to the pool when a worker
    /// asked for work. One relaxed load when nobody asked.
    #[inline(always)]
    pub(crate) fn give_if_asked(&self, queue: &mut MmapVec<(usize, usize)>) {
        if !self.asked.load(Ordering::Relaxed) || queue.len() < 2 {
            return;
        }
        let mut pool = self.pool.lock();
        for _ in 0..(queue.len() / 2).min(MAX_GIVE) {
            let Some(r) = queue.pop() else { break };
            if !pool.ranges.push(r) {
                // No room in the pool: keep it (pushed back, where it was).
                let _ = queue.push(r);
                break;
            }
        }
        self.asked.store(false, Ordering::Relaxed);
    }
}

impl<'v, 'm, V: HeapView> Marker<'v, V, SharedMarks<'m>> {
    /// A worker of a fill marking in `marks`, with an empty queue.
    fn worker(view: &'v V, marks: &'m Marks, scan_up_to_generation: u8) -> Self {
        Marker {
            view,
            marks: SharedMarks(marks),
            frontier: MmapVec::new(),
            stats: MarkStats::default(),
            lost: false,
            scan_up_to_generation,
            roots_taken: (0, 0),
        }
    }
}

/// One worker: scans its queue and the roots, then takes from the pool, until the fill
/// is over.
fn work<V: HeapView>(m: &mut Marker<'_, V, SharedMarks<'_>>, share: &Share, roots: &RootQueue<'_>) {
    loop {
        m.fill(Some(share), roots, usize::MAX);
        let mut pool = share.pool.lock();
        debug_assert!(pool.busy > 0);
        pool.busy -= 1;
        let mut round = 0u32;
        loop {
            if pool.done {
                return;
            }
            if !pool.ranges.is_empty() {
                let take = pool.ranges.len().div_ceil(2).min(MAX_GIVE);
                for _ in 0..take {
                    let Some(r) = pool.ranges.pop() else { break };
                    m.lost |= !m.frontier.push(r);
                }
                pool.busy += 1;
                break;
            }
            if pool.busy == 0 {
                pool.done = true;
                return;
            }
            share.asked.store(true, Ordering::Relaxed);
            drop(pool);
            round += 1;
            if round < 64 {
                core::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
            pool = share.pool.lock();
        }
    }
}

/// What the helper needs to work on a fill: on the stack of the thread that stopped the
/// world, which waits for the helper to be done with it before returning.
struct Job<'a, V: HeapView> {
    view: &'a V,
    marks: &'a Marks,
    roots: &'a RootQueue<'a>,
    scan_up_to_generation: u8,
    share: Share,
    /// The helper's findings, written before it reports done.
    found: SpinLock<(MarkStats, bool)>,
}

/// The helper's side of a fill.
///
/// # Safety
/// - `job` points to a live `Job<V>` that outlives the call (the thread that stopped the
///   world waits for the helper before it drops the job), with every other thread of the
///   program stopped for the whole call, so the view is only read.
unsafe fn help<V: HeapView>(job: *const ()) {
    // SAFETY: this function's bullet: a live `Job<V>` for the whole call.
    let job = unsafe { &*(job as *const Job<'_, V>) };
    {
        let mut pool = job.share.pool.lock();
        if pool.done {
            return;
        }
        pool.busy += 1;
    }
    let mut m = Marker::worker(job.view, job.marks, job.scan_up_to_generation);
    work(&mut m, &job.share, job.roots);
    *job.found.lock() = (m.stats, m.lost);
}

/// Fills the heap view has been shared with the helper in, since the start.
static SHARED_FILLS: AtomicU64 = AtomicU64::new(0);

/// Fills shared with the helper so far (`stats()`).
pub(crate) fn shared_fills() -> u64 {
    SHARED_FILLS.load(Ordering::Relaxed)
}

/// The fill of `marker`'s queue on this thread and the helper's; false, with nothing
/// done, when the helper is not idle.
pub(super) fn fill_with_helper<V: HeapView>(marker: &mut Marker<'_, V>, roots: &RootQueue<'_>) -> bool {
    let Some(helper) = crate::leak::helper::idle() else { return false };
    // SAFETY: `assist`'s bullet is `fill_shared`'s promise about `run(arg)`.
    let _ = fill_shared(marker, roots, |run, arg, mine| unsafe { helper.assist(run, arg, mine) });
    SHARED_FILLS.fetch_add(1, Ordering::Relaxed);
    true
}

/// The fill of `marker`'s queue by two workers: this thread, and whoever `assist` has run
/// `run(arg)` while it runs `mine` (the helper; in tests, a thread of their own).
/// Promise: `run(arg)` may be called on any thread until `assist` returns, provided
/// `assist` returns only once that call returned or was never made; every other thread
/// of the program is stopped meanwhile (the callers of the fill run inside
/// `with_world_stopped`, or in tests own the view alone). Returns how many words the
/// other worker scanned.
fn fill_shared<V: HeapView>(
    marker: &mut Marker<'_, V>,
    roots: &RootQueue<'_>,
    assist: impl FnOnce(unsafe fn(*const ()), *const (), &mut dyn FnMut()),
) -> u64 {
    let Marker { view, marks, frontier, stats, lost, scan_up_to_generation, roots_taken } = marker;
    let job = Job {
        view: *view,
        marks: &*marks,
        roots,
        scan_up_to_generation: *scan_up_to_generation,
        share: Share::new(1),
        found: SpinLock::new((MarkStats::default(), false)),
    };
    // This thread's worker goes on with the queue and the root batch it had.
    let mut mine = Marker::worker(*view, &*marks, *scan_up_to_generation);
    mine.frontier = core::mem::take(frontier);
    mine.roots_taken = *roots_taken;
    // `help::<V>`'s bullet: `job` lives on this frame until `assist` returned, which it
    // does only once the other worker is done with it (or never started).
    assist(help::<V>, &job as *const Job<'_, V> as *const (), &mut || work(&mut mine, &job.share, roots));
    let (theirs, their_loss) = *job.found.lock();
    for s in [mine.stats, theirs] {
        stats.add(&s);
    }
    *lost |= mine.lost | their_loss;
    *frontier = mine.frontier;
    *roots_taken = mine.roots_taken;
    theirs.words_scanned
}

#[cfg(test)]
mod tests;
