//! The recorder: per allocation stack counters, the heap's live totals and peak, and the
//! timeline, updated on every tracked allocation and free while profiling is on.
//!
//! # Design
//! One [`SpinLock`] guards all of it: the peak snapshot ("what each site held when the
//! heap peaked") needs a consistent view of every site at one moment, which per-thread
//! counters cannot give without a global step anyway. Events reach it in per-thread
//! batches (`events`), so the lock is taken once per 256 events of a thread; applying an
//! event is a few dozen plain stores (BENCHMARKS.md measures the cost). Profiling is
//! opt-in (`profile=PATH`); when it is off the allocation path pays one relaxed load of
//! [`STATE`] and a branch.
//!
//! The peak snapshot is lazy (O(1) per event): a global peak sequence number counts new
//! peaks; a site remembers the sequence of its last change. When a site changes and a
//! peak happened since its previous change, its live counts before this change are what
//! it held at that peak. At a snapshot, sites unchanged since the last peak hold now what
//! they held then.
//!
//! Time is read with `clock_gettime` every [`CLOCK_EVERY`] events (a vDSO call costs about
//! as much as an allocation), so times, lifetimes and the timeline have that resolution;
//! the time of a new peak is read at most [`PEAK_CLOCK_EVERY`] events after the last
//! reading.
//!
//! # Invariants (under the lock)
//! - `sites[i]` counts the blocks whose metadata carry stack id `i` (0: no stack).
//! - Sums over sites equal the totals; `live <= total`; `peak_* <= max_live_*`. Live
//!   counts may be negative for a while (a free applied before its allocation, batches
//!   of two threads); snapshots clamp them and keep the profile's invariants.
//! - Nothing here allocates: sites live in an [`MmapVec`], the timeline in a fixed array.
//!   So it is a leaf lock: held, it never waits for another lock (`fork` takes it last).

use super::events::{Event, Kind, Sink};
use super::timeline::Timeline;
use crate::os::MmapVec;
use crate::sync::{Isolated, SpinLock};
use core::sync::atomic::{AtomicU8, Ordering};

/// Profiling off.
pub(crate) const OFF: u8 = 0;
/// Profiling on.
pub(crate) const ON: u8 = 1;
/// Profiling on, and a signal asked for a dump at the next allocation.
pub(crate) const DUMP_PENDING: u8 = 2;

/// [`OFF`], [`ON`] or [`DUMP_PENDING`]; read (Relaxed) on every allocation and free.
#[used]
pub(crate) static STATE: Isolated<AtomicU8> = Isolated(AtomicU8::new(OFF));

/// Events between two readings of the clock.
pub(crate) const CLOCK_EVERY: u32 = 32;

/// Events between two readings of the clock at new peaks.
pub(crate) const PEAK_CLOCK_EVERY: u32 = 4;

/// Whether allocations are being counted.
#[inline(always)]
pub(crate) fn active() -> bool {
    STATE.load(Ordering::Relaxed) != OFF
}

/// One site's counters (see the profile model for their meanings).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SiteCounters {
    pub(crate) total_blocks: u64,
    pub(crate) total_bytes: u64,
    /// Live counts are signed: events reach the recorder in per-thread batches, so the
    /// free of a block made on another thread may come before its allocation.
    pub(crate) live_blocks: i64,
    pub(crate) live_bytes: i64,
    pub(crate) max_live_bytes: i64,
    pub(crate) max_live_blocks: i64,
    pub(crate) peak_blocks: i64,
    pub(crate) peak_bytes: i64,
    /// The peak sequence number at the last change.
    pub(crate) peak_seq: u64,
    /// Lifetimes summed up to `last_us`.
    pub(crate) lifetime_us: u64,
    /// When the live counts last changed.
    pub(crate) last_us: u64,
}

impl SiteCounters {
    /// Brings the lazy fields up to `now` before a change: lifetimes, and the counts at
    /// the latest peak if one happened since the last change.
    #[inline]
    fn settle(&mut self, now_us: u64, peak_seq: u64) {
        // The clock is read every `CLOCK_EVERY` events: most events of a busy site find
        // it unchanged, and skip the multiply and the two stores (a chain through memory
        // from one event of the site to the next).
        if now_us != self.last_us {
            self.lifetime_us = self
                .lifetime_us
                .saturating_add((self.live_blocks.max(0) as u64).saturating_mul(now_us.saturating_sub(self.last_us)));
            self.last_us = now_us;
        }
        if self.peak_seq != peak_seq {
            self.peak_seq = peak_seq;
            self.peak_blocks = self.live_blocks;
            self.peak_bytes = self.live_bytes;
        }
    }

    /// The counters as of `now`, the lazy fields resolved (for a snapshot).
    pub(crate) fn settled(mut self, now_us: u64, peak_seq: u64) -> Self {
        self.settle(now_us, peak_seq);
        self
    }
}

/// Everything the lock guards.
///
/// In this order (`repr(C)`): the live counts apart, so that the compiler does not merge
/// a free's two updates into one 16-byte load and store. The allocation before it wrote
/// them with two 8-byte stores, which a 16-byte load cannot take from the store buffer: it
/// waited for them to reach the cache, a third of the time `apply` took on small pairs
/// (`perf annotate`).
#[repr(C)]
pub(crate) struct Recorder {
    pub(crate) sites: MmapVec<SiteCounters>,
    pub(crate) live_blocks: i64,
    pub(crate) peak_blocks: i64,
    pub(crate) live_bytes: i64,
    pub(crate) peak_bytes: i64,
    pub(crate) peak_us: u64,
    pub(crate) peak_seq: u64,
    /// The clock as last read, in microseconds since [`Recorder::start_ns`].
    pub(crate) now_us: u64,
    pub(crate) start_ns: u64,
    /// Events until the next clock reading.
    until_clock: u32,
    pub(crate) timeline: Timeline,
}

/// The recorder. Registered as the allocator's own memory (never a root of the check).
pub(crate) static RECORDER: SpinLock<Recorder> = SpinLock::new(Recorder::new());

/// Monotonic nanoseconds (the clock of the profile's timeline).
pub(crate) use crate::platform::monotonic_ns;

impl Recorder {
    const fn new() -> Self {
        Self {
            sites: MmapVec::new(),
            live_blocks: 0,
            live_bytes: 0,
            peak_blocks: 0,
            peak_bytes: 0,
            peak_us: 0,
            peak_seq: 0,
            now_us: 0,
            start_ns: 0,
            until_clock: 0,
            timeline: Timeline::new(),
        }
    }

    /// The fields a batch of events works on in registers.
    #[inline(always)]
    fn scalars(&self) -> Scalars {
        Scalars {
            live_blocks: self.live_blocks,
            peak_blocks: self.peak_blocks,
            live_bytes: self.live_bytes,
            peak_bytes: self.peak_bytes,
            peak_us: self.peak_us,
            peak_seq: self.peak_seq,
            now_us: self.now_us,
            start_ns: self.start_ns,
            until_clock: self.until_clock,
        }
    }

    /// Runs `f` on a [`Batch`] of this recorder: its scalars copied out, and written back
    /// after.
    #[inline(always)]
    fn batch<R>(&mut self, f: impl FnOnce(&mut Batch<'_>) -> R) -> R {
        let mut b = Batch { s: self.scalars(), sites: &mut self.sites, timeline: &mut self.timeline };
        let r = f(&mut b);
        let s = b.s;
        (self.live_blocks, self.peak_blocks, self.live_bytes, self.peak_bytes) =
            (s.live_blocks, s.peak_blocks, s.live_bytes, s.peak_bytes);
        (self.peak_us, self.peak_seq, self.now_us, self.start_ns, self.until_clock) =
            (s.peak_us, s.peak_seq, s.now_us, s.start_ns, s.until_clock);
        r
    }

    /// Reads the clock now.
    pub(crate) fn refresh_clock(&mut self) {
        self.batch(|b| b.refresh_clock());
    }

    /// Counts an allocation of `size` bytes from `stack` (see [`Batch::on_alloc`]).
    #[cfg(test)]
    pub(crate) fn on_alloc(&mut self, stack: u32, size: u64) {
        self.batch(|b| b.on_alloc(stack, size));
    }

    /// See [`Batch::on_alloc_then_free`].
    #[cfg(test)]
    pub(crate) fn on_alloc_then_free(&mut self, stack: u32, bytes: u64, times: u8, largest: u64) {
        self.batch(|b| b.on_alloc_then_free(stack, bytes, times, largest));
    }

    /// Counts the free of a block of `size` bytes from `stack`.
    #[cfg(test)]
    pub(crate) fn on_free(&mut self, stack: u32, size: u64) {
        self.batch(|b| b.on_free(stack, size));
    }

    /// Applies `events`, in order, as one [`Batch`]: applied through the lock guard one
    /// by one, each event read the totals, the clock and the peak's fields from memory
    /// and wrote them back (the compiler could not tell that the sites' counters,
    /// written between, are not those fields): 13 instructions a larson operation (an
    /// allocation and a free) with the profile, 2 a random working set's.
    #[inline(never)]
    fn apply_events(&mut self, events: &[Event]) {
        self.batch(|b| {
            for e in events {
                match e.kind {
                    Kind::Alloc => b.on_alloc(e.stack, e.size),
                    Kind::Free => b.on_free(e.stack, e.size),
                    Kind::AllocThenFree => b.on_alloc_then_free(e.stack, e.size, e.times, e.largest_block()),
                }
            }
        });
    }
}

/// [`Recorder`]'s scalar fields, as a [`Batch`] works on them.
#[derive(Clone, Copy)]
struct Scalars {
    live_blocks: i64,
    peak_blocks: i64,
    live_bytes: i64,
    peak_bytes: i64,
    peak_us: u64,
    peak_seq: u64,
    now_us: u64,
    start_ns: u64,
    until_clock: u32,
}

/// Events being applied: the recorder's scalars by value (a local the compiler keeps in
/// registers), its sites and timeline borrowed.
struct Batch<'a> {
    s: Scalars,
    sites: &'a mut MmapVec<SiteCounters>,
    timeline: &'a mut Timeline,
}

impl Batch<'_> {
    /// Reads the clock now.
    fn refresh_clock(&mut self) {
        self.s.now_us = monotonic_ns().saturating_sub(self.s.start_ns) / 1000;
        self.s.until_clock = CLOCK_EVERY;
    }

    #[inline]
    fn tick(&mut self) {
        if self.s.until_clock == 0 {
            self.refresh_clock();
            self.timeline.offer(self.s.now_us, self.s.live_bytes.max(0) as u64, self.s.live_blocks.max(0) as u64);
        }
        self.s.until_clock -= 1;
    }

    /// The counters of `stack`; site 0 when the table cannot grow (out of memory).
    #[inline]
    fn site(&mut self, stack: u32) -> Option<&mut SiteCounters> {
        let i = stack as usize;
        if i >= self.sites.len() {
            let grow_to = (i + 1).next_power_of_two().max(1024);
            if !self.sites.resize(grow_to, SiteCounters::default()) {
                return self.sites.as_mut_slice().get_mut(0);
            }
        }
        self.sites.as_mut_slice().get_mut(i)
    }

    /// The counters of `stack`, brought up to the event being applied: the event's tick
    /// of the clock, then the site's lazy fields settled (`None` as [`Recorder::site`]).
    #[inline(always)]
    fn settled_site(&mut self, stack: u32) -> Option<&mut SiteCounters> {
        self.tick();
        let (now, seq) = (self.s.now_us, self.s.peak_seq);
        let site = self.site(stack)?;
        site.settle(now, seq);
        Some(site)
    }

    /// Counts an allocation of `size` bytes from `stack`. Always inlined, as
    /// [`Recorder::on_free`]: `apply` calls each twice, and left to itself the compiler
    /// made them calls.
    #[inline(always)]
    fn on_alloc(&mut self, stack: u32, size: u64) {
        let Some(site) = self.settled_site(stack) else { return };
        site.total_blocks += 1;
        site.total_bytes += size;
        site.live_blocks += 1;
        site.live_bytes += size as i64;
        if site.live_bytes > site.max_live_bytes {
            site.max_live_bytes = site.live_bytes;
            site.max_live_blocks = site.live_blocks;
        }
        let (site_blocks, site_bytes) = (site.live_blocks, site.live_bytes);
        self.s.live_blocks += 1;
        self.s.live_bytes += size as i64;
        if self.s.live_bytes > self.s.peak_bytes {
            if CLOCK_EVERY.saturating_sub(self.s.until_clock) >= PEAK_CLOCK_EVERY {
                // A fresher time for the peak, at most every few events while the heap
                // grows (every allocation is then a new peak).
                self.refresh_clock();
            }
            self.s.peak_seq += 1;
            self.s.peak_bytes = self.s.live_bytes;
            self.s.peak_blocks = self.s.live_blocks;
            self.s.peak_us = self.s.now_us;
            let seq = self.s.peak_seq;
            if let Some(site) = self.site(stack) {
                site.peak_seq = seq;
                site.peak_blocks = site_blocks;
                site.peak_bytes = site_bytes;
            }
        }
    }

    /// [`Recorder::on_alloc`] then [`Recorder::on_free`] of each of `times` blocks from
    /// `stack`, `bytes` in all, the largest `largest` bytes (an
    /// [`Kind::AllocThenFree`] event): the same counts, with one site lookup. When the
    /// largest block's allocation makes a new peak, that block's two in full (the peak's
    /// snapshot is taken at the allocation; no other block of the group reaches higher,
    /// since each is freed before the next is made), then the others' totals. The
    /// blocks' lifetimes count as none (all at one clock reading, where separate events
    /// could have been clock ticks apart). Against the blocks applied one by one, only
    /// the peak's sequence number may differ (one increment where growing sizes made
    /// several peaks in a row, all at one reading of the clock), which no output shows.
    #[inline(always)]
    fn on_alloc_then_free(&mut self, stack: u32, bytes: u64, times: u8, largest: u64) {
        debug_assert!(times >= 1 && largest <= bytes);
        let others = u64::from(times) - 1;
        if self.s.live_bytes + largest as i64 > self.s.peak_bytes {
            self.on_alloc(stack, largest);
            self.on_free(stack, largest);
            if others > 0 {
                // Settled by `on_free` just now.
                if let Some(site) = self.site(stack) {
                    site.total_blocks += others;
                    site.total_bytes += bytes - largest;
                }
            }
            return;
        }
        let Some(site) = self.settled_site(stack) else { return };
        site.total_blocks += others + 1;
        site.total_bytes += bytes;
        if site.live_bytes + largest as i64 > site.max_live_bytes {
            site.max_live_bytes = site.live_bytes + largest as i64;
            site.max_live_blocks = site.live_blocks + 1;
        }
    }

    /// Counts the free of a block of `size` bytes from `stack`.
    #[inline(always)]
    fn on_free(&mut self, stack: u32, size: u64) {
        let Some(site) = self.settled_site(stack) else { return };
        site.live_blocks -= 1;
        site.live_bytes -= size as i64;
        self.s.live_blocks -= 1;
        self.s.live_bytes -= size as i64;
    }
}

/// Counts an allocation, into `sink` (its heap's). Called by the heap for tracked
/// blocks, after the block's metadata was written, while profiling is [`active`].
/// Inlined, as [`record_free`]: the paths that call them make calls anyway (the stack's
/// capture, the profiled free's own call), and the event's push is a few loads and stores
/// (a call of its own cost 22 instructions a small allocation and free).
#[inline(always)]
pub(crate) fn record_alloc(sink: Sink, stack: u32, size: usize) {
    sink.push(Event::once(stack, Kind::Alloc, size as u64));
}

/// Counts a free, into `sink` (the freeing heap's, [`Sink::NONE`] when it has none of
/// its own). Called by the heap before the block is handed back.
#[inline(always)]
pub(crate) fn record_free(sink: Sink, stack: u32, size: usize) {
    sink.push(Event::once(stack, Kind::Free, size as u64));
}

/// Counts an in-place resize: the free of the old size and an allocation of the new.
#[inline(never)]
pub(crate) fn record_resize(sink: Sink, stack: u32, old: usize, new: usize) {
    sink.push(Event::once(stack, Kind::Free, old as u64));
    sink.push(Event::once(stack, Kind::Alloc, new as u64));
}

/// Applies `events`, in order, under the lock; then writes a profile a signal asked for.
pub(crate) fn apply(events: &[Event]) {
    RECORDER.lock().apply_events(events);
    if STATE.load(Ordering::Relaxed) == DUMP_PENDING {
        super::signal::dump_if_pending();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::events;

    fn fresh() -> Recorder {
        let mut r = Recorder::new();
        r.start_ns = monotonic_ns();
        r
    }

    fn site(r: &Recorder, i: usize) -> SiteCounters {
        r.sites.as_slice()[i].settled(r.now_us, r.peak_seq)
    }

    #[test]
    fn totals_live_and_max_per_site() {
        let mut r = fresh();
        r.on_alloc(1, 100);
        r.on_alloc(1, 50);
        r.on_alloc(2, 10);
        r.on_free(1, 100);
        let s1 = site(&r, 1);
        assert_eq!((s1.total_blocks, s1.total_bytes, s1.live_blocks, s1.live_bytes), (2, 150, 1, 50));
        assert_eq!((s1.max_live_blocks, s1.max_live_bytes), (2, 150));
        let totals = r.sites.iter().fold((0, 0), |(n, b), s| (n + s.total_blocks, b + s.total_bytes));
        assert_eq!((totals.0, totals.1, r.live_blocks, r.live_bytes), (3, 160, 2, 60));
        assert_eq!((r.peak_blocks, r.peak_bytes), (3, 160));
    }

    #[test]
    fn the_peak_snapshot_holds_what_each_site_had_at_the_peak() {
        let mut r = fresh();
        r.on_alloc(1, 100); // heap 100 (peak)
        r.on_alloc(2, 200); // heap 300 (peak)
        r.on_free(1, 100); // heap 200: site 1 held 100 at the peak
        r.on_alloc(3, 50); // heap 250: below the peak, site 3 held nothing then
        let (s1, s2, s3) = (site(&r, 1), site(&r, 2), site(&r, 3));
        assert_eq!((s1.peak_blocks, s1.peak_bytes), (1, 100));
        assert_eq!((s2.peak_blocks, s2.peak_bytes), (1, 200));
        assert_eq!((s3.peak_blocks, s3.peak_bytes), (0, 0));
        assert_eq!(r.peak_bytes, 300);
        // A new peak moves every site's snapshot: site 1 now holds 0, site 3 holds 50.
        r.on_alloc(3, 100); // heap 350 (peak)
        let (s1, s2, s3) = (site(&r, 1), site(&r, 2), site(&r, 3));
        assert_eq!((s1.peak_bytes, s2.peak_bytes, s3.peak_bytes), (0, 200, 150));
        assert_eq!(s1.peak_bytes + s2.peak_bytes + s3.peak_bytes, r.peak_bytes);
    }

    #[test]
    fn an_alloc_then_free_event_counts_what_its_two_events_count() {
        // Random events over 8 sites, a third of them runs of 1 to 80 short-lived blocks
        // of one stack and random sizes (sometimes past what a group keeps), each freed
        // at once; one recorder applies every event, the other the short-lived blocks
        // grouped as a thread's buffer groups them (at most `MAX_TIMES` to an event, the
        // largest kept). Every count but the lifetimes and the peak's sequence number
        // must agree.
        let (mut each, mut merged) = (fresh(), fresh());
        let mut live: Vec<(u32, u64)> = Vec::new();
        let mut x = 99u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (stack, size) = ((x >> 8) as u32 % 8, (x >> 16) % 500 + 1);
            match x % 3 {
                0 => {
                    let run = (x >> 32) % 80 + 1;
                    let mut group: Option<(u64, u8, u64)> = None;
                    let mut y = x;
                    for _ in 0..run {
                        y ^= y << 13;
                        y ^= y >> 7;
                        y ^= y << 17;
                        let size = if y.is_multiple_of(50) { 70_000 } else { (y >> 20) % 600 + 1 };
                        each.on_alloc(stack, size);
                        each.on_free(stack, size);
                        let groupable = size < u64::from(events::UNGROUPED);
                        group = match group {
                            Some((bytes, times, largest))
                                if times < events::MAX_TIMES && groupable && largest < u64::from(events::UNGROUPED) =>
                            {
                                Some((bytes + size, times + 1, largest.max(size)))
                            }
                            Some((bytes, times, largest)) => {
                                merged.on_alloc_then_free(stack, bytes, times, largest);
                                Some((size, 1, size))
                            }
                            None => Some((size, 1, size)),
                        };
                    }
                    if let Some((bytes, times, largest)) = group {
                        merged.on_alloc_then_free(stack, bytes, times, largest);
                    }
                }
                1 => {
                    each.on_alloc(stack, size);
                    merged.on_alloc(stack, size);
                    live.push((stack, size));
                }
                _ if !live.is_empty() => {
                    let (stack, size) = live.swap_remove((x >> 24) as usize % live.len());
                    each.on_free(stack, size);
                    merged.on_free(stack, size);
                }
                _ => {}
            }
        }
        let counts = |r: &Recorder| (r.live_blocks, r.live_bytes, r.peak_blocks, r.peak_bytes);
        assert_eq!(counts(&each), counts(&merged));
        for i in 0..8 {
            let (a, b) = (site(&each, i), site(&merged, i));
            let fields = |s: SiteCounters| {
                (s.total_blocks, s.total_bytes, s.live_blocks, s.live_bytes, s.max_live_bytes, s.max_live_blocks)
            };
            assert_eq!(fields(a), fields(b), "site {i}");
            assert_eq!((a.peak_blocks, a.peak_bytes), (b.peak_blocks, b.peak_bytes), "site {i}");
        }
    }

    #[test]
    fn sums_stay_consistent_under_random_events() {
        // A deterministic pseudo-random mix of allocations and frees over 16 sites,
        // checked against a brute-force model that snapshots every site at each peak.
        let mut r = fresh();
        let mut live: Vec<(u32, u64)> = Vec::new();
        let (mut x, mut model_peak, mut model_at_peak) = (12345u64, 0u64, vec![0u64; 16]);
        let mut model_live = vec![0u64; 16];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x % 3 != 0 || live.is_empty() {
                let (stack, size) = ((x >> 8) as u32 % 16, (x >> 16) % 1000 + 1);
                r.on_alloc(stack, size);
                live.push((stack, size));
                model_live[stack as usize] += size;
            } else {
                let (stack, size) = live.swap_remove((x >> 8) as usize % live.len());
                r.on_free(stack, size);
                model_live[stack as usize] -= size;
            }
            let heap: u64 = model_live.iter().sum();
            if heap > model_peak {
                model_peak = heap;
                model_at_peak.clone_from(&model_live);
            }
        }
        assert_eq!(r.peak_bytes as u64, model_peak);
        for (i, &want) in model_at_peak.iter().enumerate() {
            let s = site(&r, i);
            assert_eq!(s.peak_bytes as u64, want, "site {i}");
            assert_eq!(s.live_bytes as u64, model_live[i], "site {i}");
            assert!(s.peak_bytes <= s.max_live_bytes && s.max_live_bytes as u64 <= s.total_bytes);
        }
    }

    #[test]
    fn lifetimes_add_up_live_time() {
        let mut r = fresh();
        r.now_us = 1000;
        r.until_clock = 100; // no clock reading during the test: time is set by hand
        r.on_alloc(1, 8);
        r.on_alloc(1, 8);
        r.now_us = 1500;
        r.on_free(1, 8);
        r.now_us = 2000;
        // Two blocks for 500 µs, then one for 500 µs.
        assert_eq!(site(&r, 1).lifetime_us, 1500);
    }

    #[test]
    fn a_free_applied_before_its_allocation_goes_negative_then_balances() {
        // Thread B's batch (the free) reaches the recorder before thread A's (the alloc).
        let mut r = fresh();
        r.on_free(2, 10);
        assert_eq!((r.live_blocks, r.live_bytes), (-1, -10));
        assert_eq!(site(&r, 2).live_blocks, -1);
        r.on_alloc(2, 10);
        assert_eq!((r.live_blocks, r.live_bytes), (0, 0));
        let s = site(&r, 2);
        assert_eq!((s.total_blocks, s.live_blocks, s.live_bytes), (1, 0, 0));
    }
}
