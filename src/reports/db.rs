//! SQL for reports: the incidents recurrence compares, the recurrence test as an SQL
//! expression for the incident list, and everything the weekly review and the dashboard read.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sqlx::{AssertSqlSafe, SqlitePool};

use super::{
    AlertNoise, GroupIncident, ItemCounts, Milestones, OpenItem, RecurrenceFacts, ReportIncident,
    Rule,
};
use crate::db::ts;
use crate::error::AppError;

/// The primary root-cause category of incident `i` (none until a post-mortem sets one).
const PRIMARY_CAUSE: &str = "(SELECT r.category FROM root_causes r
    WHERE r.incident_id = i.id AND r.is_primary = 1)";

/// The recurrence facts of one incident.
pub async fn facts(pool: &SqlitePool, incident_id: &str) -> Result<RecurrenceFacts, AppError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "SELECT i.number, i.started_at, i.category, i.service, {PRIMARY_CAUSE} AS primary_cause
         FROM incidents i WHERE i.id = ?"
    )))
    .bind(incident_id)
    .fetch_one(pool)
    .await?)
}

/// Incidents that could make `target` recur: started in its window and sharing its category or
/// its service (the calculator in `reports` decides).
pub async fn candidates(
    pool: &SqlitePool,
    target: &RecurrenceFacts,
    rule: Rule,
) -> Result<Vec<RecurrenceFacts>, AppError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "SELECT i.number, i.started_at, i.category, i.service, {PRIMARY_CAUSE} AS primary_cause
         FROM incidents i
         WHERE i.started_at >= ? AND i.started_at <= ? AND (i.category = ? OR i.service = ?)"
    )))
    .bind(ts(rule.window_start(target.started_at)))
    .bind(ts(target.started_at))
    .bind(&target.category)
    .bind(&target.service)
    .fetch_all(pool)
    .await?)
}

/// An SQL condition, true when incident `i` recurs under `rule` — the same test as
/// `reports::related`, for filtering and marking the incident list. It stops looking once K
/// alike incidents are found (`LIMIT 1 OFFSET K-1`). K and W are numbers from the validated
/// configuration, so formatting them into the SQL is safe.
pub fn recurring_sql(rule: Rule) -> String {
    let w = rule.window_days;
    let skip = rule.min_others.saturating_sub(1);
    let from = format!("strftime('%Y-%m-%dT%H:%M:%fZ', i.started_at, '-{w} days')");
    // Two EXISTS rather than one UNION: a compound SELECT is materialised before its LIMIT
    // applies, while each branch on its own stops at the K-th match.
    format!(
        "(EXISTS (SELECT 1 FROM incidents o
            WHERE i.category <> 'unknown' AND o.category = i.category AND o.id <> i.id
              AND o.started_at >= {from} AND o.started_at <= i.started_at
            LIMIT 1 OFFSET {skip})
          OR EXISTS (SELECT 1 FROM root_causes p
            JOIN root_causes r ON r.category = p.category AND r.is_primary = 1
            JOIN incidents o ON o.id = r.incident_id
           WHERE p.incident_id = i.id AND p.is_primary = 1 AND p.category <> 'unknown'
             AND o.service = i.service AND o.id <> i.id
             AND o.started_at >= {from} AND o.started_at <= i.started_at
           LIMIT 1 OFFSET {skip}))"
    )
}

/// Action items not closed yet of the incidents `numbers`, oldest incident first.
pub async fn open_items(pool: &SqlitePool, numbers: &[i64]) -> Result<Vec<OpenItem>, AppError> {
    if numbers.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; numbers.len()].join(", ");
    let mut query = sqlx::query_as::<_, OpenItem>(AssertSqlSafe(format!(
        "SELECT a.id, i.number AS incident, a.incident_id, a.title, a.status, a.priority,
                u.name AS owner, a.due_on
         FROM action_items a INDEXED BY action_items_incident
         JOIN incidents i ON i.id = a.incident_id
         LEFT JOIN users u ON u.id = a.owner_id
         WHERE a.incident_id IN (SELECT id FROM incidents WHERE number IN ({marks}))
           AND a.status IN ('open', 'in_progress')
         ORDER BY i.started_at, a.created_at"
    )));
    for n in numbers {
        query = query.bind(*n);
    }
    Ok(query.fetch_all(pool).await?)
}

/// Titles of the incidents `numbers`.
pub async fn titles(pool: &SqlitePool, numbers: &[i64]) -> Result<Vec<(i64, String)>, AppError> {
    if numbers.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; numbers.len()].join(", ");
    let mut query = sqlx::query_as::<_, (i64, String)>(AssertSqlSafe(format!(
        "SELECT number, title FROM incidents WHERE number IN ({marks})"
    )));
    for n in numbers {
        query = query.bind(*n);
    }
    Ok(query.fetch_all(pool).await?)
}

/// `AND i.team = ?` when a team is chosen (bound after the fixed parameters).
fn team_clause(team: Option<&str>) -> &'static str {
    if team.is_some() {
        " AND i.team = ?"
    } else {
        ""
    }
}

/// The incidents that started in `[start, end)`, most severe first.
pub async fn week_incidents(
    pool: &SqlitePool,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    team: Option<&str>,
) -> Result<Vec<ReportIncident>, AppError> {
    let mut query = sqlx::query_as::<_, ReportIncident>(AssertSqlSafe(format!(
        "SELECT i.id, i.number, i.title, i.severity, i.status, i.service, i.category, i.team,
                i.started_at, i.detected_at, i.acknowledged_at, i.mitigated_at, i.resolved_at,
                i.exclude_from_metrics
         FROM incidents i
         WHERE i.started_at >= ? AND i.started_at < ?{}
         ORDER BY i.severity, i.started_at, i.number",
        team_clause(team)
    )))
    .bind(ts(start))
    .bind(ts(end));
    if let Some(t) = team {
        query = query.bind(t);
    }
    let mut rows = query.fetch_all(pool).await?;
    for r in &mut rows {
        r.duration_secs = r
            .resolved_at
            .map(|end| (end - r.started_at).num_seconds().max(0));
    }
    Ok(rows)
}

/// Milestones of the incidents that started in `[start, end)` (read off `incidents_report`).
pub async fn milestones(
    pool: &SqlitePool,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    team: Option<&str>,
) -> Result<Vec<Milestones>, AppError> {
    let mut query = sqlx::query_as::<_, Milestones>(AssertSqlSafe(format!(
        "SELECT i.started_at, i.detected_at, i.acknowledged_at, i.mitigated_at, i.resolved_at,
                i.exclude_from_metrics
         FROM incidents i INDEXED BY incidents_report
         WHERE i.started_at >= ? AND i.started_at < ?{}",
        team_clause(team)
    )))
    .bind(ts(start))
    .bind(ts(end));
    if let Some(t) = team {
        query = query.bind(t);
    }
    Ok(query.fetch_all(pool).await?)
}

/// Incidents in `[start, end)` with their primary root cause, for recurring categories. Read
/// off the covering `incidents_report` index; titles are left empty (callers fetch them for
/// the few incidents they list, with `titles`).
pub async fn group_incidents(
    pool: &SqlitePool,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    team: Option<&str>,
) -> Result<Vec<GroupIncident>, AppError> {
    let mut query = sqlx::query_as::<_, GroupIncident>(AssertSqlSafe(format!(
        "SELECT i.number, '' AS title, i.started_at, i.service, i.category, '' AS id,
                r.category AS primary_cause
         FROM incidents i INDEXED BY incidents_report
         LEFT JOIN root_causes r ON r.incident_id = i.id AND r.is_primary = 1
         WHERE i.started_at >= ? AND i.started_at < ?{}",
        team_clause(team)
    )))
    .bind(ts(start))
    .bind(ts(end));
    if let Some(t) = team {
        query = query.bind(t);
    }
    Ok(query.fetch_all(pool).await?)
}

/// Action items opened, closed, overdue and due in the week `[start, end)` whose days are
/// `monday..=sunday` (due dates are days). `team` filters on the item's own team.
pub async fn item_counts(
    pool: &SqlitePool,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    monday: NaiveDate,
    team: Option<&str>,
) -> Result<ItemCounts, AppError> {
    let next_monday = (monday + Duration::weeks(1)).to_string();
    let sunday = (monday + Duration::days(6)).to_string();
    let team_sql = if team.is_some() {
        " AND a.team = ?"
    } else {
        ""
    };
    let count = |sql: String, binds: Vec<String>| async move {
        let mut q = sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!("{sql}{team_sql}")));
        for b in binds {
            q = q.bind(b);
        }
        if let Some(t) = team {
            q = q.bind(t.to_owned());
        }
        q.fetch_one(pool).await
    };
    let (start, end) = (ts(start), ts(end));
    let opened = count(
        "SELECT COUNT(*) FROM action_items a WHERE a.created_at >= ? AND a.created_at < ?".into(),
        vec![start.clone(), end.clone()],
    )
    .await?;
    let closed = count(
        "SELECT COUNT(*) FROM action_items a WHERE a.completed_at IS NOT NULL
           AND a.completed_at >= ? AND a.completed_at < ?"
            .into(),
        vec![start.clone(), end.clone()],
    )
    .await?;
    // Overdue at the week's end: open then, and due before its last day was over. Items still
    // open read the partial index over open items; items closed since then, the completion index.
    let still_open = count(
        "SELECT COUNT(*) FROM action_items a INDEXED BY action_items_open_due
         WHERE a.status IN ('open', 'in_progress')
           AND coalesce(a.due_on, '9999-12-31') < ? AND a.created_at < ?"
            .into(),
        vec![next_monday.clone(), end.clone()],
    )
    .await?;
    let closed_since = count(
        "SELECT COUNT(*) FROM action_items a INDEXED BY action_items_completed
         WHERE a.completed_at IS NOT NULL
           AND a.completed_at >= ? AND a.created_at < ? AND a.due_on < ?"
            .into(),
        vec![end.clone(), end.clone(), next_monday.clone()],
    )
    .await?;
    let due = count(
        "SELECT COUNT(*) FROM action_items a WHERE a.due_on IS NOT NULL
           AND a.due_on >= ? AND a.due_on <= ?"
            .into(),
        vec![monday.to_string(), sunday.clone()],
    )
    .await?;
    let due_closed = count(
        "SELECT COUNT(*) FROM action_items a WHERE a.due_on IS NOT NULL
           AND a.due_on >= ? AND a.due_on <= ?
           AND a.completed_at IS NOT NULL AND a.completed_at < ?"
            .into(),
        vec![monday.to_string(), sunday, end],
    )
    .await?;
    Ok(ItemCounts {
        opened,
        closed,
        overdue: still_open + closed_since,
        due,
        due_closed,
        completion_rate: (due > 0).then(|| due_closed as f64 / due as f64),
    })
}

/// Firings per alert in `[start, end)`, noisiest first; `team` keeps alerts of its services.
pub async fn alert_noise(
    pool: &SqlitePool,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    team: Option<&str>,
) -> Result<Vec<AlertNoise>, AppError> {
    let team_sql = if team.is_some() {
        " AND e.service IN (SELECT name FROM services WHERE team = ?)"
    } else {
        ""
    };
    let mut query = sqlx::query_as::<_, AlertNoise>(AssertSqlSafe(format!(
        "SELECT e.name, e.service, e.tier, COUNT(*) AS firings,
                COUNT(e.incident_id) AS with_incident
         FROM alert_events e
         WHERE e.started_at >= ? AND e.started_at < ?{team_sql}
         GROUP BY e.name, e.service, e.tier
         ORDER BY firings DESC, e.name"
    )))
    .bind(ts(start))
    .bind(ts(end));
    if let Some(t) = team {
        query = query.bind(t);
    }
    Ok(query.fetch_all(pool).await?)
}

/// Open incidents per severity (sev1 first), for the dashboard.
pub async fn open_by_severity(pool: &SqlitePool) -> Result<Vec<(String, i64)>, AppError> {
    Ok(sqlx::query_as(
        "SELECT severity, COUNT(*) FROM incidents INDEXED BY incidents_open_started
         WHERE status IN ('investigating', 'identified', 'monitoring')
         GROUP BY severity ORDER BY severity",
    )
    .fetch_all(pool)
    .await?)
}

/// A post-mortem waiting for review.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReviewWaiting {
    pub number: i64,
    pub title: String,
    pub updated_at: DateTime<Utc>,
    /// The viewer was asked to review it and has not answered.
    pub asked_me: bool,
}

/// Post-mortems in review, those the viewer was asked to review first.
pub async fn reviews_waiting(
    pool: &SqlitePool,
    user_id: &str,
) -> Result<Vec<ReviewWaiting>, AppError> {
    Ok(sqlx::query_as(
        "SELECT i.number, i.title, p.updated_at,
                EXISTS (SELECT 1 FROM postmortem_reviewers r
                        WHERE r.postmortem_id = p.id AND r.user_id = ? AND r.state = 'requested')
                    AS asked_me
         FROM postmortems p JOIN incidents i ON i.id = p.incident_id
         WHERE p.status = 'in_review'
         ORDER BY asked_me DESC, p.updated_at
         LIMIT 20",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?)
}

/// The viewer's open action items, overdue (then soonest due) first.
pub async fn my_items(
    pool: &SqlitePool,
    user_id: &str,
    limit: i64,
) -> Result<Vec<OpenItem>, AppError> {
    Ok(sqlx::query_as(
        "SELECT a.id, i.number AS incident, a.incident_id, a.title, a.status, a.priority,
                u.name AS owner, a.due_on
         FROM action_items a
         JOIN incidents i ON i.id = a.incident_id
         LEFT JOIN users u ON u.id = a.owner_id
         WHERE a.owner_id = ? AND a.status IN ('open', 'in_progress')
         ORDER BY coalesce(a.due_on, '9999-12-31'), a.created_at
         LIMIT ?",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
