//! Allocation stacks: captured on every allocation, interned as 32-bit ids.
//!
//! # What it owns
//! [`capture`] (one `#[inline(never)]` call site, so the allocator's own frames at the top
//! of every stack are always the same and can be trimmed at report time), the per-thread
//! [`StackCache`] (with the cached unwinder's memo of rules and its set of exact
//! frame-record prefixes), the stack bounds each thread's heap keeps ([`StackBounds`]), the three
//! walkers ([`Walker`], in `unwind`), the cached unwinder's rules (`rules`: the lock-free
//! table; `cfi`: reading them from `.eh_frame` on a miss) and the depot (`depot`) that
//! interns return-address arrays into [`StackId`]s. The heap calls [`capture`] on every
//! tracked allocation; the leak check and the report read stacks back with [`frames`].
//! Frames stay raw return addresses: symbolization happens late, in `report`, never here.
//!
//! # Rules
//! [`capture`] never allocates from the thread's heap (past a replay, which allocates
//! nothing, it holds the reentrancy guard: the internal heap serves). The cached unwinder
//! takes a lock only on a miss (an address whose rule is not cached yet), never waits on
//! it for itself (a signal handler or a nested allocation interrupting its own miss) and
//! never longer than a bound for another thread; the DWARF walk may take the dynamic
//! loader's lock inside libgcc, as any unwind does.
//!
//! # Walkers
//! - The cached unwinder ([`Walker::Rules`], `fast_unwind=1`, the default): per frame, the
//!   rule of its return address from the rule cache (on a miss, from the object's
//!   `.eh_frame`), then the CFA, the return address and maybe `rbp`. Complete without frame
//!   pointers: as complete as the DWARF walk, which the tests compare it with. A walk whose
//!   frame-record prefix an earlier walk of the thread showed to be stepped by frame-record
//!   rules throughout (`prefix`) walks the frame records alone, at the frame-pointer walk's
//!   cost, and the rules from where the records stop (the C library's start code). A
//!   frame-record walk from where one of the thread's last walks started, over records
//!   that still hold what that walk read, is replayed (`record_memo`): the same loads,
//!   but from known addresses, not each waiting for the one before.
//! - The frame-pointer walk ([`Walker::FramePointers`]): the chain of `rbp` records alone;
//!   kept for comparisons and measurements (in code without frame pointers it skips
//!   frames).
//! - The DWARF walk ([`Walker::Dwarf`], `fast_unwind=0`): libgcc's unwinder, exact and
//!   about 100 times slower.
//!
//! The two fast walks fall back to the DWARF walk for a capture where they find fewer than
//! two frames (unknown bounds, a signal stack). The first capture by the cached unwinder
//! compares it with the DWARF walk once and warns if they disagree.
//!
//! # Cost
//! A walk hashes the return addresses as it goes; the per-thread cache maps that hash to
//! an id, so a stack seen before costs the walk, the hash and one cache probe, and only a
//! new stack reaches the depot. Measured on this machine (`cargo test -p alloc-core
//! --release --lib -- --ignored capture_cost --nocapture`, from a stack 40 frames deep,
//! stack cache hit, thread CPU time; BENCHMARKS.md, "Stacks without frame pointers", has
//! the builds without frame pointers and the history):
//!
//! | depth | frame-pointer walk | cached unwinder | DWARF walk |
//! | ---: | ---: | ---: | ---: |
//! | 8 | 14.1 ns | 10.4 ns | 1.2 us |
//! | 32 | 42.4 ns | 15.6 ns | 4.4 us |
//!
//! (Best of three runs on 2026-12-06, a day on which the frame-pointer walk, which did
//! not change, measured 10.2 and 38.5 ns days before.) The frame-pointer walk costs
//! about 1.2 ns a frame (the latency of one dependent load: each frame pointer is read
//! from the previous frame) plus 5 ns; the cached unwinder, replaying the records from
//! the same place (four a step, every record compared, one test at the end) and taking
//! the stack's id from the record memo, about 0.2 ns a frame (before the replay: 35.5
//! ns at depth 32). A depot lookup of a known stack (a cache miss) adds about 10 ns when
//! the depot is hot in the CPU cache; interning a new 20-frame stack costs about 200 to
//! 400 ns, most of it first touches of the depot's pages.

mod cfi;

pub(crate) use cfi::{
    forget_pid_after_fork as unwinder_forget_pid_after_fork, hold_for_fork as hold_unwinder_for_fork,
    release_after_fork as release_unwinder_after_fork,
};
mod depot;
mod prefix;
mod record_memo;
use record_memo::Replayed;
mod rules;
mod tail;
mod unwind;

/// Bytes of stack below the caller that [`scrub_below`] zeroes when the stack has room:
/// more than a leak check's deepest frames use (its phases keep tables of a few KiB on
/// the stack; symbolization goes deeper).
const SCRUB_BYTES: usize = 96 << 10;

/// Zeroes the stack below the caller's frame, down to [`SCRUB_BYTES`] (less when the
/// thread's stack, `bounds`, has less room; nothing when the bounds are unknown).
///
/// The leak check is conservative: any word on a live thread's stack that looks like a
/// pointer keeps a block reachable. A check walks every block of the process, so its
/// frames leave the addresses of everyone's blocks in this thread's stack; later frames
/// that do not write every slot (padding, unused spill slots) would show them to other
/// threads' checks as pointers, and hide their leaks. So each check clears what it used:
/// the first [`SCRUB_NEAR`] bytes whole, the rest page by page where the page is resident
/// (a page never touched holds nothing; writing it would commit it, a page fault each).
#[inline(never)]
pub(crate) fn scrub_below(bounds: StackBounds) {
    let here = crate::platform::frame_pointer_and_sp().1;
    if bounds.hi <= bounds.lo || here <= bounds.lo || here > bounds.hi {
        return;
    }
    // A page of margin for this function's own frame and the guard below the stack.
    let room = (here - bounds.lo).saturating_sub(8 << 10);
    if room < 16 << 10 {
        return;
    }
    // Clears `[here - SCRUB_NEAR - a few words, here - a few words)`: its frame's array.
    zero_frame::<SCRUB_NEAR>();
    // Below that, resident pages only; `zero_resident`'s own frame lies in what
    // `zero_frame` just cleared, above `hi`.
    let hi = here - SCRUB_NEAR;
    let lo = (here - room.min(SCRUB_BYTES)).next_multiple_of(crate::os::OS_PAGE);
    if lo < hi {
        zero_resident(lo, hi);
    }
}

/// Bytes right below [`scrub_below`]'s caller that it clears whole.
const SCRUB_NEAR: usize = 8 << 10;

/// Where a thread's exit runs (see [`scrub_at_exit`]): the top of a region at the bottom
/// of its own stack, which its exit path never reaches; `None` when the stack is unknown
/// or too small to spare it.
///
/// Never for the main thread (its stack grows on demand: the bottom of its bounds may not
/// be mapped yet), and only when the kernel says the whole region is mapped.
pub(crate) fn exit_stack_top(bounds: StackBounds) -> Option<usize> {
    const PAGE: usize = 4096;
    let here = crate::platform::frame_pointer_and_sp().1;
    let valid = bounds.hi > bounds.lo && here > bounds.lo && here <= bounds.hi;
    if !valid || here - bounds.lo < 2 * EXIT_STACK || crate::platform::gettid() == crate::platform::getpid() {
        return None;
    }
    let top = exit_region_top(bounds);
    let bottom = (bounds.lo + PAGE).next_multiple_of(PAGE);
    let mut pages = [0u8; EXIT_STACK / PAGE];
    let count = (top.next_multiple_of(PAGE) - bottom) / PAGE;
    crate::platform::resident(bottom, &mut pages[..count.min(EXIT_STACK / PAGE)]).then_some(top)
}

/// The top of the region [`exit_stack_top`] gives, for the stack `bounds`.
pub(crate) fn exit_region_top(bounds: StackBounds) -> usize {
    (bounds.lo + EXIT_STACK) & !15
}

/// Bytes at the bottom of an ending thread's stack that its exit runs on.
const EXIT_STACK: usize = 64 << 10;

/// At thread exit: zeroes the dead parts of the thread's stack, down to its guard page,
/// every page the kernel says is resident (`mincore`: the pages the thread ever touched)
/// and nothing else (zeroing untouched pages would commit them). `dead_above`, when the
/// exit runs on the bottom of the stack ([`exit_stack_top`]), is the part between that
/// region and the exit path's frames, dead as a whole. Where the kernel does not answer,
/// page by page down to the first page that is already all zero.
///
/// glibc keeps the stacks of ended threads and gives them to new threads, whose frames,
/// where they leave slots unwritten, would show the old thread's pointers to every other
/// thread's checks: a block that thread leaked would look reachable from the new one.
/// Run on the thread's usual stack, the exit path's own frames (the C library's, the
/// thread-exit hook's) covered a few KiB where the thread's frames had been, and kept
/// what those had left in the slots they never wrote; so the exit runs far below them.
#[inline(never)]
pub(crate) fn scrub_at_exit(bounds: StackBounds, dead_above: Option<(usize, usize)>) {
    const PAGE: usize = 4096;
    let here = crate::platform::frame_pointer_and_sp().1;
    if bounds.hi <= bounds.lo || here <= bounds.lo + 2 * PAGE || here > bounds.hi {
        return;
    }
    let floor = (bounds.lo + PAGE).next_multiple_of(PAGE);
    if let Some((lo, hi)) = dead_above {
        if floor <= lo && lo <= hi && hi <= bounds.hi {
            zero_resident(lo, hi);
        }
    }
    // Below this function's frame (and `zero_resident`'s own, which it keeps out).
    zero_resident(floor, here);
}

/// Zeroes the resident pages of `[lo, hi)`, a dead range of this thread's stack, from the
/// top down; without the kernel's answer, down to the first region already all zero.
/// Where the range reaches this function's own frame, it stops below it and its red zone
/// (the `mincore` calls it makes between chunks write their frames there, above what is
/// still to be zeroed).
///
/// Nothing under Valgrind: the stack it gives the program is its own mapping, which the
/// thread's bounds do not describe, and whose pages below the stack's extent are neither
/// mapped (`mincore` refuses) nor grown on a read, which faulted (README.md, "Under
/// Valgrind").
#[inline(never)]
fn zero_resident(lo: usize, hi: usize) {
    if crate::platform::under_valgrind() {
        return;
    }
    const PAGE: usize = 4096;
    /// Pages asked about per `mincore` call.
    const CHUNK: usize = 32;
    let mut resident = [0u8; CHUNK];
    let sp = crate::platform::frame_pointer_and_sp().1;
    let hi = if lo < sp && sp <= hi { sp.saturating_sub(2 * crate::platform::RED_ZONE).max(lo) } else { hi };
    let mut top = hi & !7;
    while top > lo {
        let last_page = (top - 1) & !(PAGE - 1);
        let first_page = last_page.saturating_sub((CHUNK - 1) * PAGE).max(lo & !(PAGE - 1));
        let pages = (last_page - first_page) / PAGE + 1;
        let known = crate::platform::resident(first_page, &mut resident[..pages]);
        for k in (0..pages).rev() {
            let from = (first_page + k * PAGE).max(lo.next_multiple_of(8));
            let to = (first_page + (k + 1) * PAGE).min(top);
            if (known && resident[k] & 1 == 0) || from >= to {
                continue;
            }
            // SAFETY: `[from, to)` lies in `[lo, hi)`, a dead range of this thread's own
            // stack (caller): no live frame is there.
            let region = unsafe { core::slice::from_raw_parts_mut(from as *mut usize, (to - from) / 8) };
            if !known && region.iter().all(|&w| w == 0) {
                return;
            }
            for w in region.iter_mut() {
                // SAFETY: a word of the region above; volatile so that the zeroing of
                // memory nothing reads afterwards is kept.
                unsafe { core::ptr::write_volatile(w, 0) };
            }
        }
        top = first_page;
    }
}

/// A frame of `N` zeroed bytes, which the optimizer must keep.
#[inline(never)]
fn zero_frame<const N: usize>() {
    let mut frame = [0u8; N];
    core::hint::black_box(&mut frame);
}

#[cfg(test)]
mod rule_tests;
#[cfg(test)]
mod tests;

use crate::thread_state::ReentrancyGuard;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU8, Ordering};
pub(crate) use depot::{depot_stats, frames};
use unwind::Walk;

/// A recorded allocation stack: an index into the stack depot. `StackId::NONE` (0) means
/// no stack was recorded (`stack_depth=0`, or the depot is full). Ids are never reused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StackId(u32);

impl StackId {
    /// No stack.
    pub const NONE: StackId = StackId(0);

    /// The raw id.
    pub fn as_u32(self) -> u32 {
        self.0
    }

    /// An id from its raw value.
    pub fn from_u32(v: u32) -> Self {
        StackId(v)
    }
}

/// A thread's stack, `[lo, hi)`: frame-pointer walks never read outside it. `lo == hi`
/// means unknown (then only the DWARF walk runs).
///
/// Invariant relied on by [`capture`]'s frame-pointer walk: the bounds a heap keeps are
/// those of the thread that uses the heap (`current_thread_stack_bounds` on that thread,
/// when its heap is made), or unknown; the locked heaps keep unknown bounds and capture no
/// stack.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StackBounds {
    pub(crate) lo: usize,
    pub(crate) hi: usize,
}

/// The calling thread's stack bounds (`pthread_getattr_np`, which may use libc's malloc,
/// never ours, and for the main thread reads `/proc/self/maps`: call it once per thread,
/// when its heap is made). Unknown (`lo == hi == 0`) when glibc cannot tell.
pub(crate) fn current_thread_stack_bounds() -> StackBounds {
    match crate::platform::current_thread_stack() {
        Ok((lo, hi)) => StackBounds { lo, hi },
        Err(_) => StackBounds { lo: 0, hi: 0 },
    }
}

/// Slots of a [`StackCache`].
const CACHE_SLOTS: usize = 64;

/// A per-thread direct-mapped cache from a stack's 64-bit hash to its id, with the
/// thread's copy of the unwind rules it used last (`rules::RuleMemo`). Plain data (about
/// 2.3 KiB), embedded in each thread's heap.
///
/// Only the hash is compared, never the frames: that is what makes a hit cost no more
/// than the walk. The hash mixes every return address with an xor and a multiply by an
/// odd constant (a bijection at each step), then the frame count; two different stacks
/// agree on all 64 bits with probability about 2^-64, so a process that captures 10^12
/// stacks in its life has a chance of about 10^-7 of one wrong hit, whose only effect is
/// one allocation attributed to another stack. Invariant: `ids[i] == 0` or `ids[i]` is
/// the id of a stack whose hash is `hashes[i]`.
///
/// In declaration order (`repr(C)`), so that what every capture touches shares cache lines
/// and pages: the counters and the tail first, the tables after.
#[repr(C)]
pub(crate) struct StackCache {
    /// Captures this cache answered (its table, or the record memo). Counted in tests
    /// only: nothing reports it, and a count on every capture was 5 instructions.
    #[cfg(test)]
    hits: u32,
    /// The cached unwinder's last frame-record walks.
    records: record_memo::RecordMemos,
    /// The cached unwinder's last walk past a frame-record prefix.
    tail: tail::TailMemo,
    hashes: [u64; CACHE_SLOTS],
    ids: [u32; CACHE_SLOTS],
    /// The frame-record prefixes the cached unwinder may take as they are.
    prefixes: prefix::ExactPrefixes,
    /// The cached unwinder's per-thread copy of the rules it used last.
    rules: rules::RuleMemo,
    /// Captures answered by an alias (`CachedWalk`).
    #[cfg(test)]
    alias_hits: u64,
    /// Captures answered by the record memo alone.
    #[cfg(test)]
    whole_hits: u64,
}

impl StackCache {
    /// An empty cache.
    pub(crate) const fn new() -> Self {
        Self {
            #[cfg(test)]
            hits: 0,
            records: record_memo::RecordMemos::new(),
            tail: tail::TailMemo::new(),
            hashes: [0; CACHE_SLOTS],
            ids: [0; CACHE_SLOTS],
            prefixes: prefix::ExactPrefixes::new(),
            rules: rules::RuleMemo::new(),
            #[cfg(test)]
            alias_hits: 0,
            #[cfg(test)]
            whole_hits: 0,
        }
    }

    /// The id cached under `key` (a stack's hash, or an alias: see `CachedWalk`).
    #[inline(always)]
    fn get(&mut self, key: u64) -> Option<StackId> {
        let slot = (key >> 58) as usize;
        let cached = self.ids[slot];
        if self.hashes[slot] != key || cached == 0 {
            return None;
        }
        self.count_hit();
        Some(StackId(cached))
    }

    /// Counts a capture this cache answered (its table, or the record memo), in tests.
    #[inline(always)]
    fn count_hit(&mut self) {
        #[cfg(test)]
        {
            self.hits += 1;
        }
    }

    /// Caches `id` under `key`.
    #[inline(always)]
    fn put(&mut self, key: u64, id: StackId) {
        let slot = (key >> 58) as usize;
        self.hashes[slot] = key;
        self.ids[slot] = id.0;
    }
}

/// Most frames a stack may hold (the `stack_depth` option's maximum).
pub(crate) const MAX_DEPTH: usize = 64;

/// Which walker a capture takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walker {
    /// The cached unwinder (`fast_unwind=1`, the default): rules from `.eh_frame`,
    /// cached per return address; frame-pointer records where no rule is known.
    Rules,
    /// The frame-pointer walk alone (for comparisons and measurements: code built
    /// without frame pointers loses frames).
    FramePointers,
    /// The DWARF walk (`fast_unwind=0`): libgcc's unwinder on every frame.
    Dwarf,
}

impl From<bool> for Walker {
    /// `fast_unwind`: 1 is the cached unwinder, 0 the DWARF walk.
    fn from(fast: bool) -> Walker {
        if fast {
            Walker::Rules
        } else {
            Walker::Dwarf
        }
    }
}

/// Captures the caller's stack (return addresses, innermost first, starting at the return
/// address into the caller of `capture`) up to `depth` frames, and interns it.
///
/// `walker` (a [`Walker`], or `fast_unwind`'s bool) chooses the walk; the two fast walks
/// fall back to the DWARF walk when they find fewer than `min(depth, 2)` frames (unknown
/// bounds, a signal stack). Returns [`StackId::NONE`] when `depth` is 0, no frame was
/// found, or the depot is full. Never allocates through the thread's heap: past a replay
/// of the whole stack from the record memo (which allocates nothing), it holds the
/// reentrancy guard, so that what the DWARF walk or a read of unwind tables allocates
/// comes from the internal heap. The cached unwinder takes a lock only on a miss (see
/// `cfi`).
///
/// A safe `fn` whose callers ensure that `bounds` are the calling thread's stack bounds
/// or unknown (`lo == hi`), and that `cache` serves this thread alone (a thread's heap's):
/// the fast walks read only `[max(sp, lo), hi)`.
#[inline(never)]
pub(crate) fn capture(depth: usize, walker: impl Into<Walker>, bounds: StackBounds, cache: &mut StackCache) -> StackId {
    let walker = walker.into();
    let start = RecordStart::here(bounds);
    // The record memo first, with no test of `depth` or of the bounds: its slots keep
    // only walks with room for 1 to `record_memo::FRAMES` frames, from a stack pointer in
    // this thread's bounds (see `RecordStart::replay`), and a replay matches only a slot
    // with the same room, stack pointer and top.
    let replayed = if walker == Walker::Rules {
        // SAFETY: `start` is this frame's (`RecordStart::here`, inlined into it); `bounds`
        // are this thread's or unknown, and `cache` is this thread's (caller).
        unsafe { start.replay(depth, cache) }
    } else {
        None
    };
    if let Some(Replayed { id: Some(id), .. }) = replayed {
        cache.count_hit();
        #[cfg(test)]
        {
            cache.whole_hits += 1;
        }
        return id;
    }
    // The walks, in a function of their own: this one, all but a replay, then needs few
    // registers. They start from this frame: its frame record (`start`), and for the
    // DWARF walk an address in it (`start`'s own), which, handed down, also keeps the
    // call from being a tail call (this frame lives until it returns). A copy made here,
    // so that the start is written to the frame on this path alone: with `start` itself
    // handed down, its four words were stored before the replay; the compiler now saves
    // two more registers instead (small pairs with stacks 306.1 -> 305.2 instructions).
    let walk_start = start;
    capture_walking(depth, walker, bounds, cache, &walk_start, replayed)
}

/// [`capture`] past a replay of the whole stack: the walks from `capture`'s frame, whose
/// frame record `start` names and which holds `start` itself.
///
/// Callers' promise: `capture`'s, and `capture` is the caller (its frame, live for the
/// call, is `start`'s and holds it).
#[inline(never)]
fn capture_walking(
    depth: usize,
    walker: Walker,
    bounds: StackBounds,
    cache: &mut StackCache,
    start: &RecordStart,
    replayed: Option<Replayed>,
) -> StackId {
    // A walk may read unwind tables on a miss or take the DWARF walk, either of which may
    // allocate: from the internal heap. (A replay reads stack words and this thread's
    // cache, and never allocates: it goes without the guard's two thread-local writes,
    // 12 instructions a capture.)
    let _guard = ReentrancyGuard::enter();
    let depth = depth.min(MAX_DEPTH);
    if depth == 0 {
        return StackId::NONE;
    }
    let mut buf = [MaybeUninit::<usize>::uninit(); MAX_DEPTH];
    let out = &mut buf[..depth];
    let mut walk = Walk { len: 0, hash: 0 };
    // Another key under which to cache this stack's id (see `CachedWalk`); 0: none.
    let mut alias = 0;
    let mut whole = None;
    if walker == Walker::Rules {
        if SELF_CHECKED.load(Ordering::Relaxed) == 0 {
            warn_once_if_walks_disagree(bounds);
        }
        match walk_cached(out, bounds, cache, *start, replayed) {
            Ok(id) => return id,
            Err(walked) => (walk, alias, whole) = (walked.walk, walked.alias, walked.whole),
        }
    } else if walker == Walker::FramePointers {
        walk = unwind::walk_frame_pointers(start.fp, start.live.lo, out, bounds);
    }
    if walk.len < depth.min(2) {
        // The marker is in `capture`'s frame: the DWARF walk starts at its caller.
        walk = unwind::walk_dwarf(out, start as *const RecordStart as usize);
        if walk.len == 0 {
            return StackId::NONE;
        }
        alias = 0;
    }
    let id = match cache.get(walk.hash) {
        Some(id) => id,
        None => {
            debug_assert!(walk.len <= out.len());
            // SAFETY:
            // - `walk.len <= out.len()`: both walkers stop at the end of `out`, so the slice
            //   lies in `buf`, a live local.
            // - `out[..walk.len]` is initialized: the walker that returned `walk` wrote
            //   `out[n]` before counting it into `len` (a DWARF walk after a short
            //   frame-pointer walk rewrites from index 0).
            // - `MaybeUninit<usize>` has the layout of `usize`, so the cast pointer is
            //   aligned.
            // - `frames` is used only by the `cache_miss` call below, while `buf` lives and
            //   nothing writes it.
            let frames = unsafe { core::slice::from_raw_parts(out.as_ptr().cast::<usize>(), walk.len) };
            cache_miss(cache, frames, walk.hash)
        }
    };
    if alias != 0 && id != StackId::NONE {
        cache.put(alias, id);
        if let Some(whole) = whole {
            remember(cache, whole, id);
        }
    }
    id
}

/// Where `capture`'s frame-record walk starts (its frame pointer), within what (the live
/// part of the thread's stack: from `capture`'s stack pointer to the top of its bounds),
/// under which rules.
#[derive(Clone, Copy, Debug)]
struct RecordStart {
    fp: usize,
    live: StackBounds,
    generation: u32,
}

impl RecordStart {
    /// The start of a walk from the frame this is inlined into (`capture`'s), within
    /// `bounds`.
    #[inline(always)]
    fn here(bounds: StackBounds) -> RecordStart {
        let (fp, sp) = crate::platform::frame_pointer_and_sp();
        RecordStart { fp, live: StackBounds { lo: sp, hi: bounds.hi }, generation: rules::generation() }
    }

    /// Whether a frame-record walk may start here: the bounds known (`bounds`, those
    /// [`Self::here`] was given) and the stack pointer in them (not on a signal stack).
    #[inline(always)]
    fn in_bounds(&self, bounds: StackBounds) -> bool {
        bounds.lo < bounds.hi && bounds.lo <= self.live.lo && self.live.lo < bounds.hi
    }

    /// The record memo's replay of the walk from this start, with room for `room` frames
    /// (`record_memo::RecordMemos::replay`); `None` when none is kept.
    ///
    /// No test of the bounds first: a slot matches only with the same stack pointer and
    /// top as its walk's, which started in bounds ([`Self::in_bounds`] held then) on this
    /// thread (the cache is this thread's alone: caller), whose bounds do not change
    /// (set with a fresh cache when its heap is made). So when a slot matches, the stack
    /// pointer lies in this thread's bounds now too, and `[sp, hi)` is the live part of
    /// its stack.
    ///
    /// # Safety
    /// - This start was taken by [`Self::here`] in the calling frame, with that frame's
    ///   thread's stack bounds (or unknown ones), and `cache` has served this thread only,
    ///   with those bounds.
    #[inline(always)]
    unsafe fn replay(&self, room: usize, cache: &mut StackCache) -> Option<Replayed> {
        // SAFETY: the bullet of `replay`: its slots' walks started in bounds on this
        // thread (above), so a slot that matches has `live.lo`, this frame's stack
        // pointer, in this thread's bounds: `[sp, hi)` is the live part of its stack,
        // the frames of `capture` and its callers, mapped and readable while `capture`
        // runs.
        unsafe { cache.records.replay(self.fp, self.live, room, self.generation) }
    }
}

/// Tells the record memo's slot of this capture the id of its whole stack (see
/// `record_memo::RecordMemos::remember`), when the walk on is still the one `whole` names.
#[inline(always)]
fn remember(cache: &mut StackCache, whole: Whole, id: StackId) {
    let tail = match whole.tail {
        Some(epoch) => match cache.tail.words_of(epoch) {
            Some(words) => Some(words),
            None => return,
        },
        None => None,
    };
    cache.records.remember(tail, id, whole.generation);
}

/// What makes a captured stack whole after its frame-record prefix (checked exact under
/// the rules of `generation`): the walk on the thread kept, by its number
/// (`tail::TailMemo`), or nothing (the prefix is the stack).
#[derive(Clone, Copy, Debug)]
struct Whole {
    tail: Option<u64>,
    generation: u32,
}

/// What the cached unwinder found when the stack cache could not answer at once: the
/// frames, and another key under which the stack's id may be cached (0: none), that the
/// next capture of the same stack finds before it walks the rest: the hash of its
/// frame-record prefix (checked exact) mixed with the walk on that the thread kept
/// (`tail::TailMemo::key`).
struct CachedWalk {
    walk: Walk,
    alias: u64,
    /// With an alias: what makes the stack whole after its prefix.
    whole: Option<Whole>,
}

/// The cached unwinder's walk from `capture`'s frame (`start`; inlined into
/// `capture_walking`), after `capture` tried the record memo's replay (`replayed`): the
/// frame-record walk first (that replay, or a walk); when its prefix ends in the walk on
/// the thread kept, the stack cache may know the whole stack by their key (`Ok`). Else, when the prefix is
/// known to be exact (`prefix`), the rule walk on from where it stopped (replayed when it
/// can be); else the whole rule walk, which then tells whether that prefix was exact.
#[inline(always)]
fn walk_cached(
    out: &mut [MaybeUninit<usize>],
    bounds: StackBounds,
    cache: &mut StackCache,
    start: RecordStart,
    replayed: Option<Replayed>,
) -> Result<StackId, CachedWalk> {
    let mut tried = None;
    // A replay matched (only in bounds: see `RecordStart::replay`), or a walk may start.
    if replayed.is_some() || (start.in_bounds(bounds) && cache.prefixes.worth_trying()) {
        let (fp, live, generation) = (start.fp, start.live, start.generation);
        let (at, replayed) = match replayed {
            // `capture` returned a replay that knew the whole stack's id.
            Some(Replayed { at, .. }) => (at, true),
            // SAFETY: the bullet of `walk`: `live.lo = sp > 0`, and `[sp, hi)` is the live
            // part of this thread's stack (the bounds are this thread's, `capture`'s
            // callers; `sp` lies in them, `in_bounds`): the frames of `capture` and its
            // callers, mapped and readable while `capture` runs.
            None => (unsafe { cache.records.walk(fp, out, live) }, false),
        };
        let prefix = unwind::finish(at.hash, at.len);
        let (alias, tail) = match unwind::tail_start(out.len(), at, live) {
            // SAFETY: `key`'s bullet is `tail_start`'s promise (`live` as above).
            Some((frame, tail)) => unsafe {
                (cache.tail.key(prefix, frame, tail, out.len() - at.len, generation), cache.tail.kept_epoch())
            },
            None if at.len > 0 => (unwind::finish(prefix, generation as usize), None),
            None => (0, None),
        };
        let whole = (alias != 0).then_some(Whole { tail, generation });
        if let Some(whole) = whole {
            if let Some(id) = cache.get(alias) {
                #[cfg(test)]
                {
                    cache.alias_hits += 1;
                }
                remember(cache, whole, id);
                return Ok(id);
            }
        }
        if replayed {
            cache.records.write_frames(out);
        }
        if at.len > 0 && cache.prefixes.contains(prefix, generation) {
            // `live` as above: `capture`'s frame outlives the call.
            let walk = unwind::walk_rules_after(out, at, live, &mut cache.rules, &mut cache.tail, generation);
            return Err(CachedWalk { walk, alias, whole });
        }
        tried = Some((prefix, at.len));
    }
    // From `capture`'s caller: the walk's own frame, `capture_walking`'s and `capture`'s not recorded.
    let rule_walk = unwind::walk_rules(out, bounds, &mut cache.rules, 1);
    if let Some((hash, len)) = tried {
        let exact = cache.prefixes.learn(hash, len, rule_walk.records);
        debug_assert!(!exact || (rule_walk.walk.len >= len && prefix_hash(out, len) == hash));
    }
    Err(CachedWalk { walk: rule_walk.walk, alias: 0, whole: None })
}

/// The hash of `out[..len]`, written by a walk (debug checks).
fn prefix_hash(out: &[MaybeUninit<usize>], len: usize) -> u64 {
    // SAFETY: callers pass a `len` no greater than a walk's, which wrote `out[..len]`.
    let frames = unsafe { core::slice::from_raw_parts(out.as_ptr().cast::<usize>(), len) };
    unwind::hash_frames(frames)
}

/// Interns a stack the cache did not know, and caches its id.
#[inline(never)]
fn cache_miss(cache: &mut StackCache, frames: &[usize], hash: u64) -> StackId {
    debug_assert_eq!(hash, unwind::hash_frames(frames));
    let id = depot::intern(frames, hash);
    if id != StackId::NONE {
        cache.put(hash, id);
    }
    id
}

/// 0 until the first capture by the cached unwinder on a thread with known bounds has
/// compared it with the DWARF walk.
static SELF_CHECKED: AtomicU8 = AtomicU8::new(0);

/// Once per process: warns if the cached unwinder and the DWARF walk disagree on the
/// first frames of a stack (unwind tables the cached unwinder misreads: its stacks would
/// be wrong), naming the way out.
#[cold]
#[inline(never)]
fn warn_once_if_walks_disagree(bounds: StackBounds) {
    if bounds.hi <= bounds.lo || SELF_CHECKED.swap(1, Ordering::Relaxed) != 0 {
        return;
    }
    if !unwind::rules_agree_with_dwarf(bounds) {
        warning!(
            "the cached unwinder disagrees with the DWARF unwinder on this program's stacks: \
             allocation stacks may be wrong; set HEAPSWEEP=fast_unwind=0 (slow, exact)"
        );
    }
}
