//! SQL for review subscriptions and their delivery log. Nothing here reads incidents: the
//! review itself comes from `reports`.

use chrono::{DateTime, Utc};
use sqlx::{SqliteConnection, SqlitePool};

use super::{Checked, Delivery, Subscription};
use crate::db::ts;
use crate::error::AppError;

/// A subscription row as stored.
struct Row {
    id: String,
    team: Option<String>,
    weekday: i64,
    hour: i64,
    timezone: String,
    emails: String,
    webhook_destination_id: Option<String>,
    webhook_name: Option<String>,
    next_due_at: DateTime<Utc>,
    created_by: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<Row> for Subscription {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            team: r.team,
            weekday: r.weekday,
            hour: r.hour,
            timezone: r.timezone,
            emails: r
                .emails
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            webhook_destination: r.webhook_destination_id,
            webhook_destination_name: r.webhook_name,
            next_due_at: r.next_due_at,
            created_by: r.created_by,
            created_at: r.created_at,
        }
    }
}

pub async fn destination_exists(conn: &mut SqliteConnection, id: &str) -> Result<bool, AppError> {
    Ok(
        sqlx::query_scalar!("SELECT 1 AS one FROM webhook_destinations WHERE id = ?", id)
            .fetch_optional(conn)
            .await?
            .is_some(),
    )
}

pub async fn insert(
    conn: &mut SqliteConnection,
    id: &str,
    c: &Checked,
    next: DateTime<Utc>,
    user_id: &str,
) -> Result<(), AppError> {
    let weekday = i64::from(c.weekday.number_from_monday());
    let hour = i64::from(c.hour);
    let tz = c.tz.name();
    let emails = c.emails.join("\n");
    let (next, now) = (ts(next), ts(Utc::now()));
    sqlx::query!(
        "INSERT INTO review_subscriptions (id, team, weekday, hour, timezone, emails,
            webhook_destination_id, next_due_at, created_by, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        id,
        c.team,
        weekday,
        hour,
        tz,
        emails,
        c.webhook_destination,
        next,
        user_id,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(pool: &SqlitePool, id: &str) -> Result<Option<Subscription>, AppError> {
    let row = sqlx::query_as!(
        Row,
        r#"SELECT s.id AS "id!", s.team, s.weekday, s.hour, s.timezone, s.emails,
                  s.webhook_destination_id, w.name AS "webhook_name?",
                  s.next_due_at AS "next_due_at: DateTime<Utc>", s.created_by,
                  s.created_at AS "created_at: DateTime<Utc>"
           FROM review_subscriptions s
           LEFT JOIN webhook_destinations w ON w.id = s.webhook_destination_id
           WHERE s.id = ?"#,
        id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Subscription::from))
}

/// All subscriptions, or those `owner` created.
pub async fn list(pool: &SqlitePool, owner: Option<&str>) -> Result<Vec<Subscription>, AppError> {
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT s.id AS "id!", s.team, s.weekday, s.hour, s.timezone, s.emails,
                  s.webhook_destination_id, w.name AS "webhook_name?",
                  s.next_due_at AS "next_due_at: DateTime<Utc>", s.created_by,
                  s.created_at AS "created_at: DateTime<Utc>"
           FROM review_subscriptions s
           LEFT JOIN webhook_destinations w ON w.id = s.webhook_destination_id
           WHERE ?1 IS NULL OR s.created_by = ?1
           ORDER BY s.created_at, s.id"#,
        owner
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Subscription::from).collect())
}

/// Subscriptions whose next delivery is due by `now`.
pub async fn due_subscriptions(
    pool: &SqlitePool,
    now: DateTime<Utc>,
) -> Result<Vec<Subscription>, AppError> {
    let now = ts(now);
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT s.id AS "id!", s.team, s.weekday, s.hour, s.timezone, s.emails,
                  s.webhook_destination_id, w.name AS "webhook_name?",
                  s.next_due_at AS "next_due_at: DateTime<Utc>", s.created_by,
                  s.created_at AS "created_at: DateTime<Utc>"
           FROM review_subscriptions s
           LEFT JOIN webhook_destinations w ON w.id = s.webhook_destination_id
           WHERE s.next_due_at <= ?
           ORDER BY s.next_due_at LIMIT 50"#,
        now
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Subscription::from).collect())
}

/// Moves a subscription's next due time from `from` to `to`; false when it had moved already.
pub async fn advance(
    conn: &mut SqliteConnection,
    id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<bool, AppError> {
    let (from, to) = (ts(from), ts(to));
    let done = sqlx::query!(
        "UPDATE review_subscriptions SET next_due_at = ? WHERE id = ? AND next_due_at = ?",
        to,
        id,
        from
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete(conn: &mut SqliteConnection, id: &str) -> Result<(), AppError> {
    sqlx::query!("DELETE FROM review_subscriptions WHERE id = ?", id)
        .execute(conn)
        .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_delivery(
    conn: &mut SqliteConnection,
    id: &str,
    subscription_id: &str,
    week: &str,
    trigger: &str,
    channel: &str,
    target: &str,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let now = ts(now);
    sqlx::query!(
        "INSERT INTO review_deliveries (id, subscription_id, week, trigger, channel, target,
            status, next_attempt_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
        id,
        subscription_id,
        week,
        trigger,
        channel,
        target,
        now,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An e-mail delivery waiting to be sent.
pub struct DueEmail {
    pub id: String,
    pub week: String,
    pub target: String,
    pub attempts: i64,
    pub team: Option<String>,
}

pub async fn due_emails(pool: &SqlitePool, now: DateTime<Utc>) -> Result<Vec<DueEmail>, AppError> {
    let now = ts(now);
    Ok(sqlx::query_as!(
        DueEmail,
        r#"SELECT d.id AS "id!", d.week, d.target, d.attempts, s.team
           FROM review_deliveries d JOIN review_subscriptions s ON s.id = d.subscription_id
           WHERE d.status = 'pending' AND d.channel = 'email' AND d.next_attempt_at <= ?
           ORDER BY d.next_attempt_at LIMIT 20"#,
        now
    )
    .fetch_all(pool)
    .await?)
}

/// Records one attempt: its outcome, and when to try again (none: no retry).
pub async fn record(
    conn: &mut SqliteConnection,
    id: &str,
    status: &str,
    error: &str,
    next: Option<DateTime<Utc>>,
) -> Result<(), AppError> {
    let now = ts(Utc::now());
    let next = next.map(ts).unwrap_or_else(|| now.clone());
    let delivered = (status == "delivered").then(|| now.clone());
    sqlx::query!(
        "UPDATE review_deliveries
         SET status = ?, attempts = attempts + 1, last_error = ?, next_attempt_at = ?,
             delivered_at = COALESCE(?, delivered_at)
         WHERE id = ?",
        status,
        error,
        next,
        delivered,
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The delivery log (newest first) of all subscriptions, or of those `owner` created; a
/// webhook delivery's outcome is read from the notifications outbox that sends it.
pub async fn log(
    pool: &SqlitePool,
    owner: Option<&str>,
    limit: i64,
) -> Result<Vec<Delivery>, AppError> {
    Ok(sqlx::query_as!(
        Delivery,
        r#"SELECT d.id AS "id!", d.subscription_id, d.week, d.trigger, d.channel, d.target,
                  COALESCE(w.status, d.status) AS "status!: String",
                  COALESCE(w.attempts, d.attempts) AS "attempts!: i64",
                  CASE WHEN w.id IS NULL THEN d.last_error
                       WHEN w.last_error <> '' THEN w.last_error
                       WHEN w.last_status IS NOT NULL THEN 'HTTP ' || w.last_status
                       ELSE '' END AS "last_error!: String",
                  d.created_at AS "created_at: DateTime<Utc>",
                  COALESCE(w.delivered_at, d.delivered_at) AS "delivered_at: DateTime<Utc>"
           FROM review_deliveries d
           JOIN review_subscriptions s ON s.id = d.subscription_id
           LEFT JOIN webhook_deliveries w ON w.id = d.id
           WHERE ?1 IS NULL OR s.created_by = ?1
           ORDER BY d.created_at DESC, d.id DESC LIMIT ?2"#,
        owner,
        limit
    )
    .fetch_all(pool)
    .await?)
}
