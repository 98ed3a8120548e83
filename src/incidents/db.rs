//! SQL for incidents: insert with the next number, compare-and-swap update, lookup and the
//! filtered, sorted, paginated list.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::{Incident, IncidentRef, IncidentValues, Severity, Status};
use crate::db::{new_id, ts, ts_opt};
use crate::error::AppError;
use crate::visibility::Viewer;

/// Inserts a new incident numbered one past the highest; returns its id and number.
pub async fn insert(
    conn: &mut SqliteConnection,
    v: &IncidentValues,
    user_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(String, i64), AppError> {
    let id = new_id();
    // Inside the IMMEDIATE transaction no one else can take the same number.
    let number =
        sqlx::query_scalar!(r#"SELECT COALESCE(MAX(number), 0) + 1 AS "n!: i64" FROM incidents"#)
            .fetch_one(&mut *conn)
            .await?;
    let (started_at, created_at) = (ts(v.started_at), ts(now));
    let (detected_at, acknowledged_at) = (ts_opt(v.detected_at), ts_opt(v.acknowledged_at));
    let (mitigated_at, resolved_at) = (ts_opt(v.mitigated_at), ts_opt(v.resolved_at));
    let closed_at = ts_opt(v.closed_at);
    sqlx::query!(
        "INSERT INTO incidents (id, number, title, summary, customer_impact, severity, status,
            service, category, team, commander_id, started_at, detected_at, acknowledged_at,
            mitigated_at, resolved_at, closed_at, exclude_from_metrics, version, created_by,
            created_at, updated_by, updated_at, restricted)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
        id,
        number,
        v.title,
        v.summary,
        v.customer_impact,
        v.severity,
        v.status,
        v.service,
        v.category,
        v.team,
        v.commander_id,
        started_at,
        detected_at,
        acknowledged_at,
        mitigated_at,
        resolved_at,
        closed_at,
        v.exclude_from_metrics,
        user_id,
        created_at,
        user_id,
        created_at,
        v.restricted,
    )
    .execute(conn)
    .await?;
    Ok((id, number))
}

/// Writes `v` if the incident is still at `version`; false when someone saved first.
pub async fn update(
    conn: &mut SqliteConnection,
    id: &str,
    version: i64,
    v: &IncidentValues,
    user_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    let (started_at, updated_at) = (ts(v.started_at), ts(now));
    let (detected_at, acknowledged_at) = (ts_opt(v.detected_at), ts_opt(v.acknowledged_at));
    let (mitigated_at, resolved_at) = (ts_opt(v.mitigated_at), ts_opt(v.resolved_at));
    let closed_at = ts_opt(v.closed_at);
    let done = sqlx::query!(
        "UPDATE incidents SET title = ?, summary = ?, customer_impact = ?, severity = ?,
            status = ?, service = ?, category = ?, team = ?, commander_id = ?, started_at = ?,
            detected_at = ?, acknowledged_at = ?, mitigated_at = ?, resolved_at = ?,
            closed_at = ?, exclude_from_metrics = ?, version = version + 1, updated_by = ?,
            updated_at = ?, restricted = ?
         WHERE id = ? AND version = ?",
        v.title,
        v.summary,
        v.customer_impact,
        v.severity,
        v.status,
        v.service,
        v.category,
        v.team,
        v.commander_id,
        started_at,
        detected_at,
        acknowledged_at,
        mitigated_at,
        resolved_at,
        closed_at,
        v.exclude_from_metrics,
        user_id,
        updated_at,
        v.restricted,
        id,
        version,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The incident `r` names, with the names of its commander and author.
pub async fn find(
    conn: impl sqlx::SqliteExecutor<'_>,
    r: &IncidentRef,
) -> Result<Option<Incident>, AppError> {
    // One checked query for both keys: the number is turned into the id by its unique index,
    // and COALESCE only looks it up when no id is given.
    let (id, number) = match r {
        IncidentRef::Id(id) => (Some(id.as_str()), None),
        IncidentRef::Number(n) => (None, Some(*n)),
    };
    let found = sqlx::query_as!(
        Incident,
        r#"SELECT i.id AS "id!", i.number, i.title, i.summary, i.customer_impact,
            i.severity AS "severity: Severity", i.status AS "status: Status", i.service,
            i.category, i.team, i.commander_id, c.name AS "commander_name?",
            i.started_at AS "started_at: DateTime<Utc>",
            i.detected_at AS "detected_at: DateTime<Utc>",
            i.acknowledged_at AS "acknowledged_at: DateTime<Utc>",
            i.mitigated_at AS "mitigated_at: DateTime<Utc>",
            i.resolved_at AS "resolved_at: DateTime<Utc>",
            i.closed_at AS "closed_at: DateTime<Utc>",
            i.exclude_from_metrics AS "exclude_from_metrics: bool", i.version,
            i.created_by, u.name AS "created_by_name?",
            i.created_at AS "created_at: DateTime<Utc>",
            i.updated_at AS "updated_at: DateTime<Utc>",
            i.restricted AS "restricted: bool"
        FROM incidents i
        LEFT JOIN users c ON c.id = i.commander_id
        LEFT JOIN users u ON u.id = i.created_by
        WHERE i.id = COALESCE(?1, (SELECT id FROM incidents WHERE number = ?2))"#,
        id,
        number
    )
    .fetch_optional(conn)
    .await?;
    Ok(found)
}

/// Default team of a service, used when an incident names none.
pub async fn service_team(pool: &SqlitePool, service: &str) -> Result<Option<String>, AppError> {
    Ok(sqlx::query_scalar!(
        "SELECT team FROM services WHERE name = ? AND team <> ''",
        service
    )
    .fetch_optional(pool)
    .await?)
}

/// Filters of the incident list; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<StatusFilter>,
    pub severity: Option<Severity>,
    pub service: Option<String>,
    pub category: Option<String>,
    pub team: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub text: Option<String>,
    /// Only incidents that recur (see `recurrence::Rule`).
    pub recurring: bool,
    /// The recurrence rule the list marks (and filters) by.
    pub rule: crate::recurrence::Rule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Is(Status),
    /// Not yet resolved or closed.
    Open,
}

choice! {
    /// Sort orders of the incident list.
    pub enum Sort, "sort" {
        Newest = "newest" | "",
        Oldest = "oldest",
        Severity = "severity",
        RecentlyUpdated = "updated",
    }
}

impl Sort {
    pub fn label(self) -> &'static str {
        match self {
            Self::Newest => "Newest first",
            Self::Oldest => "Oldest first",
            Self::Severity => "Most severe first",
            Self::RecentlyUpdated => "Recently updated",
        }
    }

    fn order_by(self) -> &'static str {
        match self {
            Self::Newest => "i.started_at DESC, i.number DESC",
            Self::Oldest => "i.started_at ASC, i.number ASC",
            Self::Severity => "i.severity ASC, i.started_at DESC",
            Self::RecentlyUpdated => "i.updated_at DESC",
        }
    }
}

/// A row of the incident list (no long texts).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListRow {
    pub id: String,
    pub number: i64,
    pub title: String,
    pub severity: Severity,
    pub status: Status,
    pub service: String,
    pub category: String,
    pub team: String,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// It recurs (at least K alike incidents within W days before it).
    pub recurring: bool,
    /// Only those added to it see it (the list marks it for them).
    pub restricted: bool,
}

/// The furthest a list may page (rows skipped); beyond it, narrow the filter instead.
pub const MAX_OFFSET: u32 = 10_000;

/// The list counts recurring incidents up to this many and says "at least" beyond it.
pub const RECURRING_COUNT_CAP: i64 = 1_000;

/// One page of incidents and the total matching the filter.
pub async fn list(
    pool: &SqlitePool,
    viewer: &Viewer,
    filter: &ListFilter,
    sort: Sort,
    page: u32,
    per_page: u32,
) -> Result<(Vec<ListRow>, i64), AppError> {
    // Only fixed SQL fragments are concatenated; every value is a bound parameter (a clause's
    // `?` is where `push_where` binds the next value).
    let mut clauses: Vec<std::borrow::Cow<'static, str>> = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    let recurring_sql = crate::recurrence::db::recurring_sql(filter.rule);
    match filter.status {
        Some(StatusFilter::Is(s)) => {
            clauses.push("i.status = ?".into());
            binds.push(s.as_str().to_owned());
        }
        Some(StatusFilter::Open) => {
            clauses.push("i.status IN ('investigating', 'identified', 'monitoring')".into());
        }
        None => {}
    }
    if filter.recurring {
        clauses.push(recurring_sql.clone().into());
    }
    if let Some(s) = filter.severity {
        clauses.push("i.severity = ?".into());
        binds.push(s.as_str().to_owned());
    }
    if let Some(s) = &filter.service {
        clauses.push("i.service = ?".into());
        binds.push(s.clone());
    }
    if let Some(c) = &filter.category {
        clauses.push("i.category = ?".into());
        binds.push(c.clone());
    }
    if let Some(t) = &filter.team {
        clauses.push("i.team = ?".into());
        binds.push(t.clone());
    }
    if let Some(since) = filter.since {
        clauses.push("i.started_at >= ?".into());
        binds.push(ts(since));
    }
    if let Some(until) = filter.until {
        clauses.push("i.started_at < ?".into());
        binds.push(ts(until));
    }
    if let Some(text) = &filter.text {
        match fts_query(text) {
            Some(query) => {
                clauses.push(
                    "i.rowid IN (SELECT rowid FROM incidents_fts WHERE incidents_fts MATCH ?)"
                        .into(),
                );
                binds.push(query);
            }
            // Text with no words in it (only punctuation) matches nothing.
            None => clauses.push("0".into()),
        }
    }
    let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
    if offset > i64::from(MAX_OFFSET) {
        return Err(AppError::field(
            "page",
            format!(
                "only the first {MAX_OFFSET} matches can be paged through; narrow the filter (since/until) or sort oldest first"
            ),
        ));
    }
    // SQLite's planner prefers the status index for "open" and then sorts every open row;
    // the partial index over open incidents is already in list order.
    let from = match (filter.status, sort) {
        (Some(StatusFilter::Open), Sort::Newest | Sort::Oldest) => {
            "incidents i INDEXED BY incidents_open_started"
        }
        _ => "incidents i",
    };
    let mut query = QueryBuilder::<Sqlite>::new(format!(
        "SELECT i.id, i.number, i.title, i.severity, i.status, i.service, i.category, i.team,
                i.started_at, i.resolved_at, i.updated_at, {recurring_sql} AS recurring,
                i.restricted
         FROM {from}"
    ));
    // The viewer's rule goes on the rows and on every count below: a hidden incident is
    // neither listed nor counted towards pages.
    let shortcut = clauses.len();
    clauses.push(crate::visibility::VISIBLE.into());
    binds.push(viewer.id().to_owned());
    push_where(&mut query, &clauses, &binds);
    query.push(format!(" ORDER BY {} LIMIT ", sort.order_by()));
    query.push_bind(i64::from(per_page));
    query.push(" OFFSET ");
    query.push_bind(offset);
    let rows = query.build_query_as::<ListRow>().fetch_all(pool).await?;

    let total = match (shortcut, filter.status) {
        // Unfiltered or status-only lists read the trigger-maintained totals instead of
        // counting every row.
        (0, _) => {
            sqlx::query_scalar!(r#"SELECT COALESCE(SUM(n), 0) AS "n!: i64" FROM incident_counts"#)
                .fetch_one(pool)
                .await?
                - hidden_count(pool, viewer, None, false).await?
        }
        (1, Some(StatusFilter::Is(s))) => {
            sqlx::query_scalar!("SELECT n FROM incident_counts WHERE status = ?", s)
                .fetch_one(pool)
                .await?
                - hidden_count(pool, viewer, Some(s.as_str()), false).await?
        }
        (1, Some(StatusFilter::Open)) => {
            sqlx::query_scalar!(
                r#"SELECT COALESCE(SUM(n), 0) AS "n!: i64" FROM incident_counts
                 WHERE status IN ('investigating', 'identified', 'monitoring')"#
            )
            .fetch_one(pool)
            .await?
                - hidden_count(pool, viewer, None, true).await?
        }
        // Whether an incident recurs is a subquery per row; counting every recurring incident
        // of a large database costs seconds, so that count stops at RECURRING_COUNT_CAP.
        _ if filter.recurring => {
            let mut count =
                QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM (SELECT 1 FROM incidents i");
            push_where(&mut count, &clauses, &binds);
            count.push(" LIMIT ");
            count.push_bind(RECURRING_COUNT_CAP);
            count.push(")");
            count.build_query_scalar::<i64>().fetch_one(pool).await?
        }
        _ => {
            let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM incidents i");
            push_where(&mut count, &clauses, &binds);
            count.build_query_scalar::<i64>().fetch_one(pool).await?
        }
    };
    Ok((rows, total))
}

/// Appends ` WHERE a AND b …`; each `?` of a clause binds the next of `binds`, in order.
fn push_where(
    query: &mut QueryBuilder<Sqlite>,
    clauses: &[std::borrow::Cow<'static, str>],
    binds: &[String],
) {
    let mut values = binds.iter();
    for (n, clause) in clauses.iter().enumerate() {
        query.push(if n == 0 { " WHERE " } else { " AND " });
        let mut parts = clause.split('?');
        if let Some(first) = parts.next() {
            query.push(first);
        }
        for rest in parts {
            if let Some(value) = values.next() {
                query.push_bind(value.clone());
            }
            query.push(rest);
        }
    }
}

/// Turns what a person typed into a safe FTS5 query: every word (letters and digits) becomes a
/// quoted prefix term, all of which must match. Quotes, operators (`NEAR`, `OR`, `*`, `-`) and
/// any other punctuation lose their meaning, so no input can break the query.
pub fn fts_query(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

/// The incident's category follows its post-mortem's primary root cause; the version moves so
/// that an incident edit started before this is told about it.
pub async fn set_category(
    conn: &mut SqliteConnection,
    incident_id: &str,
    category: &str,
) -> Result<(), AppError> {
    let now = ts(Utc::now());
    sqlx::query!(
        "UPDATE incidents SET category = ?, version = version + 1, updated_at = ? WHERE id = ?",
        category,
        now,
        incident_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::fts_query;

    #[test]
    fn typed_text_becomes_quoted_prefix_terms() {
        assert_eq!(
            fts_query("checkout 502").as_deref(),
            Some("\"checkout\"* \"502\"*")
        );
        assert_eq!(
            fts_query("\"a\" OR NEAR(b*) -c").as_deref(),
            Some("\"a\"* \"OR\"* \"NEAR\"* \"b\"* \"c\"*")
        );
        assert_eq!(
            fts_query("Zürich façade").as_deref(),
            Some("\"Zürich\"* \"façade\"*")
        );
        assert_eq!(fts_query("%_<>\"'"), None);
    }
}

/// The number the next incident gets (the demo loader numbers its sample incidents itself).
pub async fn next_number(conn: &mut sqlx::SqliteConnection) -> Result<i64, crate::error::AppError> {
    Ok(
        sqlx::query_scalar!(r#"SELECT COALESCE(MAX(number), 0) + 1 AS "n!: i64" FROM incidents"#)
            .fetch_one(conn)
            .await?,
    )
}

/// A sample incident as `hindsight demo` writes it: its milestones already reached, created
/// by its commander when it was detected.
#[derive(Debug, Clone)]
pub struct SampleIncident<'a> {
    pub id: &'a str,
    pub number: i64,
    pub title: &'a str,
    pub summary: &'a str,
    pub impact: &'a str,
    pub severity: &'a str,
    pub status: &'a str,
    pub service: &'a str,
    pub category: &'a str,
    pub team: &'a str,
    pub commander: &'a str,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub detected_at: chrono::DateTime<chrono::Utc>,
    pub acknowledged_at: chrono::DateTime<chrono::Utc>,
    pub mitigated_at: Option<chrono::DateTime<chrono::Utc>>,
    pub resolved_at: Option<chrono::DateTime<chrono::Utc>>,
    pub closed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Writes a sample incident as given (no validation, no timeline of its own: demo data only).
pub async fn insert_sample(
    conn: &mut sqlx::SqliteConnection,
    s: &SampleIncident<'_>,
) -> Result<(), crate::error::AppError> {
    let started_at = crate::db::ts(s.started_at);
    let detected_at = crate::db::ts(s.detected_at);
    let acknowledged_at = crate::db::ts(s.acknowledged_at);
    let mitigated_at = crate::db::ts_opt(s.mitigated_at);
    let resolved_at = crate::db::ts_opt(s.resolved_at);
    let closed_at = crate::db::ts_opt(s.closed_at);
    sqlx::query!(
        "INSERT INTO incidents (id, number, title, summary, customer_impact, severity, status,
            service, category, team, commander_id, started_at, detected_at, acknowledged_at,
            mitigated_at, resolved_at, closed_at, exclude_from_metrics, version, created_by,
            created_at, updated_by, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 1, ?, ?, ?, ?)",
        s.id,
        s.number,
        s.title,
        s.summary,
        s.impact,
        s.severity,
        s.status,
        s.service,
        s.category,
        s.team,
        s.commander,
        started_at,
        detected_at,
        acknowledged_at,
        mitigated_at,
        resolved_at,
        closed_at,
        s.commander,
        detected_at,
        s.commander,
        detected_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// How many restricted incidents the viewer may not see (optionally of one status, or only
/// open ones): subtracted from the trigger-maintained totals so the list's count and pages
/// match its rows. Restricted incidents are few, and the partial index holds only them.
async fn hidden_count(
    pool: &SqlitePool,
    viewer: &Viewer,
    status: Option<&str>,
    open_only: bool,
) -> Result<i64, AppError> {
    let id = viewer.id();
    Ok(sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM incidents i INDEXED BY incidents_restricted
         WHERE i.restricted = 1 AND (?1 IS NULL OR i.status = ?1)
           AND (?2 = 0 OR i.status IN ('investigating', 'identified', 'monitoring'))
           AND NOT (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                WHERE x.incident_id = i.id AND x.user_id = ?3))"#,
        status,
        open_only,
        id
    )
    .fetch_one(pool)
    .await?)
}

/// Whether the viewer may see the incident with this id (see `crate::visibility`).
pub async fn visible(
    conn: impl sqlx::SqliteExecutor<'_>,
    incident_id: &str,
    viewer: &Viewer,
) -> Result<bool, AppError> {
    let user_id = viewer.id();
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM incidents i WHERE i.id = ?1
            AND (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                WHERE x.incident_id = i.id AND x.user_id = ?2))) AS "v!: bool""#,
        incident_id,
        user_id
    )
    .fetch_one(conn)
    .await?)
}

/// A person added to an incident by name.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Participant {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub added_at: DateTime<Utc>,
}

/// The people added to an incident, by name.
pub async fn participants(
    conn: impl sqlx::SqliteExecutor<'_>,
    incident_id: &str,
) -> Result<Vec<Participant>, AppError> {
    Ok(sqlx::query_as!(
        Participant,
        r#"SELECT u.id AS "user_id!", u.name, u.email,
            p.added_at AS "added_at: DateTime<Utc>"
         FROM incident_participants p JOIN users u ON u.id = p.user_id
         WHERE p.incident_id = ? ORDER BY u.name"#,
        incident_id
    )
    .fetch_all(conn)
    .await?)
}

/// Adds a participant (nothing when already one).
pub async fn add_participant(
    conn: &mut SqliteConnection,
    incident_id: &str,
    user_id: &str,
    added_by: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let at = ts(now);
    sqlx::query!(
        "INSERT INTO incident_participants (incident_id, user_id, added_by, added_at)
         VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        incident_id,
        user_id,
        added_by,
        at
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn remove_participant(
    conn: &mut SqliteConnection,
    incident_id: &str,
    user_id: &str,
) -> Result<(), AppError> {
    sqlx::query!(
        "DELETE FROM incident_participants WHERE incident_id = ? AND user_id = ?",
        incident_id,
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}
