//! Golden signals in and out: the collector shared by the app (`Signals`), Hindsight's own
//! request counters, checking pushed event batches, and the Prometheus text of `/metrics`.
//! The windows themselves live in `crate::metrics`, which knows nothing of HTTP.

pub mod api;
pub mod chart;
pub mod db;
pub mod otlp;
pub mod prometheus;
pub mod web;

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::error::{AppError, FieldErrors};
use crate::metrics::{Event, MetricsError, QuantileMode, Registry, ServiceName, WindowReport};

/// The service name Hindsight records its own HTTP traffic under.
pub const SELF_SERVICE: &str = "hindsight";

/// Wall-clock milliseconds since the Unix epoch: the time base of every window, so pushed
/// events with their own `at` and Hindsight's own requests share one timeline.
pub fn now_ms() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0)
}

/// What the service pages, the metrics API and `/metrics` need, taken from the app state by
/// `app.rs`.
#[derive(Clone)]
pub struct SignalsState {
    pub db: crate::db::Db,
    /// The collector, shared with the middleware that records Hindsight's own requests.
    pub signals: Arc<Signals>,
    /// Known services: a push for one of them is accepted even before it has a window.
    pub catalog: Arc<crate::catalog::CatalogCache>,
    /// `/metrics` answers only callers with a read token.
    pub metrics_require_token: bool,
    /// Whether pushes may start windows for services not on the list, and up to how many
    /// services (listed plus unlisted windows) there may be.
    pub growth: crate::catalog::Growth,
    /// Which OTLP spans become events.
    pub otlp: Arc<otlp::OtlpRules>,
    /// Most bytes an OTLP body may inflate to (gzip).
    pub max_inflated_bytes: usize,
}

/// The collector and Hindsight's own counters, shared by every request.
#[derive(Debug)]
pub struct Signals {
    pub registry: Registry,
    pub own: OwnCounters,
    pub auto_create: bool,
    pub max_batch: usize,
    /// Where snapshots ask for the series of services with Prometheus queries.
    pub prometheus: Option<prometheus::Source>,
    /// OTLP exports decoded at once: beyond this an export is answered 429 with Retry-After
    /// (the OTLP exporters' back-off signal) instead of queueing bodies in memory.
    pub otlp_slots: tokio::sync::Semaphore,
    /// The live view of each service's window (report and chart) as last built, reused for
    /// `LIVE_VIEW_REUSE`: the page says when its figures were taken, and during a storm dozens
    /// of people refresh a busy service whose chart needs a quantile computation per slot.
    live_views: std::sync::Mutex<std::collections::HashMap<String, Arc<LiveView>>>,
}

/// A service's window as its page shows it: the report and its latency chart.
#[derive(Debug)]
pub struct LiveView {
    pub report: crate::metrics::WindowReport,
    pub chart: String,
}

/// How long a service page's figures are reused; they say "As of" the time they were taken.
pub const LIVE_VIEW_REUSE_MS: u64 = 1_000;

/// How many OTLP exports are decoded at once (each may inflate to several MB).
pub const OTLP_CONCURRENT_EXPORTS: usize = 16;

impl Signals {
    /// A collector of `window`s for at most `max_services` services; pushes create unknown
    /// services when `auto_create`, and carry at most `max_batch` events.
    pub fn new(
        window: crate::metrics::WindowConfig,
        max_services: usize,
        auto_create: bool,
        max_batch: usize,
    ) -> Result<Self, MetricsError> {
        Ok(Self {
            registry: Registry::new(window, max_services)?,
            own: OwnCounters::default(),
            auto_create,
            max_batch,
            prometheus: None,
            otlp_slots: tokio::sync::Semaphore::new(OTLP_CONCURRENT_EXPORTS),
            live_views: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The live view of `service` at `now_ms` (exact quantiles), or the one built less than
    /// `LIVE_VIEW_REUSE_MS` before. Snapshots never use this: they freeze the window itself.
    pub fn live_view(&self, service: &str, now_ms: u64) -> Result<Arc<LiveView>, MetricsError> {
        let recent = |views: &std::collections::HashMap<String, Arc<LiveView>>| {
            views
                .get(service)
                .filter(|v| now_ms.saturating_sub(v.report.taken_at_ms) < LIVE_VIEW_REUSE_MS)
                .cloned()
        };
        if let Some(view) = recent(&self.live_views.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(view);
        }
        let report = self
            .registry
            .report(service, now_ms, crate::metrics::QuantileMode::Exact)?;
        let chart = chart::latency_chart(&report.series, &format!("{service} latency and errors"));
        let view = Arc::new(LiveView { report, chart });
        let mut views = self.live_views.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded by the registry: only services with a window get here.
        views.insert(service.to_owned(), Arc::clone(&view));
        Ok(view)
    }

    /// Snapshots also ask `source` for services with Prometheus queries.
    pub fn with_prometheus(mut self, source: Option<prometheus::Source>) -> Self {
        self.prometheus = source;
        self
    }
}

/// Whether a push may record events for `name`: a service on the list or with a window already
/// always may; a new one only while pushes may add services (`auto_create` and `growth`) and
/// the services on the list plus the windows of unlisted ones stay under the cap, so made-up
/// names cannot crowd out the real services' windows.
pub fn admit_service(
    signals: &Signals,
    lists: &crate::catalog::Lists,
    growth: crate::catalog::Growth,
    name: &str,
) -> Result<(), AppError> {
    let listed = |n: &str| {
        lists
            .services
            .iter()
            .any(|s| s.name.eq_ignore_ascii_case(n))
    };
    let windows = signals.registry.services();
    if listed(name) || windows.iter().any(|s| s == name) {
        return Ok(());
    }
    if !signals.auto_create {
        return Err(AppError::field(
            "service",
            crate::catalog::Growth {
                creates: false,
                ..growth
            }
            .refusal(name),
        ));
    }
    let unlisted = windows.iter().filter(|w| !listed(w)).count();
    if growth.allows(lists.services.len() + unlisted) {
        Ok(())
    } else {
        Err(AppError::field("service", growth.refusal(name)))
    }
}

/// Totals since start (Prometheus counters want monotonic values, which a window is not).
#[derive(Debug, Default)]
pub struct OwnCounters {
    in_flight: AtomicI64,
    requests: AtomicU64,
    errors: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl OwnCounters {
    /// A request starts; returns how many are in flight now (the saturation gauge).
    pub fn enter(&self) -> i64 {
        self.in_flight.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A request ends (also when it was cancelled: then `finished` is false and nothing but
    /// the in-flight gauge changes).
    pub fn leave(&self, latency_us: u64, ok: bool, finished: bool) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if finished {
            self.requests.fetch_add(1, Ordering::Relaxed);
            self.latency_sum_us.fetch_add(latency_us, Ordering::Relaxed);
            if !ok {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// One event as pushed by a service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushedEvent {
    pub latency_ms: f64,
    #[serde(default)]
    pub ok: Option<bool>,
    #[serde(default)]
    pub status_code: Option<u16>,
    /// When the event completed (RFC 3339); now when left out.
    #[serde(default)]
    pub at: Option<String>,
}

/// A batch of events for one service, as `POST /api/v1/metrics/events` takes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushedBatch {
    pub service: String,
    #[serde(default)]
    pub events: Vec<PushedEvent>,
    /// Current saturation of the service (queue depth, in-flight requests, utilisation…).
    #[serde(default)]
    pub saturation: Option<f64>,
}

/// A batch that passed every check, ready to record in one step.
#[derive(Debug, Clone)]
pub struct CheckedBatch {
    pub service: ServiceName,
    pub events: Vec<Event>,
    pub saturation: Option<f64>,
}

/// How far in the future an event's `at` may be (clock skew between hosts).
const MAX_SKEW_MS: u64 = 60_000;

impl PushedBatch {
    /// Checks the whole batch before anything is recorded: a batch is applied whole or not at
    /// all. Every problem is named by its field (`events[3].latency_ms`).
    pub fn check(
        self,
        now_ms: u64,
        window_ms: u64,
        max_batch: usize,
    ) -> Result<CheckedBatch, AppError> {
        let mut errors = FieldErrors::new();
        let service = match ServiceName::parse(self.service.trim()) {
            Ok(name) if name.as_str() == SELF_SERVICE || name.as_str() == WRITES_SERVICE => {
                errors.insert(
                    "service".into(),
                    format!("{} is reserved for Hindsight's own traffic", name.as_str()),
                );
                None
            }
            Ok(name) => Some(name),
            Err(e) => {
                errors.insert("service".into(), e.to_string());
                None
            }
        };
        if self.events.len() > max_batch {
            return Err(AppError::field(
                "events",
                format!(
                    "at most {max_batch} events per request; this one has {}. Split the batch",
                    self.events.len()
                ),
            ));
        }
        if self.events.is_empty() && self.saturation.is_none() {
            errors.insert(
                "events".into(),
                "give at least one event or a saturation value".into(),
            );
        }
        if let Some(s) = self.saturation
            && !(s.is_finite() && (0.0..=1e15).contains(&s))
        {
            errors.insert(
                "saturation".into(),
                "must be a finite number from 0 to 1e15".into(),
            );
        }
        let mut events = Vec::with_capacity(self.events.len());
        for (i, event) in self.events.iter().enumerate() {
            match check_event(event, now_ms, window_ms) {
                Ok(e) => events.push(e),
                Err((field, message)) => {
                    // Name only the first few bad events: a 10,000-event batch of garbage
                    // should not produce a 10,000-line answer.
                    if errors.len() < 20 {
                        errors.insert(format!("events[{i}].{field}"), message);
                    }
                }
            }
        }
        match service {
            Some(service) if errors.is_empty() => {
                // Recorded in time order, so the window's clock never has to clamp.
                events.sort_by_key(|e| e.at_ms);
                Ok(CheckedBatch {
                    service,
                    events,
                    saturation: self.saturation,
                })
            }
            _ => Err(AppError::fields(errors)),
        }
    }
}

fn check_event(
    e: &PushedEvent,
    now_ms: u64,
    window_ms: u64,
) -> Result<Event, (&'static str, String)> {
    if !e.latency_ms.is_finite() || e.latency_ms < 0.0 {
        return Err(("latency_ms", "must be a finite number ≥ 0".into()));
    }
    let ok = match (e.ok, e.status_code) {
        (None, None) => return Err(("ok", "give ok (true/false) or status_code".into())),
        (_, Some(code)) if !(100..=599).contains(&code) => {
            return Err((
                "status_code",
                "must be an HTTP status from 100 to 599".into(),
            ));
        }
        (Some(ok), Some(code)) if ok != (code < 500) => {
            return Err((
                "ok",
                format!("contradicts status_code {code} (5xx is an error)"),
            ));
        }
        (Some(ok), _) => ok,
        (None, Some(code)) => code < 500,
    };
    let at_ms = match &e.at {
        None => now_ms,
        Some(raw) => {
            let at = DateTime::parse_from_rfc3339(raw.trim()).map_err(|_| {
                (
                    "at",
                    "must be an RFC 3339 time like 2026-11-25T14:30:00Z".to_owned(),
                )
            })?;
            let ms = u64::try_from(at.timestamp_millis())
                .map_err(|_| ("at", "is before 1970".to_owned()))?;
            if ms > now_ms + MAX_SKEW_MS {
                return Err(("at", "is more than a minute in the future".into()));
            }
            if ms + window_ms < now_ms {
                return Err(("at", "is older than the collector's time window".into()));
            }
            ms
        }
    };
    // Microseconds, rounded; the collector saturates values above ~71 minutes.
    let latency_us = (e.latency_ms * 1000.0).round().min(u64::MAX as f64) as u64;
    Ok(Event {
        latency_us,
        ok,
        at_ms,
    })
}

/// `/metrics` in the Prometheus text format: Hindsight's own golden signals.
pub fn prometheus_text(
    own: &OwnCounters,
    report: Option<&WindowReport>,
    services: usize,
) -> String {
    let mut out = String::with_capacity(2048);
    let requests = own.requests.load(Ordering::Relaxed);
    let errors = own.errors.load(Ordering::Relaxed);
    let sum_s = own.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
    let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (suffix_labels, value) in lines {
            let _ = writeln!(out, "{name}{suffix_labels} {value}");
        }
    };
    metric(
        "hindsight_http_requests_total",
        "counter",
        "HTTP requests Hindsight has answered since it started.",
        &[(String::new(), requests.to_string())],
    );
    metric(
        "hindsight_http_request_errors_total",
        "counter",
        "HTTP requests answered with a 5xx status since start.",
        &[(String::new(), errors.to_string())],
    );
    metric(
        "hindsight_http_requests_in_flight",
        "gauge",
        "HTTP requests being handled right now (saturation).",
        &[(String::new(), own.in_flight().to_string())],
    );
    let latency = report.and_then(|r| r.last_n.latency_ms.as_ref());
    let quantile = |q: &str, v: Option<f64>| {
        (
            format!("{{quantile=\"{q}\"}}"),
            v.map_or_else(|| "NaN".to_owned(), |ms| format_float(ms / 1000.0)),
        )
    };
    let mut lines = vec![
        quantile("0.5", latency.map(|l| l.p50)),
        quantile("0.9", latency.map(|l| l.p90)),
        quantile("0.95", latency.map(|l| l.p95)),
        quantile("0.99", latency.map(|l| l.p99)),
        quantile("0.999", latency.map(|l| l.p999)),
    ];
    lines.push(("_sum".to_owned(), format_float(sum_s)));
    lines.push(("_count".to_owned(), requests.to_string()));
    metric(
        "hindsight_http_request_duration_seconds",
        "summary",
        "Request latency: nearest-rank quantiles over the last N requests; sum and count since start.",
        &lines,
    );
    let window = report.map(|r| &r.last_t);
    metric(
        "hindsight_http_window_requests_per_second",
        "gauge",
        "Requests per second over the collector's time window.",
        &[(
            String::new(),
            window.map_or_else(|| "0".to_owned(), |w| format_float(w.rate_per_s)),
        )],
    );
    metric(
        "hindsight_http_window_error_ratio",
        "gauge",
        "Share of requests answered with a 5xx status over the time window.",
        &[(
            String::new(),
            window.map_or_else(|| "0".to_owned(), |w| format_float(w.error_rate)),
        )],
    );
    let saturation = report.map(|r| &r.saturation);
    metric(
        "hindsight_http_window_in_flight_max",
        "gauge",
        "Most requests in flight at once over the time window.",
        &[(
            String::new(),
            saturation
                .and_then(|s| s.max)
                .map_or_else(|| "0".to_owned(), format_float),
        )],
    );
    metric(
        "hindsight_collector_services",
        "gauge",
        "Services the collector keeps a window for.",
        &[(String::new(), services.to_string())],
    );
    out
}

/// The collector service every write outcome is recorded under (committed = ok, refused =
/// error), which the default self-alert rule watches.
pub const WRITES_SERVICE: &str = "hindsight-writes";

/// Records every write outcome in the collector's `hindsight-writes` window.
pub fn observe_writes(db: &crate::db::Db, signals: &Arc<Signals>) {
    let signals = Arc::clone(signals);
    db.health().observe(move |outcome| {
        let latency_us = u64::try_from(outcome.latency.as_micros()).unwrap_or(u64::MAX);
        let _ = signals
            .registry
            .record(WRITES_SERVICE, latency_us, outcome.ok, now_ms());
    });
}

/// The write-path part of `/metrics`: writes committed and refused by cause, whether writes
/// are failing now, and the free space of the database's filesystem.
pub fn write_health_text(health: &crate::db::WriteHealth, disk_free: Option<u64>) -> String {
    let mut out = String::with_capacity(1024);
    let _ = writeln!(
        out,
        "# HELP hindsight_db_writes_committed_total Write transactions committed since start."
    );
    let _ = writeln!(out, "# TYPE hindsight_db_writes_committed_total counter");
    let _ = writeln!(
        out,
        "hindsight_db_writes_committed_total {}",
        health.committed_total()
    );
    let _ = writeln!(
        out,
        "# HELP hindsight_db_write_failures_total Writes refused since start, by cause (disk_full, busy, read_only, other)."
    );
    let _ = writeln!(out, "# TYPE hindsight_db_write_failures_total counter");
    for (cause, n) in health.failures_by_cause() {
        let _ = writeln!(
            out,
            "hindsight_db_write_failures_total{{cause=\"{cause}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP hindsight_db_writes_failing 1 while the last write failed for a known fault and none has succeeded since."
    );
    let _ = writeln!(out, "# TYPE hindsight_db_writes_failing gauge");
    let _ = writeln!(
        out,
        "hindsight_db_writes_failing {}",
        u8::from(health.failing().is_some())
    );
    if let Some(free) = disk_free {
        let _ = writeln!(
            out,
            "# HELP hindsight_db_disk_free_bytes Free bytes on the filesystem holding the database."
        );
        let _ = writeln!(out, "# TYPE hindsight_db_disk_free_bytes gauge");
        let _ = writeln!(out, "hindsight_db_disk_free_bytes {free}");
    }
    out
}

fn format_float(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "NaN".to_owned()
    }
}

/// A report of `service` now, in exact mode, or `None` when it has no window.
pub fn report(signals: &Signals, service: &str, mode: QuantileMode) -> Option<WindowReport> {
    signals.registry.report(service, now_ms(), mode).ok()
}

choice! {
    /// Why a snapshot was taken.
    pub enum Trigger, "trigger" {
        /// Someone pressed the button (or called the API).
        Manual = "manual",
        /// The incident was opened for a service with data.
        IncidentOpen = "incident_open",
        /// A page-tier alert opened the incident.
        Alert = "alert",
    }
}

/// The timeline line that says a snapshot was taken, with its headline figures.
pub fn snapshot_note(service: &str, trigger: Trigger, report: &WindowReport) -> String {
    format!(
        "Metrics snapshot of **{}** ({}): {} events, {:.1}% errors{}.",
        crate::markdown::escape(service),
        trigger.as_str().replace('_', " "),
        report.last_n.count,
        report.last_n.error_rate * 100.0,
        report
            .last_n
            .latency_ms
            .as_ref()
            .map(|l| format!(", p99 {:.1} ms", l.p99))
            .unwrap_or_default()
    )
}

/// Freezes the current window of `service` onto an incident, in exact mode, and — when the
/// service has Prometheus queries — the series Prometheus returns for them over the last T
/// minutes. Prometheus is asked before the write transaction opens, and its failures become
/// a note in the snapshot, never an error. `Ok(None)` when there is neither a window nor
/// queries (nothing to freeze).
pub async fn freeze(
    db: &crate::db::Db,
    signals: &Signals,
    incident_id: &str,
    service: &str,
    trigger: Trigger,
    taken_by: Option<&str>,
) -> Result<Option<db::Snapshot>, AppError> {
    let window = report(signals, service, QuantileMode::Exact);
    let queries = db::prometheus_queries(&db.reader, service)
        .await?
        .filter(|q| !q.is_empty());
    let frozen = match (&queries, &signals.prometheus) {
        (None, _) => None,
        (Some(q), Some(source)) => Some(prometheus::run(source, q, Utc::now().timestamp()).await),
        (Some(q), None) => Some(prometheus::not_configured(q, Utc::now().timestamp())),
    };
    let report = match (window, &frozen) {
        (Some(report), _) => report,
        (None, None) => return Ok(None),
        // Prometheus only: the window part of the snapshot is an empty one, so the figures
        // read as "no events recorded by Hindsight" rather than made-up zeros.
        (None, Some(_)) => crate::metrics::ServiceWindow::new(signals.registry.config())
            .map_err(|e| AppError::Internal(e.to_string()))?
            .report(now_ms(), QuantileMode::Exact),
    };
    let mut tx = db.begin_write().await?;
    let id = db::insert(
        &mut tx,
        incident_id,
        service,
        trigger,
        &report,
        frozen.as_ref(),
        taken_by,
    )
    .await?;
    if trigger != Trigger::IncidentOpen {
        let mut body = snapshot_note(service, trigger, &report);
        if let Some(f) = &frozen {
            let _ = match &f.note {
                Some(note) => write!(body, " Prometheus: {note}"),
                None => write!(body, " Prometheus: {} queries frozen.", f.results.len()),
            };
        }
        crate::timeline::db::insert(
            &mut tx,
            incident_id,
            Utc::now(),
            crate::timeline::EntryKind::Snapshot,
            &body,
            taken_by,
        )
        .await?;
    }
    tx.commit().await?;
    db::find(&db.writer, &id, None).await
}

/// Sets the service's Prometheus queries (all blank = clears them), audited.
pub async fn set_prometheus_queries(
    db: &crate::db::Db,
    by: &crate::auth::User,
    service: &str,
    queries: prometheus::Queries,
) -> Result<Option<prometheus::Queries>, AppError> {
    let service =
        ServiceName::parse(service).map_err(|e| AppError::field("service", e.to_string()))?;
    let queries = queries.checked()?;
    let mut tx = db.begin_write().await?;
    if queries.is_empty() {
        if db::clear_prometheus_queries(&mut tx, service.as_str()).await? {
            crate::auth::db::audit(
                &mut tx,
                Some(&by.id),
                "service.prometheus_clear",
                service.as_str(),
                "",
            )
            .await?;
        }
        tx.commit().await?;
        return Ok(None);
    }
    db::set_prometheus_queries(&mut tx, service.as_str(), &queries, &by.id).await?;
    let signals: Vec<&str> = queries.set().into_iter().map(|(s, _)| s).collect();
    crate::auth::db::audit(
        &mut tx,
        Some(&by.id),
        "service.prometheus_set",
        service.as_str(),
        &signals.join(", "),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(queries))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service page's figures are reused for at most a second, and say when they were taken.
    #[test]
    fn live_views_are_reused_for_a_second_then_taken_again() {
        let signals =
            Signals::new(crate::metrics::WindowConfig::default(), 10, true, 1000).expect("signals");
        signals
            .registry
            .record("checkout", 40_000, true, 1_000_000)
            .expect("record");
        let first = signals.live_view("checkout", 1_000_100).expect("view");
        assert_eq!(first.report.taken_at_ms, 1_000_100);
        assert_eq!(first.report.last_t.count, 1);
        signals
            .registry
            .record("checkout", 50_000, true, 1_000_200)
            .expect("record");
        let again = signals.live_view("checkout", 1_000_900).expect("view");
        assert!(
            Arc::ptr_eq(&first, &again),
            "within a second: the same figures"
        );
        let later = signals.live_view("checkout", 1_001_100).expect("view");
        assert_eq!(later.report.taken_at_ms, 1_001_100);
        assert_eq!(
            later.report.last_t.count, 2,
            "a second on: the new event counts"
        );
        assert!(later.chart.contains("<svg"));
        assert!(signals.live_view("ghost", 1_001_100).is_err());
    }

    fn event(
        latency_ms: f64,
        ok: Option<bool>,
        status_code: Option<u16>,
        at: Option<&str>,
    ) -> PushedEvent {
        PushedEvent {
            latency_ms,
            ok,
            status_code,
            at: at.map(str::to_owned),
        }
    }

    const NOW: u64 = 1_780_000_000_000;

    #[test]
    fn a_good_batch_is_sorted_by_time_and_outcomes_follow_status_codes() {
        let at = |ms: u64| {
            DateTime::from_timestamp_millis(i64::try_from(ms).expect("fits"))
                .expect("valid")
                .to_rfc3339()
        };
        let batch = PushedBatch {
            service: "checkout".into(),
            events: vec![
                event(12.5, None, Some(503), Some(&at(NOW - 1000))),
                event(3.0, Some(true), None, Some(&at(NOW - 5000))),
                event(0.0, None, Some(200), None),
            ],
            saturation: Some(4.0),
        };
        let checked = batch.check(NOW, 300_000, 100).expect("valid");
        let got: Vec<(u64, bool, u64)> = checked
            .events
            .iter()
            .map(|e| (e.latency_us, e.ok, e.at_ms))
            .collect();
        assert_eq!(
            got,
            vec![
                (3000, true, NOW - 5000),
                (12_500, false, NOW - 1000),
                (0, true, NOW)
            ]
        );
    }

    #[test]
    fn every_bad_event_is_named_and_nothing_is_accepted() {
        let batch = PushedBatch {
            service: "checkout".into(),
            events: vec![
                event(-1.0, Some(true), None, None),
                event(f64::NAN, Some(true), None, None),
                event(1.0, None, None, None),
                event(1.0, Some(true), Some(500), None),
                event(1.0, None, Some(700), None),
                event(1.0, Some(true), None, Some("yesterday")),
                event(1.0, Some(true), None, Some("2020-01-01T00:00:00Z")),
                event(1.0, Some(true), None, Some("2099-01-01T00:00:00Z")),
            ],
            saturation: Some(f64::INFINITY),
        };
        let AppError::Validation { fields, .. } =
            batch.check(NOW, 300_000, 100).expect_err("invalid")
        else {
            panic!("validation error expected");
        };
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "events[0].latency_ms",
                "events[1].latency_ms",
                "events[2].ok",
                "events[3].ok",
                "events[4].status_code",
                "events[5].at",
                "events[6].at",
                "events[7].at",
                "saturation"
            ]
        );
    }

    #[test]
    fn oversized_batches_reserved_and_invalid_names_are_refused() {
        let many = PushedBatch {
            service: "checkout".into(),
            events: vec![event(1.0, Some(true), None, None); 11],
            saturation: None,
        };
        let err = many.check(NOW, 300_000, 10).expect_err("too many");
        assert!(err.to_string().contains("at most 10 events"), "{err}");
        for name in ["hindsight", "has space", ""] {
            let batch = PushedBatch {
                service: name.into(),
                events: vec![event(1.0, Some(true), None, None)],
                saturation: None,
            };
            let AppError::Validation { fields, .. } =
                batch.check(NOW, 300_000, 10).expect_err("bad name")
            else {
                panic!("validation error expected");
            };
            assert!(fields.contains_key("service"), "{name}");
        }
    }

    #[test]
    fn prometheus_text_has_help_type_and_values() {
        let own = OwnCounters::default();
        own.enter();
        own.leave(1500, true, true);
        own.enter();
        own.leave(2500, false, true);
        let text = prometheus_text(&own, None, 1);
        assert!(text.contains(
            "# TYPE hindsight_http_requests_total counter\nhindsight_http_requests_total 2\n"
        ));
        assert!(text.contains("hindsight_http_request_errors_total 1\n"));
        assert!(text.contains("hindsight_http_request_duration_seconds_sum 0.004\n"));
        assert!(text.contains("hindsight_http_request_duration_seconds{quantile=\"0.99\"} NaN\n"));
        assert!(text.contains("hindsight_http_requests_in_flight 0\n"));
    }
}
