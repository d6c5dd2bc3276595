//! Size classes: the table of block sizes, and the mapping from a request to its class.
//!
//! # The table
//! 88 classes. Up to 64 bytes they step by 8 (8, 16, ..., 64); above, each doubling
//! `(2^k, 2^(k+1)]` is cut in 8 equal steps of `2^(k-3)`: 72, 80, ..., 128, 144, ..., 256,
//! ..., 57344, 65536. A request wastes at most 12.5% of its block to rounding (11.1% above
//! 64 bytes).
//!
//! Every class size is a multiple of 8, and, for any power of two `a`, rounding a size up
//! to `a` and then to its class gives a class size that is a multiple of `a` (above 64
//! bytes, steps are powers of two). Blocks sit at `page_start + i * class_size` with pages
//! 64 KiB aligned, so any alignment up to 64 KiB is served by rounding the size up first:
//! no special path for over-aligned small blocks. (A zero size counts as 1 here.)
//!
//! # Who calls it
//! The allocation fast path (`class_of`, a table lookup up to 1 KiB), on any thread.

/// Number of size classes.
pub(crate) const CLASS_COUNT: usize = 88;
/// Largest size served from small pages (64 KiB pages, at least 8 blocks a page).
pub(crate) const SMALL_MAX: usize = 8 * 1024;
/// Largest size served from pages at all (512 KiB medium pages); above this, a block gets
/// a segment of its own.
pub(crate) const MEDIUM_MAX: usize = 64 * 1024;
/// Largest size the lookup table covers.
const TABLE_MAX: usize = 1024;

const fn compute_class(size: usize) -> usize {
    let size = if size == 0 { 1 } else { size };
    if size <= 64 {
        return size.div_ceil(8) - 1;
    }
    // size in (2^k, 2^(k+1)], k >= 6
    let k = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize;
    let step_shift = k - 3;
    let j = (size - (1 << k) + (1 << step_shift) - 1) >> step_shift; // 1..=8
    8 + (k - 6) * 8 + (j - 1)
}

const fn compute_size(class: usize) -> usize {
    if class < 8 {
        return (class + 1) * 8;
    }
    let k = (class - 8) / 8 + 6;
    let j = (class - 8) % 8 + 1;
    (1 << k) + j * (1 << (k - 3))
}

/// Block size of each class.
pub(crate) static CLASS_SIZE: [u32; CLASS_COUNT] = {
    let mut t = [0u32; CLASS_COUNT];
    let mut c = 0;
    while c < CLASS_COUNT {
        t[c] = compute_size(c) as u32;
        c += 1;
    }
    t
};

/// Class of each size up to [`TABLE_MAX`], indexed by `(size + 7) / 8`.
static SMALL_TABLE: [u8; TABLE_MAX / 8 + 1] = {
    let mut t = [0u8; TABLE_MAX / 8 + 1];
    let mut i = 0;
    while i < t.len() {
        t[i] = compute_class(i * 8) as u8;
        i += 1;
    }
    t
};

const _: () = assert!(compute_size(CLASS_COUNT - 1) == MEDIUM_MAX);
const _: () = assert!(compute_class(MEDIUM_MAX) == CLASS_COUNT - 1);

/// The class of a request of `size` bytes aligned to `align` (a power of two): `size`
/// rounded up to `align`, then [`class_of`]. `None` for a large block (past
/// [`MEDIUM_MAX`], or so large that the rounding overflows).
#[inline(always)]
pub(crate) fn class_for(size: usize, align: usize) -> Option<usize> {
    debug_assert!(align.is_power_of_two());
    if align <= 8 {
        // Every class size is a multiple of 8, and pages start 64 KiB aligned: the
        // class of `size` itself is aligned enough, and needs no rounding (nor `max(1)`:
        // 0 maps to the 8-byte class).
        // The table's sizes first, and the largest size tested only past them: two
        // instructions on the common request.
        if size <= TABLE_MAX {
            return Some(class_of(size));
        }
        return (size <= MEDIUM_MAX).then(|| compute_class(size));
    }
    let rounded = (size.max(1).wrapping_add(align - 1)) & !(align - 1);
    if rounded > MEDIUM_MAX || rounded < size {
        return None;
    }
    Some(class_of(rounded))
}

/// The class of a request of `size` bytes (`size <= MEDIUM_MAX`; `0` maps to the 8-byte
/// class). Costs a table load up to 1 KiB, a few ALU operations above.
#[inline]
pub(crate) fn class_of(size: usize) -> usize {
    debug_assert!(size <= MEDIUM_MAX);
    if size <= TABLE_MAX {
        SMALL_TABLE[(size + 7) >> 3] as usize
    } else {
        compute_class(size)
    }
}

/// Block size of `class`.
#[inline]
pub(crate) fn class_size(class: usize) -> usize {
    CLASS_SIZE[class] as usize
}

/// Whether `class` lives in small (64 KiB) pages; otherwise in 512 KiB medium pages.
#[inline]
pub(crate) fn is_small_class(class: usize) -> bool {
    class_size(class) <= SMALL_MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_maps_to_the_smallest_class_that_fits() {
        for size in 0..=MEDIUM_MAX {
            let c = class_of(size);
            assert!(class_size(c) >= size, "size {size} class {c}");
            if c > 0 {
                assert!(class_size(c - 1) < size.max(1), "size {size} class {c} not the smallest");
            }
        }
    }

    #[test]
    fn classes_are_increasing_and_within_12_5_percent() {
        for c in 1..CLASS_COUNT {
            let (a, b) = (class_size(c - 1), class_size(c));
            assert!(b > a);
            assert!(b % 8 == 0);
            if a >= 64 {
                assert!((b - a) * 8 <= a, "step {a}->{b} over 12.5%");
            }
        }
    }

    #[test]
    fn rounding_to_an_alignment_gives_an_aligned_class() {
        let mut align = 8;
        while align <= MEDIUM_MAX {
            for size in (0..=MEDIUM_MAX).step_by(7) {
                let rounded = (size.max(1) + align - 1) & !(align - 1);
                if rounded <= MEDIUM_MAX {
                    assert_eq!(class_size(class_of(rounded)) % align, 0, "size {size} align {align}");
                }
            }
            align *= 2;
        }
    }

    #[test]
    fn class_for_gives_the_smallest_aligned_class_and_none_past_medium() {
        let mut align = 1;
        while align <= 2 * MEDIUM_MAX {
            for size in (0..=MEDIUM_MAX + 16).chain([usize::MAX - 3, usize::MAX]) {
                let got = class_for(size, align);
                // The rounding every alignment once took, as the reference.
                let rounded = size.max(1).checked_add(align - 1).map(|r| r & !(align - 1));
                match rounded.filter(|&r| r <= MEDIUM_MAX) {
                    Some(r) => {
                        let c = got.unwrap_or_else(|| panic!("size {size} align {align}: no class"));
                        assert_eq!(c, class_of(r), "size {size} align {align}");
                        assert!(class_size(c) >= size && class_size(c).is_multiple_of(align.min(8)));
                    }
                    None => assert_eq!(got, None, "size {size} align {align}"),
                }
            }
            align *= 2;
        }
    }
}
