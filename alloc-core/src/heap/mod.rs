//! Heaps: one per thread, holding that thread's pages; the allocate and free paths.
//!
//! # What it owns
//! [`Heap`]: for each size class, the page blocks are taken from (`current`) and a queue
//! of the heap's other pages of that class. A thread's heap is reached through a
//! thread-local pointer (see `thread`); two more heaps are shared under locks: the
//! internal heap (the allocator's own allocations, never tracked) and the shared heap
//! (threads past their heap's retirement at exit).
//!
//! # Fast paths
//! Allocate: class lookup, stack capture, pop the current page's free list, write three
//! metadata fields. Free: one segment-map load, page lookup by address arithmetic, a
//! flags check (double free), push onto the page's free list if this thread owns the page,
//! else onto its atomic thread-free list. No lock, no call but the stack capture.
//!
//! # Slow paths
//! When the current page is empty: collect its thread-freed blocks, carve never-used
//! blocks, try up to [`SCAN_LIMIT`] other pages of the queue, adopt a page abandoned by an
//! exited thread, or take a fresh page from the segment pool.

pub(crate) mod thread;
pub(crate) mod walk;

use crate::page::{Block, Page, GEN_MASK, INTERNAL, LIVE};
use crate::profile::recorder;
use crate::segment::{self, Segment, KIND_PAGES, SEGMENT_SIZE};
use crate::size_class::{self, CLASS_COUNT, MEDIUM_MAX};
use crate::stack::{self, StackBounds, StackCache};
use crate::track::Counters;
use core::sync::atomic::Ordering;

/// Pages of the queue tried on the slow path before taking a fresh page.
const SCAN_LIMIT: usize = 16;
/// Never-used blocks moved onto the free list at a time.
const CARVE_BATCH: u32 = 64;

/// The "no page" page: empty, so the fast path falls through to the slow path.
struct EmptyPage(Page);
// SAFETY: the empty page is never written: it has no blocks, so no path mutates it.
unsafe impl Sync for EmptyPage {}
static EMPTY_PAGE: EmptyPage = EmptyPage(Page::empty());

#[inline]
fn empty_page() -> *mut Page {
    &EMPTY_PAGE.0 as *const Page as *mut Page
}

#[derive(Clone, Copy)]
struct PageQueue {
    head: *mut Page,
    tail: *mut Page,
}

/// Which of the three kinds of heap this is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum HeapKind {
    /// A thread's own heap: no lock.
    Thread,
    /// The internal heap: the allocator's own allocations; untracked, under a lock.
    Internal,
    /// For threads past their heap's retirement; tracked, under a lock.
    Shared,
}

/// A heap. Invariants: `current[c]` is [`empty_page`] or a page of class `c` owned by this
/// heap and on `queues[c]`; every page on `queues[c]` has class `c` and `heap == self`.
pub(crate) struct Heap {
    current: [*mut Page; CLASS_COUNT],
    queues: [PageQueue; CLASS_COUNT],
    pub(crate) kind: HeapKind,
    stack_depth: usize,
    fast_unwind: bool,
    pub(crate) bounds: StackBounds,
    stack_cache: StackCache,
    pub(crate) counters: Counters,
    /// Registry links (thread heaps).
    pub(crate) next: *mut Heap,
    pub(crate) prev: *mut Heap,
}

impl Heap {
    /// Sets up a heap in place (its memory may be uninitialized or a retired heap's).
    ///
    /// # Safety
    /// - `this` points to memory for a `Heap` that nobody else uses.
    pub(crate) unsafe fn init(this: *mut Heap, kind: HeapKind, bounds: StackBounds) {
        let opts = crate::config::current();
        let tracked = kind != HeapKind::Internal;
        let heap = Heap {
            current: [empty_page(); CLASS_COUNT],
            queues: [PageQueue { head: core::ptr::null_mut(), tail: core::ptr::null_mut() }; CLASS_COUNT],
            kind,
            stack_depth: if tracked && kind == HeapKind::Thread { opts.stack_depth as usize } else { 0 },
            fast_unwind: opts.fast_unwind,
            bounds,
            stack_cache: StackCache::new(),
            counters: Counters::new(),
            next: core::ptr::null_mut(),
            prev: core::ptr::null_mut(),
        };
        // SAFETY: per the contract `this` is ours; write without dropping old contents.
        unsafe { this.write(heap) };
    }

    fn push_front(&mut self, class: usize, page: *mut Page) {
        let q = &mut self.queues[class];
        // SAFETY: `page` is owned by this heap and on no queue; `q.head` is null or a
        // page of this queue.
        unsafe {
            (*page).prev = core::ptr::null_mut();
            (*page).next = q.head;
            if q.head.is_null() {
                q.tail = page
            } else {
                (*q.head).prev = page
            }
        }
        q.head = page;
    }

    fn unlink(&mut self, class: usize, page: *mut Page) {
        let q = &mut self.queues[class];
        // SAFETY: `page` is on this queue; its neighbours are pages of the queue.
        unsafe {
            let (p, n) = ((*page).prev, (*page).next);
            if p.is_null() {
                q.head = n
            } else {
                (*p).next = n
            }
            if n.is_null() {
                q.tail = p
            } else {
                (*n).prev = p
            }
            (*page).next = core::ptr::null_mut();
            (*page).prev = core::ptr::null_mut();
        }
    }

    fn push_back(&mut self, class: usize, page: *mut Page) {
        let q = &mut self.queues[class];
        // SAFETY: as in `push_front`.
        unsafe {
            (*page).next = core::ptr::null_mut();
            (*page).prev = q.tail;
            if q.tail.is_null() {
                q.head = page
            } else {
                (*q.tail).next = page
            }
        }
        q.tail = page;
    }

    /// The allocation stack of the caller, as an id (0 when stacks are off).
    #[inline]
    fn capture_stack(&mut self) -> u32 {
        if self.stack_depth == 0 {
            return 0;
        }
        let guard = thread::ReentrancyGuard::enter();
        let id = stack::capture(self.stack_depth, self.fast_unwind, self.bounds, &mut self.stack_cache);
        drop(guard);
        id.as_u32()
    }

    /// Allocates `size` bytes aligned to `align` (a power of two). Null when out of memory.
    ///
    /// # Safety
    /// - The caller has exclusive use of this heap (its thread, or the heap's lock).
    #[inline]
    pub(crate) unsafe fn alloc(&mut self, size: usize, align: usize, flags: u8, zeroed: bool) -> *mut u8 {
        let rounded = (size.max(1).wrapping_add(align - 1)) & !(align - 1);
        if rounded > MEDIUM_MAX || rounded < size {
            return self.alloc_large(size, align, flags, zeroed);
        }
        let class = size_class::class_of(rounded);
        let stack = self.capture_stack();
        let page = self.current[class];
        // SAFETY: `current[class]` is the empty page or a page this heap owns.
        let block = unsafe { (*page).free };
        if block.is_null() {
            // SAFETY: exclusivity is the caller's.
            return unsafe { self.alloc_slow(class, size, stack, flags, zeroed) };
        }
        // SAFETY: `block` heads the free list of a page we own.
        unsafe { self.take_block(page, block, size, stack, flags, zeroed) }
    }

    /// Pops `block` (the head of `page`'s free list) and records it as handed out.
    ///
    /// # Safety
    /// - `block == (*page).free`, non-null, and this heap owns `page`.
    #[inline]
    unsafe fn take_block(
        &mut self,
        page: *mut Page,
        block: *mut Block,
        size: usize,
        stack: u32,
        flags: u8,
        zeroed: bool,
    ) -> *mut u8 {
        // SAFETY: per the contract.
        unsafe {
            let p = &mut *page;
            p.free = (*block).next;
            p.used.store(p.used.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            let index = p.index_of(block as usize);
            p.set_meta(index, size as u32, stack, flags | LIVE);
            if zeroed {
                core::ptr::write_bytes(block.cast::<u8>(), 0, size);
            }
        }
        if self.kind != HeapKind::Internal {
            self.count_alloc(size, stack);
        }
        block.cast()
    }

    /// Counts a tracked allocation: this heap's counters and, when on, the heap profile.
    #[inline]
    fn count_alloc(&mut self, size: usize, stack: u32) {
        self.counters.on_alloc(size);
        if recorder::active() {
            recorder::record_alloc(stack, size);
        }
    }

    #[cold]
    #[inline(never)]
    unsafe fn alloc_slow(&mut self, class: usize, size: usize, stack: u32, flags: u8, zeroed: bool) -> *mut u8 {
        // SAFETY: exclusivity is the caller's.
        let page = unsafe { self.find_page(class) };
        if page.is_null() {
            return core::ptr::null_mut();
        }
        self.current[class] = page;
        // SAFETY: `find_page` returns an owned page with a non-empty free list.
        unsafe { self.take_block(page, (*page).free, size, stack, flags, zeroed) }
    }

    /// Makes a page's free list non-empty if it can: collect other threads' frees, then
    /// carve never-used blocks.
    ///
    /// # Safety
    /// - This heap owns `page`.
    unsafe fn refill(page: *mut Page) -> bool {
        // SAFETY: per the contract.
        unsafe {
            let p = &mut *page;
            if p.free.is_null() {
                if let Err(block) = p.collect_thread_free() {
                    thread::report_misuse("free", block.cast(), Misuse::DoubleFree);
                }
            }
            if p.free.is_null() && p.bump < p.capacity {
                p.carve(CARVE_BATCH);
            }
            !p.free.is_null()
        }
    }

    /// A page of `class` with a free block, or null when out of memory.
    unsafe fn find_page(&mut self, class: usize) -> *mut Page {
        let cur = self.current[class];
        if cur != empty_page() {
            // SAFETY: `cur` is ours.
            if unsafe { Self::refill(cur) } {
                return cur;
            }
            // Full: move it to the back so the queue rotates through every page.
            self.unlink(class, cur);
            self.push_back(class, cur);
        }
        let mut p = self.queues[class].head;
        for _ in 0..SCAN_LIMIT {
            if p.is_null() || p == cur {
                break;
            }
            // SAFETY: queue members are owned by this heap.
            if unsafe { Self::refill(p) } {
                self.unlink(class, p);
                self.push_front(class, p);
                return p;
            }
            // SAFETY: as above.
            p = unsafe { (*p).next };
        }
        // The internal heap never adopts: abandoned pages hold tracked blocks, and every
        // block of an internal page must be the allocator's own.
        let adopted = if self.kind == HeapKind::Internal { None } else { thread::adopt_abandoned(class) };
        if let Some(p) = adopted {
            // SAFETY: adoption hands us an abandoned page of `class`, now ours.
            unsafe { (*p).heap.store(self as *mut Heap as usize, Ordering::Release) };
            self.push_front(class, p);
            // SAFETY: as above.
            if unsafe { Self::refill(p) } {
                return p;
            }
        }
        let slices = if size_class::is_small_class(class) { 1 } else { 8 };
        let page = segment::acquire_page(slices, class, self.kind == HeapKind::Internal);
        if page.is_null() {
            return page;
        }
        // SAFETY: a fresh page from the pool: ours alone.
        unsafe {
            (*page).heap.store(self as *mut Heap as usize, Ordering::Release);
            self.push_front(class, page);
            Self::refill(page);
        }
        page
    }

    #[cold]
    #[inline(never)]
    fn alloc_large(&mut self, size: usize, align: usize, flags: u8, zeroed: bool) -> *mut u8 {
        if align > (1 << 40) || size > isize::MAX as usize {
            return core::ptr::null_mut();
        }
        let internal = self.kind == HeapKind::Internal;
        let stack = self.capture_stack();
        let flags = flags | LIVE | if internal { INTERNAL } else { 0 };
        let p = segment::alloc_large(size, align, stack, flags, zeroed);
        if !p.is_null() && !internal {
            self.count_alloc(size, stack);
        }
        p
    }

    /// Frees a block of a page this heap owns.
    ///
    /// # Safety
    /// - `page` is owned by this heap, `index` names a block of it that was LIVE and whose
    ///   flags the caller just cleared; the caller has exclusive use of the heap.
    #[inline]
    pub(crate) unsafe fn free_local(&mut self, page: *mut Page, block: *mut Block, size: usize) {
        // SAFETY: per the contract.
        let used = unsafe {
            let p = &mut *page;
            (*block).next = p.free;
            p.free = block;
            let used = p.used.load(Ordering::Relaxed) - 1;
            p.used.store(used, Ordering::Relaxed);
            used
        };
        if self.kind != HeapKind::Internal {
            self.counters.on_free(size);
        }
        // SAFETY: as above.
        if used == 0 && self.current[unsafe { (*page).class } as usize] != page {
            // SAFETY: as above.
            unsafe { self.retire(page) };
        }
    }

    /// Returns an empty page, which is not its class's current page, to the pool. (The
    /// current page is kept even when empty, so alloc/free pairs never churn pages.)
    ///
    /// # Safety
    /// - `page` is owned by this heap, on its queue, and has no live block.
    #[cold]
    unsafe fn retire(&mut self, page: *mut Page) {
        // SAFETY: `page` is ours (caller).
        let class = unsafe { (*page).class as usize };
        debug_assert!(self.current[class] != page);
        // Whole-page validation (free list walk) in tests and `paranoid` builds.
        #[cfg(any(test, feature = "paranoid"))]
        // SAFETY: the page is ours, with no live block; no other thread frees into it.
        unsafe {
            (*page).check_invariants()
        };
        self.unlink(class, page);
        // SAFETY: no live block (used == 0), off our queue, owned by nobody else.
        unsafe { segment::release_page(page) };
    }

    /// Gives every page away: empty ones back to the pool, the others to the abandoned
    /// lists for other threads to adopt. Used when a thread exits (and in a `fork` child).
    ///
    /// # Safety
    /// - Exclusive use of the heap; nobody uses it afterwards but through `init`.
    pub(crate) unsafe fn abandon_all(&mut self) {
        for class in 0..CLASS_COUNT {
            self.current[class] = empty_page();
            while !self.queues[class].head.is_null() {
                let page = self.queues[class].head;
                self.unlink(class, page);
                // SAFETY: the page is ours; after the store other threads' frees go to
                // its thread-free list, which the adopter collects.
                unsafe {
                    if let Err(block) = (*page).collect_thread_free() {
                        thread::report_misuse("free", block.cast(), Misuse::DoubleFree);
                    }
                    if (*page).used.load(Ordering::Relaxed) == 0 {
                        segment::release_page(page);
                    } else {
                        (*page).heap.store(0, Ordering::Release);
                        thread::push_abandoned(class, page);
                    }
                }
            }
        }
        self.counters.flush();
    }
}

/// Where a pointer handed to `free` lives.
pub(crate) enum Location {
    /// A block of a page: the segment, the page, the block's index.
    Small(*mut Page, usize),
    /// A large block, at the start of its segment's block.
    Large(*mut Segment),
}

/// Finds the block `ptr` starts. `Err` carries a description of the misuse.
#[inline]
pub(crate) fn locate(ptr: *mut u8) -> Result<Location, Misuse> {
    let addr = ptr as usize;
    if crate::segment::map::is_first_slot(addr) {
        let seg = (addr & !(SEGMENT_SIZE - 1)) as *mut Segment;
        // SAFETY: the map says a live segment starts there.
        if unsafe { (*seg).kind } == KIND_PAGES {
            // SAFETY: `addr` is inside this page segment, past its header slice (the
            // header slice has no page in use, which `in_use` catches).
            let page = unsafe { Segment::page_of_mut(seg, addr) };
            // SAFETY: descriptors of a live segment are readable.
            let p = unsafe { &*page };
            if !p.in_use() || addr < p.start as usize {
                return Err(Misuse::NotABlock);
            }
            let index = p.index_of(addr);
            if index >= p.capacity as usize || p.block_start(index) != addr {
                return Err(Misuse::Interior);
            }
            return Ok(Location::Small(page, index));
        }
    }
    locate_large(addr)
}

#[cold]
fn locate_large(addr: usize) -> Result<Location, Misuse> {
    let Some(start) = crate::segment::map::segment_start(addr) else {
        return Err(Misuse::Foreign);
    };
    let seg = start as *mut Segment;
    // SAFETY: the map says a live segment starts there.
    unsafe {
        if (*seg).kind != segment::KIND_LARGE {
            return Err(Misuse::NotABlock);
        }
        if (*seg).large.start != addr {
            return Err(Misuse::Interior);
        }
    }
    Ok(Location::Large(seg))
}

/// A misuse `free` or `realloc` detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Misuse {
    /// The pointer is not in any segment of ours.
    Foreign,
    /// In our memory, but not in a block (a header, a free span).
    NotABlock,
    /// Inside a block but not at its start.
    Interior,
    /// The block is not live: freed already.
    DoubleFree,
}

/// The generation bits of a fresh block (generation 0).
pub(crate) const FRESH_GENERATION: u8 = 0;
const _: () = assert!(FRESH_GENERATION & !GEN_MASK == 0);

/// Frees `ptr`, a block of ours; `size` is the layout size the caller passes.
///
/// # Safety
/// - `ptr` was returned by this allocator and not freed since (violations are detected
///   where possible and abort with a message).
#[inline]
pub(crate) unsafe fn free(ptr: *mut u8, size: usize) {
    match locate(ptr) {
        Ok(Location::Small(page, index)) => {
            // SAFETY: `locate` checked that `index` is a block of this in-use page.
            unsafe { free_small(page, index, ptr, size) }
        }
        // SAFETY: `locate` checked it is the start of a live segment's large block.
        Ok(Location::Large(seg)) => unsafe { free_large(seg, ptr) },
        Err(m) => thread::report_misuse("free", ptr, m),
    }
}

/// Frees a block of a page. The owner clears the block's LIVE flag itself (and catches a
/// double free there); another thread only pushes the block onto the page's thread-free
/// list and never writes the owner's metadata, so the two do not contend for its cache
/// lines. The owner clears LIVE when it collects the list (and catches a double free
/// then), and a leak check clears it for blocks still on the list.
#[inline]
unsafe fn free_small(page: *mut Page, index: usize, ptr: *mut u8, size: usize) {
    let heap = thread::current_heap();
    if recorder::active() {
        // SAFETY: the caller's block is live: its metadata is stable while it holds it.
        unsafe { record_free_small(page, index, size) };
    }
    // SAFETY: reading the owner is a plain atomic load.
    let owner = unsafe { (*page).heap.load(Ordering::Relaxed) };
    if owner == heap as usize && !heap.is_null() {
        // SAFETY: index < capacity (caller).
        let flags = unsafe { (*page).flags_of(index) };
        if flags & LIVE == 0 {
            thread::report_misuse("free", ptr, Misuse::DoubleFree);
        }
        // SAFETY: this thread's heap owns the page, and the block is live and being freed
        // by its holder.
        unsafe {
            (*page).set_flags(index, 0);
            (*heap).free_local(page, ptr.cast(), size);
        }
        return;
    }
    // SAFETY: the block was live and is ours to hand over.
    unsafe { (*page).push_thread_free(ptr.cast()) };
    // SAFETY: as above.
    if unsafe { !(*page).is_internal() } {
        thread::count_remote_free(heap, size);
    }
}

/// Counts the free of a small block in the heap profile (not for the allocator's own).
///
/// # Safety
/// - `index` is a block of the in-use `page`, live and held by the caller.
#[cold]
#[inline(never)]
unsafe fn record_free_small(page: *mut Page, index: usize, size: usize) {
    // SAFETY: per the contract; the owner never rewrites a live block's metadata.
    unsafe {
        if !(*page).is_internal() && (*page).flags_of(index) & LIVE != 0 {
            let (_, stack) = (*page).size_and_stack(index);
            recorder::record_free(stack, size);
        }
    }
}

#[cold]
unsafe fn free_large(seg: *mut Segment, ptr: *mut u8) {
    // SAFETY: the segment is live (caller).
    let (flags, size, stack) = unsafe { ((*seg).large.flags, (*seg).large.size, (*seg).large.stack) };
    if flags & LIVE == 0 {
        thread::report_misuse("free", ptr, Misuse::DoubleFree);
    }
    if flags & INTERNAL == 0 {
        thread::count_remote_free(thread::current_heap(), size);
        if recorder::active() {
            recorder::record_free(stack, size);
        }
    }
    // SAFETY: the block is live and freed by its holder.
    unsafe { segment::free_large(seg) };
}

/// Resizes the block at `ptr` (of `old_size` bytes, aligned to `align`) to `new_size`.
/// In place when the new size fits the block and does not waste more than half of it;
/// large blocks grow in place up to their segment's end, then move with `mremap`.
///
/// # Safety
/// - As `GlobalAlloc::realloc`.
pub(crate) unsafe fn realloc(ptr: *mut u8, old_size: usize, align: usize, new_size: usize) -> *mut u8 {
    match locate(ptr) {
        Ok(Location::Small(page, index)) => {
            // SAFETY: `locate` validated the block.
            let (usable, live) = unsafe { ((*page).block_size as usize, (*page).flags_of(index) & LIVE != 0) };
            if !live {
                thread::report_misuse("realloc", ptr, Misuse::DoubleFree);
            }
            // SAFETY: as above.
            let internal = unsafe { (*page).is_internal() };
            if new_size <= usable && new_size * 2 > usable && !internal {
                // SAFETY: in-place resize of a live block the caller holds.
                unsafe { resize_in_place_small(page, index, old_size, new_size) };
                return ptr;
            }
        }
        Ok(Location::Large(seg)) => {
            // SAFETY: `locate` validated the segment.
            if let Some(p) = unsafe { realloc_large(seg, ptr, old_size, align, new_size) } {
                return p;
            }
        }
        Err(m) => thread::report_misuse("realloc", ptr, m),
    }
    // SAFETY: move: allocate, copy, free (the GlobalAlloc default).
    unsafe {
        let new = thread::alloc(new_size, align, false);
        if !new.is_null() {
            core::ptr::copy_nonoverlapping(ptr, new, old_size.min(new_size));
            free(ptr, old_size);
        }
        new
    }
}

unsafe fn resize_in_place_small(page: *mut Page, index: usize, old_size: usize, new_size: usize) {
    // SAFETY: the caller holds the live block; its metadata is its holder's to change.
    let stack = unsafe {
        let (_, stack) = (*page).size_and_stack(index);
        (*page).set_size_and_stack(index, new_size as u32, stack);
        stack
    };
    count_resize(stack, old_size, new_size);
}

/// Counts an in-place resize of a tracked block: the heap's counters and, when on, the
/// heap profile.
fn count_resize(stack: u32, old_size: usize, new_size: usize) {
    thread::count_resize(thread::current_heap(), old_size, new_size);
    if recorder::active() {
        recorder::record_resize(stack, old_size, new_size);
    }
}

unsafe fn realloc_large(
    seg: *mut Segment,
    ptr: *mut u8,
    old_size: usize,
    align: usize,
    new_size: usize,
) -> Option<*mut u8> {
    // SAFETY: the caller validated `seg` as a live large segment holding `ptr`.
    unsafe {
        let large = &mut (*seg).large;
        if large.flags & LIVE == 0 {
            thread::report_misuse("realloc", ptr, Misuse::DoubleFree);
        }
        let internal = large.flags & INTERNAL != 0;
        let stack = large.stack;
        if new_size <= large.capacity && new_size > MEDIUM_MAX {
            // Shrinking by more than half: give the tail's pages back to the kernel.
            if new_size < large.size / 2 {
                let keep = crate::os::round_up(large.start + new_size, crate::os::OS_PAGE).unwrap_or(usize::MAX);
                let end = large.start + large.size;
                if end > keep {
                    let tail = crate::os::round_up(end - keep, crate::os::OS_PAGE).unwrap_or(0);
                    crate::os::decommit(keep as *mut u8, tail);
                }
            }
            large.size = new_size;
        } else if new_size > large.capacity && align <= SEGMENT_SIZE {
            let p = segment::grow_large(seg, new_size);
            if p.is_null() {
                return None;
            }
            if !internal {
                count_resize(stack, old_size, new_size);
            }
            return Some(p);
        } else {
            return None;
        }
        if !internal {
            count_resize(stack, old_size, new_size);
        }
        Some(ptr)
    }
}
