//! Heaps: one per thread, holding that thread's pages; the allocate path.
//!
//! # What it owns
//! [`Heap`]: for each size class, the page blocks are taken from (`current`) and a queue
//! of the heap's other pages of that class. A thread's heap is reached through the
//! thread-state slot (`thread_state`); two more heaps are shared under locks ([`locked`]):
//! the internal heap (the allocator's own allocations, never tracked) and the shared heap
//! (threads past their heap's retirement at exit). [`registry`] lists the thread heaps,
//! [`abandoned`] holds the pages of threads that ended, [`free`] is the free and realloc
//! paths, [`walk`] the leak check's view of all of it.
//!
//! The heap knows nothing of who listens to allocations: tracked blocks go through the
//! one tracking hook (`track`), misuse through `misuse`. It never calls up into the
//! runtime: making a thread's heap and everything else that happens once per thread or
//! process is the runtime's, before it hands the heap a request.
//!
//! # Fast path (allocate)
//! [`Heap::alloc_plain`], for a thread's plain request with no stack to capture: class
//! lookup, pop the current page's free list, write one metadata word, count it. No lock
//! and no call, so no register is saved; anything more (a stack, zeroing, the profile, a
//! fold of the counters, an empty page) returns null and the caller takes [`Heap::alloc`]:
//! the same steps with the stack capture and the whole tracking hook.
//!
//! # Slow path
//! When the current page is empty: collect its thread-freed blocks, carve never-used
//! blocks, try up to [`SCAN_LIMIT`] other pages of the queue, adopt a page abandoned by an
//! exited thread, or take a fresh page from the segment pool.

pub(crate) mod abandoned;
pub(crate) mod free;
pub(crate) mod locked;
pub(crate) mod registry;
pub(crate) mod walk;

use crate::counters::Counters;
use crate::misuse::{self, Misuse};
use crate::page::{Block, Page, INTERNAL, LIVE, NO_OWNER, SCOPED};
use crate::profile::events::Sink;
use crate::segment;
use crate::size_class::{self, CLASS_COUNT};
use crate::stack::{self, StackBounds, StackCache};
use crate::thread_state;
use crate::track;
use core::sync::atomic::{compiler_fence, AtomicU32, Ordering};

pub(crate) use free::{free, realloc_in_place};

/// Pages of the queue tried on the slow path before taking a fresh page.
const SCAN_LIMIT: usize = 16;
/// Abandoned pages a heap looks at before it takes a fresh page (`abandoned::reclaim_empty`).
const RECLAIM_PER_FRESH_PAGE: usize = 4;
/// Never-used blocks moved onto the free list at a time: about [`CARVE_BYTES`] of them,
/// at least 4 and at most 64 (mimalloc's page extension); a page's first batch never
/// past the OS page its first block starts in (`Page::carve`). Carving writes each
/// block's link, so it touches their memory: a program that takes two blocks of a class
/// should not fault in 64 of them (a test binary's start paid hundreds of page faults
/// so).
#[inline]
fn carve_batch(block_size: u32) -> u32 {
    (CARVE_BYTES / block_size.max(1)).clamp(4, 64)
}
/// Bytes of never-used blocks carved at a time, about (see [`carve_batch`]).
const CARVE_BYTES: u32 = 4096;

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

/// What [`Heap::take_block`] does besides the pop: zero the block (`zeroed`: asked for
/// zeroed memory), and tell the tracking hook (`tracked`: the heap is not the internal
/// one).
#[derive(Clone, Copy, Debug)]
struct Handout {
    zeroed: bool,
    tracked: bool,
}

/// [`Heap::declines_plain`]: the heap captures stacks (a bit no reason of
/// `track::not_plain_reasons` uses).
pub(crate) const DECLINES_STACKS: u32 = 0x80;
/// [`Heap::declines_plain`] of a heap that captures stacks for the heap profile and has
/// no other reason: [`Heap::alloc_stacked`] with the profile's event.
pub(crate) const DECLINES_STACKS_PROFILED: u32 = DECLINES_STACKS | track::NOT_PLAIN_PROFILE as u32;

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

/// A heap.
///
/// Invariants:
/// - `current[c]` is [`empty_page`] or a page of class `c` whose `heap` is this heap and
///   which is on `queues[c]`;
/// - every page on `queues[c]` has class `c` and `heap == self`, and is on no other
///   queue; pages of no queue are not this heap's;
/// - one user at a time: the owning thread (kind `Thread`) or the holder of the heap's
///   lock (`Internal`, `Shared`).
pub(crate) struct Heap {
    current: [*mut Page; CLASS_COUNT],
    queues: [PageQueue; CLASS_COUNT],
    pub(crate) kind: HeapKind,
    stack_depth: usize,
    fast_unwind: bool,
    pub(crate) bounds: StackBounds,
    stack_cache: StackCache,
    /// Nonzero when this heap's plain allocation path declines: [`DECLINES_STACKS`] (it
    /// captures stacks), or reasons of `track::not_plain_reasons`, read when the heap was
    /// made (under the registry lock, so that `registry::note_not_plain` tells it of every
    /// one added since). Atomic: that function writes it from another thread.
    pub(crate) declines_plain: AtomicU32,
    /// Where this heap's profile events go: its thread's buffer (a thread heap, while the
    /// heap profile is on: from before the first thread heap is made, so for every one),
    /// or nowhere ([`Sink::NONE`]: the profile off, or a locked heap, whose events are
    /// applied at once). The free fast path tests it for "the profile is on".
    pub(crate) events: Sink,
    pub(crate) counters: Counters,
    /// Registry links (thread heaps).
    pub(crate) next: *mut Heap,
    pub(crate) prev: *mut Heap,
}

/// This thread's heap, or null when it has none (not made yet, or retired).
#[inline(always)]
pub(crate) fn current_heap() -> *mut Heap {
    let slot = thread_state::heap_slot();
    if thread_state::is_heap(slot) {
        slot as *mut Heap
    } else {
        core::ptr::null_mut()
    }
}

/// Pops `block` off the head of `page`'s free list and writes its metadata word (`size`,
/// `stack`, `flags`).
///
/// # Safety
/// - `block == (*page).free`, non-null; the caller has exclusive use of the heap that
///   owns `page`, so `free`, `used` and the metadata of free blocks are its to write.
/// - `size` is at most the page's block size.
#[inline(always)]
unsafe fn pop_block(page: *mut Page, block: *mut Block, size: usize, stack: u32, flags: u8) {
    // SAFETY: `block` heads the free list (caller), so it is a free block of `page`: its
    // first word is the next link and its index is below `capacity`; `size` fits it.
    unsafe {
        let p = &mut *page;
        p.free = (*block).next;
        p.used.store(p.used.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        let index = p.index_of(block as usize);
        p.set_meta(index, size as u32, stack, flags);
    }
}

impl Heap {
    /// Sets up a heap in place (its memory may be uninitialized or a retired heap's).
    ///
    /// # Safety
    /// - `this` is valid for writes of a `Heap`, aligned, and nobody else uses it until
    ///   this returns (it is fresh from the registry, or a locked heap's first use under
    ///   its lock).
    /// - A `Thread` heap is set up by the thread that owns it from now on.
    pub(crate) unsafe fn init(this: *mut Heap, kind: HeapKind, bounds: StackBounds) {
        let opts = crate::config::current();
        let stack_depth = if kind == HeapKind::Thread { opts.stack_depth as usize } else { 0 };
        let heap = Heap {
            current: [empty_page(); CLASS_COUNT],
            queues: [PageQueue { head: core::ptr::null_mut(), tail: core::ptr::null_mut() }; CLASS_COUNT],
            kind,
            stack_depth,
            fast_unwind: opts.fast_unwind,
            bounds,
            stack_cache: StackCache::new(),
            declines_plain: AtomicU32::new(
                if stack_depth != 0 { DECLINES_STACKS } else { 0 } | u32::from(track::not_plain_reasons()),
            ),
            events: if kind == HeapKind::Thread && !track::plain() {
                // SAFETY: the calling thread owns this heap (third bullet), which only it
                // uses until it retires it when it ends.
                unsafe { Sink::this_thread() }
            } else {
                Sink::NONE
            },
            counters: Counters::new(),
            next: core::ptr::null_mut(),
            prev: core::ptr::null_mut(),
        };
        // SAFETY: `this` is valid for writes and unused (first bullet); `write` does not
        // drop the old contents, which may be uninitialized.
        unsafe { this.write(heap) };
    }

    /// Puts `page` at the front of `queues[class]`.
    ///
    /// # Safety
    /// - `page` is a valid page of `class` owned by this heap and on no queue.
    unsafe fn push_front(&mut self, class: usize, page: *mut Page) {
        let q = &mut self.queues[class];
        // SAFETY: `page` is valid and off every queue (caller), so relinking it breaks no
        // other list; `q.head` is null or a page of this queue (heap invariant), which
        // this heap alone links.
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

    /// Takes `page` off `queues[class]`.
    ///
    /// # Safety
    /// - `page` is on `queues[class]`.
    unsafe fn unlink(&mut self, class: usize, page: *mut Page) {
        let q = &mut self.queues[class];
        // SAFETY: `page` is on this queue (caller); its `prev`/`next` are null or pages of
        // the same queue (heap invariant), all valid and linked only by this heap.
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

    /// Puts `page` at the back of `queues[class]`.
    ///
    /// # Safety
    /// - As [`Heap::push_front`].
    unsafe fn push_back(&mut self, class: usize, page: *mut Page) {
        let q = &mut self.queues[class];
        // SAFETY: `page` is valid and off every queue (caller), so relinking it breaks no
        // other list; `q.tail` is null or the last page of this queue (heap invariant),
        // valid and linked only by this heap, whose only user we are (`&mut self`).
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
        // `capture` routes what its walks may allocate to the internal heap itself.
        stack::capture(self.stack_depth, self.fast_unwind, self.bounds, &mut self.stack_cache).as_u32()
    }

    /// Allocates `size` bytes aligned to `align`. Null when out of memory.
    ///
    /// # Safety
    /// - The caller has exclusive use of this heap: it is the owning thread's heap and the
    ///   caller is that thread, or the caller holds the heap's lock.
    /// - `align` is a power of two (a `Layout`'s).
    ///
    /// Always inlined: its callers are few (the entry points' paths, the locked heaps),
    /// and the thread's own path (`entry::alloc_own`) then makes one frame, not two, with
    /// the flags and zeroing tests folded away (21 instructions an allocation with stacks).
    #[inline(always)]
    pub(crate) unsafe fn alloc(&mut self, size: usize, align: usize, flags: u8, zeroed: bool) -> *mut u8 {
        let Some(class) = size_class::class_for(size, align) else {
            return self.alloc_large(size, align, flags, zeroed || crate::segment::zeroing::zeroes(flags));
        };
        // Made before the capture, which the compiler cannot see leaves the heap's kind as
        // it is: so that a caller that knows the kind (`entry::alloc_own`) folds the test
        // away.
        let how = self.handout(zeroed);
        let stack = self.capture_stack();
        if flags & SCOPED != 0 {
            // SAFETY: as for this function (caller); `class` is `size`'s.
            return unsafe { self.alloc_fresh(class, size, stack, flags, zeroed) };
        }
        debug_assert!(class < CLASS_COUNT);
        // SAFETY: `class_for` returns a class below `CLASS_COUNT` (not checked again: two
        // instructions). `current[class]` is the empty page (no blocks, `free` null, never
        // written) or a valid page this heap owns (heap invariant), read by its only user.
        let (page, block) = unsafe {
            let page = *self.current.get_unchecked(class);
            (page, (*page).free)
        };
        if block.is_null() {
            // SAFETY: exclusive use (caller, first bullet).
            return unsafe { self.alloc_slow(class, size, stack, flags, zeroed) };
        }
        // SAFETY: `block` is non-null and heads the free list of `page`, which this heap
        // owns (it is not the empty page: that one's list is empty); exclusive use.
        unsafe { self.take_block(page, block, size, stack, flags, how) }
    }

    /// Why this heap declines its plain path ([`Heap::declines_plain`]): 0 for no reason;
    /// [`DECLINES_STACKS`] or [`DECLINES_STACKS_PROFILED`] when [`Heap::alloc_stacked`]
    /// may take its allocations.
    /// (The entry point compares the word itself: sorted into an enum, the compiler made
    /// it eight instructions of flags on the plain path.)
    #[inline(always)]
    pub(crate) fn declines(&self) -> u32 {
        self.declines_plain.load(Ordering::Relaxed)
    }

    /// [`Heap::alloc`] for a block of `class` (`size` rounded to its alignment's) of a
    /// thread heap that declines its plain path only to capture stacks
    /// ([`DECLINES_STACKS`]), or to capture them for the heap profile (`PROFILED`,
    /// [`DECLINES_STACKS_PROFILED`]): the stack, the block counted (and its event for the
    /// profile), with no test of the depth (not 0: the heap captures) or of zeroing (not
    /// on for this heap, as its reasons say), each a load and a branch in [`Heap::alloc`]
    /// (with the registers it saves, 15 instructions an allocation).
    ///
    /// # Safety
    /// - As [`Heap::alloc`]; this is a thread's heap, its owner the caller, whose reasons
    ///   to decline its plain path are [`DECLINES_STACKS`] (`!PROFILED`) or
    ///   [`DECLINES_STACKS_PROFILED`] (`PROFILED`); `class` is
    ///   `size_class::class_for(size, align)`.
    #[inline(always)]
    pub(crate) unsafe fn alloc_stacked<const PROFILED: bool>(&mut self, class: usize, size: usize) -> *mut u8 {
        debug_assert!(self.kind == HeapKind::Thread && self.stack_depth != 0);
        // Reasons are only ever added, by other threads too (new blocks zeroed): the
        // two this path was chosen on are still there, whatever was added since.
        debug_assert_eq!(
            self.declines() & DECLINES_STACKS_PROFILED,
            if PROFILED { DECLINES_STACKS_PROFILED } else { DECLINES_STACKS }
        );
        debug_assert!(class < CLASS_COUNT && !crate::segment::zeroing::zeroes(0));
        // `capture` routes what its walks may allocate to the internal heap itself.
        let stack = stack::capture(self.stack_depth, self.fast_unwind, self.bounds, &mut self.stack_cache).as_u32();
        // SAFETY: `class` is below `CLASS_COUNT` (caller). `current[class]` is the empty
        // page or a valid page this heap owns (heap invariant), read by its only user.
        let (page, block) = unsafe {
            let page = *self.current.get_unchecked(class);
            (page, (*page).free)
        };
        if block.is_null() {
            // SAFETY: exclusive use (caller).
            return unsafe { self.alloc_slow(class, size, stack, 0, false) };
        }
        // SAFETY: `block` heads the free list of `page`, which this heap owns; exclusive
        // use (caller); `size` fits the block (its class is `size`'s).
        unsafe { pop_block(page, block, size, stack, LIVE) };
        if PROFILED {
            track::on_profiled_alloc(&mut self.counters, self.events, stack, size);
        } else {
            track::on_unprofiled_alloc(&mut self.counters, size);
        }
        block.cast()
    }

    /// What [`Heap::take_block`] does besides the pop for this heap: zeroing when asked,
    /// the tracking hook but for the internal heap.
    #[inline(always)]
    fn handout(&self, zeroed: bool) -> Handout {
        Handout { zeroed, tracked: self.kind != HeapKind::Internal }
    }

    /// The allocation fast path: a block from the current page of its class, for a plain
    /// request of this thread's heap (no stack captured, no zeroing, no listener wanting
    /// the block's stack). No call but, rarely, one in tail position. Null when the
    /// request needs more than that: the caller then takes [`Heap::alloc`].
    ///
    /// # Safety
    /// - As [`Heap::alloc`]; this is a thread's heap (not a locked one) that declines
    ///   nothing ([`Heap::declines`] is 0), and the block is not scoped or ignored (the
    ///   thread's mode word is clear).
    #[inline(always)]
    pub(crate) unsafe fn alloc_plain(&mut self, size: usize, align: usize) -> *mut u8 {
        debug_assert!(align.is_power_of_two() && self.kind == HeapKind::Thread);
        // Reasons are only ever added (by other threads too: new blocks zeroed); these
        // two never are once the heap is made.
        debug_assert_eq!(self.declines() & DECLINES_STACKS_PROFILED, 0);
        let Some(class) = size_class::class_for(size, align) else {
            return core::ptr::null_mut();
        };
        // Bounds checked, though `class_for` returns a class below `CLASS_COUNT`, and on
        // purpose: the check's panic is this path's only call, so the compiler sets up
        // the frame (which frame pointers demand) in that cold block alone; with no call
        // at all, it set the frame up on entry, three instructions on every allocation
        // for the check's two.
        let page = self.current[class];
        // SAFETY: `current[class]` is the empty page or a valid page this heap owns (heap
        // invariant), read by its only user.
        let block = unsafe { (*page).free };
        // Work the tracking hook would have to do besides counting (a fold into the
        // global totals) is left to the general path, so that this one makes no call.
        let left = track::plain_alloc_budget(&self.counters, size);
        if block.is_null() || left < 0 {
            return core::ptr::null_mut();
        }
        // SAFETY: `block` heads the free list of `page`, which this heap owns; exclusive
        // use (caller); `size` fits the block (its class is `size`'s).
        unsafe { pop_block(page, block, size, 0, LIVE) };
        track::on_plain_alloc(&mut self.counters, size, left);
        block.cast()
    }

    /// Whether `page` is this heap's current page of its class.
    ///
    /// # Safety
    /// - `page` points to a valid page descriptor.
    #[inline(always)]
    unsafe fn holds_as_current(&self, page: *mut Page) -> bool {
        // SAFETY: `page` is a valid page descriptor (caller): its class is readable.
        let class = unsafe { (*page).class } as usize;
        self.current.get(class) == Some(&page)
    }

    /// Pops `block` (the head of `page`'s free list) and records it as handed out; then
    /// what `how` says.
    ///
    /// # Safety
    /// - `block == (*page).free` and is non-null; this heap owns `page`.
    /// - The caller has exclusive use of this heap.
    /// - `size` is at most the page's block size (its class was chosen from `size`).
    ///
    /// Always inlined: left to itself the compiler made it a call on the tracked
    /// allocation's fast path once the live bit was added to it (30 instructions a pair).
    #[inline(always)]
    unsafe fn take_block(
        &mut self,
        page: *mut Page,
        block: *mut Block,
        size: usize,
        stack: u32,
        flags: u8,
        how: Handout,
    ) -> *mut u8 {
        debug_assert_eq!(how.tracked, self.kind != HeapKind::Internal);
        // SAFETY:
        // - `page` is owned by this heap, whose only user we are, so `free`, `used` and the
        //   metadata of free blocks are ours to write (page invariants: owner only).
        // - `block` heads the free list, so it is a free block of `page`: its first word is
        //   the next link, its index is below `capacity`, and nobody else holds it.
        // - `size` fits the block, so zeroing `size` bytes stays inside it.
        unsafe {
            pop_block(page, block, size, stack, flags | LIVE);
            if how.zeroed || crate::segment::zeroing::zeroes(flags) {
                core::ptr::write_bytes(block.cast::<u8>(), 0, size);
            }
        }
        if how.tracked {
            track::on_alloc(&mut self.counters, self.events, stack, size);
        }
        block.cast()
    }

    /// The slow path of [`Heap::alloc`]: find a page with a free block, make it current.
    ///
    /// # Safety
    /// - As [`Heap::alloc`]; `class` is the class of `size` rounded to its alignment.
    #[cold]
    #[inline(never)]
    unsafe fn alloc_slow(&mut self, class: usize, size: usize, stack: u32, flags: u8, zeroed: bool) -> *mut u8 {
        // SAFETY: exclusive use (caller).
        let page = unsafe { self.find_page(class) };
        if page.is_null() {
            return core::ptr::null_mut();
        }
        // SAFETY: `find_page` returns a valid page of `class` this heap owns.
        unsafe { self.make_current(class, page) };
        let how = self.handout(zeroed);
        // SAFETY: `find_page` returns a page of `class` this heap owns with a non-empty
        // free list; `size` fits its blocks (caller); exclusive use.
        unsafe { self.take_block(page, (*page).free, size, stack, flags, how) }
    }

    /// Makes `page` the current page of `class`, flagged young.
    ///
    /// # Safety
    /// - `page` is a valid page of `class` this heap owns; the caller has exclusive use of
    ///   this heap.
    #[inline]
    unsafe fn make_current(&mut self, class: usize, page: *mut Page) {
        self.current[class] = page;
        // The page is current from here on, and may hand out blocks of generation 0: flag
        // it for young sweeps. In this order (the fence keeps the compiler from swapping
        // the stores): a sweep that stops this thread between the two sees the page as
        // current, and keeps it young (see `walk`).
        compiler_fence(Ordering::SeqCst);
        // SAFETY: a valid page this heap owns (caller). Written only when not set yet: the
        // store dirtied the descriptor's line every time a page became current again,
        // which other threads read (larson with the heap profile ran 1.8x slower with the
        // unconditional store).
        unsafe {
            if !(*page).young.load(Ordering::Relaxed) {
                (*page).young.store(true, Ordering::Relaxed);
            }
        }
    }

    /// A page of `class` fresh from the pool, made this heap's (on its queue, free list
    /// carved); null when out of memory.
    ///
    /// # Safety
    /// - The caller has exclusive use of this heap.
    unsafe fn take_fresh_page(&mut self, class: usize) -> *mut Page {
        let slices = if size_class::is_small_class(class) { 1 } else { 8 };
        let page = segment::acquire_page(slices, class, self.kind == HeapKind::Internal);
        if !page.is_null() {
            // SAFETY: a fresh page from the pool, initialized for `class`, owned by nobody
            // and on no queue: ours from the store on; exclusive use (caller).
            unsafe { self.own(class, page) };
        }
        page
    }

    /// A block never handed out before, for a leak-check scope: carved from the current
    /// page's never-used blocks, or another queued page's, or a fresh page's.
    ///
    /// A scope's check must not depend on what other threads do, but the check is
    /// conservative: a stale copy of an address (an unwritten slot in another thread's
    /// live frame, a word a structure never overwrote) keeps whatever block lies there
    /// reachable. A freed block's address is such a copy's likeliest target; a block
    /// never handed out was never pointed to by anyone. (Scoped checks in parallel tests
    /// missed a leak in up to one run in two when a scope's first blocks reused freed
    /// ones.) Pages are still recycled, so this makes such misses rare, not impossible.
    ///
    /// # Safety
    /// - As [`Heap::alloc`]; `class` is the class of `size` rounded to its alignment.
    #[cold]
    #[inline(never)]
    unsafe fn alloc_fresh(&mut self, class: usize, size: usize, stack: u32, flags: u8, zeroed: bool) -> *mut u8 {
        // SAFETY: queued pages are valid pages this heap owns (heap invariant), read by
        // their only user; the empty page has `bump == capacity == 0`.
        let has_room = |p: *mut Page| unsafe { (*p).bump < (*p).capacity };
        let mut page = self.current[class];
        // A page just taken from the pool: every block on its free list was carved by
        // `own` and never handed out.
        let mut fresh = false;
        if !has_room(page) {
            page = self.queues[class].head;
            for _ in 0..SCAN_LIMIT {
                if page.is_null() || has_room(page) {
                    break;
                }
                // SAFETY: a queued page, as above.
                page = unsafe { (*page).next };
            }
            if page.is_null() || !has_room(page) {
                // SAFETY: exclusive use (caller).
                page = unsafe { self.take_fresh_page(class) };
                if page.is_null() {
                    return core::ptr::null_mut();
                }
                fresh = true;
            }
            // SAFETY: a queued page of `class` or one just taken: this heap's.
            unsafe { self.make_current(class, page) };
        }
        // SAFETY: this heap owns `page`, whose only user we are (caller). A fresh page's
        // free list holds never-used blocks (`own` carved them); any other page has a
        // never-used block (`has_room`), which `carve(1)` puts at the head of the list.
        // `take_block` pops the head; `size` fits the class (caller).
        unsafe {
            if !fresh {
                debug_assert!(has_room(page));
                (*page).carve(1);
            }
            debug_assert!(!(*page).free.is_null());
            self.take_block(page, (*page).free, size, stack, flags, self.handout(zeroed))
        }
    }

    /// Whether `page` is its owner's current page for its class: the page blocks of
    /// generation 0 come from (see [`Page::young`]).
    ///
    /// # Safety
    /// - `page` is an in-use page of a live segment, and every thread that may allocate
    ///   from it is stopped (or is the caller): its `heap` field, and that heap's
    ///   `current` array, do not change meanwhile.
    pub(crate) unsafe fn is_current(page: *const Page) -> bool {
        // SAFETY:
        // - `page` is an in-use page, readable (caller).
        // - A `heap` other than `NO_OWNER` and 0 is the heap that owns the page, a thread
        //   heap in the registry's never-unmapped mappings or one of the static locked
        //   heaps: valid to read for the life of the process. Nobody writes its `current`
        //   meanwhile (caller); `class` is below `CLASS_COUNT` for an in-use page.
        unsafe {
            let owner = (*page).heap.load(Ordering::Relaxed);
            let heap = owner as *const Heap;
            owner != NO_OWNER && !heap.is_null() && core::ptr::eq((*heap).current[(*page).class as usize], page)
        }
    }

    /// Makes a page's free list non-empty if it can: collect other threads' frees, then
    /// carve never-used blocks. Returns whether the list is non-empty.
    ///
    /// # Safety
    /// - This heap owns `page`, and the caller has exclusive use of this heap.
    unsafe fn refill(page: *mut Page) -> bool {
        // SAFETY: the page is ours and we are its only user (caller), which is what
        // `collect_thread_free` and `carve` require (called by the owner).
        unsafe {
            let p = &mut *page;
            if p.free.is_null() {
                if let Err(block) = p.collect_thread_free() {
                    misuse::report("free", block.cast(), Misuse::DoubleFree);
                }
            }
            if p.free.is_null() && p.bump < p.capacity {
                p.carve(carve_batch(p.block_size));
            }
            !p.free.is_null()
        }
    }

    /// A page of `class` with a free block, owned by this heap and on its queue; null
    /// when out of memory.
    ///
    /// # Safety
    /// - The caller has exclusive use of this heap.
    unsafe fn find_page(&mut self, class: usize) -> *mut Page {
        let cur = self.current[class];
        if cur != empty_page() {
            // SAFETY: `cur` is ours and on `queues[class]` (heap invariant); exclusive use.
            unsafe {
                if Self::refill(cur) {
                    return cur;
                }
                // Full: move it to the back so the queue rotates through every page.
                self.unlink(class, cur);
                self.push_back(class, cur);
            }
        }
        let mut p = self.queues[class].head;
        for _ in 0..SCAN_LIMIT {
            if p.is_null() || p == cur {
                break;
            }
            // SAFETY: queue members are valid pages owned by this heap (heap invariant).
            unsafe {
                if Self::refill(p) {
                    self.unlink(class, p);
                    self.push_front(class, p);
                    return p;
                }
                p = (*p).next;
            }
        }
        if let Some(p) = self.adopt(class) {
            return p;
        }
        if self.kind != HeapKind::Internal {
            // Abandoned pages whose blocks were all freed go back to the pool first, so
            // that the fresh page may be one of theirs.
            abandoned::reclaim_empty(RECLAIM_PER_FRESH_PAGE);
        }
        // SAFETY: exclusive use (caller).
        unsafe { self.take_fresh_page(class) }
    }

    /// Adopts a page of `class` abandoned by a thread that ended, if there is one with a
    /// free block. The internal heap never adopts: abandoned pages hold tracked blocks,
    /// and every block of an internal page must be the allocator's own.
    fn adopt(&mut self, class: usize) -> Option<*mut Page> {
        if self.kind == HeapKind::Internal {
            return None;
        }
        let p = abandoned::adopt(class)?;
        // SAFETY: the abandoned list hands each page out once: it is a valid page of
        // `class` with no owner and on no queue.
        unsafe { self.own(class, p) };
        // SAFETY: ours now; exclusive use (our caller's).
        unsafe { Self::refill(p) }.then_some(p)
    }

    /// Makes `page` this heap's: owner field, front of its queue, free list refilled.
    ///
    /// # Safety
    /// - `page` is a valid in-use page of `class` with no owner (fresh or abandoned) and
    ///   on no queue; the caller has exclusive use of this heap.
    unsafe fn own(&mut self, class: usize, page: *mut Page) {
        // SAFETY:
        // - `page` is a valid in-use page with no owner and on no queue (caller): nobody
        //   else writes its owner field or its links (it holds `NO_OWNER`). From the store
        //   on, this thread's frees into it take the local path.
        // - `push_front`: the page is of `class`, owned by this heap from the store on,
        //   and on no queue (caller).
        // - `refill`: this heap owns the page (just stored) and we have exclusive use of
        //   this heap (caller).
        unsafe {
            (*page).heap.store(self as *mut Heap as usize, Ordering::Release);
            self.push_front(class, page);
            Self::refill(page);
        }
    }

    /// Allocates a block too large for a page class: a segment of its own.
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
            track::on_alloc(&mut self.counters, self.events, stack, size);
        }
        p
    }

    /// Returns an empty page, which is not its class's current page, to the pool. (The
    /// current page is kept even when empty, so alloc/free pairs never churn pages.)
    ///
    /// # Safety
    /// - `page` is owned by this heap, on its queue, not current, and has no live block
    ///   (`used == 0`); the caller has exclusive use of this heap.
    #[cold]
    unsafe fn retire_page(&mut self, page: *mut Page) {
        // SAFETY: `page` is a valid page of ours (caller).
        let class = unsafe { (*page).class as usize };
        debug_assert!(self.current[class] != page);
        // Whole-page validation (free list walk) in tests and `paranoid` builds.
        #[cfg(any(test, feature = "paranoid"))]
        // SAFETY: the page is ours, with no live block, so no other thread pushes onto its
        // thread-free list meanwhile.
        unsafe {
            (*page).assert_valid()
        };
        // SAFETY: on `queues[class]` (caller); then, off every queue with no live block
        // and no owner but us, the pool may take it back.
        unsafe {
            self.unlink(class, page);
            segment::release_page(page);
        }
    }

    /// Gives every page away: empty ones back to the pool, the others to the abandoned
    /// lists for other threads to adopt. Used when a thread exits (and in a `fork` child).
    ///
    /// # Safety
    /// - The caller has exclusive use of the heap and nobody uses it afterwards but
    ///   through [`Heap::init`].
    pub(crate) unsafe fn abandon_all(&mut self) {
        for class in 0..CLASS_COUNT {
            self.current[class] = empty_page();
            while !self.queues[class].head.is_null() {
                let page = self.queues[class].head;
                // SAFETY: the queue's head is a valid page of ours on that queue; we are
                // its only user until the owner store below, after which other threads'
                // frees go to its thread-free list, which the adopter collects.
                unsafe {
                    self.unlink(class, page);
                    if let Err(block) = (*page).collect_thread_free() {
                        misuse::report("free", block.cast(), Misuse::DoubleFree);
                    }
                    if (*page).used.load(Ordering::Relaxed) == 0 {
                        segment::release_page(page);
                    } else {
                        (*page).heap.store(NO_OWNER, Ordering::Release);
                        abandoned::push(class, page);
                    }
                }
            }
        }
        self.counters.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_carve_touches_about_4_kib_and_at_least_four_blocks() {
        for class in 1..crate::size_class::CLASS_COUNT {
            let size = crate::size_class::class_size(class) as u32;
            let n = carve_batch(size);
            assert!((4..=64).contains(&n), "class {class} ({size} bytes): {n} blocks");
            assert!(n * size <= CARVE_BYTES.max(4 * size), "class {class} ({size} bytes): {n} blocks");
            assert!(n == 64 || n == 4 || (n + 1) * size > CARVE_BYTES, "class {class}: as many as fit");
        }
        assert_eq!((carve_batch(16), carve_batch(128), carve_batch(1024), carve_batch(0)), (64, 32, 4, 64));
    }
}
