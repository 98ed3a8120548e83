//! The collector shared by the whole app: service name → window, safe across threads.
//!
//! Services are added but never removed, and their number is capped (every window costs
//! up to `WindowConfig::memory_bound_bytes`, and names arrive from the network). That
//! allows an insert-only open-addressing table of `OnceLock` slots, twice the cap in size:
//! a lookup is a hash and a few atomic loads with no lock at all, so threads recording into
//! the same service contend only on that service's `Mutex` (an `RwLock` around a map
//! costs an atomic write on a shared cache line for every record). Inserts take one
//! `Mutex` and re-check, so two threads creating the same service end with one window.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde::{Deserialize, Serialize};

use super::MetricsError;
use super::rules::Signal;
use super::snapshot::{QuantileMode, WindowReport, WindowStats};
use super::window::{Scope, ServiceWindow, WindowConfig, check_saturation};

/// Longest accepted service name.
pub const MAX_SERVICE_NAME_LEN: usize = 64;

/// A service name: 1 to 64 characters from `[A-Za-z0-9._-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceName(String);

impl ServiceName {
    /// Validates a name.
    pub fn parse(name: &str) -> Result<Self, MetricsError> {
        let valid = (1..=MAX_SERVICE_NAME_LEN).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(ServiceName(name.to_owned()))
        } else {
            Err(MetricsError::InvalidServiceName {
                name: name.chars().take(80).collect(),
            })
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ServiceName {
    type Error = MetricsError;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        ServiceName::parse(&name)
    }
}

impl From<ServiceName> for String {
    fn from(name: ServiceName) -> String {
        name.0
    }
}

/// One pushed event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Latency in µs.
    pub latency_us: u64,
    /// Whether the request succeeded.
    pub ok: bool,
    /// When it completed (ms).
    pub at_ms: u64,
}

/// An alert rule's condition, as stored with the rule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// What is watched.
    pub signal: Signal,
    /// The threshold, in the signal's unit.
    pub threshold: f64,
    /// Fewer samples than this decide nothing.
    pub min_samples: u64,
    /// Over which window.
    pub scope: Scope,
}

type Shared = Arc<Mutex<ServiceWindow>>;

/// Largest accepted cap on services; the table holds twice as many slots of 40 B.
pub const MAX_SERVICES_CAP: usize = 65_536;

#[derive(Debug)]
struct Entry {
    name: String,
    window: Shared,
}

/// All services' windows. Share it as `Arc<Registry>`.
#[derive(Debug)]
pub struct Registry {
    config: WindowConfig,
    max_services: usize,
    /// Power-of-two length ≥ 2 × `max_services`, so probing always meets an empty slot.
    table: Box<[OnceLock<Entry>]>,
    /// Serialises inserts; holds the number of services.
    inserting: Mutex<usize>,
}

impl Registry {
    /// A registry whose windows use `config`, tracking at most `max_services` services
    /// (at most [`MAX_SERVICES_CAP`]).
    pub fn new(config: WindowConfig, max_services: usize) -> Result<Self, MetricsError> {
        config.validate()?;
        if max_services > MAX_SERVICES_CAP {
            return Err(MetricsError::InvalidConfig(
                "max_services must be at most 65536",
            ));
        }
        let slots = (2 * max_services).next_power_of_two().max(2);
        Ok(Registry {
            config,
            max_services,
            table: (0..slots).map(|_| OnceLock::new()).collect(),
            inserting: Mutex::new(0),
        })
    }

    /// The window sizes.
    pub fn config(&self) -> WindowConfig {
        self.config
    }

    /// The cap on services.
    pub fn max_services(&self) -> usize {
        self.max_services
    }

    /// Records one event, creating the service's window on first use.
    pub fn record(
        &self,
        service: &str,
        latency_us: u64,
        ok: bool,
        at_ms: u64,
    ) -> Result<(), MetricsError> {
        self.with_window(service, true, |w| w.record(latency_us, ok, at_ms))
    }

    /// Records a batch under one lock: a concurrent report sees all of it or none.
    pub fn record_batch(&self, service: &str, events: &[Event]) -> Result<(), MetricsError> {
        self.with_window(service, true, |w| {
            for e in events {
                w.record(e.latency_us, e.ok, e.at_ms);
            }
        })
    }

    /// Records a saturation sample, creating the service's window on first use.
    pub fn record_saturation(
        &self,
        service: &str,
        value: f64,
        at_ms: u64,
    ) -> Result<(), MetricsError> {
        // Checked first so a bad sample does not create a window.
        check_saturation(value)?;
        self.with_window(service, true, |w| w.record_saturation(value, at_ms))?
    }

    /// Snapshot of one service.
    pub fn report(
        &self,
        service: &str,
        now_ms: u64,
        mode: QuantileMode,
    ) -> Result<WindowReport, MetricsError> {
        self.with_window(service, false, |w| w.report(now_ms, mode))
    }

    /// The last-T window's figures of one service (see [`ServiceWindow::last_t_stats`]).
    pub fn last_t_stats(
        &self,
        service: &str,
        now_ms: u64,
        mode: QuantileMode,
    ) -> Result<WindowStats, MetricsError> {
        self.with_window(service, false, |w| w.last_t_stats(now_ms, mode))
    }

    /// Evaluates a rule against one service (see [`ServiceWindow::evaluate`]).
    pub fn evaluate(
        &self,
        service: &str,
        rule: Rule,
        now_ms: u64,
    ) -> Result<Option<bool>, MetricsError> {
        self.with_window(service, false, |w| {
            w.evaluate(
                rule.signal,
                rule.threshold,
                rule.min_samples,
                rule.scope,
                now_ms,
            )
        })
    }

    /// The window of a service, created on first use: a handle for callers that record
    /// often into one service and want to skip the name lookup.
    pub fn window(&self, service: &str) -> Result<Arc<Mutex<ServiceWindow>>, MetricsError> {
        match self.find(service) {
            Some(w) => Ok(Arc::clone(w)),
            None => self.create(service),
        }
    }

    /// Names of the tracked services, sorted.
    pub fn services(&self) -> Vec<String> {
        let mut names: Vec<String> = self.entries().map(|e| e.name.clone()).collect();
        names.sort_unstable();
        names
    }

    /// Bytes held by all windows.
    pub fn memory_bytes(&self) -> usize {
        self.entries().map(|e| lock(&e.window).memory_bytes()).sum()
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.table.iter().filter_map(OnceLock::get)
    }

    /// Lock-free lookup: linear probing from the name's hash until the name or an empty
    /// slot. Slots are only ever filled, and an entry always sits after the filled slots
    /// of its probe path, so an empty slot proves absence at the time it was read (a
    /// concurrent insert is caught by the re-check in `create`).
    fn find(&self, service: &str) -> Option<&Shared> {
        let mask = self.table.len() - 1;
        let mut i = fnv1a(service) & mask;
        loop {
            let entry = self.table[i].get()?;
            if entry.name == service {
                return Some(&entry.window);
            }
            i = (i + 1) & mask;
        }
    }

    fn with_window<R>(
        &self,
        service: &str,
        create: bool,
        f: impl FnOnce(&mut ServiceWindow) -> R,
    ) -> Result<R, MetricsError> {
        if let Some(w) = self.find(service) {
            return Ok(f(&mut lock(w)));
        }
        if !create {
            return Err(MetricsError::UnknownService(
                service.chars().take(80).collect(),
            ));
        }
        let w = self.create(service)?;
        Ok(f(&mut lock(&w)))
    }

    #[cold]
    fn create(&self, service: &str) -> Result<Shared, MetricsError> {
        let name = ServiceName::parse(service)?;
        let mut count = self
            .inserting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = self.find(name.as_str()) {
            return Ok(Arc::clone(w)); // another thread created it meanwhile
        }
        if *count >= self.max_services {
            return Err(MetricsError::TooManyServices {
                service: name.into(),
                cap: self.max_services,
            });
        }
        let window = Arc::new(Mutex::new(ServiceWindow::new(self.config)?));
        let mask = self.table.len() - 1;
        let mut i = fnv1a(name.as_str()) & mask;
        // At most half the table is filled, so an empty slot is always found; only this
        // thread (holding `inserting`) fills slots, so `set` cannot lose a race.
        while self.table[i].get().is_some() {
            i = (i + 1) & mask;
        }
        let entry = Entry {
            name: name.into(),
            window: Arc::clone(&window),
        };
        if self.table[i].set(entry).is_err() {
            unreachable!("table slots are only filled while holding `inserting`");
        }
        *count += 1;
        Ok(window)
    }
}

/// FNV-1a: names are at most 64 bytes and hashed on every record, where SipHash's flood
/// resistance buys nothing — the table never holds more than `max_services` names, so even
/// crafted collisions cost at most that many comparisons.
fn fnv1a(name: &str) -> usize {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    // Fold the high bits in: the table index uses the low ones.
    (hash ^ (hash >> 32)) as usize
}

/// Locks a window. Window methods do not panic, and a report is best-effort anyway, so
/// a poisoned lock is used rather than propagated.
fn lock(w: &Mutex<ServiceWindow>) -> std::sync::MutexGuard<'_, ServiceWindow> {
    w.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn registry(cap: usize) -> Registry {
        Registry::new(WindowConfig::default(), cap).unwrap()
    }

    #[test]
    fn registry_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Registry>();
        assert_send_sync::<Arc<Registry>>();

        let r = Arc::new(registry(4));
        std::thread::scope(|s| {
            for t in 0..2u64 {
                let r = Arc::clone(&r);
                s.spawn(move || {
                    for i in 0..10_000 {
                        r.record("api", 1_000 + t, true, i).unwrap();
                    }
                });
            }
        });
        let report = r.report("api", 10_000, QuantileMode::Exact).unwrap();
        assert_eq!(report.last_n.count, 10_000);
        assert_eq!(report.last_t.count, 20_000);
    }

    #[test]
    fn racing_threads_create_each_service_once_and_respect_the_cap() {
        let r = registry(5);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let r = &r;
                s.spawn(move || {
                    for i in 0..10 {
                        let _ = r.record(&format!("svc-{i}"), t, true, 0);
                    }
                });
            }
        });
        let names = r.services();
        assert_eq!(names.len(), 5);
        let total: u64 = names
            .iter()
            .map(|n| r.report(n, 0, QuantileMode::Fast).unwrap().last_n.count)
            .sum();
        assert_eq!(
            total,
            4 * 5,
            "every accepted record landed in the one window"
        );
        assert!(Registry::new(WindowConfig::default(), MAX_SERVICES_CAP + 1).is_err());
        assert!(registry(0).record("a", 1, true, 0).is_err());
    }

    #[test]
    fn service_names_are_validated() {
        for good in ["api", "web-1", "db.primary", "A_b-9.z", &"x".repeat(64)] {
            assert!(ServiceName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "has space", "slash/", "é", &"x".repeat(65)] {
            assert!(ServiceName::parse(bad).is_err(), "{bad}");
        }
        let r = registry(4);
        let err = r.record("no spaces please", 1, true, 0).unwrap_err();
        assert!(matches!(err, MetricsError::InvalidServiceName { .. }));
        assert!(r.services().is_empty());
    }

    #[test]
    fn recording_past_the_cap_names_the_cap() {
        let r = registry(2);
        r.record("a", 1, true, 0).unwrap();
        r.record("b", 1, true, 0).unwrap();
        let err = r.record("c", 1, true, 0).unwrap_err();
        assert_eq!(
            err,
            MetricsError::TooManyServices {
                service: "c".into(),
                cap: 2
            }
        );
        assert!(err.to_string().contains("cap of 2 services"), "{err}");
        // Known services keep working at the cap.
        r.record("a", 2, true, 1).unwrap();
        assert_eq!(r.services(), vec!["a", "b"]);
    }

    #[test]
    fn batches_apply_together_and_unknown_services_report_an_error() {
        let r = registry(4);
        let events: Vec<Event> = (0..100)
            .map(|i| Event {
                latency_us: 1_000 * (i + 1),
                ok: i % 4 != 0,
                at_ms: 50,
            })
            .collect();
        r.record_batch("batch", &events).unwrap();
        let report = r.report("batch", 60, QuantileMode::Exact).unwrap();
        assert_eq!((report.last_n.count, report.last_n.errors), (100, 25));
        assert_eq!(report.last_n.latency_ms.unwrap().p99, 99.0);
        assert!(matches!(
            r.report("nope", 0, QuantileMode::Fast),
            Err(MetricsError::UnknownService(_))
        ));
        let rule = Rule {
            signal: Signal::P99,
            threshold: 98.5,
            min_samples: 10,
            scope: Scope::LastN,
        };
        assert_eq!(r.evaluate("batch", rule, 60), Ok(Some(true)));
        assert!(r.record_saturation("batch", f64::NAN, 60).is_err());
        r.record_saturation("batch", 3.0, 60).unwrap();
        assert!(r.memory_bytes() <= r.config().memory_bound_bytes());
    }

    #[test]
    fn service_names_round_trip_through_serde() {
        let name: ServiceName = serde_json::from_str("\"api\"").unwrap();
        assert_eq!(name.as_str(), "api");
        assert!(serde_json::from_str::<ServiceName>("\"a b\"").is_err());
    }
}
