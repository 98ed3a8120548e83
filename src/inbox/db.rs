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
        r#"SELECT COUNT(*) AS "n!: i64" FROM inbox_messages m INDEXED BY inbox_messages_unread
           JOIN incidents i ON i.id = m.incident_id
           WHERE m.user_id = ? AND m.read_at IS NULL
           AND (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                WHERE x.incident_id = i.id AND x.user_id = m.user_id))"#,
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
           AND (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                WHERE x.incident_id = i.id AND x.user_id = m.user_id))
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
           WHERE m.user_id = ? AND m.id = ?
           AND (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                WHERE x.incident_id = i.id AND x.user_id = m.user_id))"#,
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

/// A message not yet sent by e-mail, with its recipient.
pub struct Unmailed {
    pub message: Message,
    pub to_email: String,
    pub to_name: String,
}

/// Messages written since `since` and not yet mailed, oldest first, to active users.
pub async fn unmailed(
    pool: &SqlitePool,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Unmailed>, sqlx::Error> {
    let since = ts(since);
    let rows = sqlx::query!(
        r#"SELECT m.id AS "id!", m.kind AS "kind: Kind", a.name AS "actor_name?",
               i.number AS "incident_number!", i.title AS "incident_title!", m.text,
               m.link_suffix, m.created_at AS "created_at: DateTime<Utc>",
               m.read_at AS "read_at?: DateTime<Utc>", u.email AS "to_email!",
               u.name AS "to_name!"
           FROM inbox_messages m
           JOIN users u ON u.id = m.user_id AND u.disabled_at IS NULL
           JOIN incidents i ON i.id = m.incident_id
           LEFT JOIN users a ON a.id = m.actor_id
           WHERE m.mailed_at IS NULL AND m.created_at >= ?
           AND (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                WHERE x.incident_id = i.id AND x.user_id = m.user_id))
           ORDER BY m.created_at, m.id LIMIT ?"#,
        since,
        limit,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Unmailed {
            message: Message {
                id: r.id,
                kind: r.kind,
                actor_name: r.actor_name,
                incident_number: r.incident_number,
                incident_title: r.incident_title,
                text: r.text,
                link_suffix: r.link_suffix,
                created_at: r.created_at,
                read_at: r.read_at,
            },
            to_email: r.to_email,
            to_name: r.to_name,
        })
        .collect())
}

pub async fn mark_mailed(
    conn: &mut SqliteConnection,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let at = ts(at);
    sqlx::query!(
        "UPDATE inbox_messages SET mailed_at = ? WHERE id = ?",
        at,
        id
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
