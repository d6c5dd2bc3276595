//! Frame-record prefixes known to be exact: when the cached unwinder may walk by frame
//! pointers alone.
//!
//! # What it owns
//! [`ExactPrefixes`], a per-thread set of the hashes of frame-record walks
//! (`unwind::walk_records`) whose every step the rule walk takes the same way, and the
//! decision whether a capture tries the frame-record walk first at all.
//!
//! # Why it is exact
//! The rule walk steps a frame through its frame record (reads `[rbp, rbp + 16)`, CFA
//! `rbp + 16`) when the rule of the frame's address says `CFA = rbp + 16`, and the
//! frame-record walk steps every frame that way. A step depends on the frame's registers,
//! the stack's words and the rule, and the rule on the address alone. So if, in one
//! capture, the frame-record walk returned the addresses `a0 .. ak` and the rule walk
//! stepped to each of them through a frame record by a known rule (`RuleWalk::records`),
//! then in any later capture from the same call site where the frame-record walk returns
//! the same `a0 .. ak` (same hash), the rule walk would return them too, and would go on
//! from the last one exactly as `unwind::walk_rules_after` goes on. The frame-record walk
//! costs about 1 ns a frame against 1.8 ns for the rule walk (the rule lookup and its
//! checks, on every frame), and most stacks of a program built with frame pointers are
//! frame records but for the last two or three frames, in the C library's startup code.
//!
//! Rules change only when the loaded objects do (`rules::generation`): the set is
//! emptied then. A 64-bit hash that matches a different prefix (probability about 2^-64
//! a capture) would give the frame-record walk's frames for a stack where they differ.
//!
//! # When it is not tried
//! In code built without frame pointers (the allocator's own `capture` included), the
//! frame-record walk finds prefixes that never check out; after [`STRIKES`] in a row, a
//! thread stops trying it for [`PAUSE`] captures, so such a program pays it about once in
//! 4000 captures.

/// Slots of the set (a power of two): 4 KiB a thread.
const SLOTS: usize = 512;
const SLOT_SHIFT: u32 = 64 - SLOTS.trailing_zeros();
/// Prefixes that failed to check out in a row before a thread pauses.
const STRIKES: u32 = 8;
/// Captures a paused thread makes without trying the frame-record walk.
const PAUSE: u32 = 4096;

/// The set: direct-mapped hashes, 0 for an empty slot. Invariant: each non-zero
/// `hashes[i]` is the hash (`finish`ed) of a frame-record prefix that checked out under
/// the rules of generation `generation`.
/// The counters first (`repr(C)`): every capture reads `paused`.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct ExactPrefixes {
    paused: u32,
    strikes: u32,
    generation: u32,
    /// Captures that took a prefix from the set.
    #[cfg(test)]
    pub(super) hits: u64,
    hashes: [u64; SLOTS],
}

impl ExactPrefixes {
    /// An empty set.
    pub(crate) const fn new() -> Self {
        Self {
            hashes: [0; SLOTS],
            generation: 0,
            strikes: 0,
            paused: 0,
            #[cfg(test)]
            hits: 0,
        }
    }

    /// Whether this capture tries the frame-record walk first.
    #[inline(always)]
    pub(super) fn worth_trying(&mut self) -> bool {
        if self.paused == 0 {
            return true;
        }
        self.paused -= 1;
        false
    }

    /// Whether the prefix with this hash checked out, under the rules of generation `now`
    /// (`rules::generation`, the current one).
    #[inline(always)]
    pub(super) fn contains(&mut self, hash: u64, now: u32) -> bool {
        if now != self.generation {
            self.forget(now);
            return false;
        }
        let found = hash != 0 && self.hashes[(hash >> SLOT_SHIFT) as usize] == hash;
        #[cfg(test)]
        {
            self.hits += found as u64;
        }
        found
    }

    /// After a rule walk: records whether the frame-record prefix with hash `hash` and
    /// `len` frames checked out, given the rule walk's `records` bits (bit `i`: frame `i`
    /// reached through a frame record by a known rule). Returns whether it checked out.
    pub(super) fn learn(&mut self, hash: u64, len: usize, records: u64) -> bool {
        let all = if len >= 64 { u64::MAX } else { (1u64 << len) - 1 };
        if len > 0 && records & all == all {
            self.strikes = 0;
            if hash != 0 {
                self.hashes[(hash >> SLOT_SHIFT) as usize] = hash;
            }
            true
        } else {
            self.strikes += 1;
            if self.strikes >= STRIKES {
                self.strikes = 0;
                self.paused = PAUSE;
            }
            false
        }
    }

    #[cold]
    #[inline(never)]
    fn forget(&mut self, generation: u32) {
        self.hashes = [0; SLOTS];
        self.generation = generation;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_checks_out_only_when_every_frame_came_from_a_frame_record() {
        let mut set = ExactPrefixes::new();
        let hash = 0xdead_beef_0000_0001;
        assert!(!set.contains(hash, 0));
        assert!(!set.learn(hash, 3, 0b011), "frame 2 came by another rule");
        assert!(!set.contains(hash, 0));
        assert!(!set.learn(hash, 0, u64::MAX), "an empty prefix");
        assert!(set.learn(hash, 3, 0b1111), "frames 0..3 by records; frame 3 is past the prefix");
        assert!(set.contains(hash, 0));
        assert!(set.learn(hash ^ 1, 64, u64::MAX), "a whole 64-frame capture");
        assert!(set.contains(hash ^ 1, 0));
        assert_eq!(set.hits, 2);
    }

    #[test]
    fn a_thread_whose_prefixes_never_check_out_pauses() {
        let mut set = ExactPrefixes::new();
        for i in 0..STRIKES {
            assert!(set.worth_trying(), "strike {i}");
            set.learn(i as u64 + 1, 4, 0);
        }
        let tries = (0..PAUSE).filter(|_| set.worth_trying()).count();
        assert_eq!(tries, 0);
        assert!(set.worth_trying(), "the pause ends");
        set.learn(7, 4, 0b1111);
        assert_eq!(set.strikes, 0, "a prefix that checks out forgives the strikes");
    }

    #[test]
    fn new_rules_empty_the_set() {
        let mut set = ExactPrefixes::new();
        assert!(!set.contains(5, 0));
        set.learn(5, 1, 1);
        assert!(set.contains(5, 0));
        assert!(!set.contains(5, 1), "learned under other rules");
        set.learn(5, 1, 1);
        assert!(set.contains(5, 1));
    }
}
