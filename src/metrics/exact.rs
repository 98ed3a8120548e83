//! Exact order statistics and threshold counts from a histogram plus the raw values.
//!
//! The histogram says which bucket holds each wanted rank; one pass over the raw values
//! keeps only those falling in the (few) target buckets, and a selection inside each target
//! finishes the job. Nothing is sorted: the cost is one vectorised O(N) range filter plus
//! a selection over the fraction of a percent of the values that pass it.

use super::histogram::{Count, Histogram};

/// The exact values at the given 1-based ranks (ascending, each in `1..=hist.count()`),
/// where `values` (split in two slices, any order) is exactly the multiset that `hist`
/// summarises.
pub(crate) fn values_at_ranks<C: Count>(
    hist: &Histogram<C>,
    ranks: &[u64],
    values: (&[u32], &[u32]),
) -> Vec<u32> {
    let layout = hist.layout();
    let locs = hist.locate(ranks);
    debug_assert_eq!(locs.len(), ranks.len());

    // Buckets one value wide answer directly; the others become scan targets.
    let mut targets: Vec<usize> = Vec::new();
    for loc in &locs {
        if layout.low(loc.bucket) != layout.high(loc.bucket) && !targets.contains(&loc.bucket) {
            targets.push(loc.bucket);
        }
    }
    let mut groups: Vec<Vec<u32>> = Vec::new();
    if !targets.is_empty() {
        // Bucket → 1 + its target position, consulted only for values that pass the
        // range filter below.
        let mut table = vec![0u16; layout.buckets()];
        for (g, &b) in targets.iter().enumerate() {
            table[b] = u16::try_from(g + 1).unwrap_or(u16::MAX);
            let expected = usize::try_from(hist.bucket_count(b)).unwrap_or(0);
            groups.push(Vec::with_capacity(expected));
        }
        // Targets are ascending; adjacent buckets merge into one value range.
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for &b in &targets {
            match ranges.last_mut() {
                Some(r) if layout.index(r.1) + 1 == b => r.1 = layout.high(b),
                _ => ranges.push((layout.low(b), layout.high(b))),
            }
        }
        let mut keep = |v: u32| {
            let t = table[layout.index(v)];
            if t != 0 {
                groups[usize::from(t) - 1].push(v);
            }
        };
        for part in [values.0, values.1] {
            match ranges.len() {
                1 => filter::<1>(part, &ranges, &mut keep),
                2 => filter::<2>(part, &ranges, &mut keep),
                3 => filter::<3>(part, &ranges, &mut keep),
                4 => filter::<4>(part, &ranges, &mut keep),
                5..=8 => filter::<8>(part, &ranges, &mut keep),
                _ => part.iter().for_each(|&v| keep(v)),
            }
        }
    }

    locs.iter()
        .zip(ranks)
        .map(|(loc, &k)| {
            let low = layout.low(loc.bucket);
            if low == layout.high(loc.bucket) {
                return low;
            }
            let Some(g) = targets.iter().position(|&b| b == loc.bucket) else {
                return low; // unreachable: every wide bucket is a target
            };
            let group = &mut groups[g];
            let nth = (k - loc.below - 1) as usize;
            if nth >= group.len() {
                // The values do not match the histogram; fail soft rather than panic.
                debug_assert!(false, "ring and histogram disagree");
                return layout.representative(loc.bucket);
            }
            *group.select_nth_unstable(nth).1
        })
        .collect()
}

/// Calls `keep` for every value inside one of `ranges` (inclusive `(low, high)`, at most
/// `K`; missing ones repeat the first). Written so the compiler vectorises it: each chunk
/// of 32 values is OR-reduced through branch-free range compares, and only a chunk with a
/// hit (target buckets hold well under 1 % of the values) is walked again one by one. That
/// costs about 0.4 ns per value here, against 1 ns for indexing every value or for
/// building a per-value hit mask.
fn filter<const K: usize>(part: &[u32], ranges: &[(u32, u32)], keep: &mut impl FnMut(u32)) {
    const CHUNK: usize = 32;
    let mut fixed = [(ranges[0].0, ranges[0].1 - ranges[0].0); K];
    for (slot, &(low, high)) in fixed.iter_mut().zip(ranges) {
        *slot = (low, high - low);
    }
    let inside = |v: u32| {
        fixed.iter().fold(false, |hit, &(low, width)| {
            hit | (v.wrapping_sub(low) <= width)
        })
    };
    let mut chunks = part.chunks_exact(CHUNK);
    for chunk in &mut chunks {
        if chunk.iter().fold(false, |any, &v| any | inside(v)) {
            chunk.iter().filter(|&&v| inside(v)).for_each(|&v| keep(v));
        }
    }
    chunks
        .remainder()
        .iter()
        .filter(|&&v| inside(v))
        .for_each(|&v| keep(v));
}

/// Exactly how many of `values` (the multiset `hist` summarises) are `≤ threshold`.
/// Only the threshold's own bucket needs the raw values, and only when the histogram
/// cannot already tell.
pub(crate) fn count_le<C: Count>(
    hist: &Histogram<C>,
    threshold: u32,
    values: (&[u32], &[u32]),
) -> u64 {
    let (lo, hi) = hist.count_le_bounds(u64::from(threshold));
    if lo == hi {
        return lo;
    }
    let bucket_low = hist.layout().low(hist.layout().index(threshold));
    let inside = |part: &[u32]| {
        part.iter()
            .filter(|&&v| v >= bucket_low && v <= threshold)
            .count() as u64
    };
    lo + inside(values.0) + inside(values.1)
}

/// Bounds of `count_le` when the raw values are not available: exact below the
/// threshold's bucket; the bucket itself counts as `≤ threshold` when its representative
/// is (an error of at most one bucket width, i.e. under 1 % of the threshold).
pub(crate) fn count_le_approx<C: Count>(hist: &Histogram<C>, threshold: u32) -> u64 {
    let (lo, hi) = hist.count_le_bounds(u64::from(threshold));
    let layout = hist.layout();
    if layout.representative(layout.index(threshold)) <= threshold {
        hi
    } else {
        lo
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::histogram::{Layout, rank};
    use super::*;

    fn hist_of(values: &[u32], layout: Layout) -> Histogram<u32> {
        let mut h = Histogram::new(layout);
        for &v in values {
            h.add(u64::from(v));
        }
        h
    }

    #[test]
    fn exact_ranks_match_sorting() {
        let values: Vec<u32> = (0..5000u32)
            .map(|i| i.wrapping_mul(2_654_435_761) % 1_000_000)
            .collect();
        let mut sorted = values.clone();
        sorted.sort_unstable();
        let h = hist_of(&values, Layout::FINE);
        let n = values.len() as u64;
        let ranks: Vec<u64> = [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]
            .iter()
            .map(|&q| rank(q, n))
            .collect();
        let (a, b) = values.split_at(1234);
        let got = values_at_ranks(&h, &ranks, (b, a));
        let want: Vec<u32> = ranks.iter().map(|&k| sorted[k as usize - 1]).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn count_le_is_exact_inside_a_bucket() {
        let values = [1000u32, 1001, 1002, 1003, 1004, 1005, 2000];
        let h = hist_of(&values, Layout::COMPACT);
        for t in [999u32, 1000, 1001, 1002, 1003, 1005, 1999, 2000] {
            let want = values.iter().filter(|&&v| v <= t).count() as u64;
            assert_eq!(count_le(&h, t, (&values, &[])), want, "threshold {t}");
        }
    }
}
