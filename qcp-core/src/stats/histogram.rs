//! Latency histograms with fixed bucket bounds: one atomic add per observation.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds of the buckets, in microseconds (the last bucket, `+Inf`, is implied): from
/// 50 µs (a fast query on loopback) to 60 s, roughly ×2.5 apart, so percentiles between
/// neighbouring bounds stay within one step.
pub const BUCKET_BOUNDS_US: [u64; 18] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 60_000_000,
];

/// Number of buckets, with `+Inf`.
pub const BUCKETS: usize = BUCKET_BOUNDS_US.len() + 1;

/// One shard's histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative).
    buckets: [AtomicU64; BUCKETS],
    /// Sum of the observations, µs.
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation of `us` microseconds.
    #[inline]
    pub fn observe(&self, us: u64) {
        let index = BUCKET_BOUNDS_US.partition_point(|&bound| bound < us);
        if let Some(bucket) = self.buckets.get(index) {
            bucket.fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// Adds this shard into `into`.
    pub fn add_to(&self, into: &mut HistogramSnapshot) {
        for (total, bucket) in into.buckets.iter_mut().zip(&self.buckets) {
            *total = total.wrapping_add(bucket.load(Relaxed));
        }
        into.sum_us = into.sum_us.wrapping_add(self.sum_us.load(Relaxed));
    }
}

/// A histogram summed over shards: counts per bucket (not cumulative; the last is `+Inf`)
/// and the sum of the observations in µs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Observations per bucket, bounds as [`BUCKET_BOUNDS_US`] then `+Inf`.
    pub buckets: [u64; BUCKETS],
    /// Sum of the observations, µs.
    pub sum_us: u64,
}

impl HistogramSnapshot {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().fold(0u64, |a, b| a.wrapping_add(*b))
    }

    /// Adds `other` into this one.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a = a.wrapping_add(*b);
        }
        self.sum_us = self.sum_us.wrapping_add(other.sum_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_is_not_below_them() {
        let h = Histogram::default();
        for us in [0, 50, 51, 100, 60_000_000, 60_000_001, u64::MAX / 2] {
            h.observe(us);
        }
        let mut s = HistogramSnapshot::default();
        h.add_to(&mut s);
        assert_eq!(s.buckets[0], 2, "0 and 50 µs are <= 50");
        assert_eq!(s.buckets[1], 2, "51 and 100 µs are <= 100");
        assert_eq!(s.buckets[BUCKETS - 2], 1, "60 s is the last bound");
        assert_eq!(s.buckets[BUCKETS - 1], 2, "beyond 60 s is +Inf");
        assert_eq!(s.count(), 7);
    }
}
