//! The root set: every range of memory the check scans without knowing it is reachable.
//!
//! # Rules
//! Every readable, writable, private mapping is a candidate, except:
//! - memory the heap owns (its segments: blocks are scanned only once found reachable)
//!   and the allocator's metadata mappings (the depot, the segment map, the check's own
//!   tables): never roots;
//! - `[vvar]`, `[vdso]`, `[vsyscall]`;
//! - thread stacks below the stack pointer: the mapping holding a stopped thread's stack
//!   pointer is scanned from `sp - 128` (the x86-64 red zone may hold the only copy of a
//!   pointer) to its end, which also covers the thread's static TLS that glibc places at
//!   the top of its stack; the checking thread's own stack likewise from its own sp;
//! - stacks of threads that have exited: glibc keeps them mapped for reuse, full of stale
//!   pointers. A thread stack is an anonymous mapping right above a `PROT_NONE` guard
//!   page; such a mapping that holds no live thread's stack pointer is skipped (unless
//!   some thread could not be stopped: its stack pointer is unknown, so nothing is
//!   skipped then).
//!
//! Each range is labelled with a [`RootKind`] that a `use_*` option can switch off:
//! `Globals` are the writable segments of loaded objects (found with `dl_iterate_phdr`
//! before the world stops, since the loader's lock might be held by a stopped thread);
//! `OtherMapping` is the rest (libc's malloc heap, where std keeps some pointers to Rust
//! heap blocks, the main thread's TLS, foreign anonymous mappings).

use super::maps::{self, Mapping};
use super::stop::StoppedWorld;
use super::view::HeapView;
use crate::os::{self, MmapVec};
use crate::segment::SEGMENT_SIZE;

/// What a root range is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RootKind {
    Stack,
    Registers,
    Globals,
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

/// Which kinds of root to scan (the `use_*` options).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RootOptions {
    pub(crate) stacks: bool,
    pub(crate) registers: bool,
    pub(crate) globals: bool,
    pub(crate) root_regions: bool,
    pub(crate) other_mappings: bool,
}

impl RootOptions {
    #[cfg(test)]
    pub(crate) fn all() -> Self {
        Self { stacks: true, registers: true, globals: true, root_regions: true, other_mappings: true }
    }

    pub(crate) fn from_config(o: &crate::config::Options) -> Self {
        Self {
            stacks: o.use_stacks,
            registers: o.use_registers,
            globals: o.use_globals,
            root_regions: o.use_root_regions,
            other_mappings: o.use_other_mappings,
        }
    }

    fn wants(&self, kind: RootKind) -> bool {
        match kind {
            RootKind::Stack => self.stacks,
            RootKind::Registers => self.registers,
            RootKind::Globals => self.globals,
            RootKind::OtherMapping => self.other_mappings,
            RootKind::Registered => self.root_regions,
        }
    }
}

const MAX_RANGES: usize = 1024;

/// Facts gathered before the world stops: the writable segments of loaded objects.
pub(crate) struct RootPlan {
    globals: [(usize, usize); MAX_RANGES],
    globals_len: usize,
}

impl RootPlan {
    /// Gathers the loaded objects' writable segments (takes the loader's lock: call it
    /// before stopping the world).
    pub(crate) fn prepare() -> Box<RootPlan> {
        let mut plan = Box::new(RootPlan { globals: [(0, 0); MAX_RANGES], globals_len: 0 });
        // SAFETY: the callback only reads the phdr array the loader passes and writes into
        // the plan through the data pointer, which outlives the call.
        unsafe { libc::dl_iterate_phdr(Some(on_object), (&mut *plan as *mut RootPlan).cast()) };
        plan
    }

    fn is_global(&self, start: usize, end: usize) -> bool {
        self.globals[..self.globals_len].iter().any(|&(s, e)| s < end && start < e)
    }
}

unsafe extern "C" fn on_object(info: *mut libc::dl_phdr_info, _size: usize, data: *mut libc::c_void) -> i32 {
    // SAFETY: the loader passes a valid info for the duration of the call, and `data` is
    // the plan given to dl_iterate_phdr.
    unsafe {
        let plan = &mut *data.cast::<RootPlan>();
        let info = &*info;
        for i in 0..info.dlpi_phnum as usize {
            let ph = &*info.dlpi_phdr.add(i);
            if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_W != 0 && plan.globals_len < MAX_RANGES {
                let start = info.dlpi_addr as usize + ph.p_vaddr as usize;
                plan.globals[plan.globals_len] = (start & !(os::OS_PAGE - 1), start + ph.p_memsz as usize);
                plan.globals_len += 1;
            }
        }
    }
    0
}

/// Builds the root set into `out`. `my_sp` is the checking thread's stack pointer.
/// Allocates nothing beyond the `MmapVec`s (it runs with the world stopped).
pub(crate) fn collect_roots(
    view: &dyn HeapView,
    world: &StoppedWorld,
    plan: &RootPlan,
    opts: &RootOptions,
    my_sp: usize,
    maps_buf: &mut MmapVec<Mapping>,
    out: &mut MmapVec<RootRange>,
) {
    out.clear();
    let mut own = [(0usize, 0usize); 600];
    let mut own_len = 0;
    os::for_each_own_mapping(|s, l| {
        if own_len < own.len() {
            own[own_len] = (s, s + l);
            own_len += 1;
        }
    });
    let own = &mut own[..own_len];
    own.sort_unstable();

    let all_stopped = world.threads().iter().all(|t| t.stopped);
    if maps::read_maps(maps_buf) {
        let mut prev: Option<Mapping> = None;
        for m in maps_buf.iter() {
            let after_guard = prev.is_some_and(|p| p.end == m.start && !p.readable && !p.writable);
            prev = Some(*m);
            if !(m.readable && m.writable && m.private) || m.special {
                continue;
            }
            let Some((start, kind)) = classify_mapping(m, world, plan, my_sp, after_guard && all_stopped) else {
                continue;
            };
            if opts.wants(kind) {
                emit_unowned(view, own, start, m.end, kind, out);
            }
        }
    }
    if opts.registers {
        for t in world.threads().iter().filter(|t| t.stopped) {
            let r = t.regs.as_ptr() as usize;
            out.push(RootRange { start: r, end: r + core::mem::size_of_val(&t.regs), kind: RootKind::Registers });
        }
    }
    if opts.root_regions {
        super::regions::for_each_region(|s, l| {
            out.push(RootRange { start: s, end: s + l, kind: RootKind::Registered });
        });
    }
}

/// Where to start scanning a mapping, and what it is; `None` to skip it (the cached
/// stack of an exited thread: `dead_stack_candidate` says it sits above a guard page).
fn classify_mapping(
    m: &Mapping,
    world: &StoppedWorld,
    plan: &RootPlan,
    my_sp: usize,
    dead_stack_candidate: bool,
) -> Option<(usize, RootKind)> {
    let inside = |sp: usize| sp >= m.start && sp < m.end;
    if inside(my_sp) {
        return Some((my_sp.saturating_sub(128).max(m.start), RootKind::Stack));
    }
    if let Some(t) = world.threads().iter().find(|t| t.stopped && inside(t.sp)) {
        return Some((t.sp.saturating_sub(128).max(m.start), RootKind::Stack));
    }
    if plan.is_global(m.start, m.end) {
        return Some((m.start, RootKind::Globals));
    }
    if dead_stack_candidate && !m.file {
        return None;
    }
    Some((m.start, RootKind::OtherMapping))
}

/// Emits `[start, end)` minus the heap's segments and the allocator's own mappings.
fn emit_unowned(
    view: &dyn HeapView,
    own: &[(usize, usize)],
    start: usize,
    end: usize,
    kind: RootKind,
    out: &mut MmapVec<RootRange>,
) {
    let mut run_start = start;
    let mut c = start;
    while c < end {
        if let Some(owned_end) = view.owned_region_end(c) {
            emit_minus_own(own, run_start, c, kind, out);
            c = owned_end.max(c + 1);
            run_start = c;
            continue;
        }
        c = ((c / SEGMENT_SIZE) + 1) * SEGMENT_SIZE;
    }
    emit_minus_own(own, run_start, end, kind, out);
}

fn emit_minus_own(own: &[(usize, usize)], mut start: usize, end: usize, kind: RootKind, out: &mut MmapVec<RootRange>) {
    for &(s, e) in own {
        if e <= start || s >= end {
            continue;
        }
        if s > start {
            out.push(RootRange { start, end: s, kind });
        }
        start = start.max(e);
    }
    if start < end {
        out.push(RootRange { start, end, kind });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_mappings_are_cut_out() {
        let mut out = MmapVec::new();
        emit_minus_own(&[(100, 200), (300, 400)], 50, 350, RootKind::OtherMapping, &mut out);
        let got: Vec<(usize, usize)> = out.iter().map(|r| (r.start, r.end)).collect();
        assert_eq!(got, vec![(50, 100), (200, 300)]);
    }

    static GLOBAL_SLOT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    #[test]
    fn globals_and_the_current_stack_are_roots() {
        struct NoHeap;
        impl HeapView for NoHeap {
            fn block_slots(&self) -> usize {
                0
            }
            fn block_containing(&self, _: usize) -> Option<(u32, super::super::view::BlockDesc)> {
                None
            }
            fn for_each_block(&self, _: &mut dyn FnMut(u32, super::super::view::BlockDesc)) {}
            fn owned_region_end(&self, _: usize) -> Option<usize> {
                None
            }
            fn survived(&self, _: usize) {}
        }
        GLOBAL_SLOT.store(1, std::sync::atomic::Ordering::Relaxed);
        let world = StoppedWorld::new();
        let plan = RootPlan::prepare();
        let local = 5u64;
        let sp = &local as *const u64 as usize - 64;
        let (mut maps, mut out) = (MmapVec::new(), MmapVec::new());
        collect_roots(&NoHeap, &world, &plan, &RootOptions::all(), sp, &mut maps, &mut out);
        let g = &GLOBAL_SLOT as *const _ as usize;
        assert!(out.iter().any(|r| r.kind == RootKind::Globals && r.start <= g && g < r.end));
        let l = &local as *const u64 as usize;
        assert!(out.iter().any(|r| r.kind == RootKind::Stack && r.start <= l && l < r.end));
        // Nothing below the stack pointer's red zone.
        assert!(out.iter().all(|r| !(r.kind == RootKind::Stack && r.start < sp - 128)));
    }
}
