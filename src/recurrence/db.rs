//! SQL for recurrence: the facts compared, the candidates in the window, the recurrence test
//! as an SQL condition for the incident list, and the related incidents' titles and open items.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, SqlitePool};

use super::{OpenItem, RecurrenceFacts, Rule};
use crate::db::ts;
use crate::error::AppError;

/// The recurrence facts of one incident.
pub async fn facts(pool: &SqlitePool, incident_id: &str) -> Result<RecurrenceFacts, AppError> {
    // The primary root-cause category of incident `i` (none until a post-mortem sets one).
    Ok(sqlx::query_as!(
        RecurrenceFacts,
        r#"SELECT i.number, i.started_at AS "started_at: DateTime<Utc>", i.category, i.service,
                (SELECT r.category FROM root_causes r
                 WHERE r.incident_id = i.id AND r.is_primary = 1) AS "primary_cause?: String"
         FROM incidents i WHERE i.id = ?"#,
        incident_id
    )
    .fetch_one(pool)
    .await?)
}

/// Incidents that could make `target` recur: started in its window and sharing its (known)
/// category, or its service and primary root cause (the calculator in `reports` decides).
pub async fn candidates(
    pool: &SqlitePool,
    target: &RecurrenceFacts,
    rule: Rule,
) -> Result<Vec<RecurrenceFacts>, AppError> {
    let (from, to) = (
        ts(rule.window_start(target.started_at)),
        ts(target.started_at),
    );
    let mut found: Vec<RecurrenceFacts> = Vec::new();
    if !target.category.eq_ignore_ascii_case(super::UNKNOWN) {
        found = sqlx::query_as!(
            RecurrenceFacts,
            r#"SELECT i.number, i.started_at AS "started_at: DateTime<Utc>", i.category,
                    i.service,
                    (SELECT r.category FROM root_causes r
                     WHERE r.incident_id = i.id AND r.is_primary = 1) AS "primary_cause?: String"
             FROM incidents i
             WHERE i.category = ? AND i.started_at >= ? AND i.started_at <= ?"#,
            target.category,
            from,
            to
        )
        .fetch_all(pool)
        .await?;
    }
    if let Some(cause) = target
        .primary_cause
        .as_deref()
        .filter(|c| !c.eq_ignore_ascii_case(super::UNKNOWN))
    {
        let more: Vec<RecurrenceFacts> = sqlx::query_as!(
            RecurrenceFacts,
            r#"SELECT i.number, i.started_at AS "started_at: DateTime<Utc>", i.category,
                    i.service, r.category AS "primary_cause?: String"
             FROM incidents i INDEXED BY incidents_service_started
             CROSS JOIN root_causes r INDEXED BY root_causes_primary_incident
             WHERE i.id = r.incident_id AND r.is_primary = 1 AND r.category = ?
               AND i.service = ? AND i.started_at >= ? AND i.started_at <= ?"#,
            cause,
            target.service,
            from,
            to
        )
        .fetch_all(pool)
        .await?;
        found.extend(more);
    }
    Ok(found)
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
    // Unchecked: an IN list as long as `numbers`.
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

/// Titles of the incidents `numbers` that everyone may see: the recurrence lists are cached
/// per incident and shown to all who see it, so a restricted incident is never named there.
pub async fn titles(pool: &SqlitePool, numbers: &[i64]) -> Result<Vec<(i64, String)>, AppError> {
    if numbers.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; numbers.len()].join(", ");
    // Unchecked: an IN list as long as `numbers`.
    let mut query = sqlx::query_as::<_, (i64, String)>(AssertSqlSafe(format!(
        "SELECT number, title FROM incidents i WHERE number IN ({marks}) AND {}",
        crate::visibility::VISIBLE
    )));
    for n in numbers {
        query = query.bind(*n);
    }
    Ok(query
        .bind(crate::visibility::Viewer::anyone().id().to_owned())
        .fetch_all(pool)
        .await?)
}
