//! SQL for chat evidence: messages of an incident, their promotions to timeline entries and
//! the markers the post-mortem shows. Listing functions (`list`, `find`, `markers`) are the
//! ones a viewer filter would go through.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{SqliteConnection, SqlitePool};

use super::{ChatMessage, Marker, Source};
use crate::db::{new_id, ts};
use crate::error::AppError;

/// A stored message, with the timeline entry it was promoted to, if any.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: String,
    pub source: Source,
    pub author: String,
    pub posted_at: DateTime<Utc>,
    pub text: String,
    pub thread_ts: Option<String>,
    pub external_id: String,
    pub edited: bool,
    pub files: String,
    pub entry_id: Option<String>,
    pub marker: Option<Marker>,
}

/// Adds a message unless the incident already has it from the same source; true if added.
pub async fn insert(
    conn: &mut SqliteConnection,
    incident_id: &str,
    import_id: &str,
    source: Source,
    m: &ChatMessage,
    user_id: &str,
) -> Result<bool, AppError> {
    let id = new_id();
    let now = ts(Utc::now());
    let posted = ts(m.posted_at);
    let done = sqlx::query!(
        "INSERT INTO chat_messages (id, incident_id, import_id, source, external_id, author,
            posted_at, text, thread_ts, edited, files, imported_by, imported_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (incident_id, source, external_id) DO NOTHING",
        id,
        incident_id,
        import_id,
        source,
        m.external_id,
        m.author,
        posted,
        m.text,
        m.thread_ts,
        m.edited,
        m.files,
        user_id,
        now
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The incident's messages in time order; with `query`, only those matching it (full text
/// over author and text, every word a prefix).
pub async fn list(
    pool: &SqlitePool,
    incident_id: &str,
    query: Option<&str>,
) -> Result<Vec<Message>, AppError> {
    let fts = query.and_then(crate::search::query);
    Ok(sqlx::query_as!(
        Message,
        r#"SELECT m.id AS "id!", m.source AS "source: Source", m.author, m.posted_at AS "posted_at: DateTime<Utc>",
                  m.text, m.thread_ts, m.external_id, m.edited AS "edited: bool", m.files,
                  p.entry_id AS "entry_id?", p.marker AS "marker?: Marker"
           FROM chat_messages m
           LEFT JOIN chat_promotions p ON p.message_id = m.id
           WHERE m.incident_id = ?1
             AND (?2 IS NULL OR m.rowid IN (SELECT rowid FROM chat_messages_fts WHERE chat_messages_fts MATCH ?2))
           ORDER BY m.posted_at, m.external_id"#,
        incident_id,
        fts
    )
    .fetch_all(pool)
    .await?)
}

pub async fn find(
    pool: &SqlitePool,
    incident_id: &str,
    id: &str,
) -> Result<Option<Message>, AppError> {
    Ok(sqlx::query_as!(
        Message,
        r#"SELECT m.id AS "id!", m.source AS "source: Source", m.author, m.posted_at AS "posted_at: DateTime<Utc>",
                  m.text, m.thread_ts, m.external_id, m.edited AS "edited: bool", m.files,
                  p.entry_id AS "entry_id?", p.marker AS "marker?: Marker"
           FROM chat_messages m
           LEFT JOIN chat_promotions p ON p.message_id = m.id
           WHERE m.incident_id = ? AND m.id = ?"#,
        incident_id,
        id
    )
    .fetch_optional(pool)
    .await?)
}

/// The timeline entry a message was promoted to.
pub async fn promoted_entry(
    conn: &mut SqliteConnection,
    message_id: &str,
) -> Result<Option<String>, AppError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT entry_id AS "entry_id!" FROM chat_promotions WHERE message_id = ?"#,
        message_id
    )
    .fetch_optional(conn)
    .await?)
}

pub async fn insert_promotion(
    conn: &mut SqliteConnection,
    entry_id: &str,
    message_id: &str,
    marker: Marker,
) -> Result<(), AppError> {
    sqlx::query!(
        "INSERT INTO chat_promotions (entry_id, message_id, marker) VALUES (?, ?, ?)",
        entry_id,
        message_id,
        marker
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Markers of the incident's promoted timeline entries, by entry id.
pub async fn markers(
    pool: &SqlitePool,
    incident_id: &str,
) -> Result<HashMap<String, Marker>, AppError> {
    let rows = sqlx::query!(
        r#"SELECT p.entry_id AS "entry_id!", p.marker AS "marker: Marker"
           FROM chat_promotions p JOIN chat_messages m ON m.id = p.message_id
           WHERE m.incident_id = ?"#,
        incident_id
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.entry_id, r.marker)).collect())
}
