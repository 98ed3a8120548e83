//! SQL for action items: insert, compare-and-swap update, lookups and the filtered list.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{AssertSqlSafe, SqliteConnection, SqlitePool};

use super::{ActionItem, ItemStatus, ItemValues, Kind, Priority};
use crate::db::{new_id, ts};
use crate::error::AppError;
use crate::visibility::Viewer;

/// The columns of `ActionItem`, for the filtered list (built at run time). `find` and
/// `list_for_incident` spell the same SELECT out so the compiler checks it.
const SELECT: &str =
    "SELECT a.id, a.incident_id, i.number AS incident_number, a.title, a.description,
        a.owner_id, o.name AS owner_name, o.email AS owner_email, a.team, a.kind, a.priority,
        a.status, a.wont_do_reason, a.due_on, a.external_url, a.completed_at,
        c.name AS completed_by_name, a.version, a.created_at, a.updated_at
    FROM action_items a
    JOIN incidents i ON i.id = a.incident_id
    LEFT JOIN users o ON o.id = a.owner_id
    LEFT JOIN users c ON c.id = a.completed_by";

pub async fn insert(
    conn: &mut SqliteConnection,
    incident_id: &str,
    v: &ItemValues,
    user_id: &str,
) -> Result<String, AppError> {
    let id = new_id();
    let now = ts(Utc::now());
    let due_on = v.due_on.map(|d| d.to_string());
    sqlx::query!(
        "INSERT INTO action_items (id, incident_id, title, description, owner_id, team, kind,
            priority, status, wont_do_reason, due_on, external_url, version, created_by,
            created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
        id,
        incident_id,
        v.title,
        v.description,
        v.owner_id,
        v.team,
        v.kind,
        v.priority,
        v.status,
        v.wont_do_reason,
        due_on,
        v.external_url,
        user_id,
        now,
        now,
    )
    .execute(conn)
    .await?;
    Ok(id)
}

/// Writes `v` if the item is still at `version`. `completed` sets (or, with `None`s, clears)
/// who completed it and when; `None` leaves them.
pub async fn update(
    conn: &mut SqliteConnection,
    id: &str,
    version: i64,
    v: &ItemValues,
    completed: Option<(Option<String>, Option<String>)>,
) -> Result<bool, AppError> {
    let (set_completed, completed_at, completed_by) = match completed {
        Some((at, by)) => (true, at, by),
        None => (false, None, None),
    };
    let due_on = v.due_on.map(|d| d.to_string());
    let now = ts(Utc::now());
    let done = sqlx::query!(
        "UPDATE action_items SET title = ?, description = ?, owner_id = ?, team = ?, kind = ?,
            priority = ?, status = ?, wont_do_reason = ?, due_on = ?, external_url = ?,
            completed_at = CASE WHEN ? THEN ? ELSE completed_at END,
            completed_by = CASE WHEN ? THEN ? ELSE completed_by END,
            version = version + 1, updated_at = ?
         WHERE id = ? AND version = ?",
        v.title,
        v.description,
        v.owner_id,
        v.team,
        v.kind,
        v.priority,
        v.status,
        v.wont_do_reason,
        due_on,
        v.external_url,
        set_completed,
        completed_at,
        set_completed,
        completed_by,
        now,
        id,
        version,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The item `id`; read through the write transaction by the bulk change, so what it checks is
/// what it writes over.
pub async fn find(
    conn: impl sqlx::SqliteExecutor<'_>,
    id: &str,
) -> Result<Option<ActionItem>, AppError> {
    Ok(sqlx::query_as!(
        ActionItem,
        r#"SELECT a.id AS "id!", a.incident_id, i.number AS "incident_number!", a.title,
            a.description, a.owner_id, o.name AS "owner_name?", o.email AS "owner_email?",
            a.team, a.kind AS "kind: Kind", a.priority AS "priority: Priority",
            a.status AS "status: ItemStatus", a.wont_do_reason,
            a.due_on AS "due_on?: NaiveDate", a.external_url,
            a.completed_at AS "completed_at?: DateTime<Utc>",
            c.name AS "completed_by_name?", a.version,
            a.created_at AS "created_at: DateTime<Utc>",
            a.updated_at AS "updated_at: DateTime<Utc>"
        FROM action_items a
        JOIN incidents i ON i.id = a.incident_id
        LEFT JOIN users o ON o.id = a.owner_id
        LEFT JOIN users c ON c.id = a.completed_by
        WHERE a.id = ?"#,
        id
    )
    .fetch_optional(conn)
    .await?)
}

pub async fn list_for_incident(
    // A pool, or a write transaction (publishing freezes these lists inside its own).
    pool: impl sqlx::SqliteExecutor<'_>,
    incident_id: &str,
) -> Result<Vec<ActionItem>, AppError> {
    Ok(sqlx::query_as!(
        ActionItem,
        r#"SELECT a.id AS "id!", a.incident_id, i.number AS "incident_number!", a.title,
            a.description, a.owner_id, o.name AS "owner_name?", o.email AS "owner_email?",
            a.team, a.kind AS "kind: Kind", a.priority AS "priority: Priority",
            a.status AS "status: ItemStatus", a.wont_do_reason,
            a.due_on AS "due_on?: NaiveDate", a.external_url,
            a.completed_at AS "completed_at?: DateTime<Utc>",
            c.name AS "completed_by_name?", a.version,
            a.created_at AS "created_at: DateTime<Utc>",
            a.updated_at AS "updated_at: DateTime<Utc>"
        FROM action_items a
        JOIN incidents i ON i.id = a.incident_id
        LEFT JOIN users o ON o.id = a.owner_id
        LEFT JOIN users c ON c.id = a.completed_by
        WHERE a.incident_id = ? ORDER BY a.created_at"#,
        incident_id
    )
    .fetch_all(pool)
    .await?)
}

/// Filters of the action-item list; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    pub status: Option<super::ItemStatus>,
    /// Open or in progress.
    pub not_closed: bool,
    /// User id of the owner.
    pub owner_id: Option<String>,
    pub no_owner: bool,
    pub team: Option<String>,
    pub kind: Option<super::Kind>,
    pub priority: Option<super::Priority>,
    /// Service of the incident.
    pub service: Option<String>,
    pub incident_number: Option<i64>,
    /// Not closed and due before this day.
    pub overdue_before: Option<NaiveDate>,
    /// Not closed and due within these days (inclusive).
    pub due_between: Option<(NaiveDate, NaiveDate)>,
    /// Oldest first instead of soonest due first.
    pub by_age: bool,
}

impl ItemFilter {
    /// The WHERE clause (over `a`) and its binds, leaving out the items of the `hidden`
    /// incidents (those the viewer may not see, from [`hidden_incidents`]).
    fn sql(&self, hidden: &[String]) -> (String, Vec<String>) {
        // Only fixed fragments are joined; every value is bound.
        let mut clauses: Vec<String> = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        // One mark per hidden incident: a handful in practice, far below SQLite's 32,766 binds.
        if !hidden.is_empty() {
            clauses.push(format!(
                "a.incident_id NOT IN ({})",
                vec!["?"; hidden.len()].join(", ")
            ));
            binds.extend(hidden.iter().cloned());
        }
        if let Some(s) = self.status {
            clauses.push("a.status = ?".into());
            binds.push(s.as_str().to_owned());
        }
        if self.not_closed {
            clauses.push("a.status IN ('open', 'in_progress')".into());
        }
        if let Some(o) = &self.owner_id {
            clauses.push("a.owner_id = ?".into());
            binds.push(o.clone());
        }
        if self.no_owner {
            clauses.push("a.owner_id IS NULL".into());
        }
        if let Some(t) = &self.team {
            clauses.push("a.team = ?".into());
            binds.push(t.clone());
        }
        if let Some(k) = self.kind {
            clauses.push("a.kind = ?".into());
            binds.push(k.as_str().to_owned());
        }
        if let Some(p) = self.priority {
            clauses.push("a.priority = ?".into());
            binds.push(p.as_str().to_owned());
        }
        if let Some(svc) = &self.service {
            clauses.push("a.incident_id IN (SELECT id FROM incidents WHERE service = ?)".into());
            binds.push(svc.clone());
        }
        if let Some(n) = self.incident_number {
            clauses.push("a.incident_id = (SELECT id FROM incidents WHERE number = ?)".into());
            binds.push(n.to_string());
        }
        if let Some(day) = self.overdue_before {
            clauses.push("a.status IN ('open', 'in_progress') AND a.due_on < ?".into());
            binds.push(day.to_string());
        }
        if let Some((from, to)) = self.due_between {
            clauses.push(
                "a.status IN ('open', 'in_progress') AND a.due_on >= ? AND a.due_on <= ?".into(),
            );
            binds.push(from.to_string());
            binds.push(to.to_string());
        }
        let where_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        (where_sql, binds)
    }
}

/// Items matching the filter (soonest due first and undated last, or oldest first), a page of
/// them (`per_page` 0 = all, for exports), and the total.
pub async fn list(
    pool: &SqlitePool,
    viewer: &Viewer,
    filter: &ItemFilter,
    page: u32,
    per_page: u32,
) -> Result<(Vec<ActionItem>, i64), AppError> {
    let hidden = hidden_incidents(pool, viewer).await?;
    let (where_sql, binds) = filter.sql(&hidden);
    let order = if filter.by_age {
        "a.created_at, a.id"
    } else {
        // Same expression as the partial index over open items (undated sort last).
        "coalesce(a.due_on, '9999-12-31'), a.created_at"
    };
    let limit = if per_page == 0 {
        i64::MAX
    } else {
        i64::from(per_page)
    };
    // The bundled SQLite prefers the status index for `status IN (…)` and then sorts every open
    // item; the partial index over open items is already in board order.
    // (Not for "due this week": few items match, and the status-and-due index finds them.)
    let select = if (filter.not_closed || filter.overdue_before.is_some())
        && filter.due_between.is_none()
        && filter.status.is_none()
        && !filter.by_age
    {
        SELECT.replace(
            "FROM action_items a",
            "FROM action_items a INDEXED BY action_items_open_due",
        )
    } else {
        SELECT.to_owned()
    };
    // Unchecked: the WHERE clause and the index hint depend on the filter.
    let mut query = sqlx::query_as::<_, ActionItem>(AssertSqlSafe(format!(
        "{select}{where_sql} ORDER BY {order} LIMIT ? OFFSET ?"
    )));
    for b in &binds {
        query = query.bind(b.clone());
    }
    let items = query
        .bind(limit)
        .bind(i64::from(page.saturating_sub(1)) * i64::from(per_page))
        .fetch_all(pool)
        .await?;
    Ok((items, count(pool, viewer, filter).await?))
}

/// The restricted incidents `viewer` may not see (usually none; a handful at most).
pub async fn hidden_incidents(pool: &SqlitePool, viewer: &Viewer) -> Result<Vec<String>, AppError> {
    // Unchecked: the rule's text is the constant in `visibility.rs` (one text for every area).
    Ok(
        sqlx::query_scalar::<_, String>(AssertSqlSafe(crate::visibility::HIDDEN_INCIDENTS))
            .bind(viewer.id())
            .fetch_all(pool)
            .await?,
    )
}

/// How many items match the filter (of incidents `viewer` may see).
pub async fn count(
    pool: &SqlitePool,
    viewer: &Viewer,
    filter: &ItemFilter,
) -> Result<i64, AppError> {
    let hidden = hidden_incidents(pool, viewer).await?;
    let (where_sql, binds) = filter.sql(&hidden);
    // Unchecked: the WHERE clause depends on the filter.
    let mut count = sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM action_items a{where_sql}"
    )));
    for b in &binds {
        count = count.bind(b.clone());
    }
    Ok(count.fetch_one(pool).await?)
}

/// What the completion calculator needs of every item.
pub async fn facts(pool: &SqlitePool) -> Result<Vec<super::progress::ItemFacts>, AppError> {
    Ok(sqlx::query_as!(
        super::progress::ItemFacts,
        r#"SELECT team, status AS "status: ItemStatus",
                substr(created_at, 1, 10) AS "created_on!: NaiveDate",
                substr(completed_at, 1, 10) AS "closed_on?: NaiveDate",
                due_on AS "due_on?: NaiveDate"
         FROM action_items"#
    )
    .fetch_all(pool)
    .await?)
}

/// A sample action item as `hindsight demo` writes it.
#[derive(Debug, Clone)]
pub struct SampleItem<'a> {
    pub incident_id: &'a str,
    pub title: &'a str,
    pub owner_id: Option<&'a str>,
    pub team: &'a str,
    pub kind: &'a str,
    pub priority: &'a str,
    pub status: &'a str,
    pub wont_do_reason: &'a str,
    pub due_on: chrono::NaiveDate,
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub completed_by: Option<&'a str>,
    pub created_by: Option<&'a str>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Writes a sample action item as given (no validation: demo data only).
pub async fn insert_sample(
    conn: &mut sqlx::SqliteConnection,
    item: &SampleItem<'_>,
) -> Result<(), crate::error::AppError> {
    let id = crate::db::new_id();
    let due_on = item.due_on.to_string();
    let completed_at = crate::db::ts_opt(item.completed_at);
    let created_at = crate::db::ts(item.created_at);
    sqlx::query!(
        "INSERT INTO action_items (id, incident_id, title, description, owner_id, team, kind,
            priority, status, wont_do_reason, due_on, external_url, completed_at, completed_by,
            version, created_by, created_at, updated_at)
         VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, '', ?, ?, 1, ?, ?, ?)",
        id,
        item.incident_id,
        item.title,
        item.owner_id,
        item.team,
        item.kind,
        item.priority,
        item.status,
        item.wont_do_reason,
        due_on,
        completed_at,
        item.completed_by,
        item.created_by,
        created_at,
        created_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}
