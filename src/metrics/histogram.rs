//! Integer log-linear histogram over latencies in microseconds, with add *and* remove.
//!
//! Layout (after HdrHistogram): a value `v` falls in octave `⌊log2 v⌋`; each octave above
//! the first is cut into `2^sub_bits` equal-width sub-buckets, and values below
//! `2^(sub_bits+1)` get one bucket each (exact). A bucket in octave `e` is `2^(e-sub_bits)`
//! wide and starts at `≥ 2^sub_bits` times its width, so reporting its midpoint is off by
//! less than `2^-(sub_bits+1)` of the true value: < 0.39 % for [`Layout::FINE`] (128
//! sub-buckets per power of two), < 0.78 % for [`Layout::COMPACT`] (64).
//!
//! The histogram covers `0..=u32::MAX` µs (about 71.6 minutes); larger values are
//! saturated to `u32::MAX`, exactly as the window's ring stores them, so a histogram and the
//! raw values it summarises always agree on which bucket a value is in.

/// Largest value the histogram (and the event ring) can hold; larger values saturate.
pub const MAX_VALUE_US: u64 = u32::MAX as u64;

/// Saturates a latency to the range the collector stores (`0..=u32::MAX` µs).
#[inline]
pub fn saturate_us(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Nearest-rank position of the `q`-quantile among `n` values, 1-based: `⌈q·n⌉`, and 1
/// for `q = 0` (the minimum). `q` is clamped to `[0, 1]` (NaN counts as 0) and resolved to
/// millionths in integer arithmetic, so `rank(0.99, 100)` is exactly 99 with no
/// floating-point surprise at integer boundaries. Returns 0 only when `n == 0`.
pub fn rank(q: f64, n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
    // Casting a clamped, rounded f64 in [0, 1e6] to u64 is exact.
    let ppm = (q * 1_000_000.0).round() as u128;
    let k = (ppm * u128::from(n)).div_ceil(1_000_000);
    u64::try_from(k).unwrap_or(n).clamp(1, n)
}

/// Bucket geometry: how values map to bucket indices and back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    sub_bits: u32,
}

impl Layout {
    /// 128 sub-buckets per power of two: 3,328 buckets, relative error < 1/256.
    pub const FINE: Layout = Layout { sub_bits: 7 };
    /// 64 sub-buckets per power of two: 1,728 buckets, relative error < 1/128. Used where
    /// a histogram is kept per time slot and memory, not precision, is the constraint.
    pub const COMPACT: Layout = Layout { sub_bits: 6 };

    /// Number of buckets needed to cover `0..=u32::MAX`: `(33 - sub_bits) · 2^sub_bits`.
    #[inline]
    pub const fn buckets(self) -> usize {
        ((33 - self.sub_bits) as usize) << self.sub_bits
    }

    /// Upper bound on `|representative - v| / v` for any `v > 0` in a bucket.
    pub fn relative_error_bound(self) -> f64 {
        1.0 / f64::from(1u32 << (self.sub_bits + 1))
    }

    /// Bucket index of `v`. Branch-free: below `2^(sub_bits+1)` the shift is zero and the
    /// index is the value itself.
    #[inline]
    pub fn index(self, v: u32) -> usize {
        let log2 = 31 - v.leading_zeros() as i32; // -1 for v == 0
        let shift = (log2 - self.sub_bits as i32).max(0) as u32;
        ((shift << self.sub_bits) + (v >> shift)) as usize
    }

    /// Smallest value in bucket `i`.
    #[inline]
    pub fn low(self, i: usize) -> u32 {
        let (shift, mantissa) = self.split(i);
        mantissa << shift
    }

    /// Largest value in bucket `i`.
    #[inline]
    pub fn high(self, i: usize) -> u32 {
        let (shift, mantissa) = self.split(i);
        // Computed in u64: the top bucket ends exactly at u32::MAX.
        let high = ((u64::from(mantissa) + 1) << shift) - 1;
        u32::try_from(high).unwrap_or(u32::MAX)
    }

    /// The value reported for bucket `i`: its midpoint (rounded down), which keeps the
    /// relative error under [`Layout::relative_error_bound`] for every value in it.
    #[inline]
    pub fn representative(self, i: usize) -> u32 {
        let low = self.low(i);
        low + (self.high(i) - low) / 2
    }

    #[inline]
    fn split(self, i: usize) -> (u32, u32) {
        debug_assert!(i < self.buckets());
        let i = i as u32;
        let shift = (i >> self.sub_bits).saturating_sub(1);
        (shift, i - (shift << self.sub_bits))
    }
}

/// A bucket counter. Implemented for `u32` (windows bounded by event count) and `u64`
/// (windows bounded only by time).
pub trait Count: Copy + Default + Into<u64> + std::fmt::Debug {
    /// Adds one, wrapping: every add is paired with a remove, so counts stay exact as
    /// long as no bucket truly holds more than the type's maximum.
    fn inc(&mut self);
    /// Subtracts `n` (the caller only removes what it added).
    fn sub(&mut self, n: u64);
}

macro_rules! impl_count {
    ($($t:ty),*) => {$(
        impl Count for $t {
            #[inline]
            fn inc(&mut self) {
                *self = self.wrapping_add(1);
            }
            #[inline]
            fn sub(&mut self, n: u64) {
                *self = self.wrapping_sub(n as $t);
            }
        }
    )*};
}
impl_count!(u32, u64);

/// Where a rank falls: the bucket holding it and how many values lie in lower buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankLocation {
    /// Bucket index.
    pub bucket: usize,
    /// Number of values in buckets below `bucket`.
    pub below: u64,
}

/// A fixed-size log-linear histogram: `add` and `remove` are O(1), a quantile is one
/// prefix-sum pass.
#[derive(Clone, Debug)]
pub struct Histogram<C: Count = u64> {
    layout: Layout,
    counts: Box<[C]>,
    total: u64,
}

impl<C: Count> Histogram<C> {
    /// An empty histogram with the given bucket layout.
    pub fn new(layout: Layout) -> Self {
        Histogram {
            layout,
            counts: vec![C::default(); layout.buckets()].into_boxed_slice(),
            total: 0,
        }
    }

    /// The bucket layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Number of values held.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Bytes used by the bucket array and the struct itself.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + std::mem::size_of_val(&*self.counts)
    }

    /// Number of values in bucket `i`.
    #[inline]
    pub fn bucket_count(&self, i: usize) -> u64 {
        self.counts[i].into()
    }

    /// Records a value (saturated to `u32::MAX`).
    #[inline]
    pub fn add(&mut self, v: u64) {
        self.add_us(saturate_us(v));
    }

    #[inline]
    pub(crate) fn add_us(&mut self, v: u32) {
        self.counts[self.layout.index(v)].inc();
        self.total += 1;
    }

    /// Removes one occurrence of a value previously added. Returns false (and changes
    /// nothing) if the value's bucket is empty, which means the caller lost track.
    #[inline]
    pub fn remove(&mut self, v: u64) -> bool {
        let i = self.layout.index(saturate_us(v));
        self.remove_from_bucket(i, 1)
    }

    /// Removes `n` values from bucket `i` (used to subtract an expired slot).
    pub(crate) fn remove_from_bucket(&mut self, i: usize, n: u64) -> bool {
        if self.bucket_count(i) < n {
            debug_assert!(false, "removing {n} from bucket {i} holding fewer");
            return false;
        }
        self.counts[i].sub(n);
        self.total -= n;
        true
    }

    /// Empties the histogram.
    pub fn clear(&mut self) {
        self.counts.fill(C::default());
        self.total = 0;
    }

    /// Locates each 1-based rank (which must be ascending and within `1..=count`) in ONE
    /// prefix-sum pass that stops at the bucket holding the last rank. The pass moves by
    /// blocks of 64 buckets (a vectorised sum) and only walks a block bucket by bucket when
    /// the next rank falls inside it.
    pub fn locate(&self, ranks: &[u64]) -> Vec<RankLocation> {
        const BLOCK: usize = 64;
        debug_assert!(ranks.windows(2).all(|w| w[0] <= w[1]));
        let mut out = Vec::with_capacity(ranks.len());
        let mut below = 0u64;
        let mut next = 0;
        for (block, chunk) in self.counts.chunks(BLOCK).enumerate() {
            if next == ranks.len() {
                break;
            }
            let sum: u64 = chunk.iter().map(|&c| c.into()).sum();
            if below + sum < ranks[next] {
                below += sum;
                continue;
            }
            for (i, c) in chunk.iter().enumerate() {
                let upto = below + (*c).into();
                while next < ranks.len() && ranks[next] <= upto {
                    out.push(RankLocation {
                        bucket: block * BLOCK + i,
                        below,
                    });
                    next += 1;
                }
                below = upto;
            }
        }
        out
    }

    /// Nearest-rank `q`-quantile, reported as its bucket's representative value (relative
    /// error below [`Layout::relative_error_bound`]). `None` when empty.
    pub fn value_at_quantile(&self, q: f64) -> Option<u64> {
        let k = rank(q, self.total);
        if k == 0 {
            return None;
        }
        let loc = self.locate(&[k]);
        loc.first()
            .map(|l| u64::from(self.layout.representative(l.bucket)))
    }

    /// Bounds on how many values are `≤ v`: every value in lower buckets certainly is; of
    /// `v`'s own bucket, none, some or all may be. The bounds are equal when `v` is the
    /// bucket's upper edge or the bucket is empty; otherwise the raw values decide.
    pub fn count_le_bounds(&self, v: u64) -> (u64, u64) {
        let v = saturate_us(v);
        let b = self.layout.index(v);
        let below: u64 = self.counts[..b].iter().map(|&c| c.into()).sum();
        let inside = self.bucket_count(b);
        if v == self.layout.high(b) {
            (below + inside, below + inside)
        } else {
            (below, below + inside)
        }
    }

    /// Non-empty buckets as `(bucket index, count)`, ascending.
    pub fn nonzero(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, &c)| (i, c.into()))
            .filter(|&(_, c)| c > 0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rank_follows_nearest_rank_definition() {
        assert_eq!(rank(0.99, 100), 99);
        assert_eq!(rank(0.5, 100), 50);
        assert_eq!(rank(0.5, 101), 51);
        assert_eq!(rank(0.0, 7), 1);
        assert_eq!(rank(1.0, 7), 7);
        assert_eq!(rank(0.999, 1000), 999);
        assert_eq!(rank(0.999, 1001), 1000);
        assert_eq!(rank(0.95, 20), 19);
        assert_eq!(rank(0.9, 10), 9);
        assert_eq!(rank(0.1, 3), 1);
        assert_eq!(rank(f64::NAN, 3), 1);
        assert_eq!(rank(0.5, 0), 0);
    }

    #[test]
    fn layouts_cover_u32_exactly_and_contiguously() {
        for layout in [Layout::FINE, Layout::COMPACT] {
            let n = layout.buckets();
            assert_eq!(layout.index(u32::MAX), n - 1);
            assert_eq!(layout.high(n - 1), u32::MAX);
            assert_eq!(layout.low(0), 0);
            for i in 1..n {
                assert_eq!(layout.low(i), layout.high(i - 1) + 1, "bucket {i}");
                assert_eq!(layout.index(layout.low(i)), i);
                assert_eq!(layout.index(layout.high(i)), i);
            }
        }
        assert_eq!(Layout::FINE.buckets(), 3328);
        assert_eq!(Layout::COMPACT.buckets(), 1728);
    }

    #[test]
    fn representative_stays_within_the_stated_relative_error() {
        for layout in [Layout::FINE, Layout::COMPACT] {
            let bound = layout.relative_error_bound();
            for i in 1..layout.buckets() {
                let rep = f64::from(layout.representative(i));
                for v in [layout.low(i), layout.high(i)] {
                    let err = (rep - f64::from(v)).abs() / f64::from(v);
                    assert!(err < bound, "bucket {i} value {v} err {err}");
                }
            }
        }
        assert!(Layout::FINE.relative_error_bound() < 0.01);
        assert!(Layout::COMPACT.relative_error_bound() < 0.01);
    }

    #[test]
    fn small_values_have_exact_buckets() {
        let l = Layout::FINE;
        for v in 0..256 {
            assert_eq!(l.low(l.index(v)), v);
            assert_eq!(l.high(l.index(v)), v);
        }
    }

    #[test]
    fn add_remove_and_quantiles() {
        let mut h: Histogram<u32> = Histogram::new(Layout::FINE);
        assert_eq!(h.value_at_quantile(0.5), None);
        for v in 1..=100u64 {
            h.add(v);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.value_at_quantile(0.99), Some(99));
        assert_eq!(h.value_at_quantile(0.0), Some(1));
        assert_eq!(h.value_at_quantile(1.0), Some(100));
        assert!(h.remove(100));
        assert_eq!(h.value_at_quantile(1.0), Some(99));
        h.clear();
        assert_eq!(h.count(), 0);
        assert!(!h.nonzero().any(|_| true));
    }

    #[test]
    fn huge_values_saturate_into_the_top_bucket() {
        let mut h: Histogram<u64> = Histogram::new(Layout::COMPACT);
        h.add(u64::MAX);
        h.add(MAX_VALUE_US);
        assert_eq!(h.bucket_count(Layout::COMPACT.buckets() - 1), 2);
        let p = h.value_at_quantile(0.5).unwrap();
        let err = (MAX_VALUE_US - p) as f64 / MAX_VALUE_US as f64;
        assert!(err < Layout::COMPACT.relative_error_bound());
    }

    #[test]
    fn count_le_bounds_bracket_the_truth() {
        let mut h: Histogram<u32> = Histogram::new(Layout::FINE);
        for v in [100u64, 1000, 1001, 1003, 5000] {
            h.add(v);
        }
        assert_eq!(h.count_le_bounds(99), (0, 0));
        assert_eq!(h.count_le_bounds(100), (1, 1));
        let (lo, hi) = h.count_le_bounds(1001);
        assert!(lo <= 3 && 3 <= hi);
        assert_eq!(h.count_le_bounds(u64::MAX), (5, 5));
    }

    #[test]
    fn locate_finds_each_rank_in_one_pass() {
        let mut h: Histogram<u32> = Histogram::new(Layout::FINE);
        for v in [5u64, 5, 7, 300, 300, 300, 9000] {
            h.add(v);
        }
        let locs = h.locate(&[1, 2, 3, 4, 6, 7]);
        let l = Layout::FINE;
        let buckets: Vec<usize> = locs.iter().map(|x| x.bucket).collect();
        assert_eq!(
            buckets,
            vec![
                l.index(5),
                l.index(5),
                l.index(7),
                l.index(300),
                l.index(300),
                l.index(9000)
            ]
        );
        assert_eq!(locs[3].below, 3);
    }
}
