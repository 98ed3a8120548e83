//! SQL for received alerts (alert_events with a source other than `rule`) and the log of
//! payloads each receiver got.

use chrono::{DateTime, Utc};
use sqlx::{SqliteConnection, SqlitePool};

use super::Source;
use crate::db::{new_id, ts};
use crate::error::AppError;

/// The open incident that already tracks this alert group, if any.
pub async fn tracking_incident(
    pool: &SqlitePool,
    source: Source,
    group_key: &str,
) -> Result<Option<String>, AppError> {
    let source = source.as_str();
    Ok(sqlx::query_scalar!(
        r#"SELECT e.incident_id AS "incident_id!" FROM alert_events e
         JOIN incidents i ON i.id = e.incident_id
         WHERE e.source = ? AND e.group_key = ?
           AND i.status IN ('investigating', 'identified', 'monitoring')
         ORDER BY e.started_at DESC LIMIT 1"#,
        source,
        group_key
    )
    .fetch_optional(pool)
    .await?)
}

/// Whether any of these firing alerts has not been stored yet (a retry of a delivery already
/// handled must not open a second incident).
pub async fn any_new_firing<'a>(
    pool: &SqlitePool,
    source: Source,
    alerts: impl Iterator<Item = (&'a str, DateTime<Utc>)>,
) -> Result<bool, AppError> {
    let source = source.as_str();
    for (fingerprint, started_at) in alerts {
        let started_at = ts(started_at);
        let known = sqlx::query_scalar!(
            r#"SELECT COUNT(*) AS "n!: i64" FROM alert_events
             WHERE source = ? AND fingerprint = ? AND started_at = ?"#,
            source,
            fingerprint,
            started_at
        )
        .fetch_one(pool)
        .await?;
        if known == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

#[derive(Debug, Clone)]
pub struct StoredAlert {
    pub id: String,
    pub ended_at: Option<DateTime<Utc>>,
}

pub async fn find_alert(
    conn: &mut SqliteConnection,
    source: Source,
    fingerprint: &str,
    started_at: DateTime<Utc>,
) -> Result<Option<StoredAlert>, AppError> {
    let source = source.as_str();
    let started_at = ts(started_at);
    Ok(sqlx::query_as!(
        StoredAlert,
        r#"SELECT id AS "id!", ended_at AS "ended_at: DateTime<Utc>" FROM alert_events
         WHERE source = ? AND fingerprint = ? AND started_at = ?"#,
        source,
        fingerprint,
        started_at
    )
    .fetch_optional(conn)
    .await?)
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_alert(
    conn: &mut SqliteConnection,
    source: Source,
    group_key: &str,
    fingerprint: &str,
    name: &str,
    service: &str,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    incident_id: Option<&str>,
    generator_url: &str,
) -> Result<(), AppError> {
    let id = new_id();
    let source = source.as_str();
    let started_at = ts(started_at);
    let ended_at = ended_at.map(ts);
    sqlx::query!(
        "INSERT INTO alert_events (id, rule_id, source, name, service, tier, signal, fingerprint,
            started_at, ended_at, incident_id, group_key, generator_url)
         VALUES (?, NULL, ?, ?, ?, 'page', '', ?, ?, ?, ?, ?, ?)",
        id,
        source,
        name,
        service,
        fingerprint,
        started_at,
        ended_at,
        incident_id,
        group_key,
        generator_url,
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn end_alert(
    conn: &mut SqliteConnection,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), AppError> {
    let at = ts(at);
    sqlx::query!(
        "UPDATE alert_events SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
        at,
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn group_has_open_alerts(
    conn: &mut SqliteConnection,
    source: Source,
    group_key: &str,
) -> Result<bool, AppError> {
    let source = source.as_str();
    let n = sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM alert_events
         WHERE source = ? AND group_key = ? AND ended_at IS NULL"#,
        source,
        group_key
    )
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// Keeps what a receiver got and how it was answered (both already cut and redacted), and
/// only the last 50 per receiver.
pub async fn log_payload(
    conn: &mut SqliteConnection,
    source: Source,
    status: u16,
    outcome: &str,
    payload: &str,
) -> Result<(), AppError> {
    let id = new_id();
    let receiver = source.as_str();
    let now = ts(Utc::now());
    let status = i64::from(status);
    sqlx::query!(
        "INSERT INTO integration_payloads (id, receiver, received_at, status, outcome, payload)
         VALUES (?, ?, ?, ?, ?, ?)",
        id,
        receiver,
        now,
        status,
        outcome,
        payload,
    )
    .execute(&mut *conn)
    .await?;
    // Keep the log short: the last 50 per receiver.
    sqlx::query!(
        "DELETE FROM integration_payloads WHERE receiver = ? AND id NOT IN
            (SELECT id FROM integration_payloads WHERE receiver = ? ORDER BY received_at DESC LIMIT 50)",
        receiver,
        receiver
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct LoggedPayload {
    pub receiver: String,
    pub received_at: DateTime<Utc>,
    pub status: i64,
    pub outcome: String,
    pub payload: String,
}

pub async fn recent_payloads(
    pool: &SqlitePool,
    limit: i64,
) -> Result<Vec<LoggedPayload>, AppError> {
    Ok(sqlx::query_as!(
        LoggedPayload,
        r#"SELECT receiver, received_at AS "received_at: DateTime<Utc>", status, outcome, payload
         FROM integration_payloads ORDER BY received_at DESC LIMIT ?"#,
        limit
    )
    .fetch_all(pool)
    .await?)
}
