//! SQL for reading the audit log (entries are written by `auth::db::audit`, never changed).

use chrono::{DateTime, Utc};
use sqlx::SqlitePool;

use crate::error::AppError;

/// One audit entry as Admin › Audit shows it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub at: DateTime<Utc>,
    /// None for the command line, the system, or someone not signed in (a failed sign-in).
    pub actor_email: Option<String>,
    pub actor_name: Option<String>,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// Who did it: anyone, a user (by id), or no user (command line, system, failed sign-ins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorFilter {
    Anyone,
    User(String),
    NoUser,
}

/// The filters of Admin › Audit, already resolved to what the table stores.
#[derive(Debug, Clone)]
pub struct Filter {
    pub actor: ActorFilter,
    pub action: Option<String>,
    /// Inclusive lower and exclusive upper bound, as stored (`crate::db::ts`).
    pub from: Option<String>,
    pub until: Option<String>,
}

impl Filter {
    /// (mode, user id) as the queries bind them: 0 anyone, 1 this user, 2 no user.
    fn actor_binds(&self) -> (i64, String) {
        match &self.actor {
            ActorFilter::Anyone => (0, String::new()),
            ActorFilter::User(id) => (1, id.clone()),
            ActorFilter::NoUser => (2, String::new()),
        }
    }
}

/// Entries matching `filter`, newest first; `limit` at most from `offset`.
pub async fn list(
    pool: &SqlitePool,
    filter: &Filter,
    limit: i64,
    offset: i64,
) -> Result<Vec<Entry>, AppError> {
    let (mode, user_id) = filter.actor_binds();
    Ok(sqlx::query_as!(
        Entry,
        r#"SELECT a.id AS "id!", a.at AS "at: DateTime<Utc>",
                u.email AS "actor_email?", u.name AS "actor_name?",
                a.action, a.target, a.detail
         FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id
         WHERE (? = 0 OR (? = 1 AND a.actor_id = ?) OR (? = 2 AND a.actor_id IS NULL))
           AND (? IS NULL OR a.action = ?)
           AND (? IS NULL OR a.at >= ?)
           AND (? IS NULL OR a.at < ?)
         ORDER BY a.at DESC, a.id DESC
         LIMIT ? OFFSET ?"#,
        mode,
        mode,
        user_id,
        mode,
        filter.action,
        filter.action,
        filter.from,
        filter.from,
        filter.until,
        filter.until,
        limit,
        offset,
    )
    .fetch_all(pool)
    .await?)
}

/// How many entries match `filter`.
pub async fn count(pool: &SqlitePool, filter: &Filter) -> Result<i64, AppError> {
    let (mode, user_id) = filter.actor_binds();
    Ok(sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM audit_log a
         WHERE (? = 0 OR (? = 1 AND a.actor_id = ?) OR (? = 2 AND a.actor_id IS NULL))
           AND (? IS NULL OR a.action = ?)
           AND (? IS NULL OR a.at >= ?)
           AND (? IS NULL OR a.at < ?)"#,
        mode,
        mode,
        user_id,
        mode,
        filter.action,
        filter.action,
        filter.from,
        filter.from,
        filter.until,
        filter.until,
    )
    .fetch_one(pool)
    .await?)
}

/// Every action the log holds, for the filter's choices.
pub async fn actions(pool: &SqlitePool) -> Result<Vec<String>, AppError> {
    Ok(
        sqlx::query_scalar!(
            r#"SELECT DISTINCT action AS "action!" FROM audit_log ORDER BY action"#
        )
        .fetch_all(pool)
        .await?,
    )
}

/// The people who appear in the log as actors, (email, name), for the filter's choices.
pub async fn actors(pool: &SqlitePool) -> Result<Vec<(String, String)>, AppError> {
    let rows = sqlx::query!(
        r#"SELECT u.email AS "email!", u.name AS "name!" FROM users u
         WHERE EXISTS (SELECT 1 FROM audit_log a WHERE a.actor_id = u.id)
         ORDER BY u.name"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.email, r.name)).collect())
}
