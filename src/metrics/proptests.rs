//! Property tests of the windows against a plain VecDeque-and-sort oracle.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;

use proptest::prelude::*;

use super::exact::{count_le, values_at_ranks};
use super::*;

/// The definitions, written the obvious way: keep every event, filter, sort.
struct Oracle {
    config: WindowConfig,
    events: VecDeque<(u32, bool, u64)>,
    saturation: Vec<(f64, u64)>,
    clock: Option<u64>,
    first: Option<u64>,
}

impl Oracle {
    fn new(config: WindowConfig) -> Self {
        Oracle {
            config,
            events: VecDeque::new(),
            saturation: Vec::new(),
            clock: None,
            first: None,
        }
    }

    fn tick(&mut self, at: u64) -> u64 {
        let at = self.clock.map_or(at, |c| c.max(at));
        self.clock = Some(at);
        at
    }

    fn record(&mut self, latency_us: u64, ok: bool, at: u64) {
        let at = self.tick(at);
        self.first.get_or_insert(at);
        self.events.push_back((saturate_us(latency_us), !ok, at));
    }

    fn record_saturation(&mut self, value: f64, at: u64) {
        let at = self.tick(at);
        self.first.get_or_insert(at);
        self.saturation.push((value, at));
    }

    fn window_start(&self, now: u64) -> u64 {
        let slot = self.config.slot_ms();
        (now / slot + 1).saturating_sub(u64::from(self.config.slots)) * slot
    }

    fn last_n(&self) -> Vec<(u32, bool, u64)> {
        let skip = self.events.len().saturating_sub(self.config.max_events);
        self.events.iter().skip(skip).copied().collect()
    }

    fn last_t(&self, now: u64) -> Vec<(u32, bool, u64)> {
        let start = self.window_start(now);
        self.events
            .iter()
            .filter(|e| e.2 >= start)
            .copied()
            .collect()
    }
}

fn sorted(events: &[(u32, bool, u64)]) -> Vec<u32> {
    let mut v: Vec<u32> = events.iter().map(|e| e.0).collect();
    v.sort_unstable();
    v
}

fn kth(sorted: &[u32], q: f64) -> u64 {
    u64::from(sorted[rank(q, sorted.len() as u64) as usize - 1])
}

const QS: [f64; 7] = [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0];

fn latency_values(l: &LatencyMs) -> [f64; 7] {
    [l.min, l.p50, l.p90, l.p95, l.p99, l.p999, l.max]
}

/// Checks one window's stats against the oracle's events for that window.
fn check_stats(
    got: &WindowStats,
    events: &[(u32, bool, u64)],
    covered_ms: u64,
    expect_exact: bool,
    bound: f64,
    min_max_exact: bool,
) -> Result<(), TestCaseError> {
    let n = events.len() as u64;
    let errors = events.iter().filter(|e| e.1).count() as u64;
    let sum: u128 = events.iter().map(|e| u128::from(e.0)).sum();
    prop_assert_eq!(got.count, n);
    prop_assert_eq!(got.errors, errors);
    prop_assert_eq!(got.covered_secs, covered_ms as f64 / 1000.0);
    prop_assert_eq!(
        got.rate_per_s,
        n as f64 / (covered_ms as f64 / 1000.0).max(1.0)
    );
    prop_assert_eq!(
        got.error_rate,
        if n == 0 {
            0.0
        } else {
            errors as f64 / n as f64
        }
    );
    let Some(lat) = &got.latency_ms else {
        prop_assert_eq!(n, 0);
        return Ok(());
    };
    prop_assert_eq!(got.quantiles_exact, expect_exact);
    prop_assert_eq!(lat.mean, sum as f64 / n as f64 / 1000.0);
    let s = sorted(events);
    for (i, (&q, v)) in QS.iter().zip(latency_values(lat)).enumerate() {
        let truth = kth(&s, q);
        let truth_ms = truth as f64 / 1000.0;
        if expect_exact || (min_max_exact && (i == 0 || i == 6)) {
            prop_assert_eq!(v, truth_ms, "q={} sorted={:?}", q, s);
        } else {
            let err = (v - truth_ms).abs();
            prop_assert!(
                err <= truth_ms * bound,
                "q={} fast={} exact={} bound={}",
                q,
                v,
                truth_ms,
                bound
            );
        }
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Op {
    Record {
        latency_us: u64,
        ok: bool,
        dt: i64,
    },
    Saturation {
        value: u32,
        dt: i64,
    },
    Advance {
        dt: u64,
    },
    Query {
        mode: QuantileMode,
        dt: u64,
        t_ms: u64,
    },
}

fn latency() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..300,
        0u64..200_000,
        Just(1_234u64),
        Just(100_000u64),
        1_000_000u64..6_000_000_000,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (latency(), any::<bool>(), -1_500i64..1_500)
            .prop_map(|(latency_us, ok, dt)| Op::Record { latency_us, ok, dt }),
        1 => (0u32..1_000, -500i64..500).prop_map(|(value, dt)| Op::Saturation { value, dt }),
        1 => (0u64..8_000).prop_map(|dt| Op::Advance { dt }),
        2 => (prop_oneof![Just(QuantileMode::Fast), Just(QuantileMode::Exact)], 0u64..2_000, 0u64..300_000)
            .prop_map(|(mode, dt, t_ms)| Op::Query { mode, dt, t_ms }),
    ]
}

fn config() -> impl Strategy<Value = WindowConfig> {
    (
        1usize..40,
        1u32..6,
        prop_oneof![Just(1u32), Just(2), Just(4), Just(5), Just(10)],
    )
        .prop_map(|(max_events, window_secs, slots)| WindowConfig {
            max_events,
            window_secs,
            slots,
        })
}

/// Threshold decisions from the sorted oracle, the way a person would define them.
fn oracle_decision(
    events: &[(u32, bool, u64)],
    signal: Signal,
    threshold: f64,
    min_samples: u64,
) -> Option<bool> {
    let n = events.len() as u64;
    if n == 0 || n < min_samples {
        return None;
    }
    Some(match signal {
        Signal::ErrorRate => events.iter().filter(|e| e.1).count() as f64 / n as f64 > threshold,
        Signal::Avg => {
            let sum: u128 = events.iter().map(|e| u128::from(e.0)).sum();
            sum as f64 / n as f64 / 1000.0 > threshold
        }
        _ => kth(&sorted(events), signal.quantile().unwrap()) as f64 > threshold * 1000.0,
    })
}

fn run(config: WindowConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut w = ServiceWindow::new(config).unwrap();
    let mut o = Oracle::new(config);
    let mut t: u64 = 10_000;
    let bound_bytes = config.memory_bound_bytes();
    for op in ops {
        match op {
            Op::Record { latency_us, ok, dt } => {
                let at = t.saturating_add_signed(dt);
                t = t.max(at);
                w.record(latency_us, ok, at);
                o.record(latency_us, ok, at);
            }
            Op::Saturation { value, dt } => {
                let at = t.saturating_add_signed(dt);
                t = t.max(at);
                // Whole numbers keep float sums exact whatever the summation order.
                w.record_saturation(f64::from(value), at).unwrap();
                o.record_saturation(f64::from(value), at);
            }
            Op::Advance { dt } => t += dt,
            Op::Query { mode, dt, t_ms } => {
                let now = t + dt;
                let report = w.report(now, mode);
                let now = o.tick(now);
                prop_assert_eq!(report.taken_at_ms, now);

                let last_n = o.last_n();
                let covered_n = last_n.first().map_or(0, |e| now - e.2);
                check_stats(
                    &report.last_n,
                    &last_n,
                    covered_n,
                    mode == QuantileMode::Exact,
                    Layout::FINE.relative_error_bound(),
                    false,
                )?;

                let last_t = o.last_t(now);
                let ring_len = o.events.len().min(config.max_events);
                let covered_t = o.first.map_or(0, |f| now - o.window_start(now).max(f));
                check_stats(
                    &report.last_t,
                    &last_t,
                    covered_t,
                    mode == QuantileMode::Exact && last_t.len() <= ring_len,
                    Layout::COMPACT.relative_error_bound(),
                    true,
                )?;

                // Series: one point per slot, counts grouped by slot.
                let slot = config.slot_ms();
                prop_assert_eq!(report.series.len(), config.slots as usize);
                for p in &report.series {
                    let c = last_t
                        .iter()
                        .filter(|e| e.2 / slot == p.start_ms / slot)
                        .count() as u64;
                    prop_assert_eq!(p.count, c);
                }

                // Saturation over the time window.
                let start = o.window_start(now);
                let sats: Vec<f64> = o
                    .saturation
                    .iter()
                    .filter(|s| s.1 >= start)
                    .map(|s| s.0)
                    .collect();
                prop_assert_eq!(report.saturation.samples, sats.len() as u64);
                if sats.is_empty() {
                    prop_assert_eq!(report.saturation.mean, None);
                } else {
                    let mean = sats.iter().sum::<f64>() / sats.len() as f64;
                    prop_assert_eq!(report.saturation.mean, Some(mean));
                    let max = sats.iter().copied().fold(f64::MIN, f64::max);
                    prop_assert_eq!(report.saturation.max, Some(max));
                    prop_assert_eq!(report.saturation.current, sats.last().copied());
                }

                // Counter-based decisions equal sorted-oracle decisions.
                let thresholds = [
                    t_ms as f64 / 1000.0,
                    last_n.first().map_or(1.0, |e| f64::from(e.0) / 1000.0),
                    last_n
                        .last()
                        .map_or(1.0, |e| f64::from(e.0) / 1000.0 - 0.001),
                    -1.0,
                    5e9,
                ];
                for &threshold in &thresholds {
                    for signal in [
                        Signal::P50,
                        Signal::P95,
                        Signal::P99,
                        Signal::P999,
                        Signal::Avg,
                    ] {
                        for min_samples in [0, 3] {
                            let got = w.evaluate(signal, threshold, min_samples, Scope::LastN, now);
                            prop_assert_eq!(
                                got,
                                oracle_decision(&last_n, signal, threshold, min_samples),
                                "{:?} > {} over {:?}",
                                signal,
                                threshold,
                                sorted(&last_n)
                            );
                            if last_t.len() <= ring_len {
                                let got =
                                    w.evaluate(signal, threshold, min_samples, Scope::LastT, now);
                                prop_assert_eq!(
                                    got,
                                    oracle_decision(&last_t, signal, threshold, min_samples)
                                );
                            }
                        }
                    }
                }
                for threshold in [0.0, 0.25, 0.5, 0.99] {
                    let got = w.evaluate(Signal::ErrorRate, threshold, 1, Scope::LastT, now);
                    prop_assert_eq!(
                        got,
                        oracle_decision(&last_t, Signal::ErrorRate, threshold, 1)
                    );
                }
                for threshold in [0.5, 2.0, 30.0] {
                    let got = w.evaluate(Signal::Traffic, threshold, 0, Scope::LastN, now);
                    let want = (!last_n.is_empty() || covered_n > 0).then(|| {
                        (last_n.len() as f64 / (covered_n as f64 / 1000.0).max(1.0)) < threshold
                    });
                    prop_assert_eq!(got, want);
                }
            }
        }
        prop_assert!(w.memory_bytes() <= bound_bytes);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn windows_agree_with_the_sorting_oracle(
        config in config(),
        ops in proptest::collection::vec(op(), 1..150),
    ) {
        run(config, ops)?;
    }

    #[test]
    fn exact_selection_and_counts_match_sorting(
        values in proptest::collection::vec(latency(), 1..600),
        split in 0usize..600,
        qs in proptest::collection::vec(0.0f64..=1.0, 1..8),
        threshold in latency(),
    ) {
        let values: Vec<u32> = values.into_iter().map(saturate_us).collect();
        let split = split.min(values.len());
        let (a, b) = values.split_at(split);
        let mut s = values.clone();
        s.sort_unstable();
        for layout in [Layout::FINE, Layout::COMPACT] {
            let mut h: Histogram<u64> = Histogram::new(layout);
            for &v in &values {
                h.add(u64::from(v));
            }
            let mut ranks: Vec<u64> = qs.iter().map(|&q| rank(q, s.len() as u64)).collect();
            ranks.sort_unstable();
            let got = values_at_ranks(&h, &ranks, (b, a));
            let want: Vec<u32> = ranks.iter().map(|&k| s[k as usize - 1]).collect();
            prop_assert_eq!(got, want);

            let t = saturate_us(threshold);
            let want = s.iter().filter(|&&v| v <= t).count() as u64;
            prop_assert_eq!(count_le(&h, t, (a, b)), want);
            let (lo, hi) = h.count_le_bounds(u64::from(t));
            prop_assert!(lo <= want && want <= hi);

            for &q in &qs {
                let truth = kth(&s, q) as f64;
                let fast = h.value_at_quantile(q).unwrap() as f64;
                prop_assert!((fast - truth).abs() <= truth * layout.relative_error_bound());
            }
        }
    }
}
