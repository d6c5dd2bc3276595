//! Memory from the operating system: mmap, munmap, madvise, aligned reservations, and
//! [`MmapVec`], the allocator's own growable array.
//!
//! # What it owns
//! Every mapping the allocator makes goes through this module (which makes the system
//! calls through `platform`; only large-block growth in `segment` remaps on its own).
//! Mappings that hold
//! the allocator's metadata (not user blocks) are recorded in a small registry, so that the
//! leak check never treats them as roots: [`for_each_own_mapping`].
//!
//! # Who calls it
//! `segment` for segments, `stack` for the depot, `leak` for mark stacks and tables; on any
//! thread, always on slow paths.

use crate::platform::{self, Reserve};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Size of an OS page. x86-64 Linux: 4 KiB (huge pages are never assumed).
pub(crate) const OS_PAGE: usize = 4096;

/// Rounds `n` up to a multiple of `align` (a power of two), or `None` on overflow.
#[inline]
pub(crate) const fn round_up(n: usize, align: usize) -> Option<usize> {
    debug_assert!(align.is_power_of_two());
    match n.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Maps `len` bytes of zeroed, readable and writable, private anonymous memory.
/// The memory is reserved lazily by the kernel (`MAP_NORESERVE`): untouched pages cost
/// no physical memory. Returns `None` when the kernel refuses (out of memory).
pub(crate) fn map(len: usize) -> Option<NonNull<u8>> {
    debug_assert!(len.is_multiple_of(OS_PAGE) && len > 0);
    map_with(len, Reserve::Lazily)
}

/// Unmaps `[ptr, ptr + len)`.
///
/// # Safety
/// - The range is a whole mapping, or whole pages of one, made by this module ([`map`],
///   [`map_aligned`], [`map_aligned_committed`], or an `mremap` of one of those): ours,
///   and page aligned at both ends (checked in debug builds).
/// - Nothing reads, writes or refers to the range afterwards.
pub(crate) unsafe fn unmap(ptr: *mut u8, len: usize) {
    debug_assert!((ptr as usize).is_multiple_of(OS_PAGE) && len.is_multiple_of(OS_PAGE));
    // SAFETY:
    // - `munmap`, first bullet: `ptr` is page aligned and the range lies in a mapping of
    //   ours (caller, first bullet).
    // - Second bullet: nothing refers to the range afterwards (caller, second bullet).
    // A failure (the kernel's mapping limit) leaves the range mapped: memory lost, nothing
    // unsound, and nowhere to report it.
    let _ = unsafe { platform::munmap(ptr, len) };
}

/// Maps `len` bytes whose start is aligned to `align` (a power of two, at least a page).
/// Over-maps by `align` and trims both ends, so the result is exactly `len` bytes.
pub(crate) fn map_aligned(len: usize, align: usize) -> Option<NonNull<u8>> {
    map_aligned_with(len, align, Reserve::Lazily)
}

/// Like [`map_aligned`], but the kernel accounts the memory as committed: under the
/// default overcommit policy, a request far beyond RAM and swap is refused (and the
/// allocation returns null) instead of succeeding and failing later on first touch.
/// Used for large blocks, whose size the program chose.
pub(crate) fn map_aligned_committed(len: usize, align: usize) -> Option<NonNull<u8>> {
    map_aligned_with(len, align, Reserve::Committed)
}

/// Maps `len` bytes of zeroed private anonymous memory, accounted as `reserve` says.
fn map_with(len: usize, reserve: Reserve) -> Option<NonNull<u8>> {
    platform::mmap_anonymous(len, reserve).ok()
}

/// [`map_aligned`] with the accounting `reserve` (see [`Reserve`]).
fn map_aligned_with(len: usize, align: usize, reserve: Reserve) -> Option<NonNull<u8>> {
    debug_assert!(align.is_power_of_two() && align >= OS_PAGE && len.is_multiple_of(OS_PAGE));
    if align == OS_PAGE {
        return map_with(len, reserve);
    }
    let total = len.checked_add(align)?;
    let raw = map_with(total, reserve)?.as_ptr() as usize;
    let start = round_up(raw, align)?;
    let head = start - raw;
    let tail = total - head - len;
    if head > 0 {
        // SAFETY:
        // - `[raw, start)` is the head of the mapping of `total` bytes just made, ours;
        //   `raw` is page aligned (the kernel's) and so is `start` (aligned to
        //   `align >= OS_PAGE`), so `head` is whole pages.
        // - Nothing refers to it: the mapping is known only here, and we hand out
        //   `[start, start + len)` alone.
        unsafe { unmap(raw as *mut u8, head) };
    }
    if tail > 0 {
        // SAFETY:
        // - `[start + len, raw + total)` is the tail of that same mapping
        //   (`head + len + tail == total`); `start + len` is page aligned (`len` is whole
        //   pages, debug-checked above) and so is `raw + total`.
        // - Nothing refers to it, as for the head.
        unsafe { unmap((start + len) as *mut u8, tail) };
    }
    NonNull::new(start as *mut u8)
}

/// Gives the physical pages of `[ptr, ptr + len)` back to the kernel; the range stays
/// mapped and, when this returns true, reads as zero afterwards (false: the kernel
/// refused, and the pages still hold what they held).
///
/// # Safety
/// - The range lies in a private anonymous mapping of ours (every mapping this module
///   makes is one), and `ptr` and `len` are page aligned (checked in debug builds).
/// - Nothing in the range is needed any more.
#[inline]
pub(crate) unsafe fn decommit(ptr: *mut u8, len: usize) -> bool {
    debug_assert!((ptr as usize).is_multiple_of(OS_PAGE) && len.is_multiple_of(OS_PAGE));
    // SAFETY:
    // - `madvise_dontneed`, first bullet: `ptr` is page aligned and the range lies in a
    //   private anonymous mapping of ours (caller, first bullet).
    // - Second bullet: its contents are not needed (caller, second bullet).
    // A failure leaves the pages committed: they still read as what they held, which
    // nobody needs.
    unsafe { platform::madvise_dontneed(ptr, len) }.is_ok()
}

/// Asks the kernel to back `[ptr, ptr + len)` with transparent huge pages (`huge`), or
/// never to (which also keeps `khugepaged` from collapsing its small pages into huge ones
/// later). Best effort: false when the kernel refused (no transparent huge pages), and
/// nothing changed.
///
/// # Safety
/// - The range lies in a private anonymous mapping of ours (every mapping this module
///   makes is one), and `ptr` and `len` are page aligned (checked in debug builds).
#[inline]
pub(crate) unsafe fn advise_huge_pages(ptr: *mut u8, len: usize, huge: bool) -> bool {
    debug_assert!((ptr as usize).is_multiple_of(OS_PAGE) && len.is_multiple_of(OS_PAGE));
    // SAFETY: `madvise_huge_pages`' bullet: `ptr` page aligned, the range in a private
    // anonymous mapping of ours (caller).
    unsafe { platform::madvise_huge_pages(ptr, len, huge) }.is_ok()
}

/// Commits the pages of `[ptr, ptr + len)` now, in one system call, instead of one
/// page fault at a time as they are first written (a table whose writes land all over
/// it); for a range of eight pages or less, or on a kernel without
/// `MADV_POPULATE_WRITE`, by writing a zero byte over each page's first byte.
///
/// # Safety
/// - The range lies in a private anonymous mapping of ours, page aligned (checked in
///   debug builds), whose bytes are all zero.
pub(crate) unsafe fn populate_zeroed(ptr: *mut u8, len: usize) {
    debug_assert!((ptr as usize).is_multiple_of(OS_PAGE) && len.is_multiple_of(OS_PAGE));
    // A few pages are faulted in for less than a system call costs.
    // SAFETY: `madvise_populate_write`'s bullet: the caller's.
    if len > 8 * OS_PAGE && unsafe { platform::madvise_populate_write(ptr, len) }.is_ok() {
        return;
    }
    for offset in (0..len).step_by(OS_PAGE) {
        // SAFETY: `offset < len`: inside the caller's range, whose bytes are zero (caller):
        // writing a zero over one changes nothing. Volatile: the write is the point.
        unsafe { core::ptr::write_volatile(ptr.add(offset), 0) };
    }
}

/// Most metadata mappings the registry can hold. Each is a whole table (the depot, a mark
/// stack, the segment map), never one per block, so a few hundred is plenty.
const MAX_OWN_MAPPINGS: usize = 512;

/// The registry of metadata mappings: lock-free, so that a leak check can read it while
/// other threads are stopped anywhere, and can itself register mappings meanwhile.
/// A slot is free when its start is 0; a slot is claimed by a CAS on its start, then its
/// length is stored (a reader may briefly see the length 0: an empty range).
static OWN_STARTS: [AtomicUsize; MAX_OWN_MAPPINGS] = [const { AtomicUsize::new(0) }; MAX_OWN_MAPPINGS];
static OWN_LENS: [AtomicUsize; MAX_OWN_MAPPINGS] = [const { AtomicUsize::new(0) }; MAX_OWN_MAPPINGS];

/// Records `[start, start + len)` as allocator metadata, never to be scanned as a root.
/// When the registry is full the mapping is not recorded (it may then be scanned as a
/// root, which can only hide leaks, never invent them).
pub(crate) fn register_own_mapping(start: usize, len: usize) {
    debug_assert!(start != 0);
    for (s, l) in OWN_STARTS.iter().zip(&OWN_LENS) {
        if s.compare_exchange(0, start, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            l.store(len, Ordering::Release);
            return;
        }
    }
}

/// Forgets a range recorded by [`register_own_mapping`].
pub(crate) fn unregister_own_mapping(start: usize) {
    for (s, l) in OWN_STARTS.iter().zip(&OWN_LENS) {
        if s.load(Ordering::Acquire) == start {
            l.store(0, Ordering::Release);
            s.store(0, Ordering::Release);
            return;
        }
    }
}

/// Calls `f(start, len)` for every metadata mapping. Lock-free: safe to call while other
/// threads are stopped anywhere.
pub(crate) fn for_each_own_mapping(mut f: impl FnMut(usize, usize)) {
    for (s, l) in OWN_STARTS.iter().zip(&OWN_LENS) {
        let start = s.load(Ordering::Acquire);
        let len = l.load(Ordering::Acquire);
        if start != 0 && len != 0 {
            f(start, len);
        }
    }
}

/// A growable array in its own anonymous mapping: never touches the global allocator.
///
/// Capacity grows by remapping to twice the size (`mremap`, which moves pages without
/// copying them). Elements must be `Copy`: nothing is dropped.
///
/// Invariants:
/// - `len <= cap`;
/// - `cap == 0` and `ptr` is dangling (aligned for `T`), or `ptr` is the start of one
///   mapping of exactly `bytes_for(cap)` bytes (`cap * size_of::<T>()` rounded up to a
///   page; `reserve` sets `cap` from the mapping's size, which keeps the two equal), made
///   by [`map`] or moved by `mremap`, owned by this vector alone;
/// - `align_of::<T>() <= OS_PAGE`, so the page-aligned mapping is aligned for `T`
///   (checked in debug builds);
/// - elements `[0, len)` are initialized;
/// - the mapping is in the own-mapping registry, unless the registry was full.
pub(crate) struct MmapVec<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    cap: usize,
}

// SAFETY: an MmapVec owns its mapping exclusively, like a `Vec<T>` its buffer: it holds
// no thread-bound state, and moving it moves the only access to its `T`s, which are
// `Send`.
unsafe impl<T: Copy + Send> Send for MmapVec<T> {}

impl<T: Copy> MmapVec<T> {
    pub(crate) const fn new() -> Self {
        Self { ptr: NonNull::dangling(), len: 0, cap: 0 }
    }

    #[allow(clippy::len_without_is_empty)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn bytes_for(cap: usize) -> Option<usize> {
        round_up(cap.checked_mul(core::mem::size_of::<T>())?.max(1), OS_PAGE)
    }

    /// Makes room for `additional` more elements. Returns false when out of memory.
    pub(crate) fn reserve(&mut self, additional: usize) -> bool {
        let Some(need) = self.len.checked_add(additional) else {
            return false;
        };
        if need <= self.cap {
            return true;
        }
        debug_assert!(core::mem::align_of::<T>() <= OS_PAGE);
        let new_cap = need.max(self.cap.saturating_mul(2)).max(OS_PAGE / core::mem::size_of::<T>().max(1));
        let Some(new_bytes) = Self::bytes_for(new_cap) else {
            return false;
        };
        let new_ptr = if self.cap == 0 {
            match map(new_bytes) {
                Some(p) => p.as_ptr(),
                None => return false,
            }
        } else {
            let old_bytes = Self::bytes_for(self.cap).unwrap_or(0);
            // SAFETY:
            // - `mremap_maymove`, first bullet: `cap > 0`, so `[ptr, ptr + old_bytes)` is
            //   this vector's whole mapping, ours, page aligned (type invariant).
            // - Second bullet: after a success nothing refers to the old range: `&mut self`
            //   means no slice borrowed from the vector is alive, `self.ptr` is replaced
            //   below, and its registry entry is removed below.
            let Ok(p) = (unsafe { platform::mremap_maymove(self.ptr.as_ptr().cast(), old_bytes, new_bytes) }) else {
                return false;
            };
            unregister_own_mapping(self.ptr.as_ptr() as usize);
            p.as_ptr()
        };
        register_own_mapping(new_ptr as usize, new_bytes);
        // SAFETY: `new_ptr` came out of a `NonNull` in both branches (`map`'s or
        // `mremap_maymove`'s result), so it is non-null.
        self.ptr = unsafe { NonNull::new_unchecked(new_ptr.cast()) };
        // Capacity is what the mapping holds, which may exceed `new_cap`.
        self.cap = new_bytes / core::mem::size_of::<T>().max(1);
        true
    }

    /// Appends `value`; returns false (and drops nothing) when out of memory.
    #[inline]
    pub(crate) fn push(&mut self, value: T) -> bool {
        if self.len == self.cap && !self.reserve(1) {
            return false;
        }
        // SAFETY: `len < cap` after the reserve, so `ptr + len` is inside the mapping of
        // `bytes_for(cap)` bytes and aligned for `T` (type invariants); `&mut self` makes
        // the write exclusive, and `T: Copy` has nothing to drop in the old contents.
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len += 1;
        true
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: the old `len - 1`, now `len`, is below `cap`, so inside the mapping and
        // aligned, and it was initialized (`[0, old len)` are, type invariant); `T: Copy`,
        // so reading it out leaves nothing to drop twice.
        Some(unsafe { self.ptr.as_ptr().add(self.len).read() })
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Grows to `len` elements, filling new ones with `value`. Returns false when out of
    /// memory.
    pub(crate) fn resize(&mut self, len: usize, value: T) -> bool {
        if len > self.len {
            if !self.reserve(len - self.len) {
                return false;
            }
            for i in self.len..len {
                // SAFETY: `i` is below the new length, which the reserve made at most `cap`,
                // so `ptr + i` is inside the mapping and aligned for `T` (type invariants);
                // `&mut self` makes the write exclusive.
                unsafe { self.ptr.as_ptr().add(i).write(value) };
            }
        }
        self.len = len;
        true
    }

    /// A vector of `len` elements whose bytes are all zero, without writing them: a fresh
    /// mapping reads as zeros, and its pages cost nothing until touched (a table over
    /// every block id that a check writes sparsely). `None` when out of memory.
    pub(crate) fn zeroed(len: usize) -> Option<Self>
    where
        T: ZeroIsValid,
    {
        let mut v = Self::new();
        if !v.reserve(len) {
            return None;
        }
        // A first `reserve` maps fresh anonymous memory (`cap` was 0), which the kernel
        // hands out zero-filled; `T: ZeroIsValid` makes all-zero bytes an initialized `T`.
        debug_assert!(len == 0 || v.cap >= len);
        v.len = len;
        Some(v)
    }

    /// [`MmapVec::zeroed`] with every page committed now ([`populate_zeroed`]): for a
    /// table read before it is written (mark bits). Left to fault in, a page first read
    /// maps the kernel's shared zero page, and the first write faults again to copy it,
    /// flushing the page from the TLB of every CPU the process runs on (an interrupt to
    /// each, costly in a virtual machine). `None` when out of memory.
    pub(crate) fn zeroed_touched(len: usize) -> Option<Self>
    where
        T: ZeroIsValid,
    {
        let mut v = Self::zeroed(len)?;
        let bytes = (len * core::mem::size_of::<T>()).next_multiple_of(OS_PAGE);
        if bytes > 0 {
            let base = v.as_mut_slice().as_mut_ptr().cast::<u8>();
            // SAFETY: `populate_zeroed`'s bullet: `base` is the start of a fresh mapping
            // of ours (page aligned, all zero), which covers the `len` elements and so
            // the whole pages they lie in.
            unsafe { populate_zeroed(base, bytes) };
        }
        Some(v)
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        // SAFETY:
        // - `ptr` is aligned for `T` and non-null: the mapping's start, or dangling when
        //   `cap == 0` (then `len == 0`).
        // - Elements `[0, len)` are initialized and inside the mapping (`len <= cap`), one
        //   allocation of at most `isize::MAX` bytes (type invariants).
        // - The slice borrows `self`, so nothing writes them (`&mut self` methods) or
        //   unmaps them (`reserve`, `drop`) while it lives.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The first element's address, with the mapping's own provenance (not a
    /// reference's): for element access that `&self` cannot give (atomic views of the
    /// elements, `Marks`). Dangling when the capacity is 0.
    pub(crate) fn raw_ptr(&self) -> *mut T {
        self.ptr.as_ptr()
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY:
        // - `ptr` is aligned for `T` and non-null: the mapping's start, or dangling when
        //   `cap == 0` (then `len == 0`).
        // - Elements `[0, len)` are initialized and inside the mapping (`len <= cap`), one
        //   allocation of at most `isize::MAX` bytes (type invariants).
        // - The slice borrows `self` mutably and the vector owns its mapping alone, so
        //   nothing else reads, writes or unmaps the elements while it lives.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

/// Types for which all-zero bytes are a valid value.
///
/// # Safety
/// Implement only for types every bit pattern of zeros is an initialized value of.
pub(crate) unsafe trait ZeroIsValid: Copy {}
// SAFETY: an all-zero byte is the integer 0.
unsafe impl ZeroIsValid for u8 {}
// SAFETY: all-zero bytes are the integer 0.
unsafe impl ZeroIsValid for u32 {}
// SAFETY: all-zero bytes are the integer 0.
unsafe impl ZeroIsValid for u64 {}

impl<T: Copy> Default for MmapVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy> core::ops::Deref for MmapVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Copy> core::ops::DerefMut for MmapVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl<T: Copy> Drop for MmapVec<T> {
    fn drop(&mut self) {
        if self.cap > 0 {
            let bytes = Self::bytes_for(self.cap).unwrap_or(0);
            unregister_own_mapping(self.ptr.as_ptr() as usize);
            // SAFETY:
            // - `[ptr, ptr + bytes)` is the vector's whole mapping (`cap > 0`, type
            //   invariant), ours, page aligned.
            // - Nothing refers to it afterwards: the vector is being dropped, so every
            //   slice borrowed from it has ended, and its registry entry is removed above.
            unsafe { unmap(self.ptr.as_ptr().cast(), bytes) };
        }
    }
}

impl<T: Copy> core::fmt::Debug for MmapVec<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MmapVec").field("len", &self.len).field("cap", &self.cap).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_mapping_is_aligned_and_usable() {
        let align = 4 << 20;
        let p = map_aligned(align, align).unwrap().as_ptr();
        assert_eq!(p as usize % align, 0);
        // SAFETY: p maps `align` bytes.
        unsafe {
            p.write(7);
            p.add(align - 1).write(9);
            assert_eq!(*p, 7);
            unmap(p, align);
        }
    }

    #[test]
    fn a_zeroed_mmap_vec_reads_as_zeros_and_grows() {
        let mut v = MmapVec::<u32>::zeroed(3_000_000).unwrap();
        assert_eq!(v.len(), 3_000_000);
        assert!(v[0] == 0 && v[1_234_567] == 0 && v[2_999_999] == 0);
        v[2_999_999] = 7;
        assert!(v.push(9));
        assert_eq!((v[2_999_999], v[3_000_000], v.len()), (7, 9, 3_000_001));
        assert!(v.iter().filter(|&&x| x != 0).count() == 2);
        assert_eq!(MmapVec::<u64>::zeroed(0).unwrap().len(), 0);
    }

    #[test]
    fn mmap_vec_grows_and_keeps_contents() {
        let mut v = MmapVec::<u64>::new();
        for i in 0..100_000 {
            assert!(v.push(i));
        }
        assert_eq!(v.len(), 100_000);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64));
        assert_eq!(v.pop(), Some(99_999));
        assert!(v.resize(200_000, 5));
        assert_eq!(v[150_000], 5);
    }

    #[test]
    fn mmap_vec_mappings_are_registered() {
        let mut v = MmapVec::<u8>::new();
        assert!(v.reserve(10));
        let start = v.ptr.as_ptr() as usize;
        let mut found = false;
        for_each_own_mapping(|s, _| found |= s == start);
        assert!(found);
        drop(v);
        let mut still = false;
        for_each_own_mapping(|s, _| still |= s == start);
        assert!(!still);
    }
}
