//! Heap profiles (`profile=PATH`), end to end: each case runs in a child process (this
//! test binary re-run) with `HEAPSWEEP` set, since profiling must be on from the first
//! allocation; the parent reads the profile back and checks it against what the child
//! did.

use alloc_core::profile::{HeapProfile, Site};
use std::hint::black_box;
use std::path::{Path, PathBuf};
mod common;

#[global_allocator]
static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();

const KEPT: usize = 100;
const KEPT_SIZE: usize = 1000;
const BIG: usize = 10;
const BIG_SIZE: usize = 1 << 20;

#[inline(never)]
fn site_kept() -> Vec<Box<[u8]>> {
    (0..KEPT).map(|_| black_box(vec![7u8; KEPT_SIZE].into_boxed_slice())).collect()
}

#[inline(never)]
fn site_big() -> Vec<u8> {
    black_box(vec![1u8; BIG_SIZE])
}

/// Short-lived blocks of many sizes from one site, each freed before the next is made
/// (grouped in the thread's buffer of profile events).
const SHORT: usize = 1000;
fn short_size(i: usize) -> usize {
    8 + (i % 97) * 8
}

#[inline(never)]
fn site_short_lived() {
    for i in 0..SHORT {
        drop(black_box(vec![5u8; short_size(i)]));
    }
}

#[inline(never)]
fn site_grows() -> Vec<u64> {
    let mut v = Vec::new();
    for i in 0..10_000u64 {
        v.push(black_box(i));
    }
    v
}

#[inline(never)]
#[allow(clippy::vec_box)] // one 64-byte block per element is the point
fn site_threads(n: usize) -> Vec<Box<[u8; 64]>> {
    (0..n).map(|_| black_box(Box::new([0u8; 64]))).collect()
}

/// The growing structure of the `retention` case: blocks kept by a static.
#[allow(clippy::vec_box)] // one block per element is the point
static CACHE: std::sync::Mutex<Vec<Box<[u8; CACHED_SIZE]>>> = std::sync::Mutex::new(Vec::new());
const CACHED: usize = 200;
const CACHED_SIZE: usize = 4000;

#[inline(never)]
fn site_cached() {
    let mut cache = CACHE.lock().unwrap();
    for _ in 0..CACHED {
        cache.push(black_box(Box::new([3u8; CACHED_SIZE])));
    }
}

fn run_case(case: &str, dir: &Path) {
    match case {
        "retention" => {
            site_cached();
            // Held by this frame: a root on the stack.
            let held = site_kept();
            alloc_core::profile::dump(dir.join("api.json")).unwrap();
            black_box(&held);
        }
        "basic" => {
            let kept = site_kept();
            let big: Vec<Vec<u8>> = (0..BIG).map(|_| site_big()).collect();
            drop(black_box(big));
            let grown = site_grows();
            drop(black_box(grown));
            site_short_lived();
            alloc_core::profile::dump(dir.join("api.json")).unwrap();
            std::mem::forget(kept);
        }
        "signal" => {
            // SAFETY: raising a signal whose handler the allocator installed.
            unsafe { libc::raise(libc::SIGUSR2) };
            let kept = site_kept();
            black_box(&kept);
            // SAFETY: as above.
            unsafe { libc::raise(libc::SIGUSR2) };
            black_box(site_big());
        }
        "threads" => {
            // Blocks made on one thread and freed on others, and the reverse.
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    std::thread::spawn(|| {
                        let mut keep = Vec::new();
                        for round in 0..50 {
                            let blocks = site_threads(100);
                            if round % 2 == 0 {
                                keep.push(blocks);
                            }
                        }
                        keep
                    })
                })
                .collect();
            let all: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            let mut total = 0;
            for keep in all {
                total += keep.len();
                drop(keep);
            }
            assert_eq!(total, 100);
            let kept = site_threads(10);
            std::mem::forget(kept);
        }
        "nostack" => {
            let kept = site_kept();
            std::mem::forget(kept);
        }
        _ => panic!("unknown case {case}"),
    }
}

#[test]
fn profile_child_entry() {
    if let (Ok(case), Ok(dir)) = (std::env::var("PROFILE_CASE"), std::env::var("PROFILE_DIR")) {
        run_case(&case, Path::new(&dir));
    }
}

/// Runs `case` in a child with `HEAPSWEEP=profile=DIR/exit.json,...extra`.
fn child(case: &str, extra: &str) -> PathBuf {
    let dir = common::scratch_dir(&format!("profile-{case}"));
    let value = format!("profile=\"{}\",check_at_exit=0{extra}", dir.join("exit.json").display());
    let dir_text = dir.display().to_string();
    let out = common::run_child(
        "profile_child_entry",
        &[("PROFILE_CASE", case), ("PROFILE_DIR", &dir_text), ("HEAPSWEEP", &value)],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {err}");
    assert!(!err.contains("warning"), "{err}");
    dir
}

fn read(path: &Path) -> HeapProfile {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    common::read_profile(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The sites with a frame of `function`, added up (a function called from several
/// places has a site per caller).
fn site(p: &HeapProfile, function: &str) -> Site {
    let found: Vec<&Site> = p
        .sites
        .iter()
        .filter(|s| s.stack.iter().any(|f| f.function.as_deref().is_some_and(|n| n.contains(function))))
        .collect();
    assert!(!found.is_empty(), "no site of {function}: {:#?}", p.sites);
    let mut sum = found[0].clone();
    for s in &found[1..] {
        sum.absorb(s);
    }
    sum
}

#[test]
fn a_profile_counts_each_site_exactly() {
    let dir = child("basic", "");
    for file in ["api.json", "exit.json"] {
        let p = read(&dir.join(file));
        assert!(p.pid > 0);
        let kept = site(&p, "site_kept");
        assert_eq!((kept.total_blocks, kept.total_bytes), (KEPT as u64, (KEPT * KEPT_SIZE) as u64));
        assert_eq!((kept.live_blocks, kept.live_bytes), (KEPT as u64, (KEPT * KEPT_SIZE) as u64));
        let big = site(&p, "site_big");
        assert_eq!((big.total_blocks, big.total_bytes), (BIG as u64, (BIG * BIG_SIZE) as u64));
        assert_eq!((big.live_blocks, big.live_bytes), (0, 0));
        assert_eq!((big.max_live_blocks, big.max_live_bytes), (BIG as u64, (BIG * BIG_SIZE) as u64));
        // The heap peaked with all the big blocks and all the kept ones live.
        assert_eq!((big.peak_blocks, big.peak_bytes), (BIG as u64, (BIG * BIG_SIZE) as u64));
        assert_eq!(kept.peak_bytes, (KEPT * KEPT_SIZE) as u64);
        assert!(p.summary.peak_bytes >= ((BIG * BIG_SIZE) + KEPT * KEPT_SIZE) as u64);
        assert!(p.summary.peak_time_us <= p.time_us);
        // Growing a Vec: each reallocation counts as an allocation of the new size.
        let grows = site(&p, "site_grows");
        assert!(grows.total_blocks > 1, "{grows:?}");
        assert_eq!(grows.live_bytes, 0);
        assert!(grows.max_live_bytes >= 10_000 * 8, "{grows:?}");
        // Short-lived blocks, counted in groups: every one, and the largest as the most
        // the site held.
        let short = site(&p, "site_short_lived");
        let short_bytes: usize = (0..SHORT).map(short_size).sum();
        assert_eq!((short.total_blocks, short.total_bytes), (SHORT as u64, short_bytes as u64));
        assert_eq!((short.live_blocks, short.live_bytes), (0, 0));
        assert_eq!((short.max_live_blocks, short.max_live_bytes), (1, short_size(96) as u64));
        // Timeline: ordered, ends at the profile's time, holds the peak.
        let t = &p.timeline;
        assert!(t.windows(2).all(|w| w[0].t_us < w[1].t_us), "{t:?}");
        assert_eq!(t.last().unwrap().t_us, p.time_us);
        assert!(t.iter().any(|pt| pt.live_bytes == p.summary.peak_bytes));
        // Modules: the test executable first, with its load address.
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(p.modules[0].path, exe.display().to_string());
    }
    let (api, exit) = (read(&dir.join("api.json")), read(&dir.join("exit.json")));
    assert!(exit.summary.total_blocks >= api.summary.total_blocks);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_signal_writes_numbered_profiles() {
    let dir = child("signal", ",profile_signal=USR2");
    let first = read(&dir.join("exit.json.1"));
    let second = read(&dir.join("exit.json.2"));
    let has_kept = |s: &Site| s.stack.iter().any(|f| f.function.as_deref().is_some_and(|n| n.contains("site_kept")));
    assert!(!first.sites.iter().any(has_kept), "the first dump came before site_kept ran");
    assert_eq!(site(&second, "site_kept").live_blocks, KEPT as u64);
    let exit = read(&dir.join("exit.json"));
    assert_eq!(site(&exit, "site_big").total_blocks, 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn frees_from_other_threads_are_counted_at_their_site() {
    let dir = child("threads", "");
    let p = read(&dir.join("exit.json"));
    let s = site(&p, "site_threads");
    assert_eq!(s.total_blocks, 4 * 50 * 100 + 10);
    assert_eq!((s.live_blocks, s.live_bytes), (10, 640));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn without_stacks_everything_is_one_site_without_a_stack() {
    let dir = child("nostack", ",stack_depth=0");
    let p = read(&dir.join("exit.json"));
    assert_eq!(p.sites.len(), 1, "{:#?}", p.sites);
    let s = &p.sites[0];
    assert!(s.stack.is_empty() && s.stack_id.is_none(), "{s:?}");
    assert_eq!((s.total_blocks, s.live_bytes), (p.summary.total_blocks, p.summary.live_bytes));
    assert!(s.live_bytes >= (KEPT * KEPT_SIZE) as u64);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn dump_says_when_profiling_is_off() {
    if alloc_core::profile::is_enabled() {
        return; // this process was started with profile= (not by this test suite)
    }
    let e = alloc_core::profile::dump("/tmp/never-written.json").unwrap_err();
    assert!(e.contains("profiling is off") && e.contains("never-written.json"), "{e}");
    assert!(alloc_core::profile::snapshot().is_none());
}

#[test]
fn bad_profile_signal_values_are_warned_about() {
    let opts = alloc_core::config::parse(b"profile_signal=SIGUSR2", &mut |w| panic!("{w}"));
    assert_eq!(opts.profile_signal.number(), Some(libc::SIGUSR2));
    let opts = alloc_core::config::parse(b"profile_signal=12", &mut |w| panic!("{w}"));
    assert_eq!(opts.profile_signal.number(), Some(12));
    let mut warnings = Vec::new();
    let opts = alloc_core::config::parse(b"profile_signal=USR9", &mut |w| warnings.push(w.to_string()));
    assert_eq!(opts.profile_signal.number(), None);
    assert!(
        warnings.len() == 1 && warnings[0].contains("profile_signal") && warnings[0].contains("USR2"),
        "{warnings:?}"
    );
}

/// The retention entry of the largest site's chosen block of `size` bytes.
fn retention_of(p: &HeapProfile, size: u64) -> &alloc_core::profile::model::SiteRetention {
    let found = p.retention.iter().find(|r| r.size == size);
    found.unwrap_or_else(|| panic!("no chain to a block of {size} bytes: {:#?}", p.retention))
}

fn names(frames: &[alloc_core::report::model::Frame]) -> Vec<&str> {
    frames.iter().filter_map(|f| f.function.as_deref()).collect()
}

#[test]
fn with_verbosity_2_a_profile_says_what_keeps_its_largest_sites_alive() {
    let dir = child("retention", ",verbosity=2");
    for file in ["api.json", "exit.json"] {
        let p = read(&dir.join(file));
        assert!(p.retention.len() <= 5, "{file}: at most five sites");
        // The largest site: the boxes kept by the static CACHE, through its Vec's buffer.
        let cached = retention_of(&p, CACHED_SIZE as u64);
        assert_eq!(cached.stack_id, p.retention[0].stack_id, "{file}: the most live bytes come first");
        let chain = cached.chain.as_ref().unwrap_or_else(|| panic!("{file}: {cached:#?}"));
        assert_eq!(chain.root.kind, "globals", "{file}: {chain:#?}");
        assert!(chain.root.symbol.as_deref().is_some_and(|s| s.contains("CACHE")), "{file}: {chain:#?}");
        assert_eq!(chain.steps.len(), 2, "{file}: the Vec's buffer, then the box: {chain:#?}");
        let (buffer, boxed) = (&chain.steps[0], &chain.steps[1]);
        assert!(buffer.next_offset.is_some_and(|o| o % 8 == 0 && o < buffer.size), "{file}: {buffer:#?}");
        assert_eq!((boxed.address.as_str(), boxed.size, boxed.next_offset), (cached.address.as_str(), 4000, None));
        assert!(names(&boxed.stack).iter().any(|n| n.contains("site_cached")), "{file}: {boxed:#?}");
        assert!(names(&buffer.stack).iter().any(|n| n.contains("site_cached")), "{file}: {buffer:#?}");
    }
    // While `dump` ran, the second largest site's boxes were held by the child's frame.
    let p = read(&dir.join("api.json"));
    let held = retention_of(&p, KEPT_SIZE as u64);
    let chain = held.chain.as_ref().unwrap_or_else(|| panic!("{held:#?}"));
    assert_eq!((chain.root.kind.as_str(), chain.steps.len()), ("stack", 2), "{chain:#?}");
    assert!(names(&chain.steps[1].stack).iter().any(|n| n.contains("site_kept")), "{chain:#?}");
    // Without verbosity=2, no chains.
    let plain = read(&child("retention", "").join("api.json"));
    assert!(plain.retention.is_empty());
}
