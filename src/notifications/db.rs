//! SQL for webhook destinations and deliveries.

use chrono::{DateTime, Utc};
use sqlx::{SqliteConnection, SqlitePool};

use super::{DestinationValues, Event, Notice};
use crate::db::{new_id, ts};
use crate::error::AppError;

#[derive(Debug, Clone)]
pub struct Destination {
    pub id: String,
    pub name: String,
    pub url: String,
    pub format: String,
    pub events: String,
    pub tiers: String,
    pub enabled: bool,
    /// Receives restricted incidents' titles and links (otherwise only that one happened).
    pub restricted_details: bool,
}

impl Destination {
    /// The URL as pages show it after creation (see `notifications::mask_url`).
    pub fn masked_url(&self) -> String {
        super::mask_url(&self.url)
    }
}

pub async fn list_destinations(
    conn: impl sqlx::SqliteExecutor<'_>,
) -> Result<Vec<Destination>, AppError> {
    Ok(sqlx::query_as!(
        Destination,
        r#"SELECT id AS "id!", name, url, format, events, tiers, enabled AS "enabled: bool",
            restricted_details AS "restricted_details: bool"
         FROM webhook_destinations ORDER BY name"#
    )
    .fetch_all(conn)
    .await?)
}

pub async fn insert_destination(
    conn: &mut SqliteConnection,
    v: &DestinationValues,
    secret: &str,
) -> Result<(), AppError> {
    let events: Vec<&str> = v.events.iter().map(|e| e.as_str()).collect();
    let (id, events, tiers, now) = (
        new_id(),
        events.join(","),
        v.tiers.join(","),
        ts(Utc::now()),
    );
    sqlx::query!(
        "INSERT INTO webhook_destinations (id, name, url, format, events, tiers, enabled, created_at,
            secret, restricted_details)
         VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
        id,
        v.name,
        v.url,
        v.format,
        events,
        tiers,
        now,
        secret,
        v.restricted_details,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces a destination's signing secret; returns its name, or `None` when there is no such
/// destination.
pub async fn set_secret(
    conn: &mut SqliteConnection,
    id: &str,
    secret: &str,
) -> Result<Option<String>, AppError> {
    Ok(sqlx::query_scalar!(
        "UPDATE webhook_destinations SET secret = ? WHERE id = ? RETURNING name",
        secret,
        id
    )
    .fetch_optional(conn)
    .await?)
}

/// Sets whether a destination receives restricted incidents' details; its name, or `None`
/// when there is no such destination.
pub async fn set_restricted_details(
    conn: &mut SqliteConnection,
    id: &str,
    allowed: bool,
) -> Result<Option<String>, AppError> {
    Ok(sqlx::query_scalar!(
        "UPDATE webhook_destinations SET restricted_details = ? WHERE id = ? RETURNING name",
        allowed,
        id
    )
    .fetch_optional(conn)
    .await?)
}

pub async fn delete_destination(conn: &mut SqliteConnection, id: &str) -> Result<bool, AppError> {
    let done = sqlx::query!("DELETE FROM webhook_destinations WHERE id = ?", id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Queues `notice` for each enabled destination whose events and tiers include it.
pub async fn enqueue(
    conn: &mut SqliteConnection,
    event: Event,
    notice: &Notice,
) -> Result<usize, AppError> {
    let wanted: Vec<Destination> = list_destinations(&mut *conn)
        .await?
        .into_iter()
        .filter(|d| {
            d.enabled
                && d.events.split(',').any(|e| e == event.as_str())
                && d.tiers.split(',').any(|t| t == notice.tier)
        })
        .collect();
    if wanted.is_empty() {
        return Ok(0);
    }
    let data = serde_json::to_string(notice).map_err(|e| AppError::Internal(e.to_string()))?;
    let redacted =
        serde_json::to_string(&notice.redacted()).map_err(|e| AppError::Internal(e.to_string()))?;
    let now = ts(Utc::now());
    for d in &wanted {
        let id = new_id();
        let data = if notice.restricted && !d.restricted_details {
            &redacted
        } else {
            &data
        };
        sqlx::query!(
            "INSERT INTO webhook_deliveries (id, destination_id, event, data, status, attempts,
                next_attempt_at, created_at)
             VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)",
            id,
            d.id,
            event,
            data,
            now,
            now,
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(wanted.len())
}

/// A delivery waiting to be sent, with where to.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: String,
    pub data: String,
    pub attempts: i64,
    pub url: String,
    pub format: String,
    /// The destination's signing secret.
    pub secret: String,
}

pub async fn due(pool: &SqlitePool, limit: i64) -> Result<Vec<Due>, AppError> {
    let now = ts(Utc::now());
    Ok(sqlx::query_as!(
        Due,
        r#"SELECT d.id AS "id!", d.data, d.attempts, w.url, w.format, w.secret
         FROM webhook_deliveries d JOIN webhook_destinations w ON w.id = d.destination_id
         WHERE d.status = 'pending' AND d.next_attempt_at <= ?
         ORDER BY d.next_attempt_at LIMIT ?"#,
        now,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// Records one attempt: delivered when `error` is empty, otherwise retried at `next` or, with
/// no `next`, failed for good.
pub async fn record_attempt(
    conn: &mut SqliteConnection,
    id: &str,
    status: Option<u16>,
    error: &str,
    next: Option<DateTime<Utc>>,
) -> Result<(), AppError> {
    let now = Utc::now();
    let (state, delivered_at, next_at) = match (error.is_empty(), next) {
        (true, _) => ("delivered", Some(ts(now)), ts(now)),
        (false, Some(next)) => ("pending", None, ts(next)),
        (false, None) => ("failed", None, ts(now)),
    };
    let status = status.map(i64::from);
    sqlx::query!(
        "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, last_status = ?,
            last_error = ?, next_attempt_at = ?, delivered_at = ? WHERE id = ?",
        state,
        status,
        error,
        next_at,
        delivered_at,
        id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A delivery as the admin page lists it.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub destination: String,
    pub event: String,
    pub status: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: String,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

pub async fn recent_deliveries(
    pool: &SqlitePool,
    limit: i64,
) -> Result<Vec<DeliveryRow>, AppError> {
    Ok(sqlx::query_as!(
        DeliveryRow,
        r#"SELECT w.name AS destination, d.event, d.status, d.attempts, d.last_status,
                d.last_error, d.created_at AS "created_at: DateTime<Utc>",
                d.delivered_at AS "delivered_at: DateTime<Utc>"
         FROM webhook_deliveries d JOIN webhook_destinations w ON w.id = d.destination_id
         ORDER BY d.created_at DESC LIMIT ?"#,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// Queues `notice` for one destination (whatever events it chose: the weekly review goes to
/// the destination its subscription names), inside the caller's transaction; returns the
/// delivery's id, or none when the destination is gone or disabled.
pub async fn enqueue_to(
    conn: &mut SqliteConnection,
    destination_id: &str,
    event: &str,
    notice: &Notice,
) -> Result<Option<String>, AppError> {
    let enabled = sqlx::query_scalar!(
        r#"SELECT enabled AS "enabled: bool" FROM webhook_destinations WHERE id = ?"#,
        destination_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    if enabled != Some(true) {
        return Ok(None);
    }
    let data = serde_json::to_string(notice).map_err(|e| AppError::Internal(e.to_string()))?;
    let now = ts(Utc::now());
    let id = new_id();
    sqlx::query!(
        "INSERT INTO webhook_deliveries (id, destination_id, event, data, status, attempts,
            next_attempt_at, created_at)
         VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)",
        id,
        destination_id,
        event,
        data,
        now,
        now,
    )
    .execute(&mut *conn)
    .await?;
    Ok(Some(id))
}
