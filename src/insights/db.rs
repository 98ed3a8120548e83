//! SQL for insights: the rows the figures are computed from. Nothing here reads an incident's
//! title, summary or any text a person wrote, so the figures may count restricted incidents
//! without revealing them. (When restricted incidents land, these stay aggregates: no viewer
//! filter is needed, only the rule that no title leaves this file.)

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use super::{CauseRow, DueItem, Filter, InsightIncident, PreventItem};
use crate::db::ts;
use crate::error::AppError;

/// `AND i.team = ? AND i.service = ?` for the chosen team and service.
fn push_filters(q: &mut QueryBuilder<Sqlite>, filter: &Filter) {
    if let Some(t) = &filter.team {
        q.push(" AND i.team = ").push_bind(t.clone());
    }
    if let Some(s) = &filter.service {
        q.push(" AND i.service = ").push_bind(s.clone());
    }
}

/// The incidents that started in `[start, end)`, with how they were detected and their
/// primary root cause.
pub async fn incidents(
    pool: &SqlitePool,
    filter: &Filter,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<InsightIncident>, AppError> {
    // Unchecked: the team and service conditions are added only when chosen.
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT i.id, i.started_at, i.severity, i.service, i.category, i.detected_at,
                i.acknowledged_at, i.mitigated_at, i.resolved_at, i.exclude_from_metrics,
                p.detection_method,
                EXISTS (SELECT 1 FROM alert_events a INDEXED BY alert_events_incident
                        WHERE a.incident_id = i.id) AS alerted,
                (SELECT r.category FROM root_causes r
                 WHERE r.incident_id = i.id AND r.is_primary = 1) AS primary_cause
         FROM incidents i LEFT JOIN postmortems p ON p.incident_id = i.id
         WHERE i.started_at >= ",
    );
    q.push_bind(ts(start))
        .push(" AND i.started_at < ")
        .push_bind(ts(end));
    push_filters(&mut q, filter);
    q.push(" ORDER BY i.started_at");
    Ok(q.build_query_as::<InsightIncident>()
        .fetch_all(pool)
        .await?)
}

/// Root causes and contributing factors of the incidents that started in `[start, end)`.
pub async fn causes(
    pool: &SqlitePool,
    filter: &Filter,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<CauseRow>, AppError> {
    // Unchecked: the team and service conditions are added only when chosen.
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT r.incident_id, i.started_at, r.category
         FROM root_causes r JOIN incidents i ON i.id = r.incident_id
         WHERE i.started_at >= ",
    );
    q.push_bind(ts(start))
        .push(" AND i.started_at < ")
        .push_bind(ts(end));
    push_filters(&mut q, filter);
    q.push(" ORDER BY i.started_at, r.position");
    Ok(q.build_query_as::<CauseRow>().fetch_all(pool).await?)
}

/// Action items due within the filter's dates (any incident), of the chosen team (the item's
/// owning team) and service (its incident's).
pub async fn due_items(pool: &SqlitePool, filter: &Filter) -> Result<Vec<DueItem>, AppError> {
    // Unchecked: the team and service conditions are added only when chosen.
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT a.team, a.status, a.due_on, a.completed_at
         FROM action_items a JOIN incidents i ON i.id = a.incident_id
         WHERE a.due_on >= ",
    );
    q.push_bind(filter.since.to_string())
        .push(" AND a.due_on <= ")
        .push_bind(filter.until.to_string());
    if let Some(t) = &filter.team {
        q.push(" AND a.team = ").push_bind(t.clone());
    }
    if let Some(s) = &filter.service {
        q.push(" AND i.service = ").push_bind(s.clone());
    }
    q.push(" ORDER BY a.due_on");
    Ok(q.build_query_as::<DueItem>().fetch_all(pool).await?)
}

/// The `prevent` action items of the incidents that started in `[start, end)`.
pub async fn prevent_items(
    pool: &SqlitePool,
    filter: &Filter,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<PreventItem>, AppError> {
    // Unchecked: the team and service conditions are added only when chosen.
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT a.incident_id, a.status, a.completed_at
         FROM action_items a JOIN incidents i ON i.id = a.incident_id
         WHERE a.kind = 'prevent' AND i.started_at >= ",
    );
    q.push_bind(ts(start))
        .push(" AND i.started_at < ")
        .push_bind(ts(end));
    push_filters(&mut q, filter);
    Ok(q.build_query_as::<PreventItem>().fetch_all(pool).await?)
}
