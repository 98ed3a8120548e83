//! The report of a window at one instant: a plain serde value, frozen onto incidents as
//! their metric snapshot.
//!
//! Definitions used throughout:
//! - quantiles are nearest-rank: the q-quantile of n values is the ⌈q·n⌉-th smallest
//!   (q = 0 gives the minimum), see [`super::rank`];
//! - `rate_per_s` = `count / max(covered_secs, 1)`; for the last-N window `covered_secs`
//!   runs from its oldest event to `now`, for the last-T window from the start of its
//!   oldest slot (or the first event the window ever saw, if later) to `now`. The one
//!   second floor keeps a brand-new window from reporting absurd rates;
//! - `error_rate` = `errors / count`, 0 when there are no events;
//! - latencies are in milliseconds (recorded in µs, so three decimals are exact).
//!   No value is ever NaN or infinite, so every report serialises to JSON.

use serde::{Deserialize, Serialize};

use super::histogram::Count;
use super::window::{N_LAYOUT, ScopeData, ServiceWindow, WindowConfig, quantiles_of};

/// How quantiles are computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantileMode {
    /// The histogram bucket's representative value: < 1 % relative error, one prefix-sum
    /// pass over the histogram.
    #[default]
    Fast,
    /// The exact nearest-rank value, equal to sorting a copy of the events: the histogram
    /// picks the target buckets and one scan of the ring refines inside them.
    Exact,
}

/// Both windows of one service at `taken_at_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowReport {
    /// The `now` the report was taken at (ms).
    pub taken_at_ms: u64,
    /// How the quantiles were computed.
    pub mode: QuantileMode,
    /// The window's sizes.
    pub config: WindowConfig,
    /// The last N events.
    pub last_n: WindowStats,
    /// The last T seconds.
    pub last_t: WindowStats,
    /// The saturation gauge over the last T seconds. Gauge samples are not events, so it
    /// has no last-N counterpart and is reported once.
    pub saturation: SaturationStats,
    /// One point per slot of the time window, oldest first, for charts.
    pub series: Vec<SeriesPoint>,
    /// Sparse latency histogram of the last-N window at 8 bins per power of two.
    pub histogram: Vec<HistogramBin>,
}

/// Traffic, errors and latency of one window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    /// Events in the window.
    pub count: u64,
    /// Seconds the window spans up to `now` (see the module docs).
    pub covered_secs: f64,
    /// `count / max(covered_secs, 1)`.
    pub rate_per_s: f64,
    /// Events recorded as errors.
    pub errors: u64,
    /// `errors / count` (0 when empty).
    pub error_rate: f64,
    /// Whether the quantiles are exact. Exact mode on the last-T window falls back to the
    /// histogram when the window holds more events than the ring does.
    pub quantiles_exact: bool,
    /// `None` when the window is empty.
    pub latency_ms: Option<LatencyMs>,
}

/// Latency summary in milliseconds. `mean` is always exact; `min`/`max` are exact for the
/// last-T window (tracked per slot) and follow the quantile mode for the last-N window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyMs {
    /// Smallest latency.
    pub min: f64,
    /// Mean latency.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest latency.
    pub max: f64,
}

/// Saturation gauge over the time window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SaturationStats {
    /// Gauge samples in the window.
    pub samples: u64,
    /// The latest sample, if it is inside the window.
    pub current: Option<f64>,
    /// Mean of the samples in the window.
    pub mean: Option<f64>,
    /// Largest sample in the window.
    pub max: Option<f64>,
}

/// One time slot of the series.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Start of the slot (ms).
    pub start_ms: u64,
    /// Events in the slot.
    pub count: u64,
    /// Errors in the slot.
    pub errors: u64,
    /// Exact mean latency (ms).
    pub mean_ms: Option<f64>,
    /// Exact largest latency (ms).
    pub max_ms: Option<f64>,
    /// Approximate median (< 0.78 % relative error).
    pub p50_ms: Option<f64>,
    /// Approximate 95th percentile.
    pub p95_ms: Option<f64>,
    /// Approximate 99th percentile.
    pub p99_ms: Option<f64>,
    /// Largest saturation sample in the slot.
    pub saturation_max: Option<f64>,
}

/// A histogram bin: `count` latencies in `low_us..=high_us`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramBin {
    /// Smallest latency in the bin (µs).
    pub low_us: u32,
    /// Largest latency in the bin (µs).
    pub high_us: u32,
    /// Latencies in the bin.
    pub count: u64,
}

/// Quantiles reported, after min.
const REPORTED: [f64; 7] = [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0];
/// `N_LAYOUT` buckets merged into one exported bin: 128 / 16 = 8 bins per power of two.
const BIN_MERGE: usize = 16;

pub(crate) fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Mean in ms, computed one way everywhere so reports and rules agree bit for bit.
pub(crate) fn mean_ms(sum_us: u128, count: u64) -> f64 {
    sum_us as f64 / count as f64 / 1000.0
}

pub(crate) fn error_rate(errors: u64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        errors as f64 / count as f64
    }
}

pub(crate) fn rate_per_s(count: u64, covered_ms: u64) -> f64 {
    count as f64 / (covered_ms as f64 / 1000.0).max(1.0)
}

fn stats<C: Count>(d: &ScopeData<'_, C>, mode: QuantileMode) -> WindowStats {
    let (latency_ms, quantiles_exact) = match quantiles_of(d, &REPORTED, mode) {
        None => (None, false),
        Some(q) => {
            let v = &q.values_us;
            let (min, max) = d
                .min_max_us
                .map_or((v[0], v[6]), |(lo, hi)| (u64::from(lo), u64::from(hi)));
            let latency = LatencyMs {
                min: ms(min),
                mean: mean_ms(d.sum_us, d.count),
                p50: ms(v[1]),
                p90: ms(v[2]),
                p95: ms(v[3]),
                p99: ms(v[4]),
                p999: ms(v[5]),
                max: ms(max),
            };
            (Some(latency), q.exact)
        }
    };
    WindowStats {
        count: d.count,
        covered_secs: d.covered_ms as f64 / 1000.0,
        rate_per_s: rate_per_s(d.count, d.covered_ms),
        errors: d.errors,
        error_rate: error_rate(d.errors, d.count),
        quantiles_exact,
        latency_ms,
    }
}

/// Builds the report; the window's clock has already been advanced to `now`.
/// The last-T window's figures alone: what a list of services shows, without the per-slot
/// series a chart needs (a quantile computation per slot, the bulk of a report's cost on a
/// busy service).
pub(crate) fn last_t_stats(w: &ServiceWindow, now: u64, mode: QuantileMode) -> WindowStats {
    stats(&w.last_t(now), mode)
}

pub(crate) fn build(w: &ServiceWindow, now: u64, mode: QuantileMode) -> WindowReport {
    let config = w.config();
    let (samples, sum, max) = w.saturation_totals();
    let saturation = SaturationStats {
        samples,
        current: w.current_saturation(now),
        mean: (samples > 0).then(|| sum / samples as f64),
        max: (samples > 0).then_some(max),
    };

    let slot_ms = config.slot_ms();
    let first_k = w.window_start_ms(now) / slot_ms;
    let series = (first_k..=now / slot_ms)
        .map(|k| {
            let mut point = SeriesPoint {
                start_ms: k * slot_ms,
                count: 0,
                errors: 0,
                mean_ms: None,
                max_ms: None,
                p50_ms: None,
                p95_ms: None,
                p99_ms: None,
                saturation_max: None,
            };
            if let Some((pos, slot)) = w.slot(k) {
                point.count = slot.count;
                point.errors = slot.errors;
                point.saturation_max = (slot.sat_count > 0).then_some(slot.sat_max);
                if slot.count > 0 {
                    let [p50, p95, p99] = w.slot_quantiles(pos, [0.5, 0.95, 0.99]);
                    point.mean_ms = Some(mean_ms(slot.sum_us, slot.count));
                    point.max_ms = Some(ms(u64::from(slot.max_us)));
                    point.p50_ms = Some(ms(u64::from(p50)));
                    point.p95_ms = Some(ms(u64::from(p95)));
                    point.p99_ms = Some(ms(u64::from(p99)));
                }
            }
            point
        })
        .collect();

    let mut histogram: Vec<HistogramBin> = Vec::new();
    for (b, c) in w.n_hist().nonzero() {
        let group = b / BIN_MERGE;
        match histogram.last_mut() {
            Some(bin) if N_LAYOUT.index(bin.low_us) / BIN_MERGE == group => bin.count += c,
            _ => histogram.push(HistogramBin {
                low_us: N_LAYOUT.low(group * BIN_MERGE),
                high_us: N_LAYOUT.high(group * BIN_MERGE + BIN_MERGE - 1),
                count: c,
            }),
        }
    }

    WindowReport {
        taken_at_ms: now,
        mode,
        config,
        last_n: stats(&w.last_n(now), mode),
        last_t: stats(&w.last_t(now), mode),
        saturation,
        series,
        histogram,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::window::ServiceWindow;
    use super::*;

    fn window() -> ServiceWindow {
        ServiceWindow::new(WindowConfig {
            max_events: 4,
            window_secs: 10,
            slots: 5,
        })
        .unwrap()
    }

    #[test]
    fn the_last_t_figures_alone_are_the_reports() {
        let mut w = ServiceWindow::new(WindowConfig {
            max_events: 50,
            window_secs: 10,
            slots: 5,
        })
        .unwrap();
        for i in 0..200u64 {
            w.record(1_000 + i * 37 % 5_000, i % 7 != 0, 100_000 + i * 40);
        }
        for mode in [QuantileMode::Fast, QuantileMode::Exact] {
            for now in [108_000, 109_500, 115_000] {
                let alone = w.last_t_stats(now, mode);
                assert_eq!(alone, w.report(now, mode).last_t, "{mode:?} at {now}");
            }
        }
        assert!(w.last_t_stats(109_500, QuantileMode::Fast).count > 0);
    }

    #[test]
    fn empty_report_has_no_latency_and_zero_rates() {
        let r = window().report(100_000, QuantileMode::Exact);
        for s in [&r.last_n, &r.last_t] {
            assert_eq!(s.count, 0);
            assert_eq!(s.rate_per_s, 0.0);
            assert_eq!(s.error_rate, 0.0);
            assert_eq!(s.latency_ms, None);
        }
        assert_eq!(r.saturation.current, None);
        assert_eq!(r.series.len(), 5);
        assert!(r.histogram.is_empty());
        serde_json::to_string(&r).unwrap();
    }

    #[test]
    fn report_has_hand_computed_numbers() {
        let mut w = window();
        // 2 s slots. Six events; the ring keeps the last four.
        let events = [
            (1_000u64, true, 0u64),
            (2_000, false, 500),
            (3_000, true, 2_100),
            (4_000, true, 2_200),
            (5_000, false, 4_000),
            (6_000, true, 6_000),
        ];
        for (v, ok, at) in events {
            w.record(v, ok, at);
        }
        w.record_saturation(3.0, 6_000).unwrap();
        w.record_saturation(5.0, 6_500).unwrap();
        let r = w.report(8_000, QuantileMode::Exact);

        let n = &r.last_n;
        assert_eq!((n.count, n.errors), (4, 1));
        assert_eq!(n.error_rate, 0.25);
        assert_eq!(n.covered_secs, 5.9); // oldest kept event at 2,100
        assert_eq!(n.rate_per_s, 4.0 / 5.9);
        let l = n.latency_ms.unwrap();
        assert_eq!(
            (l.min, l.p50, l.p99, l.max, l.mean),
            (3.0, 4.0, 6.0, 6.0, 4.5)
        );
        assert!(n.quantiles_exact);

        let t = &r.last_t;
        assert_eq!((t.count, t.errors), (6, 2)); // slots 0..=4 cover 0..10,000
        assert_eq!(t.covered_secs, 8.0);
        assert_eq!(t.rate_per_s, 6.0 / 8.0);
        assert!(!t.quantiles_exact, "six events do not fit a ring of four");
        let l = t.latency_ms.unwrap();
        assert_eq!((l.min, l.max, l.mean), (1.0, 6.0, 3.5));

        assert_eq!(r.saturation.samples, 2);
        assert_eq!(r.saturation.current, Some(5.0));
        assert_eq!(r.saturation.mean, Some(4.0));
        assert_eq!(r.saturation.max, Some(5.0));

        let counts: Vec<u64> = r.series.iter().map(|p| p.count).collect();
        assert_eq!(counts, vec![2, 2, 1, 1, 0]);
        assert_eq!(r.series[1].start_ms, 2_000);
        assert_eq!(r.series[1].mean_ms, Some(3.5));
        assert_eq!(r.series[3].saturation_max, Some(5.0));
        assert_eq!(r.histogram.iter().map(|b| b.count).sum::<u64>(), 4);

        let json = serde_json::to_string(&r).unwrap();
        let back: WindowReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn time_window_slides_and_new_windows_are_not_diluted() {
        let mut w = window();
        w.record(1_000, true, 100_000);
        let r = w.report(100_500, QuantileMode::Fast);
        // The window started at 100,000: the rate covers 0.5 s, floored to 1 s.
        assert_eq!(r.last_t.covered_secs, 0.5);
        assert_eq!(r.last_t.rate_per_s, 1.0);
        let r = w.report(200_000, QuantileMode::Fast);
        assert_eq!(r.last_t.count, 0);
        assert_eq!(r.last_n.count, 1);
        assert_eq!(r.series.first().unwrap().start_ms, 192_000);
    }
}
