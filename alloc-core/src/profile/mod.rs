//! Heap profiles: per allocation stack, what was allocated, what is live, what was live
//! at the heap's peak, how long blocks lived; and a timeline of the live heap.
//!
//! Turned on for the whole run by `HEAPSWEEP=profile=PATH` (it must count from the first
//! allocation: a free needs the allocation it undoes). Written at exit to PATH (`%p`
//! becomes the pid), on [`dump`], and on a signal with `profile_signal=NAME`.
//!
//! ```no_run
//! // HEAPSWEEP=profile=heap-%p.json ./my-service
//! if let Some(p) = alloc_core::profile::snapshot() {
//!     println!("peak {} bytes, now {} bytes", p.summary.peak_bytes, p.summary.live_bytes);
//! }
//! alloc_core::profile::dump("now.json").unwrap();
//! ```
//!
//! # What it owns
//! - [`model`]: the public profile types (`HeapProfile` and its parts), from the
//!   `heapsweep-format` crate.
//! - `recorder`: the counters, updated on the allocation path (see its notes for the
//!   design and the cost); `events`: the per-thread buffers that feed it in batches.
//! - `timeline`: the bounded timeline of live bytes.
//! - `signal`: the `profile_signal` handler and the dump it asks for.
//! - `retention`: with `verbosity=2`, why the largest sites are alive.
//! - Here: turning it on, snapshots, writing files.
//!
//! # Who calls it
//! The heap calls `recorder::record_*` for tracked blocks (not the allocator's own) while
//! `recorder::active`. Snapshots run with the reentrancy guard set: their allocations
//! (symbolization, JSON) go to the untracked internal heap and are not counted.

pub(crate) mod events;
/// The heap profile model, from the `heapsweep-format` crate.
pub use heapsweep_format::profile as model;
pub(crate) mod recorder;
mod retention;
pub(crate) mod signal;
pub(crate) mod timeline;

pub use model::{HeapProfile, ProfileSummary, Site, TimelinePoint};

use crate::report::symbolize::{self, InProcess, RawOnly, Symbolizer};
use crate::thread_state::ReentrancyGuard;
use core::sync::atomic::Ordering;
use recorder::{SiteCounters, RECORDER, STATE};
use std::path::Path;

/// Turns profiling on if the options ask for it. Called once by the allocator's
/// initialization, before any tracked allocation, without allocating.
pub(crate) fn init(opts: &crate::config::Options) {
    if opts.profile.is_empty() {
        return;
    }
    {
        let mut r = RECORDER.lock();
        r.start_ns = recorder::monotonic_ns();
        r.refresh_clock();
    }
    crate::os::register_own_mapping(&RECORDER as *const _ as usize, core::mem::size_of_val(&RECORDER));
    crate::track::note_profile_on();
    STATE.store(recorder::ON, Ordering::Relaxed);
    if let Some(sig) = opts.profile_signal.number() {
        signal::set_writer(|n| dump_to_configured(Some(n)));
        signal::install(sig);
    }
}

/// Whether this run counts allocations per stack (`profile=PATH` was given).
pub fn is_enabled() -> bool {
    recorder::active()
}

/// The profile as of now, symbolized as the `symbolize` option says; `None` when
/// profiling is off. With `verbosity=2` it holds why the sites with the most live bytes
/// are alive ([`HeapProfile::retention`]: this stops the world once, as a leak check does).
#[inline(never)]
pub fn snapshot() -> Option<HeapProfile> {
    // The caller's callee-saved registers, kept in this frame, which the stack scan covers.
    let mut spill = [0usize; crate::platform::CALLEE_SAVED_REGISTERS];
    let sp = crate::leak::spill_registers(&mut spill);
    let profile = take(Some(sp));
    std::hint::black_box(&spill);
    profile
}

/// The profile; with `chains_from` (where the calling thread's stack is scanned from)
/// and `verbosity=2`, with the retention chains of its largest sites. A profile a signal
/// asked for is written from inside some allocation, where the heap cannot be walked with
/// the world stopped: it has none.
fn take(chains_from: Option<usize>) -> Option<HeapProfile> {
    if !recorder::active() {
        return None;
    }
    let _guard = ReentrancyGuard::enter();
    let raw = RawSnapshot::take();
    let mut sym: Box<dyn Symbolizer> =
        if crate::config::current().symbolize { Box::<InProcess>::default() } else { Box::new(RawOnly) };
    let frames_of = |id| crate::stack::frames(crate::stack::StackId::from_u32(id)).to_vec();
    let (mut profile, raw_ids) = raw.build_with_ids(&frames_of, &mut *sym);
    if let (Some(sp), true) = (chains_from, crate::config::current().verbosity >= 2) {
        profile.retention = retention::of_largest_sites(&profile, &raw_ids, sp);
    }
    Some(profile)
}

/// Writes the profile as of now to `path` (through a temporary file renamed over it).
/// The error names the path and the cause, or says that profiling is off.
#[inline(never)]
pub fn dump(path: impl AsRef<Path>) -> Result<(), String> {
    let mut spill = [0usize; crate::platform::CALLEE_SAVED_REGISTERS];
    let sp = crate::leak::spill_registers(&mut spill);
    let written = write(path.as_ref(), Some(sp));
    std::hint::black_box(&spill);
    written
}

/// [`dump`], with the retention chains as [`take`] says.
fn write(path: &Path, chains_from: Option<usize>) -> Result<(), String> {
    let Some(profile) = take(chains_from) else {
        return Err(format!(
            "cannot write a heap profile to {}: profiling is off (run with HEAPSWEEP=profile=PATH)",
            path.display()
        ));
    };
    let _guard = ReentrancyGuard::enter();
    crate::report::json::write_atomically(path, std::process::id(), (profile.to_json() + "\n").as_bytes())
}

/// Writes the profile to the `profile` path (`%p` expanded, `suffix` appended: a
/// signal's, without retention chains). Problems are printed as one warning line.
#[inline(never)]
pub(crate) fn dump_to_configured(suffix: Option<u64>) {
    let opts = crate::config::current();
    let Some(template) = opts.profile.as_option() else { return };
    let _guard = ReentrancyGuard::enter();
    let mut path = template.expand(std::process::id()).as_path().as_os_str().to_owned();
    if let Some(n) = suffix {
        path.push(format!(".{n}"));
    }
    // At exit the chains are found from here (the exit path's frames above are roots);
    // on a signal there are none (see `take`).
    let mut spill = [0usize; crate::platform::CALLEE_SAVED_REGISTERS];
    let sp = crate::leak::spill_registers(&mut spill);
    if let Err(e) = write(Path::new(&path), suffix.is_none().then_some(sp)) {
        warning!("{}", e);
    }
    std::hint::black_box(&spill);
}

/// At exit (before the leak check): the final profile.
pub(crate) fn run_at_exit() {
    if recorder::active() {
        dump_to_configured(None);
    }
}

/// The recorder's state copied out under its lock.
struct RawSnapshot {
    sites: Vec<(u32, SiteCounters)>,
    summary: ProfileSummary,
    time_us: u64,
    timeline: Vec<timeline::Point>,
}

impl RawSnapshot {
    /// Copies the recorder. Memory is reserved before taking the lock (allocating under
    /// it is allowed, the internal heap never records, but the lock is kept short).
    fn take() -> Self {
        events::flush_this_thread();
        let n = RECORDER.lock().sites.len();
        let mut sites = Vec::with_capacity(n + 1024);
        let mut timeline = Vec::with_capacity(timeline::CAPACITY);
        let mut r = RECORDER.lock();
        r.refresh_clock();
        let (now, seq) = (r.now_us, r.peak_seq);
        for (i, c) in r.sites.iter().enumerate().take(sites.capacity()) {
            if c.total_blocks != 0 {
                sites.push((i as u32, c.settled(now, seq)));
            }
        }
        timeline.extend_from_slice(r.timeline.points());
        // Only the peak's time: `build` adds the totals up from the sites.
        let summary = ProfileSummary { peak_time_us: r.peak_us, ..ProfileSummary::default() };
        drop(r);
        Self { sites, summary, time_us: now, timeline }
    }

    /// The profile: sites symbolized and sorted, the peak and the present added to the
    /// timeline.
    #[cfg(test)]
    fn build(self, frames_of: &dyn Fn(u32) -> Vec<usize>, sym: &mut dyn Symbolizer) -> HeapProfile {
        self.build_with_ids(frames_of, sym).0
    }

    /// [`RawSnapshot::build`], and for each site (by its `stack_id`) the raw stack ids
    /// merged into it.
    fn build_with_ids(
        self,
        frames_of: &dyn Fn(u32) -> Vec<usize>,
        sym: &mut dyn Symbolizer,
    ) -> (HeapProfile, retention::RawIds) {
        let sites: Vec<Site> = self
            .sites
            .iter()
            .map(|&(id, c)| {
                // Negative live counts are frees applied before their allocations (see
                // `events`): nothing is live there yet.
                let clamp = |v: i64| v.max(0) as u64;
                let (live_bytes, peak_bytes) = (clamp(c.live_bytes), clamp(c.peak_bytes));
                Site {
                    stack_id: (id != 0).then_some(id),
                    stack: if id == 0 { Vec::new() } else { symbolize::stack_frames(&frames_of(id), sym) },
                    total_blocks: c.total_blocks,
                    total_bytes: c.total_bytes,
                    live_blocks: clamp(c.live_blocks),
                    live_bytes,
                    peak_blocks: clamp(c.peak_blocks),
                    peak_bytes,
                    max_live_bytes: clamp(c.max_live_bytes).max(live_bytes).max(peak_bytes),
                    max_live_blocks: clamp(c.max_live_blocks),
                    lifetime_us: c.lifetime_us,
                }
            })
            .collect();
        let (mut sites, raw_ids) = merge_equal_stacks(sites);
        sites.sort_by(|a, b| b.total_bytes.cmp(&a.total_bytes).then(a.stack_id.cmp(&b.stack_id)));
        let summary = add_up(&mut sites, self.summary.peak_time_us);
        let s = &summary;
        // The peak and the present are points of their own, replacing samples taken at
        // the same (coarse) time. A peak in the snapshot's own clock tick that differs
        // from the present is put one microsecond before it: it came first.
        let now = self.time_us;
        let peak = (s.peak_bytes, s.peak_blocks);
        let peak_t = if s.peak_time_us >= now && peak != (s.live_bytes, s.live_blocks) {
            now.saturating_sub(1)
        } else {
            s.peak_time_us.min(now)
        };
        let mut points = self.timeline;
        points.retain(|p| p.0 != peak_t && p.0 < now);
        if peak_t < now {
            points.push((peak_t, peak.0, peak.1));
        }
        points.push((now, s.live_bytes, s.live_blocks));
        points.sort_by_key(|p| p.0);
        let profile = HeapProfile {
            format: HeapProfile::FORMAT.into(),
            version: HeapProfile::VERSION,
            program: crate::report::program_name(),
            pid: std::process::id(),
            time_us: self.time_us,
            summary,
            sites,
            timeline: points
                .into_iter()
                .map(|(t_us, live_bytes, live_blocks)| TimelinePoint { t_us, live_bytes, live_blocks })
                .collect(),
            modules: crate::report::modules::loaded_modules(),
            retention: Vec::new(),
        };
        (profile, raw_ids)
    }
}

/// The summary: the sites added up. Exact batches (one thread) give a live total at most
/// the peak; where frees applied before their allocations (several threads) make the
/// present look higher than the recorded peak, each site's peak is raised to its live
/// counts, so the profile stays consistent.
fn add_up(sites: &mut [Site], peak_time_us: u64) -> ProfileSummary {
    let s = ProfileSummary::of_sites(sites, peak_time_us);
    if s.live_bytes <= s.peak_bytes {
        return s;
    }
    for site in sites.iter_mut() {
        if site.live_bytes > site.peak_bytes {
            site.peak_bytes = site.live_bytes;
            site.peak_blocks = site.live_blocks;
        }
    }
    ProfileSummary::of_sites(sites, peak_time_us)
}

/// Merges sites whose stacks are equal once trimmed: raw stacks differ in the
/// allocator's plumbing (a `Vec` first allocated by `push` and later moved by `realloc`),
/// which the trimmed stack no longer shows. The merged site keeps the smallest id; the
/// raw ids of each merged site are returned by that id.
fn merge_equal_stacks(sites: Vec<Site>) -> (Vec<Site>, retention::RawIds) {
    let mut index: std::collections::HashMap<Vec<model::Frame>, usize> = std::collections::HashMap::new();
    let mut out: Vec<Site> = Vec::with_capacity(sites.len());
    let mut ids: Vec<Vec<u32>> = Vec::with_capacity(sites.len());
    for site in sites {
        match index.get(&site.stack) {
            Some(&i) => {
                ids[i].extend(site.stack_id);
                let m = &mut out[i];
                m.stack_id = match (m.stack_id, site.stack_id) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                m.absorb(&site);
            }
            None => {
                index.insert(site.stack.clone(), out.len());
                ids.push(site.stack_id.into_iter().collect());
                out.push(site);
            }
        }
    }
    let raw_ids = out.iter().zip(ids).filter_map(|(site, ids)| Some((site.stack_id?, ids))).collect();
    (out, raw_ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::Frame;

    fn counters(total: u64, live: i64, peak: i64) -> SiteCounters {
        SiteCounters {
            total_blocks: total,
            total_bytes: total * 10,
            live_blocks: live,
            live_bytes: live * 10,
            max_live_blocks: peak.max(live),
            max_live_bytes: peak.max(live) * 10,
            peak_blocks: peak,
            peak_bytes: peak * 10,
            ..SiteCounters::default()
        }
    }

    fn raw(
        sites: Vec<(u32, SiteCounters)>,
        peak_time_us: u64,
        time_us: u64,
        timeline: Vec<timeline::Point>,
    ) -> RawSnapshot {
        RawSnapshot { sites, summary: ProfileSummary { peak_time_us, ..ProfileSummary::default() }, time_us, timeline }
    }

    /// Stacks 1 and 2 differ only in an allocator frame (address 0xa), which trimming
    /// drops; stack 3 is another site.
    fn frames_of(id: u32) -> Vec<usize> {
        match id {
            1 => vec![0xa, 0x100, 0x200],
            2 => vec![0x100, 0x200],
            _ => vec![0x300],
        }
    }

    fn names(ip: usize) -> Vec<Frame> {
        let name = match ip {
            0xa => "alloc_core::heap::Heap::alloc",
            0x100 => "app::make",
            0x200 => "app::main",
            _ => "app::other",
        };
        vec![Frame { function: Some(name.into()), ..Frame::unresolved(ip) }]
    }

    #[test]
    fn stacks_equal_once_trimmed_are_one_site_and_sites_sort_by_total_bytes() {
        let r = raw(vec![(1, counters(5, 1, 1)), (2, counters(3, 2, 2)), (3, counters(10, 0, 0))], 50, 100, vec![]);
        let p = r.build(&frames_of, &mut names);
        p.validate().unwrap();
        assert_eq!(p.sites.len(), 2);
        assert_eq!(p.sites[0].stack_id, Some(3));
        let merged = &p.sites[1];
        assert_eq!((merged.stack_id, merged.total_blocks, merged.live_blocks, merged.peak_blocks), (Some(1), 8, 3, 3));
        assert_eq!(
            merged.stack.iter().map(|f| f.function.as_deref().unwrap()).collect::<Vec<_>>(),
            ["app::make", "app::main"]
        );
    }

    #[test]
    fn the_timeline_holds_the_peak_and_the_present_even_in_one_clock_tick() {
        // Peak at 100 µs, the snapshot also at 100 µs, with less live than at the peak.
        let r = raw(vec![(3, counters(10, 1, 4))], 100, 100, vec![(0, 0, 0), (100, 20, 2)]);
        let p = r.build(&frames_of, &mut names);
        let t: Vec<(u64, u64)> = p.timeline.iter().map(|pt| (pt.t_us, pt.live_bytes)).collect();
        assert_eq!(t, [(0, 0), (99, 40), (100, 10)]);
        // Peak earlier, a sample at the same time as the peak is replaced by it.
        let r = raw(vec![(3, counters(10, 1, 4))], 60, 100, vec![(0, 0, 0), (60, 30, 3), (80, 20, 2)]);
        let p = r.build(&frames_of, &mut names);
        let t: Vec<(u64, u64)> = p.timeline.iter().map(|pt| (pt.t_us, pt.live_bytes)).collect();
        assert_eq!(t, [(0, 0), (60, 40), (80, 20), (100, 10)]);
    }

    #[test]
    fn frees_applied_early_never_make_a_profile_inconsistent() {
        // Site 1 shows -2 live (frees of another thread's blocks applied first); site 3
        // shows more live now than the recorded peak snapshot says.
        let r = raw(vec![(1, counters(5, -2, 1)), (3, counters(10, 6, 4))], 50, 100, vec![]);
        let p = r.build(&frames_of, &mut names);
        p.validate().unwrap();
        assert!(p.sites.iter().all(|s| s.peak_bytes <= s.max_live_bytes));
        assert_eq!((p.summary.live_blocks, p.summary.peak_blocks), (6, 7));
    }
}
