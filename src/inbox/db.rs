//! Inbox SQL: messages in, unread counts and lists out, read marks.

use chrono::{DateTime, Utc};
use sqlx::{SqliteConnection, SqlitePool};

use super::{Kind, Message, Notice};
use crate::db::{new_id, ts};

pub async fn insert(
    conn: &mut SqliteConnection,
    to: &str,
    actor_id: Option<&str>,
    notice: &Notice<'_>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let (id, at) = (new_id(), ts(at));
    sqlx::query!(
        "INSERT INTO inbox_messages (id, user_id, kind, actor_id, incident_id, text,
             link_suffix, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        id,
        to,
        notice.kind,
        actor_id,
        notice.incident_id,
        notice.text,
        notice.link_suffix,
        at,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The active user whose e-mail address starts with `handle@`, when exactly one does.
pub async fn user_with_handle(
    conn: &mut SqliteConnection,
    handle: &str,
) -> Result<Option<String>, sqlx::Error> {
    let ids = sqlx::query_scalar!(
        r#"SELECT id AS "id!" FROM users
           WHERE lower(substr(email, 1, instr(email, '@') - 1)) = ? AND disabled_at IS NULL
           LIMIT 2"#,
        handle,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(match ids.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    })
}

pub async fn unread_count(pool: &SqlitePool, user_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM inbox_messages INDEXED BY inbox_messages_unread
           WHERE user_id = ? AND read_at IS NULL"#,
        user_id,
    )
    .fetch_one(pool)
    .await
}

pub async fn list_for(
    pool: &SqlitePool,
    user_id: &str,
    unread_only: bool,
    limit: i64,
) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query_as!(
        Message,
        r#"SELECT m.id AS "id!", m.kind AS "kind: Kind", a.name AS "actor_name?",
               i.number AS "incident_number!", i.title AS "incident_title!", m.text,
               m.link_suffix, m.created_at AS "created_at: DateTime<Utc>",
               m.read_at AS "read_at?: DateTime<Utc>"
           FROM inbox_messages m
           JOIN incidents i ON i.id = m.incident_id
           LEFT JOIN users a ON a.id = m.actor_id
           WHERE m.user_id = ? AND (? = 0 OR m.read_at IS NULL)
           ORDER BY m.created_at DESC, m.id DESC LIMIT ?"#,
        user_id,
        unread_only,
        limit,
    )
    .fetch_all(pool)
    .await
}

/// One of `user_id`'s messages (another person's is not found).
pub async fn find_for(
    pool: &SqlitePool,
    user_id: &str,
    id: &str,
) -> Result<Option<Message>, sqlx::Error> {
    sqlx::query_as!(
        Message,
        r#"SELECT m.id AS "id!", m.kind AS "kind: Kind", a.name AS "actor_name?",
               i.number AS "incident_number!", i.title AS "incident_title!", m.text,
               m.link_suffix, m.created_at AS "created_at: DateTime<Utc>",
               m.read_at AS "read_at?: DateTime<Utc>"
           FROM inbox_messages m
           JOIN incidents i ON i.id = m.incident_id
           LEFT JOIN users a ON a.id = m.actor_id
           WHERE m.user_id = ? AND m.id = ?"#,
        user_id,
        id,
    )
    .fetch_optional(pool)
    .await
}

/// Marks one message (`Some(id)`) or all of them read; answers how many were unread.
pub async fn mark_read(
    conn: &mut SqliteConnection,
    user_id: &str,
    id: Option<&str>,
    at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let at = ts(at);
    let done = sqlx::query!(
        "UPDATE inbox_messages SET read_at = ?
         WHERE user_id = ? AND read_at IS NULL AND (? IS NULL OR id = ?)",
        at,
        user_id,
        id,
        id,
    )
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}
