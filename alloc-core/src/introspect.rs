//! Introspection in the spirit of Python's `sys.getsizeof`, `id()` and
//! `sys._debugmallocstats()`: [`stats`], [`usable_size`], [`block_info`].
//!
//! These are for programs running under [`HeapSweep`](crate::HeapSweep) as their global
//! allocator; under another allocator they report nothing (`None`, zero counts).

use crate::block::{self, BlockRef};
use crate::heap::{locked, registry};
use crate::page::{GEN_MASK, GEN_SHIFT, IGNORED};
use crate::segment::{self, POOL};
use crate::size_class::{class_size, CLASS_COUNT};
use crate::stack::StackId;
use crate::thread_state;
use crate::{counters, page};
use core::fmt;
use core::sync::atomic::Ordering;

/// Heap statistics, from [`stats`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Blocks live now.
    pub current_blocks: u64,
    /// Bytes live now (sizes as requested).
    pub current_bytes: u64,
    /// Most blocks live at once.
    pub peak_blocks: u64,
    /// Most bytes live at once (exact for one thread; with several threads, low by at
    /// most 256 KiB per thread, the granularity at which heaps publish their balance).
    pub peak_bytes: u64,
    /// Blocks allocated since the start.
    pub total_blocks: u64,
    /// Bytes allocated since the start.
    pub total_bytes: u64,
    /// Threads with a heap now.
    pub threads: usize,
    /// Segments mapped now (4 MiB each, or more for large blocks).
    pub segments: usize,
    /// Address space of those segments, in bytes (not all of it touched).
    pub mapped_bytes: usize,
    /// Distinct allocation stacks recorded.
    pub stacks: u64,
    /// Bytes of return addresses the stack depot holds.
    pub stack_bytes: u64,
    /// Allocations whose stack was not recorded because the depot was full.
    pub stacks_dropped: u64,
    /// Per size class usage, for classes with at least one page.
    pub classes: Vec<ClassStats>,
    /// Leak sweeps run (`alloc_core::sweep`), per generation swept.
    pub sweeps: [u64; 3],
    /// Leaked blocks the sweeps reported (each once).
    pub sweep_reported_blocks: u64,
    /// Young sweeps scan every block of the older generations (no record of the pages
    /// written since the last sweep); set at the first young sweep.
    pub sweep_young_fallback: bool,
    /// Flood fills of checks and sweeps that the mark helper thread shared (it runs
    /// beside the sweeper thread on machines with two cores or more, and marks with the
    /// thread that stopped the world in heaps of 65,536 block slots or more).
    pub mark_helper_fills: u64,
}

/// One size class's usage, in [`Stats::classes`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClassStats {
    /// Block size of the class.
    pub block_size: usize,
    /// Pages of the class.
    pub pages: usize,
    /// Blocks those pages hold.
    pub capacity_blocks: u64,
    /// Blocks handed out and not freed (or freed by another thread and not yet collected).
    pub used_blocks: u64,
    /// Fraction of the pages' bytes not in used blocks: `1 - used * block_size / page bytes`.
    pub fragmentation: f64,
}

/// The allocator's statistics now. Cost: a walk over every page descriptor and every
/// thread's counters (not over blocks); it takes the segment pool's lock briefly.
///
/// ```
/// #[global_allocator]
/// static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();
///
/// let v = vec![0u8; 1000];
/// let s = alloc_core::stats();
/// assert!(s.current_bytes >= 1000);
/// assert!(s.peak_bytes >= s.current_bytes || s.threads > 1);
/// println!("{s}");
/// # drop(v);
/// ```
/// Tracked allocations made so far by every heap (what [`stats`] calls `total_blocks`),
/// without the rest of the statistics: the timed sweeps look at it every interval.
pub(crate) fn total_allocations() -> u64 {
    let mut allocs = 0u64;
    let mut add = |c: &counters::Counters| allocs += c.allocs.get();
    add(&counters::RETIRED);
    locked::with_shared_counters(&mut add);
    registry::for_each_heap(|h| add(&h.counters));
    allocs
}

pub fn stats() -> Stats {
    let mut s = Stats::default();
    let (mut allocs, mut alloc_bytes, mut frees, mut free_bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut add = |c: &counters::Counters| {
        allocs += c.allocs.get();
        alloc_bytes += c.alloc_bytes.get();
        frees += c.frees.get();
        free_bytes += c.free_bytes.get();
    };
    add(&counters::RETIRED);
    locked::with_shared_counters(&mut add);
    registry::for_each_heap(|h| add(&h.counters));
    s.threads = registry::heap_count();
    s.total_blocks = allocs;
    s.total_bytes = alloc_bytes;
    s.current_blocks = allocs.saturating_sub(frees);
    s.current_bytes = alloc_bytes.saturating_sub(free_bytes);
    counters::raise_peaks(s.current_bytes, s.current_blocks);
    (s.peak_bytes, s.peak_blocks) = counters::peaks();
    let depot = crate::stack::depot_stats();
    (s.stacks, s.stack_bytes, s.stacks_dropped) = (depot.stacks, depot.frame_bytes, depot.dropped);
    let per_class = class_usage(&mut s);
    s.classes = per_class.into_iter().filter(|c| c.pages > 0).collect();
    (s.sweeps, s.sweep_reported_blocks, s.sweep_young_fallback) = crate::sweep_count::sweep_stats();
    s.mark_helper_fills = crate::leak::mark::shared_fills();
    s
}

/// Walks the page descriptors into a fixed table (no allocation under the pool lock).
fn class_usage(s: &mut Stats) -> [ClassStats; CLASS_COUNT] {
    let mut table: [ClassStats; CLASS_COUNT] =
        core::array::from_fn(|c| ClassStats { block_size: class_size(c), ..Default::default() });
    let mut page_bytes = [0u64; CLASS_COUNT];
    let pool = POOL.lock();
    s.segments = pool.segments;
    s.mapped_bytes = pool.mapped_bytes;
    pool.for_each_segment(|seg| {
        // SAFETY: `seg` is on the pool's `all` list, so a live segment whose header is
        // mapped (pool invariant); `kind` is set before linking and not changed while live.
        if unsafe { (*seg).kind } != segment::KIND_PAGES {
            return;
        }
        // SAFETY:
        // - `for_each_page`: `seg` is a live page segment (on `all`, kind checked just
        //   above) and we hold the pool lock (`pool`, dropped only after the walk).
        // - `&*p`: each `p` is an in-use descriptor of `seg`, which stays in use while we
        //   hold the lock. We read `flags`, `class`, `capacity` and `slices`, set at page
        //   initialization under that lock, and `used`, an atomic. (The reference spans
        //   the owner's `free` and `bump` too, which the page's owner keeps writing
        //   without the lock; they are not read.)
        unsafe {
            segment::for_each_page(seg, |p| {
                let p = &*p;
                if p.is_internal() {
                    return;
                }
                let c = &mut table[p.class as usize];
                c.pages += 1;
                c.capacity_blocks += p.capacity as u64;
                c.used_blocks += p.used.load(Ordering::Relaxed) as u64;
                page_bytes[p.class as usize] += (p.slices as usize * page::SLICE_SIZE) as u64;
            })
        };
    });
    drop(pool);
    for (c, bytes) in table.iter_mut().zip(page_bytes) {
        if bytes > 0 {
            c.fragmentation = 1.0 - (c.used_blocks * c.block_size as u64) as f64 / bytes as f64;
        }
    }
    table
}

impl fmt::Display for Stats {
    /// A table in the manner of `sys._debugmallocstats()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "class   size   pages   capacity       used   frag")?;
        for (i, c) in self.classes.iter().enumerate() {
            writeln!(
                f,
                "{i:>5} {:>6} {:>7} {:>10} {:>10} {:>5.1}%",
                c.block_size,
                c.pages,
                c.capacity_blocks,
                c.used_blocks,
                c.fragmentation * 100.0
            )?;
        }
        writeln!(f, "{:<32} = {:>14}", "# blocks live", self.current_blocks)?;
        writeln!(f, "{:<32} = {:>14}", "# bytes live", self.current_bytes)?;
        writeln!(f, "{:<32} = {:>14}", "# blocks live at peak", self.peak_blocks)?;
        writeln!(f, "{:<32} = {:>14}", "# bytes live at peak", self.peak_bytes)?;
        writeln!(f, "{:<32} = {:>14}", "# blocks allocated in total", self.total_blocks)?;
        writeln!(f, "{:<32} = {:>14}", "# bytes allocated in total", self.total_bytes)?;
        writeln!(f, "{:<32} = {:>14}", "# threads with a heap", self.threads)?;
        writeln!(f, "{:<32} = {:>14}", "# segments", self.segments)?;
        writeln!(f, "{:<32} = {:>14}", "# bytes of address space mapped", self.mapped_bytes)?;
        writeln!(f, "{:<32} = {:>14}", "# allocation stacks", self.stacks)?;
        writeln!(f, "{:<32} = {:>14}", "# bytes of allocation stacks", self.stack_bytes)
    }
}

/// What [`block_info`] tells about one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// Address of the block's first byte.
    pub start: usize,
    /// The size the program asked for (`Layout::size()`).
    pub requested_size: usize,
    /// Bytes usable from `start` (what [`usable_size`] returns).
    pub usable_size: usize,
    /// The block size of its size class, or `None` for a large block (> 64 KiB), which has
    /// a segment of its own.
    pub size_class: Option<usize>,
    /// Generation: 0 for a new block; whole-process leak checks and sweeps promote
    /// survivors up to 2 (a scoped check, `check_scope`, promotes nothing).
    pub generation: u8,
    /// The allocation stack; see [`stack_frames`](crate::stack_frames).
    pub stack: StackId,
    /// Whether the block is excluded from leak reports ([`ignore`](crate::ignore), or
    /// allocated inside a [`disable`](crate::disable) scope).
    pub ignored: bool,
}

/// Usable size of the live block `ptr` points to the start of: at least the requested
/// size (the size class, or a large block's room to grow in place). `None` if `ptr` is not
/// the start of a live block of ours.
///
/// The answer is exact for a block the caller keeps alive during the call. The lookup
/// reads the allocator's metadata for `ptr` without a lock; for a block that another
/// thread frees or reallocates at the same time, it may read metadata being rewritten.
///
/// ```
/// #[global_allocator]
/// static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();
///
/// let b = Box::new([0u8; 100]);
/// let usable = alloc_core::usable_size(b.as_ptr()).unwrap();
/// assert!(usable >= 100 && usable <= 112);
/// ```
pub fn usable_size(ptr: *const u8) -> Option<usize> {
    let b = block::live_containing(ptr as usize)?;
    (b.start() == ptr as usize).then(|| b.usable())
}

/// Describes the live block containing `ptr` (any address inside it), like Python's
/// `id()` and `sys.getsizeof` together. `None` if no live block of ours contains it.
///
/// As for [`usable_size`], the block should be kept alive, and not resized by another
/// thread, during the call.
///
/// ```
/// #[global_allocator]
/// static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();
///
/// let v: Vec<u32> = Vec::with_capacity(10);
/// let info = alloc_core::block_info(v.as_ptr().cast()).unwrap();
/// assert_eq!(info.requested_size, 40);
/// assert_eq!(info.size_class, Some(40));
/// assert_eq!(info.generation, 0);
/// ```
pub fn block_info(ptr: *const u8) -> Option<BlockInfo> {
    let b = block::live_containing(ptr as usize)?;
    Some(describe(b))
}

fn describe(b: BlockRef) -> BlockInfo {
    let flags = b.flags();
    BlockInfo {
        start: b.start(),
        requested_size: b.size(),
        usable_size: b.usable(),
        size_class: b.class().map(class_size),
        generation: (flags & GEN_MASK) >> GEN_SHIFT,
        stack: StackId::from_u32(b.stack()),
        ignored: flags & IGNORED != 0,
    }
}

/// Marks the live block containing `ptr` as intentionally leaked: never reported, and its
/// contents count as roots. Returns false if no live block of ours contains `ptr`.
///
/// As for [`usable_size`], the block should be kept alive, and not freed or resized by
/// another thread, during the call: this writes the block's metadata.
///
/// ```
/// #[global_allocator]
/// static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();
///
/// let cache: &'static mut Vec<u8> = Box::leak(Box::new(Vec::with_capacity(64)));
/// assert!(alloc_core::ignore((cache as *const Vec<u8>).cast()));
/// assert!(alloc_core::block_info((cache as *const Vec<u8>).cast()).unwrap().ignored);
/// ```
pub fn ignore(ptr: *const u8) -> bool {
    match block::live_containing(ptr as usize) {
        Some(b) => {
            crate::page::note_ignored();
            b.set_flags(b.flags() | IGNORED);
            true
        }
        None => false,
    }
}

/// Keeps blocks this thread allocates from being reported while the guard lives (scopes
/// nest). Returned by [`disable`].
#[derive(Debug)]
#[must_use = "blocks are ignored only while the guard lives"]
pub struct DisableGuard {
    _not_send: core::marker::PhantomData<*const ()>,
}

/// Blocks this thread allocates while the returned guard lives are never reported as
/// leaks (like LSan's `__lsan_disable`).
///
/// ```
/// #[global_allocator]
/// static GLOBAL: alloc_core::HeapSweep = alloc_core::HeapSweep::new();
///
/// let leaked = {
///     let _off = alloc_core::disable();
///     Box::leak(Box::new(42u64))
/// };
/// assert!(alloc_core::block_info((leaked as *const u64).cast()).unwrap().ignored);
/// ```
pub fn disable() -> DisableGuard {
    crate::page::note_ignored();
    thread_state::disable_enter();
    DisableGuard { _not_send: core::marker::PhantomData }
}

impl Drop for DisableGuard {
    fn drop(&mut self) {
        thread_state::disable_leave();
    }
}

/// Raw return addresses of a recorded allocation stack, innermost first.
pub fn stack_frames(id: StackId) -> Vec<usize> {
    crate::stack::frames(id).to_vec()
}
