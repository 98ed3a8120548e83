//! SQL for timeline entries.

use chrono::{DateTime, Utc};
use sqlx::{SqliteConnection, SqlitePool};

use super::{Entry, EntryKind};
use crate::db::{new_id, ts};
use crate::error::AppError;

pub async fn insert(
    conn: &mut SqliteConnection,
    incident_id: &str,
    occurred_at: DateTime<Utc>,
    kind: EntryKind,
    body: &str,
    author_id: Option<&str>,
) -> Result<String, AppError> {
    let id = new_id();
    let now = ts(Utc::now());
    let occurred_at = ts(occurred_at);
    sqlx::query!(
        "INSERT INTO timeline_entries (id, incident_id, occurred_at, kind, body, author_id,
            created_at, updated_at, version)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
        id,
        incident_id,
        occurred_at,
        kind,
        body,
        author_id,
        now,
        now,
    )
    .execute(conn)
    .await?;
    Ok(id)
}

/// Entries of an incident in time order (ties in the order they were written).
pub async fn list_for_incident(
    // A pool, or a write transaction (publishing freezes these lists inside its own).
    pool: impl sqlx::SqliteExecutor<'_>,
    incident_id: &str,
) -> Result<Vec<Entry>, AppError> {
    Ok(sqlx::query_as!(
        Entry,
        r#"SELECT t.id AS "id!", t.incident_id, t.occurred_at AS "occurred_at: DateTime<Utc>",
                t.kind AS "kind: EntryKind", t.body, t.author_id, u.name AS "author_name?",
                t.created_at AS "created_at: DateTime<Utc>",
                t.updated_at AS "updated_at: DateTime<Utc>", t.version
            FROM timeline_entries t LEFT JOIN users u ON u.id = t.author_id
            WHERE t.incident_id = ? ORDER BY t.occurred_at, t.created_at, t.id"#,
        incident_id
    )
    .fetch_all(pool)
    .await?)
}

/// How many entries an incident's timeline has.
pub async fn count_for_incident(pool: &SqlitePool, incident_id: &str) -> Result<i64, AppError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM timeline_entries WHERE incident_id = ?"#,
        incident_id
    )
    .fetch_one(pool)
    .await?)
}

/// The first `limit` entries of an incident in time order (how it started).
pub async fn oldest_for_incident(
    pool: &SqlitePool,
    incident_id: &str,
    limit: i64,
) -> Result<Vec<Entry>, AppError> {
    Ok(sqlx::query_as!(
        Entry,
        r#"SELECT t.id AS "id!", t.incident_id, t.occurred_at AS "occurred_at: DateTime<Utc>",
                t.kind AS "kind: EntryKind", t.body, t.author_id, u.name AS "author_name?",
                t.created_at AS "created_at: DateTime<Utc>",
                t.updated_at AS "updated_at: DateTime<Utc>", t.version
            FROM timeline_entries t LEFT JOIN users u ON u.id = t.author_id
            WHERE t.incident_id = ? ORDER BY t.occurred_at, t.created_at, t.id LIMIT ?"#,
        incident_id,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// The last `limit` entries of an incident, in time order (oldest of them first).
pub async fn newest_for_incident(
    pool: &SqlitePool,
    incident_id: &str,
    limit: i64,
) -> Result<Vec<Entry>, AppError> {
    let mut entries = sqlx::query_as!(
        Entry,
        r#"SELECT t.id AS "id!", t.incident_id, t.occurred_at AS "occurred_at: DateTime<Utc>",
                t.kind AS "kind: EntryKind", t.body, t.author_id, u.name AS "author_name?",
                t.created_at AS "created_at: DateTime<Utc>",
                t.updated_at AS "updated_at: DateTime<Utc>", t.version
            FROM timeline_entries t LEFT JOIN users u ON u.id = t.author_id
            WHERE t.incident_id = ? ORDER BY t.occurred_at DESC, t.created_at DESC, t.id DESC
            LIMIT ?"#,
        incident_id,
        limit
    )
    .fetch_all(pool)
    .await?;
    entries.reverse();
    Ok(entries)
}

/// The earliest detection entry at or after `since` (the incident's start), if any.
pub async fn earliest_detection(
    pool: &SqlitePool,
    incident_id: &str,
    since: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, AppError> {
    let since = ts(since);
    Ok(sqlx::query_scalar!(
        r#"SELECT occurred_at AS "at: DateTime<Utc>" FROM timeline_entries
            WHERE incident_id = ? AND kind = 'detection' AND occurred_at >= ?
            ORDER BY occurred_at LIMIT 1"#,
        incident_id,
        since
    )
    .fetch_optional(pool)
    .await?)
}

pub async fn find(pool: &SqlitePool, id: &str) -> Result<Option<Entry>, AppError> {
    Ok(sqlx::query_as!(
        Entry,
        r#"SELECT t.id AS "id!", t.incident_id, t.occurred_at AS "occurred_at: DateTime<Utc>",
                t.kind AS "kind: EntryKind", t.body, t.author_id, u.name AS "author_name?",
                t.created_at AS "created_at: DateTime<Utc>",
                t.updated_at AS "updated_at: DateTime<Utc>", t.version
            FROM timeline_entries t LEFT JOIN users u ON u.id = t.author_id
            WHERE t.id = ?"#,
        id
    )
    .fetch_optional(pool)
    .await?)
}

/// Writes the entry if it is still at `version`; false when someone saved first.
pub async fn update(
    conn: &mut SqliteConnection,
    id: &str,
    version: i64,
    occurred_at: DateTime<Utc>,
    kind: EntryKind,
    body: &str,
) -> Result<bool, AppError> {
    let (occurred_at, now) = (ts(occurred_at), ts(Utc::now()));
    let done = sqlx::query!(
        "UPDATE timeline_entries SET occurred_at = ?, kind = ?, body = ?, updated_at = ?,
            version = version + 1
         WHERE id = ? AND version = ?",
        occurred_at,
        kind,
        body,
        now,
        id,
        version,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete(conn: &mut SqliteConnection, id: &str) -> Result<bool, AppError> {
    let done = sqlx::query!("DELETE FROM timeline_entries WHERE id = ?", id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}
