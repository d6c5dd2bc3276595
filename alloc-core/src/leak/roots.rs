//! The root set: every range of memory the check scans without knowing it is reachable.
//!
//! # Rules
//! Every readable, writable, private mapping is a candidate, except:
//! - memory the heap owns (its segments: blocks are scanned only once found reachable),
//!   found with `HeapView::owned_region_end` at every 4 MiB boundary, since the kernel may
//!   merge a segment with its anonymous neighbours into one `maps` line; and the
//!   allocator's metadata mappings (the depot, the segment map, the check's own tables,
//!   the stop table): never roots;
//! - `[vvar]`, `[vdso]`, `[vsyscall]`;
//! - the pages of anonymous mappings that were never written: neither present nor
//!   swapped out, as `/proc/self/pagemap` says (they read as zero; reading them would
//!   fault each in); every page is scanned when that file cannot be read, or does not
//!   say that the checking thread's own stack page is present;
//! - thread stacks below the stack pointer: the mapping holding a stopped thread's stack
//!   pointer is scanned from `sp - 128` (the x86-64 red zone, `platform::RED_ZONE`, may
//!   hold the only copy of a pointer) to its end, which also covers the thread's static
//!   TLS that glibc places at the top of its stack; the checking thread's own stack
//!   likewise from its own sp. A mapping holding a thread's TLS but not its stack
//!   pointer (the thread runs on another stack: a coroutine's, an alternate signal
//!   stack) is scanned whole;
//! - the process's first stack (`[stack]`) in the child of a `fork` made by another
//!   thread: the main thread does not exist in that child, and what its stack holds is
//!   the parent's, whose stale words point at addresses the child reuses for its own
//!   blocks (the fork handlers call [`after_fork_in_child`]);
//! - stacks of threads that have exited: glibc keeps them mapped for reuse, full of stale
//!   pointers. A thread stack is an anonymous mapping right above a `PROT_NONE` guard
//!   page; such a mapping that holds no live thread's stack pointer or TLS is skipped
//!   (unless some thread could not be stopped: its stack is unknown, so each such mapping
//!   is scanned whole, as a stack), but for the two words of the ended thread's control
//!   block that point to its DTV, which glibc keeps for the next thread (found at the
//!   distance below the mapping's top that live threads' control blocks had).
//!
//! Each range is labelled with a [`RootKind`] that a `use_*` option can switch off.
//! `Globals` are the writable segments of loaded objects and `Tls` the static TLS blocks
//! of the threads (both found with `dl_iterate_phdr` *before* the world stops: the
//! loader's lock might be held by a stopped thread); they relabel parts of the mappings
//! that hold them, never add memory to scan. `OtherMapping` is the rest: libc's malloc
//! heap, where std keeps some pointers to Rust heap blocks, foreign anonymous mappings.
//! `Registers` are the stopped threads' saved registers, `Registered` the regions of
//! `register_root`.
//!
//! Under Valgrind (`platform::under_valgrind`), `OtherMapping` ranges of anonymous
//! mappings are not scanned: `/proc/self/maps` lists Valgrind's own memory among them,
//! which Valgrind unmaps and maps again as it runs, so that a range listed may be gone by
//! the time it is read (a fault in the check at exit, seen under `callgrind`).

use super::failure::Failure;
use super::maps::{self, MapKind, Mapping};
use super::stop::StoppedWorld;
use super::view::HeapView;
use crate::os::{self, MmapVec};
use crate::platform::{self, LoadedObject, PF_W, PT_LOAD, PT_TLS};
use crate::segment::SEGMENT_SIZE;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The process's first stack belongs to no thread: this is the child of a `fork` made by
/// a thread other than the main one (or a descendant of such a child).
static MAIN_STACK_GONE: AtomicBool = AtomicBool::new(false);

/// In the child of a `fork`: `forker_was_main` says whether the thread that forked ran on
/// the process's first stack (the parent's main thread). If not, that stack is no root
/// any more, here and in every later child. Async-signal-safe (one store).
pub(crate) fn after_fork_in_child(forker_was_main: bool) {
    if !forker_was_main {
        MAIN_STACK_GONE.store(true, Ordering::Relaxed);
    }
}

/// How far below the top of a thread's stack mapping glibc puts the thread's control
/// block (its thread pointer): the same for every stack glibc allocates in a process (the
/// static TLS size and alignment are fixed). 0 until a thread other than the main one
/// started; `usize::MAX` if two threads disagreed (then unused).
static TCB_BELOW_STACK_TOP: AtomicUsize = AtomicUsize::new(0);

/// At a thread's start: `stack_top`, the end of its stack's mapping, and `tp`, its thread
/// pointer (see [`TCB_BELOW_STACK_TOP`]). Not for the main thread, whose control block
/// glibc allocates elsewhere.
pub(crate) fn note_thread_stack(stack_top: usize, tp: usize) {
    if tp >= stack_top || stack_top - tp > MAX_STATIC_TLS {
        return;
    }
    let below = stack_top - tp;
    if let Err(known) = TCB_BELOW_STACK_TOP.compare_exchange(0, below, Ordering::Relaxed, Ordering::Relaxed) {
        if known != below {
            TCB_BELOW_STACK_TOP.store(usize::MAX, Ordering::Relaxed);
        }
    }
}

/// The two words of an ended thread's control block that a cached stack `m` keeps: its
/// `tcbhead_t`'s self pointer and DTV pointer (`None` when the block's place is not
/// known). glibc gives the stack, control block included, to the next thread it starts:
/// the DTV it allocated (with `malloc`: ours, under preload) stays in use, and only this
/// word points to it. The rest of such a stack, stale frames, is no root.
fn cached_stack_tcb(m: &Mapping) -> Option<(usize, usize)> {
    let below = TCB_BELOW_STACK_TOP.load(Ordering::Relaxed);
    let tcb = m.end.checked_sub(below).filter(|_| below != 0 && below != usize::MAX)?;
    (tcb >= m.start && tcb + 16 <= m.end && tcb.is_multiple_of(8)).then_some((tcb, tcb + 16))
}

/// What a root range is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RootKind {
    Stack,
    Registers,
    Globals,
    Tls,
    OtherMapping,
    Registered,
}

/// A range `[start, end)` to scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RootRange {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) kind: RootKind,
}

/// Which kinds of root to scan (the `use_*` options). All on by default.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RootOptions {
    pub(crate) stacks: bool,
    pub(crate) registers: bool,
    pub(crate) globals: bool,
    pub(crate) tls: bool,
    pub(crate) root_regions: bool,
    pub(crate) other_mappings: bool,
}

impl Default for RootOptions {
    fn default() -> Self {
        Self { stacks: true, registers: true, globals: true, tls: true, root_regions: true, other_mappings: true }
    }
}

impl RootOptions {
    pub(crate) fn from_config(o: &crate::config::Options) -> Self {
        Self {
            stacks: o.use_stacks,
            registers: o.use_registers,
            globals: o.use_globals,
            tls: o.use_tls,
            root_regions: o.use_root_regions,
            other_mappings: o.use_other_mappings,
        }
    }

    fn wants(&self, kind: RootKind) -> bool {
        match kind {
            RootKind::Stack => self.stacks,
            RootKind::Registers => self.registers,
            RootKind::Globals => self.globals,
            RootKind::Tls => self.tls,
            RootKind::OtherMapping => self.other_mappings,
            RootKind::Registered => self.root_regions,
        }
    }
}

/// The most static TLS believed: a larger distance between a module's TLS block and the
/// thread pointer means the block is dynamic (malloc'd), not at a fixed offset.
const MAX_STATIC_TLS: usize = 16 << 20;

/// Facts gathered before the world stops, with the loader's lock: the writable segments
/// of loaded objects, and how far below the thread pointer static TLS reaches.
pub(crate) struct RootPlan {
    globals: MmapVec<(usize, usize)>,
    tp: usize,
    tls_below: usize,
}

impl RootPlan {
    /// Walks the loaded objects (takes the loader's lock: call it before stopping the
    /// world).
    pub(crate) fn prepare() -> RootPlan {
        let mut plan = RootPlan { globals: MmapVec::new(), tp: platform::thread_pointer(), tls_below: 0 };
        platform::for_each_loaded_object(|object| plan.add_object(object));
        plan
    }

    /// Records an object's writable segments, and how far below the thread pointer its
    /// static TLS block lies.
    fn add_object(&mut self, object: &LoadedObject<'_>) {
        for ph in object.program_headers {
            if ph.p_type == PT_LOAD && ph.p_flags & PF_W != 0 {
                let start = object.load_bias + ph.p_vaddr as usize;
                let _ = self.globals.push((start & !(os::OS_PAGE - 1), start + ph.p_memsz as usize));
            }
            if let (PT_TLS, Some(block)) = (ph.p_type, object.tls_data) {
                if block < self.tp && self.tp - block <= MAX_STATIC_TLS {
                    self.tls_below = self.tls_below.max(self.tp - block);
                }
            }
        }
    }

    /// The static TLS block of the thread whose thread pointer is `tp`: glibc (x86-64,
    /// TLS variant II) puts it right below the thread control block.
    fn tls_of(&self, tp: usize) -> Option<(usize, usize)> {
        (tp != 0 && self.tls_below != 0).then(|| (tp.saturating_sub(self.tls_below), tp))
    }
}

/// Builds the root set into `out`. `my_sp` is where the checking thread's own stack is
/// scanned from. Allocates nothing beyond the `MmapVec`s: it runs with the world stopped.
/// Fails if the set would be incomplete (`/proc/self/maps` unreadable, out of memory): a
/// check on it would report reachable blocks as leaked.
pub(crate) fn collect_roots(
    view: &dyn HeapView,
    world: &StoppedWorld,
    plan: &RootPlan,
    opts: &RootOptions,
    my_sp: usize,
    maps_buf: &mut MmapVec<Mapping>,
    out: &mut MmapVec<RootRange>,
) -> Result<(), Failure> {
    out.clear();
    // Every mapping of ours that the list may name must be registered before the list of
    // own mappings is taken (so `labels` is made first), and none may be unmapped before
    // the scan (mappings made after the list is read are not in it).
    let labels = labels(world, plan);
    let mut own = [(0usize, 0usize); 600];
    let own = own_mappings(&mut own);
    maps::read_maps(maps_buf)?;
    // Without it, every page is scanned (and the untouched ones faulted in to be read).
    let pagemap = platform::Pagemap::open().ok().filter(|p| p.answers_for(my_sp));
    // Under Valgrind, the maps list Valgrind's own memory too, anonymous mappings it
    // unmaps and maps again as it runs (between this list and the scan: a fault).
    let foreign_anonymous_unsafe = platform::under_valgrind();
    let mut ok = true;
    {
        let mut prev: Option<Mapping> = None;
        for m in maps_buf.iter() {
            let after_guard = prev.is_some_and(|p| is_guard(&p) && p.end == m.start);
            prev = Some(*m);
            if !m.readable || !m.writable || m.shared || m.kind == MapKind::Special {
                continue;
            }
            let Some((start, kind)) = scan_start(m, world, my_sp, after_guard) else {
                if let Some((tcb, end)) = cached_stack_tcb(m).filter(|_| after_guard && opts.tls) {
                    ok &= out.push(RootRange { start: tcb, end, kind: RootKind::Tls });
                }
                continue;
            };
            let anonymous = matches!(m.kind, MapKind::Anon | MapKind::Heap);
            let touched = if anonymous { pagemap.as_ref() } else { None };
            // Under Valgrind, no anonymous mapping but stacks, globals, TLS and libc's
            // heap (README.md: "Under Valgrind").
            let unsafe_to_read = |k| foreign_anonymous_unsafe && k == RootKind::OtherMapping && m.kind == MapKind::Anon;
            split_by_labels(&labels, start, m.end, kind, &mut |s, e, k| {
                if opts.wants(k) && !unsafe_to_read(k) {
                    ok &= emit_unowned(view, own, touched, RootRange { start: s, end: e, kind: k }, out);
                }
            });
        }
    }
    if opts.registers {
        for t in world.threads().iter().filter(|t| t.stopped) {
            let r = t.regs.as_ptr() as usize;
            ok &= out.push(RootRange { start: r, end: r + core::mem::size_of_val(&t.regs), kind: RootKind::Registers });
        }
    }
    if opts.root_regions {
        super::regions::for_each_region(|s, l| {
            ok &= out.push(RootRange { start: s, end: s + l, kind: RootKind::Registered });
        });
    }
    if ok {
        Ok(())
    } else {
        Err(Failure::OutOfMemory { what: "the root list" })
    }
}

/// The allocator's metadata mappings, sorted, into `buf`.
fn own_mappings(buf: &mut [(usize, usize)]) -> &mut [(usize, usize)] {
    let mut len = 0;
    os::for_each_own_mapping(|s, l| {
        if len < buf.len() {
            buf[len] = (s, s + l);
            len += 1;
        }
    });
    let own = &mut buf[..len];
    own.sort_unstable();
    own
}

/// The ranges that carry a label of their own (globals, every known thread's static
/// TLS), sorted by start.
fn labels(world: &StoppedWorld, plan: &RootPlan) -> MmapVec<RootRange> {
    // Out of memory, labels go missing: parts of globals or TLS are then labelled as
    // the memory around them, and scanned all the same.
    let mut out = MmapVec::new();
    for &(start, end) in plan.globals.iter() {
        out.push(RootRange { start, end, kind: RootKind::Globals });
    }
    let tps = world.threads().iter().filter(|t| t.stopped).map(|t| t.tp);
    for (start, end) in tps.chain([platform::thread_pointer()]).filter_map(|tp| plan.tls_of(tp)) {
        out.push(RootRange { start, end, kind: RootKind::Tls });
    }
    out.sort_unstable_by_key(|r| r.start);
    out
}

/// A guard page: inaccessible, and small (glibc's default is one page; 64 KiB allows
/// for larger pages and settings, and excludes the big reserved tails of malloc arenas).
fn is_guard(m: &Mapping) -> bool {
    !m.readable && !m.writable && m.end - m.start <= 64 << 10
}

/// Where to start scanning a mapping, and what it is; `None` to skip it: the cached
/// stack of an exited thread (`after_guard`: it sits above a guard page like every
/// thread stack, and holds no live thread's stack pointer nor TLS).
fn scan_start(m: &Mapping, world: &StoppedWorld, my_sp: usize, after_guard: bool) -> Option<(usize, RootKind)> {
    let inside = |a: usize| a >= m.start && a < m.end;
    let from_sp = |sp: usize| Some((sp.saturating_sub(platform::RED_ZONE).max(m.start), RootKind::Stack));
    if inside(my_sp) {
        return from_sp(my_sp);
    }
    let mut stopped = world.threads().iter().filter(|t| t.stopped);
    if let Some(t) = stopped.clone().find(|t| inside(t.sp)) {
        return from_sp(t.sp);
    }
    if m.kind == MapKind::Stack {
        // No thread runs on it unless the main thread still exists (then it may be on
        // another stack, a signal's or a coroutine's, its frames here still live).
        return (!MAIN_STACK_GONE.load(Ordering::Relaxed)).then_some((m.start, RootKind::Stack));
    }
    if after_guard && m.kind == MapKind::Anon {
        // A live thread running on another stack (a coroutine's, an alternate signal
        // stack), or one whose stack pointer is unknown: the whole stack.
        let live = inside(platform::thread_pointer()) || stopped.any(|t| inside(t.tp)) || !world.all_stopped();
        return live.then_some((m.start, RootKind::Stack));
    }
    Some((m.start, RootKind::OtherMapping))
}

/// Calls `emit(start, end, kind)` for the pieces of `[start, end)`: the parts covered by
/// a label (sorted by start; the first one wins where two overlap) get its kind, the rest
/// `default`.
fn split_by_labels(
    labels: &[RootRange],
    start: usize,
    end: usize,
    default: RootKind,
    emit: &mut dyn FnMut(usize, usize, RootKind),
) {
    let mut c = start;
    for l in labels {
        if l.start >= end {
            break;
        }
        if l.end <= c {
            continue;
        }
        if l.start > c {
            emit(c, l.start, default);
        }
        let e = l.end.min(end);
        emit(l.start.max(c), e, l.kind);
        c = e;
    }
    if c < end {
        emit(c, end, default);
    }
}

/// Emits `range` minus the heap's segments and the allocator's own mappings, and, when
/// `touched` is given (the range lies in anonymous memory), minus the pages never written
/// ([`emit_touched`]). Segments are 4 MiB-aligned, so asking at every 4 MiB boundary finds
/// them all. Returns false when out of memory.
fn emit_unowned(
    view: &dyn HeapView,
    own: &[(usize, usize)],
    touched: Option<&platform::Pagemap>,
    range: RootRange,
    out: &mut MmapVec<RootRange>,
) -> bool {
    let RootRange { start, end, kind } = range;
    let (mut run_start, mut c, mut ok) = (start, start, true);
    while c < end {
        if let Some(owned_end) = view.owned_region_end(c) {
            ok &= emit_minus_own(own, touched, RootRange { start: run_start, end: c, kind }, out);
            c = owned_end.max(c + 1);
            run_start = c;
            continue;
        }
        c = ((c / SEGMENT_SIZE) + 1) * SEGMENT_SIZE;
    }
    ok && emit_minus_own(own, touched, RootRange { start: run_start, end, kind }, out)
}

fn emit_minus_own(
    own: &[(usize, usize)],
    touched: Option<&platform::Pagemap>,
    range: RootRange,
    out: &mut MmapVec<RootRange>,
) -> bool {
    let RootRange { mut start, end, kind } = range;
    let mut ok = true;
    for &(s, e) in own {
        if e <= start || s >= end {
            continue;
        }
        if s > start {
            ok &= emit_touched(touched, RootRange { start, end: s, kind }, out);
        }
        start = start.max(e);
    }
    ok && (start >= end || emit_touched(touched, RootRange { start, end, kind }, out))
}

/// Ranges shorter than this are emitted whole: a page or two read is cheaper than the
/// read of their page map entries.
const TOUCHED_FILTER_MIN: usize = 4 * os::OS_PAGE;

/// Emits the parts of `range` in pages that hold data: with `touched` (the range lies in
/// anonymous private memory), the pages present or swapped out; a page of such memory
/// that is neither was never written since it was mapped or discarded, and reads as
/// zero: it holds no pointer, and reading it would only fault it in (a few microseconds
/// each: libc's malloc arenas, mostly untouched, cost a trivial test binary's exit check
/// some sixty faults). Without `touched`, or when the kernel does not answer, the whole
/// range. Returns false when out of memory.
fn emit_touched(touched: Option<&platform::Pagemap>, range: RootRange, out: &mut MmapVec<RootRange>) -> bool {
    let Some(pagemap) = touched.filter(|_| range.end - range.start >= TOUCHED_FILTER_MIN) else {
        return out.push(range);
    };
    let (first, last) = (range.start & !(os::OS_PAGE - 1), range.end.next_multiple_of(os::OS_PAGE));
    let (mut ok, mut done) = (true, range.start);
    let answered = pagemap.for_each_touched_run(first, last, |s, e| {
        let (s, e) = (s.max(range.start), e.min(range.end));
        if s < e {
            ok &= out.push(RootRange { start: s, end: e, ..range });
        }
        done = e.max(done);
    });
    if answered.is_err() && done < range.end {
        // What the kernel did not describe is scanned whole (a run it did describe may
        // be emitted twice: scanning a range twice finds nothing new).
        ok &= out.push(RootRange { start: done, ..range });
    }
    ok
}

#[cfg(test)]
mod tests;
