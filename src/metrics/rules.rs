//! Alert-rule signals decided from counters, never by sorting.
//!
//! "p99 > X ms" holds exactly when fewer than ⌈0.99·n⌉ latencies are ≤ X, so the decision
//! needs one count (`count_le`), which the histogram gives for every bucket but the one
//! holding X; for that bucket the ring's raw values settle it. The decision therefore
//! equals sorting the exact values and comparing the nearest-rank quantile with X.

use serde::{Deserialize, Serialize};

use super::histogram::{Count, rank};
use super::snapshot::{error_rate, mean_ms, rate_per_s};
use super::window::{Scope, ScopeData, ServiceWindow, count_le_of};

/// What an alert rule watches. Thresholds are in milliseconds for latencies, a fraction
/// (0..=1) for the error rate, gauge units for saturation and events per second for
/// traffic. Every signal fires when its value is *above* the threshold, except
/// [`Signal::Traffic`], which fires when the rate is *below* it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Median latency.
    P50,
    /// 90th-percentile latency.
    P90,
    /// 95th-percentile latency.
    P95,
    /// 99th-percentile latency.
    P99,
    /// 99.9th-percentile latency.
    P999,
    /// Mean latency.
    Avg,
    /// Errors / events.
    ErrorRate,
    /// Mean of the saturation gauge over the time window (whatever the scope).
    Saturation,
    /// Events per second (see `rate_per_s` in the snapshot docs).
    Traffic,
}

impl Signal {
    /// The quantile a latency signal watches.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Signal::P50 => Some(0.5),
            Signal::P90 => Some(0.9),
            Signal::P95 => Some(0.95),
            Signal::P99 => Some(0.99),
            Signal::P999 => Some(0.999),
            _ => None,
        }
    }
}

impl ServiceWindow {
    /// Whether `signal` breaches `threshold` in `scope` at `now_ms`; `None` when the
    /// window has fewer than `min_samples` samples (and at least one) to judge by — events
    /// for latency, errors and traffic over the last N; gauge samples for saturation;
    /// whole seconds observed for traffic over the last T, since a silent service has no
    /// events yet must still be able to fire. A NaN threshold decides nothing.
    ///
    /// Latency decisions are exact whenever the ring holds the scope's events (always for
    /// `LastN`); for a time window larger than the ring the threshold's own bucket is
    /// judged by its representative value (under 0.78 % of the threshold).
    pub fn evaluate(
        &mut self,
        signal: Signal,
        threshold: f64,
        min_samples: u64,
        scope: Scope,
        now_ms: u64,
    ) -> Option<bool> {
        if threshold.is_nan() {
            return None;
        }
        let now = self.advance(now_ms);
        if signal == Signal::Saturation {
            let (samples, sum, _) = self.saturation_totals();
            if samples == 0 || samples < min_samples {
                return None;
            }
            return Some(sum / samples as f64 > threshold);
        }
        match scope {
            Scope::LastN => decide(&self.last_n(now), signal, threshold, min_samples, false),
            Scope::LastT => decide(&self.last_t(now), signal, threshold, min_samples, true),
        }
    }
}

fn decide<C: Count>(
    d: &ScopeData<'_, C>,
    signal: Signal,
    threshold: f64,
    min_samples: u64,
    time_scope: bool,
) -> Option<bool> {
    if signal == Signal::Traffic {
        let samples = if time_scope {
            d.covered_ms / 1000
        } else {
            d.count
        };
        // Nothing recorded yet (or nothing in the span at all): no rate to judge.
        if (d.count == 0 && d.covered_ms == 0) || samples < min_samples {
            return None;
        }
        return Some(rate_per_s(d.count, d.covered_ms) < threshold);
    }
    if d.count == 0 || d.count < min_samples {
        return None;
    }
    match signal {
        Signal::ErrorRate => Some(error_rate(d.errors, d.count) > threshold),
        Signal::Avg => Some(mean_ms(d.sum_us, d.count) > threshold),
        _ => {
            let q = signal.quantile()?;
            Some(quantile_exceeds(d, q, threshold * 1000.0))
        }
    }
}

/// Whether the nearest-rank `q`-quantile is `> threshold_us`: latencies are whole µs, so
/// that is "fewer than ⌈q·n⌉ values are ≤ ⌊threshold_us⌋".
fn quantile_exceeds<C: Count>(d: &ScopeData<'_, C>, q: f64, threshold_us: f64) -> bool {
    if threshold_us < 0.0 {
        return true;
    }
    if threshold_us >= f64::from(u32::MAX) {
        return false; // stored latencies never exceed u32::MAX
    }
    let t = threshold_us.floor() as u32;
    let (le, _exact) = count_le_of(d, t);
    le < rank(q, d.count)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::window::WindowConfig;
    use super::*;

    fn window_with(values_ms: &[u64]) -> ServiceWindow {
        let mut w = ServiceWindow::new(WindowConfig {
            max_events: 1000,
            window_secs: 60,
            slots: 6,
        })
        .unwrap();
        for (i, &v) in values_ms.iter().enumerate() {
            w.record(v * 1000, i % 10 != 0, 1_000);
        }
        w
    }

    #[test]
    fn p99_rule_uses_the_99th_of_100_values() {
        let values: Vec<u64> = (1..=100).collect();
        let mut w = window_with(&values);
        // The 99th smallest is 99 ms.
        assert_eq!(
            w.evaluate(Signal::P99, 98.999, 1, Scope::LastN, 1_000),
            Some(true)
        );
        assert_eq!(
            w.evaluate(Signal::P99, 99.0, 1, Scope::LastN, 1_000),
            Some(false)
        );
        assert_eq!(
            w.evaluate(Signal::P99, 99.0, 1, Scope::LastT, 1_000),
            Some(false)
        );
        assert_eq!(
            w.evaluate(Signal::P50, 49.9, 1, Scope::LastT, 1_000),
            Some(true)
        );
        assert_eq!(
            w.evaluate(Signal::P50, 50.0, 1, Scope::LastT, 1_000),
            Some(false)
        );
    }

    #[test]
    fn thresholds_inside_one_bucket_are_decided_exactly() {
        // 1,000,000 and 1,000,125 µs share a bucket (4,096 µs wide at this size).
        let mut w = ServiceWindow::new(WindowConfig::default()).unwrap();
        w.record(1_000_000, true, 0);
        w.record(1_000_125, true, 0);
        assert_eq!(
            w.evaluate(Signal::P99, 1000.124, 1, Scope::LastN, 0),
            Some(true)
        );
        assert_eq!(
            w.evaluate(Signal::P99, 1000.125, 1, Scope::LastN, 0),
            Some(false)
        );
        assert_eq!(
            w.evaluate(Signal::P50, 1000.0, 1, Scope::LastN, 0),
            Some(false)
        );
        assert_eq!(
            w.evaluate(Signal::P50, 999.999, 1, Scope::LastT, 0),
            Some(true)
        );
    }

    #[test]
    fn too_few_samples_decide_nothing() {
        let mut w = window_with(&[5, 6, 7]);
        assert_eq!(w.evaluate(Signal::P99, 1.0, 4, Scope::LastN, 1_000), None);
        assert_eq!(
            w.evaluate(Signal::P99, 1.0, 3, Scope::LastN, 1_000),
            Some(true)
        );
        assert_eq!(
            w.evaluate(Signal::Saturation, 1.0, 1, Scope::LastT, 1_000),
            None
        );
        assert_eq!(
            w.evaluate(Signal::P99, f64::NAN, 0, Scope::LastN, 1_000),
            None
        );
        let mut empty = window_with(&[]);
        assert_eq!(
            empty.evaluate(Signal::P99, 1.0, 0, Scope::LastN, 1_000),
            None
        );
    }

    #[test]
    fn error_rate_mean_saturation_and_traffic() {
        let mut w = window_with(&[10; 20]); // 2 of 20 are errors
        assert_eq!(
            w.evaluate(Signal::ErrorRate, 0.09, 1, Scope::LastN, 1_000),
            Some(true)
        );
        assert_eq!(
            w.evaluate(Signal::ErrorRate, 0.1, 1, Scope::LastN, 1_000),
            Some(false)
        );
        assert_eq!(
            w.evaluate(Signal::Avg, 9.99, 1, Scope::LastT, 1_000),
            Some(true)
        );
        assert_eq!(
            w.evaluate(Signal::Avg, 10.0, 1, Scope::LastT, 1_000),
            Some(false)
        );

        w.record_saturation(8.0, 1_000).unwrap();
        w.record_saturation(2.0, 1_000).unwrap();
        assert_eq!(
            w.evaluate(Signal::Saturation, 4.9, 2, Scope::LastN, 1_000),
            Some(true)
        );
        assert_eq!(
            w.evaluate(Signal::Saturation, 5.0, 2, Scope::LastN, 1_000),
            Some(false)
        );

        // 20 events observed for 10 s: 2 per second.
        assert_eq!(
            w.evaluate(Signal::Traffic, 2.5, 5, Scope::LastT, 11_000),
            Some(true)
        );
        assert_eq!(
            w.evaluate(Signal::Traffic, 2.0, 5, Scope::LastT, 11_000),
            Some(false)
        );
        assert_eq!(
            w.evaluate(Signal::Traffic, 2.5, 60, Scope::LastT, 11_000),
            None
        );
        // A silent service fires once its events have left the time window.
        assert_eq!(
            w.evaluate(Signal::Traffic, 0.5, 5, Scope::LastT, 200_000),
            Some(true)
        );
    }
}
