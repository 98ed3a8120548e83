//! Synthetic golden-signal traffic for the demo services (`hindsight demo --traffic`, or the
//! server with `HINDSIGHT_DEMO_TRAFFIC=1`): steady requests into the collector, with a latency
//! spike on checkout that breaches the demo's page-tier rule and then recovers.
//!
//! The shape is a pure function of the time since start ([`second`]), so tests can check it
//! without waiting; [`run`] only records it each second until told to stop.

use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Event;
use crate::signals::Signals;

/// Each demo service: (name, requests per second, median latency in ms, error rate).
pub const SERVICES: &[(&str, u64, f64, f64)] = &[
    ("checkout", 12, 85.0, 0.003),
    ("payments", 8, 180.0, 0.004),
    ("search", 20, 45.0, 0.002),
    ("auth", 15, 120.0, 0.002),
    ("notifications", 6, 30.0, 0.001),
    ("api-gateway", 30, 12.0, 0.003),
    ("inventory", 10, 25.0, 0.002),
];

/// The service whose latency spikes, and how slow it gets (the demo's "Checkout slow" page
/// rule fires above a p99 of 1,500 ms held for a minute).
pub const SPIKE_SERVICE: &str = "checkout";
pub const SPIKE_MEDIAN_MS: f64 = 2_400.0;

/// When the spike starts and how long it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub spike_after: Duration,
    pub spike_for: Duration,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            spike_after: Duration::from_secs(60),
            spike_for: Duration::from_secs(180),
        }
    }
}

impl Plan {
    /// Whether second `s` since start falls in the spike.
    pub fn spiking(&self, s: u64) -> bool {
        let from = self.spike_after.as_secs();
        (from..from + self.spike_for.as_secs()).contains(&s)
    }
}

/// The events of `service` during second `s` since start (their times within that second,
/// from `start_ms`), and its saturation then. Deterministic in (`service`, `s`).
pub fn second(plan: &Plan, service: usize, s: u64, start_ms: u64) -> (Vec<Event>, f64) {
    let Some(&(name, rate, median, error_rate)) = SERVICES.get(service) else {
        return (Vec::new(), 0.0);
    };
    let spiking = name == SPIKE_SERVICE && plan.spiking(s);
    let (median, error_rate) = if spiking {
        (SPIKE_MEDIAN_MS, 0.02)
    } else {
        (median, error_rate)
    };
    let mut rng = Rng((s + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (service as u64 + 1));
    let events = (0..rate)
        .map(|k| {
            let u = |rng: &mut Rng| (rng.next() % 1_000_000) as f64 / 1_000_000.0;
            // A rough log-normal: the sum of three uniforms approximates a normal.
            let z = (u(&mut rng) + u(&mut rng) + u(&mut rng) - 1.5) * 2.0;
            Event {
                latency_us: (median * 1000.0 * (0.45 * z).exp()).round() as u64,
                ok: u(&mut rng) >= error_rate,
                at_ms: start_ms + s * 1000 + k * 1000 / rate,
            }
        })
        .collect();
    let saturation = if spiking { 0.9 } else { 0.35 } + (rng.next() % 100) as f64 / 1000.0;
    (events, saturation)
}

/// Records one second of traffic for every demo service, the way a push of the events does.
pub fn record(signals: &Signals, plan: &Plan, s: u64, start_ms: u64) {
    for (i, (name, ..)) in SERVICES.iter().enumerate() {
        let (events, saturation) = second(plan, i, s, start_ms);
        let at = events.last().map_or(start_ms + s * 1000, |e| e.at_ms);
        let result = signals
            .registry
            .record_batch(name, &events)
            .and_then(|()| signals.registry.record_saturation(name, saturation, at));
        if let Err(e) = result {
            tracing::warn!(service = name, error = %e, "demo traffic not recorded");
        }
    }
}

/// Feeds traffic once a second from now until `stop` turns true.
pub async fn run(signals: Arc<Signals>, plan: Plan, mut stop: tokio::sync::watch::Receiver<bool>) {
    tracing::info!(
        spike_after_secs = plan.spike_after.as_secs(),
        spike_service = SPIKE_SERVICE,
        "demo traffic started"
    );
    let start_ms = crate::signals::now_ms();
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
        // The second is read from the wall clock, so a late tick skips ahead instead of
        // recording events in the past.
        let s = crate::signals::now_ms().saturating_sub(start_ms) / 1000;
        record(&signals, &plan, s, start_ms);
    }
    tracing::info!("demo traffic stopped");
}

/// xorshift64*: the same traffic for the same second on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: u64 = 1_780_000_000_000;

    fn p99_ms(events: &[Event]) -> f64 {
        let mut l: Vec<u64> = events.iter().map(|e| e.latency_us).collect();
        l.sort_unstable();
        l[(l.len() * 99).div_ceil(100) - 1] as f64 / 1000.0
    }

    #[test]
    fn checkout_is_slow_only_inside_the_spike_and_others_never() {
        let plan = Plan::default();
        let checkout = SERVICES
            .iter()
            .position(|s| s.0 == SPIKE_SERVICE)
            .expect("listed");
        let window = |service, from: u64, to: u64| -> Vec<Event> {
            (from..to)
                .flat_map(|s| second(&plan, service, s, START).0)
                .collect()
        };
        // Before (0–59 s), during (60–239 s) and after (240 s on) the spike.
        assert!(p99_ms(&window(checkout, 0, 60)) < 1_500.0);
        let during = window(checkout, 60, 240);
        assert!(p99_ms(&during) > 1_500.0, "breaches the page rule");
        assert!(during.iter().all(|e| e.latency_us > 300_000), "all slow");
        assert!(p99_ms(&window(checkout, 240, 600)) < 1_500.0, "recovers");
        for (i, (name, ..)) in SERVICES.iter().enumerate() {
            if *name != SPIKE_SERVICE {
                assert!(p99_ms(&window(i, 0, 600)) < 1_500.0, "{name} stays calm");
            }
        }
    }

    #[test]
    fn each_second_has_the_services_rate_in_order_within_that_second_and_repeats() {
        let plan = Plan::default();
        for (i, (_, rate, ..)) in SERVICES.iter().enumerate() {
            let (events, saturation) = second(&plan, i, 7, START);
            assert_eq!(events.len() as u64, *rate);
            assert!(events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
            assert!(
                events
                    .iter()
                    .all(|e| (START + 7_000..START + 8_000).contains(&e.at_ms))
            );
            assert!((0.0..=1.0).contains(&saturation));
            assert_eq!(second(&plan, i, 7, START).0, events, "deterministic");
        }
        assert!(second(&plan, SERVICES.len(), 7, START).0.is_empty());
    }
}
