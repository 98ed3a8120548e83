//! SQL for frozen metric snapshots (insert and read only: a trigger refuses updates).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{SqliteConnection, SqlitePool};

use crate::db::{new_id, ts};
use crate::error::AppError;
use crate::metrics::WindowReport;

/// A snapshot as stored: the headline figures in columns, the whole report as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub id: String,
    pub incident_id: String,
    pub incident_number: i64,
    pub service: String,
    pub taken_at: DateTime<Utc>,
    pub trigger: String,
    pub window_events: i64,
    pub window_secs: i64,
    pub count: i64,
    pub errors: i64,
    pub error_rate: f64,
    pub rate_per_s: f64,
    pub latency_min: Option<f64>,
    pub latency_mean: Option<f64>,
    pub latency_p50: Option<f64>,
    pub latency_p90: Option<f64>,
    pub latency_p95: Option<f64>,
    pub latency_p99: Option<f64>,
    pub latency_max: Option<f64>,
    pub saturation: Option<f64>,
    #[serde(skip)]
    pub report: String,
    /// What was frozen from Prometheus (JSON of `prometheus::Frozen`), if the service had
    /// queries.
    #[serde(skip)]
    pub prometheus: Option<String>,
}

impl Snapshot {
    /// The full report, for charts and the API.
    pub fn report(&self) -> Option<WindowReport> {
        serde_json::from_str(&self.report).ok()
    }

    /// The series frozen from Prometheus, if any.
    pub fn prometheus(&self) -> Option<super::prometheus::Frozen> {
        serde_json::from_str(self.prometheus.as_deref()?).ok()
    }
}

/// Freezes `report` (the last-N figures) onto an incident; returns the new id.
pub async fn insert(
    conn: &mut SqliteConnection,
    incident_id: &str,
    service: &str,
    trigger: super::Trigger,
    report: &WindowReport,
    prometheus: Option<&super::prometheus::Frozen>,
    taken_by: Option<&str>,
) -> Result<String, AppError> {
    let id = new_id();
    let stats = &report.last_n;
    let latency = stats.latency_ms.as_ref();
    let json = serde_json::to_string(report).map_err(|e| AppError::Internal(e.to_string()))?;
    let prometheus = prometheus
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let taken_at = DateTime::from_timestamp_millis(i64::try_from(report.taken_at_ms).unwrap_or(0))
        .unwrap_or_else(Utc::now);
    let taken_at = ts(taken_at);
    let window_events = i64::try_from(report.config.max_events).unwrap_or(i64::MAX);
    let window_secs = i64::from(report.config.window_secs);
    let count = i64::try_from(stats.count).unwrap_or(i64::MAX);
    let errors = i64::try_from(stats.errors).unwrap_or(i64::MAX);
    let (min, mean) = (latency.map(|l| l.min), latency.map(|l| l.mean));
    let (p50, p90) = (latency.map(|l| l.p50), latency.map(|l| l.p90));
    let (p95, p99) = (latency.map(|l| l.p95), latency.map(|l| l.p99));
    let max = latency.map(|l| l.max);
    sqlx::query!(
        "INSERT INTO metric_snapshots (id, incident_id, service, taken_at, trigger, window_events,
            window_secs, count, errors, error_rate, rate_per_s, latency_min, latency_mean,
            latency_p50, latency_p90, latency_p95, latency_p99, latency_max, saturation, report,
            taken_by, prometheus)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        id,
        incident_id,
        service,
        taken_at,
        trigger,
        window_events,
        window_secs,
        count,
        errors,
        stats.error_rate,
        stats.rate_per_s,
        min,
        mean,
        p50,
        p90,
        p95,
        p99,
        max,
        report.saturation.current,
        json,
        taken_by,
        prometheus,
    )
    .execute(conn)
    .await?;
    Ok(id)
}

/// The snapshot `id`, when `viewer` may see its incident (`None`: Hindsight itself reading
/// back what it just froze).
pub async fn find(
    pool: &SqlitePool,
    id: &str,
    viewer: Option<&crate::visibility::Viewer>,
) -> Result<Option<Snapshot>, AppError> {
    let viewer = viewer.map(crate::visibility::Viewer::id);
    Ok(sqlx::query_as!(
        Snapshot,
        r#"SELECT s.id AS "id!", s.incident_id, i.number AS incident_number, s.service,
                s.taken_at AS "taken_at: DateTime<Utc>", s.trigger, s.window_events,
                s.window_secs, s.count, s.errors, s.error_rate, s.rate_per_s, s.latency_min,
                s.latency_mean, s.latency_p50, s.latency_p90, s.latency_p95, s.latency_p99,
                s.latency_max, s.saturation, s.report, s.prometheus
            FROM metric_snapshots s JOIN incidents i ON i.id = s.incident_id
            WHERE s.id = ?1
              AND (?2 IS NULL OR (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                WHERE x.incident_id = i.id AND x.user_id = ?2)))"#,
        id,
        viewer
    )
    .fetch_optional(pool)
    .await?)
}

/// The incident's snapshots, oldest first.
pub async fn list_for_incident(
    // A pool, or a write transaction (publishing freezes these lists inside its own).
    pool: impl sqlx::SqliteExecutor<'_>,
    incident_id: &str,
) -> Result<Vec<Snapshot>, AppError> {
    Ok(sqlx::query_as!(
        Snapshot,
        r#"SELECT s.id AS "id!", s.incident_id, i.number AS incident_number, s.service,
                s.taken_at AS "taken_at: DateTime<Utc>", s.trigger, s.window_events,
                s.window_secs, s.count, s.errors, s.error_rate, s.rate_per_s, s.latency_min,
                s.latency_mean, s.latency_p50, s.latency_p90, s.latency_p95, s.latency_p99,
                s.latency_max, s.saturation, s.report, s.prometheus
            FROM metric_snapshots s JOIN incidents i ON i.id = s.incident_id
            WHERE s.incident_id = ? ORDER BY s.taken_at"#,
        incident_id
    )
    .fetch_all(pool)
    .await?)
}

/// A snapshot as the service page lists it: its figures without the frozen report and
/// Prometheus series (about 12 KB each), which only the incident page draws.
#[derive(Debug, Clone)]
pub struct SnapshotLine {
    pub incident_number: i64,
    pub taken_at: DateTime<Utc>,
    pub trigger: String,
    pub count: i64,
    pub error_rate: f64,
    pub latency_p99: Option<f64>,
    pub with_prometheus: bool,
}

/// The newest `limit` snapshots of `service` that `viewer` may see, newest first.
pub async fn recent_for_service(
    pool: &SqlitePool,
    service: &str,
    limit: i64,
    viewer: &crate::visibility::Viewer,
) -> Result<Vec<SnapshotLine>, AppError> {
    let viewer = viewer.id();
    Ok(sqlx::query_as!(
        SnapshotLine,
        r#"SELECT i.number AS incident_number, s.taken_at AS "taken_at: DateTime<Utc>",
                s.trigger, s.count, s.error_rate, s.latency_p99,
                s.prometheus IS NOT NULL AS "with_prometheus!: bool"
            FROM metric_snapshots s JOIN incidents i ON i.id = s.incident_id
            WHERE s.service = ?
              AND (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                WHERE x.incident_id = i.id AND x.user_id = ?))
            ORDER BY s.taken_at DESC LIMIT ?"#,
        service,
        viewer,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// The service's Prometheus queries, if an admin set any.
pub async fn prometheus_queries(
    pool: &SqlitePool,
    service: &str,
) -> Result<Option<super::prometheus::Queries>, AppError> {
    Ok(sqlx::query_as!(
        super::prometheus::Queries,
        "SELECT latency_p50, latency_p90, latency_p99, error_rate, traffic, saturation
         FROM prometheus_queries WHERE service = ?",
        service
    )
    .fetch_optional(pool)
    .await?)
}

/// Sets (replaces) the service's queries.
pub async fn set_prometheus_queries(
    conn: &mut SqliteConnection,
    service: &str,
    q: &super::prometheus::Queries,
    by: &str,
) -> Result<(), AppError> {
    let now = ts(Utc::now());
    sqlx::query!(
        "INSERT INTO prometheus_queries (service, latency_p50, latency_p90, latency_p99,
            error_rate, traffic, saturation, updated_at, updated_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (service) DO UPDATE SET latency_p50 = excluded.latency_p50,
            latency_p90 = excluded.latency_p90, latency_p99 = excluded.latency_p99,
            error_rate = excluded.error_rate, traffic = excluded.traffic,
            saturation = excluded.saturation, updated_at = excluded.updated_at,
            updated_by = excluded.updated_by",
        service,
        q.latency_p50,
        q.latency_p90,
        q.latency_p99,
        q.error_rate,
        q.traffic,
        q.saturation,
        now,
        by
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes the service's queries; whether there were any.
pub async fn clear_prometheus_queries(
    conn: &mut SqliteConnection,
    service: &str,
) -> Result<bool, AppError> {
    let done = sqlx::query!("DELETE FROM prometheus_queries WHERE service = ?", service)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Services that have Prometheus queries set, by name.
pub async fn services_with_prometheus(pool: &SqlitePool) -> Result<Vec<String>, AppError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT service AS "service!" FROM prometheus_queries ORDER BY service"#
    )
    .fetch_all(pool)
    .await?)
}
