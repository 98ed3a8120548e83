//! SQL for alert rules and alert events (firings with their start, end and incident).

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, Utc};
use serde::Serialize;
use sqlx::{SqliteConnection, SqlitePool};

use super::{AlertRule, RuleValues, Tier, Watched};
use crate::db::{is_unique_violation, new_id, ts};
use crate::error::AppError;
use crate::incidents::Severity;
use crate::visibility::Viewer;

pub async fn list_rules(pool: &SqlitePool) -> Result<Vec<AlertRule>, AppError> {
    Ok(sqlx::query_as!(
        AlertRule,
        r#"SELECT id AS "id!", name, service, signal AS "signal: Watched", threshold, min_samples,
                for_secs, tier AS "tier: Tier", page_severity AS "page_severity: Severity",
                enabled AS "enabled: bool", version
         FROM alert_rules ORDER BY service, name"#
    )
    .fetch_all(pool)
    .await?)
}

pub async fn find_rule(
    conn: impl sqlx::SqliteExecutor<'_>,
    id: &str,
) -> Result<Option<AlertRule>, AppError> {
    Ok(sqlx::query_as!(
        AlertRule,
        r#"SELECT id AS "id!", name, service, signal AS "signal: Watched", threshold, min_samples,
                for_secs, tier AS "tier: Tier", page_severity AS "page_severity: Severity",
                enabled AS "enabled: bool", version
         FROM alert_rules WHERE id = ?"#,
        id
    )
    .fetch_optional(conn)
    .await?)
}

pub async fn insert_rule(conn: &mut SqliteConnection, v: &RuleValues) -> Result<String, AppError> {
    let id = new_id();
    let now = ts(Utc::now());
    sqlx::query!(
        "INSERT INTO alert_rules (id, name, service, signal, threshold, min_samples, for_secs,
            tier, page_severity, enabled, version, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        id,
        v.name,
        v.service,
        v.watched,
        v.threshold,
        v.min_samples,
        v.for_secs,
        v.tier,
        v.page_severity,
        v.enabled,
        now,
        now,
    )
    .execute(conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            AppError::AlreadyExists("that rule already exists".into())
        } else {
            e.into()
        }
    })?;
    Ok(id)
}

/// Writes the rule if it is still at `version`; false when someone saved first.
pub async fn update_rule(
    conn: &mut SqliteConnection,
    id: &str,
    version: i64,
    v: &RuleValues,
) -> Result<bool, AppError> {
    let now = ts(Utc::now());
    let done = sqlx::query!(
        "UPDATE alert_rules SET name = ?, service = ?, signal = ?, threshold = ?, min_samples = ?,
            for_secs = ?, tier = ?, page_severity = ?, enabled = ?, version = version + 1,
            updated_at = ?
         WHERE id = ? AND version = ?",
        v.name,
        v.service,
        v.watched,
        v.threshold,
        v.min_samples,
        v.for_secs,
        v.tier,
        v.page_severity,
        v.enabled,
        now,
        id,
        version,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a rule; its past events stay (with the rule's name) for the history.
pub async fn delete_rule(conn: &mut SqliteConnection, id: &str) -> Result<bool, AppError> {
    let now = ts(Utc::now());
    sqlx::query!(
        "UPDATE alert_events SET ended_at = ? WHERE rule_id = ? AND ended_at IS NULL",
        now,
        id
    )
    .execute(&mut *conn)
    .await?;
    let done = sqlx::query!("DELETE FROM alert_rules WHERE id = ?", id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A firing (open while `ended_at` is empty).
#[derive(Debug, Clone, Serialize)]
pub struct AlertEvent {
    pub id: String,
    pub rule_id: Option<String>,
    pub source: String,
    pub name: String,
    pub service: String,
    pub tier: String,
    pub signal: String,
    pub threshold: Option<f64>,
    pub value: Option<f64>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub incident_id: Option<String>,
    pub incident_number: Option<i64>,
}

pub async fn insert_event(
    conn: &mut SqliteConnection,
    rule: &AlertRule,
    value: Option<f64>,
    at: DateTime<Utc>,
) -> Result<String, AppError> {
    let id = new_id();
    let at = ts(at);
    sqlx::query!(
        "INSERT INTO alert_events (id, rule_id, source, name, service, tier, signal, threshold,
            value, started_at)
         VALUES (?, ?, 'rule', ?, ?, ?, ?, ?, ?, ?)",
        id,
        rule.id,
        rule.name,
        rule.service,
        rule.tier,
        rule.signal,
        rule.threshold,
        value,
        at,
    )
    .execute(conn)
    .await?;
    Ok(id)
}

pub async fn link_incident(
    conn: &mut SqliteConnection,
    event_id: &str,
    incident_id: &str,
) -> Result<(), AppError> {
    sqlx::query!(
        "UPDATE alert_events SET incident_id = ? WHERE id = ?",
        incident_id,
        event_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn end_event(
    conn: &mut SqliteConnection,
    event_id: &str,
    at: DateTime<Utc>,
) -> Result<(), AppError> {
    let at = ts(at);
    sqlx::query!(
        "UPDATE alert_events SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
        at,
        event_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Open firings of rules, by rule id.
pub async fn open_events_by_rule(
    pool: &SqlitePool,
) -> Result<HashMap<String, AlertEvent>, AppError> {
    let events = sqlx::query_as!(
        AlertEvent,
        r#"SELECT e.id AS "id!", e.rule_id, e.source, e.name, e.service, e.tier, e.signal,
                e.threshold, e.value, e.started_at AS "started_at: DateTime<Utc>",
                e.ended_at AS "ended_at: DateTime<Utc>", e.incident_id,
                i.number AS "incident_number?: i64"
         FROM alert_events e LEFT JOIN incidents i ON i.id = e.incident_id
         WHERE e.ended_at IS NULL AND e.rule_id IS NOT NULL"#
    )
    .fetch_all(pool)
    .await?;
    Ok(events
        .into_iter()
        .filter_map(|e| e.rule_id.clone().map(|id| (id, e)))
        .collect())
}

/// Everything firing now, most severe tier first; the incident a firing opened is named only
/// when `viewer` may see it.
pub async fn firing(pool: &SqlitePool, viewer: &Viewer) -> Result<Vec<AlertEvent>, AppError> {
    let viewer = viewer.id();
    Ok(sqlx::query_as!(
        AlertEvent,
        r#"SELECT e.id AS "id!", e.rule_id, e.source, e.name, e.service, e.tier, e.signal,
                e.threshold, e.value, e.started_at AS "started_at: DateTime<Utc>",
                e.ended_at AS "ended_at: DateTime<Utc>",
                CASE WHEN (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                    WHERE x.incident_id = i.id AND x.user_id = ?1)) THEN e.incident_id END
                    AS incident_id,
                CASE WHEN (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                    WHERE x.incident_id = i.id AND x.user_id = ?1)) THEN i.number END
                    AS "incident_number?: i64"
         FROM alert_events e LEFT JOIN incidents i ON i.id = e.incident_id
         WHERE e.ended_at IS NULL
         ORDER BY CASE e.tier WHEN 'page' THEN 0 WHEN 'ticket' THEN 1 ELSE 2 END, e.started_at"#,
        viewer
    )
    .fetch_all(pool)
    .await?)
}

/// The newest `limit` alerts firing on `service`, newest first, and how many fire in all (the
/// incident named only when `viewer` may see it). A storm's alert group can hold hundreds of
/// firing alerts; the service page names the newest and counts the rest.
pub async fn firing_for_service(
    pool: &SqlitePool,
    service: &str,
    viewer: &Viewer,
    limit: i64,
) -> Result<(Vec<AlertEvent>, i64), AppError> {
    let viewer = viewer.id();
    let newest = sqlx::query_as!(
        AlertEvent,
        r#"SELECT e.id AS "id!", e.rule_id, e.source, e.name, e.service, e.tier, e.signal,
                e.threshold, e.value, e.started_at AS "started_at: DateTime<Utc>",
                e.ended_at AS "ended_at: DateTime<Utc>",
                CASE WHEN (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                    WHERE x.incident_id = i.id AND x.user_id = ?2)) THEN e.incident_id END
                    AS incident_id,
                CASE WHEN (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                    WHERE x.incident_id = i.id AND x.user_id = ?2)) THEN i.number END
                    AS "incident_number?: i64"
         FROM alert_events e LEFT JOIN incidents i ON i.id = e.incident_id
         WHERE e.ended_at IS NULL AND e.service = ?1 ORDER BY e.started_at DESC LIMIT ?3"#,
        service,
        viewer,
        limit
    )
    .fetch_all(pool)
    .await?;
    let total = if i64::try_from(newest.len()).unwrap_or(i64::MAX) < limit {
        i64::try_from(newest.len()).unwrap_or(i64::MAX)
    } else {
        sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!: i64" FROM alert_events
               WHERE ended_at IS NULL AND service = ?"#,
            service
        )
        .fetch_one(pool)
        .await?
    };
    Ok((newest, total))
}

/// The most recent firings, open or not (the incident named only when `viewer` may see it).
pub async fn history(
    pool: &SqlitePool,
    limit: i64,
    viewer: &Viewer,
) -> Result<Vec<AlertEvent>, AppError> {
    let viewer = viewer.id();
    Ok(sqlx::query_as!(
        AlertEvent,
        r#"SELECT e.id AS "id!", e.rule_id, e.source, e.name, e.service, e.tier, e.signal,
                e.threshold, e.value, e.started_at AS "started_at: DateTime<Utc>",
                e.ended_at AS "ended_at: DateTime<Utc>",
                CASE WHEN (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                    WHERE x.incident_id = i.id AND x.user_id = ?2)) THEN e.incident_id END
                    AS incident_id,
                CASE WHEN (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                    WHERE x.incident_id = i.id AND x.user_id = ?2)) THEN i.number END
                    AS "incident_number?: i64"
         FROM alert_events e LEFT JOIN incidents i ON i.id = e.incident_id
         ORDER BY e.started_at DESC LIMIT ?1"#,
        limit,
        viewer
    )
    .fetch_all(pool)
    .await?)
}

/// Firings per alert (by name) per ISO week over the last `weeks` weeks, oldest week first.
#[derive(Debug, Clone, Serialize)]
pub struct WeeklyFirings {
    pub name: String,
    pub tier: String,
    /// One count per week, aligned with `weeks`.
    pub counts: Vec<i64>,
    pub total: i64,
}

pub async fn weekly_firings(
    pool: &SqlitePool,
    now: DateTime<Utc>,
    weeks: usize,
) -> Result<(Vec<String>, Vec<WeeklyFirings>), AppError> {
    let labels: Vec<(i32, u32)> = (0..weeks)
        .rev()
        .map(|back| {
            let week = (now - Duration::weeks(i64::try_from(back).unwrap_or(0))).iso_week();
            (week.year(), week.week())
        })
        .collect();
    let since = now - Duration::weeks(i64::try_from(weeks).unwrap_or(8));
    let since = ts(since);
    let rows = sqlx::query!(
        r#"SELECT name, tier, started_at AS "started_at: DateTime<Utc>" FROM alert_events
         WHERE started_at >= ? ORDER BY name"#,
        since
    )
    .fetch_all(pool)
    .await?;
    let mut by_name: Vec<WeeklyFirings> = Vec::new();
    for row in rows {
        let (name, tier, at) = (row.name, row.tier, row.started_at);
        let week = at.iso_week();
        let Some(slot) = labels.iter().position(|l| *l == (week.year(), week.week())) else {
            continue;
        };
        let entry = match by_name.iter_mut().position(|w| w.name == name) {
            Some(i) => &mut by_name[i],
            None => {
                by_name.push(WeeklyFirings {
                    name: name.clone(),
                    tier,
                    counts: vec![0; weeks],
                    total: 0,
                });
                let last = by_name.len() - 1;
                &mut by_name[last]
            }
        };
        entry.counts[slot] += 1;
        entry.total += 1;
    }
    by_name.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
    let labels = labels
        .into_iter()
        .map(|(y, w)| format!("{y}-W{w:02}"))
        .collect();
    Ok((labels, by_name))
}
