//! The timeline: live heap size sampled over time, bounded in size.
//!
//! # Design
//! A fixed array of [`CAPACITY`] points (no allocation: it is written under the
//! recorder's lock on the allocation path). A point is kept when at least `interval_us`
//! passed since the last kept one; when the array is full, every other point is dropped
//! and the interval doubles, so a run of any length ends with between `CAPACITY / 2` and
//! `CAPACITY` points evenly spread over it (the classic decimation of heap profilers).

/// Most points kept.
pub(crate) const CAPACITY: usize = 2048;

/// The first sampling interval.
const FIRST_INTERVAL_US: u64 = 100;

/// One sample: (microseconds, live bytes, live blocks).
pub(crate) type Point = (u64, u64, u64);

/// The sampled points, oldest first.
pub(crate) struct Timeline {
    points: [Point; CAPACITY],
    len: usize,
    interval_us: u64,
}

impl Timeline {
    pub(crate) const fn new() -> Self {
        Self { points: [(0, 0, 0); CAPACITY], len: 0, interval_us: FIRST_INTERVAL_US }
    }

    /// Offers a sample; kept if the interval passed since the last kept point.
    pub(crate) fn offer(&mut self, t_us: u64, live_bytes: u64, live_blocks: u64) {
        if self.len > 0 && t_us < self.points[self.len - 1].0 + self.interval_us {
            return;
        }
        if self.len == CAPACITY {
            self.decimate();
        }
        self.points[self.len] = (t_us, live_bytes, live_blocks);
        self.len += 1;
    }

    /// Keeps every other point (the first one included) and doubles the interval.
    fn decimate(&mut self) {
        let kept = self.len.div_ceil(2);
        for i in 0..kept {
            self.points[i] = self.points[2 * i];
        }
        self.len = kept;
        self.interval_us = self.interval_us.saturating_mul(2);
    }

    /// The points, oldest first.
    pub(crate) fn points(&self) -> &[Point] {
        &self.points[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_closer_than_the_interval_are_skipped() {
        let mut t = Timeline::new();
        t.offer(0, 1, 1);
        t.offer(50, 2, 2);
        t.offer(100, 3, 3);
        assert_eq!(t.points(), &[(0, 1, 1), (100, 3, 3)]);
    }

    #[test]
    fn a_long_run_stays_bounded_and_spread_out() {
        let mut t = Timeline::new();
        for i in 0..1_000_000u64 {
            t.offer(i * 37, i, i);
        }
        let p = t.points();
        assert!(p.len() >= CAPACITY / 2 && p.len() <= CAPACITY, "{}", p.len());
        assert_eq!(p[0].0, 0);
        assert!(p.windows(2).all(|w| w[0].0 < w[1].0));
        // Evenly spread: the last point is near the end of the run.
        assert!(p[p.len() - 1].0 > 999_000 * 37 - 2 * t.interval_us, "{:?}", p.last());
    }
}
