//! Allocation stacks: capture on every allocation, interned as 32-bit ids.
//!
//! # What it owns
//! [`capture`] (one `#[inline(never)]` call site, so the allocator's own frames at the top
//! of every stack are always the same and trimmed at report time), the per-thread
//! [`StackCache`], and the depot (`depot`) that interns return-address arrays into
//! [`StackId`]s. Symbolization happens elsewhere, late (`report`), never here.
//!
//! # Cost
//! A validated frame-pointer walk (`unwind`) computes a 64-bit hash of the return
//! addresses as it goes; the per-thread cache maps that hash to an id, so a stack seen
//! before costs the walk and one cache probe. A new stack is interned in the lock-free
//! depot. See `stack::tests::capture_cost` for figures on this machine.

mod depot;
mod unwind;

pub(crate) use depot::{depot_stats, frames};

/// A recorded allocation stack: an index into the stack depot. `StackId::NONE` (0) means
/// no stack was recorded (`stack_depth=0`, or the depot is full).
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

/// The current thread's stack, `[lo, hi)`: frame-pointer walks never read outside it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StackBounds {
    pub(crate) lo: usize,
    pub(crate) hi: usize,
}

/// The calling thread's stack bounds (`pthread_getattr_np`; it may use libc's malloc,
/// never ours). Called once per thread, when its heap is made.
pub(crate) fn current_thread_stack_bounds() -> StackBounds {
    // SAFETY: attr is initialized by pthread_getattr_np before use and destroyed after.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return StackBounds { lo: 0, hi: 0 };
        }
        let mut addr: *mut libc::c_void = core::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        if !ok {
            return StackBounds { lo: 0, hi: 0 };
        }
        StackBounds { lo: addr as usize, hi: addr as usize + size }
    }
}

const CACHE_SLOTS: usize = 64;

/// A per-thread direct-mapped cache from a stack's 64-bit hash to its id. Plain data,
/// embedded in each thread's heap. The hash is trusted: with 64 bits, two distinct stacks
/// of one thread colliding is about as likely as a cosmic-ray bit flip (2^-64 per pair),
/// and a collision would only attribute an allocation to the wrong stack.
pub(crate) struct StackCache {
    hashes: [u64; CACHE_SLOTS],
    ids: [u32; CACHE_SLOTS],
}

impl StackCache {
    pub(crate) const fn new() -> Self {
        Self { hashes: [0; CACHE_SLOTS], ids: [0; CACHE_SLOTS] }
    }
}

/// Most frames a stack may hold.
pub(crate) const MAX_DEPTH: usize = 64;

/// Captures the caller's stack (return addresses, innermost first) up to `depth` frames
/// and interns it. `fast` chooses the frame-pointer walk (with the DWARF unwinder as
/// fallback when the walk finds fewer than 2 frames); otherwise the DWARF unwinder.
/// Never allocates through the global allocator, never locks.
#[inline(never)]
pub(crate) fn capture(depth: usize, fast: bool, bounds: StackBounds, cache: &mut StackCache) -> StackId {
    let depth = depth.min(MAX_DEPTH);
    let mut frames = [0usize; MAX_DEPTH];
    let (n, hash) = if fast {
        match unwind::walk_frame_pointers(&mut frames[..depth], bounds) {
            (n, h) if n >= 2 => (n, h),
            _ => unwind::walk_dwarf(&mut frames[..depth]),
        }
    } else {
        unwind::walk_dwarf(&mut frames[..depth])
    };
    if n == 0 {
        return StackId::NONE;
    }
    let slot = (hash as usize) % CACHE_SLOTS;
    if cache.hashes[slot] == hash && cache.ids[slot] != 0 {
        return StackId(cache.ids[slot]);
    }
    let id = depot::intern(&frames[..n], hash);
    if id != StackId::NONE {
        cache.hashes[slot] = hash;
        cache.ids[slot] = id.0;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here(cache: &mut StackCache, fast: bool) -> StackId {
        capture(32, fast, current_thread_stack_bounds(), cache)
    }

    // The two sites differ in their bodies so that the optimizer cannot merge them into
    // one function (rustc merges identical functions).
    #[inline(never)]
    fn site_a(cache: &mut StackCache) -> StackId {
        let id = here(cache, true);
        std::hint::black_box(1u8);
        id
    }

    #[inline(never)]
    fn site_b(cache: &mut StackCache) -> StackId {
        let id = here(cache, true);
        std::hint::black_box(2u16);
        id
    }

    fn names_of(id: StackId) -> Vec<String> {
        let mut names = Vec::new();
        for &ip in frames(id) {
            backtrace::resolve(ip as *mut core::ffi::c_void, |s| {
                if let Some(n) = s.name() {
                    names.push(format!("{n:#}"));
                }
            });
        }
        names
    }

    #[test]
    fn same_site_same_id_and_different_sites_differ() {
        // One call site in a loop (as in `threads_interning_concurrently_agree`): the same
        // stack each time, through the cache and through the depot alone.
        let mut cache = StackCache::new();
        let cached: Vec<StackId> = (0..200).map(|_| site_a(&mut cache)).collect();
        let uncached: Vec<StackId> = (0..200).map(|_| site_a(&mut StackCache::new())).collect();
        assert_ne!(cached[0], StackId::NONE);
        assert!(cached.iter().all(|&x| x == cached[0]));
        assert!(uncached.iter().all(|&x| x == uncached[0]));
        let b = site_b(&mut cache);
        assert_ne!(cached[0], b);
        assert_ne!(uncached[0], b);
    }

    #[test]
    fn frames_resolve_to_the_calling_functions() {
        let id = site_a(&mut StackCache::new());
        let names = names_of(id);
        assert!(names.iter().any(|n| n.contains("site_a")), "{names:?}");
        assert!(names.iter().any(|n| n.contains("frames_resolve_to_the_calling_functions")), "{names:?}");
    }

    #[test]
    fn depth_is_respected() {
        let id = capture(3, true, current_thread_stack_bounds(), &mut StackCache::new());
        assert!(frames(id).len() <= 3 && !frames(id).is_empty());
    }

    #[test]
    fn dwarf_fallback_finds_the_same_functions() {
        let id = here(&mut StackCache::new(), false);
        let names = names_of(id);
        assert!(names.iter().any(|n| n.contains("dwarf_fallback_finds_the_same_functions")), "{names:?}");
    }

    #[test]
    fn threads_interning_concurrently_agree() {
        let ids: Vec<Vec<StackId>> = (0..8)
            .map(|_| std::thread::spawn(|| (0..200).map(|_| site_b(&mut StackCache::new())).collect::<Vec<_>>()))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        // Within a thread the stack is the same each time; across threads the outer
        // frames (thread start) are the same too, so all ids agree.
        let first = ids[0][0];
        assert!(ids.iter().flatten().all(|&i| i == first));
    }

    #[test]
    fn walking_a_small_thread_stack_is_safe() {
        let id = std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(|| here(&mut StackCache::new(), true))
            .unwrap()
            .join()
            .unwrap();
        assert!(!frames(id).is_empty());
    }

    #[test]
    #[ignore = "prints timings; run with --release -- --ignored"]
    fn capture_cost() {
        let bounds = current_thread_stack_bounds();
        let mut cache = StackCache::new();
        for depth in [8, 32] {
            for fast in [true, false] {
                let n = if fast { 1_000_000 } else { 10_000 };
                let t = std::time::Instant::now();
                for _ in 0..n {
                    std::hint::black_box(capture(depth, fast, bounds, &mut cache));
                }
                println!("depth {depth} fast {fast}: {:.1} ns/capture", t.elapsed().as_nanos() as f64 / n as f64);
            }
        }
    }
}
