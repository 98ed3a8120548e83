//! SQL for reports: everything the weekly review and the dashboard read.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sqlx::{AssertSqlSafe, SqlitePool};

use super::{AlertNoise, GroupIncident, ItemCounts, Measure, RecurringGroup, ReportIncident};
use crate::db::ts;
use crate::error::AppError;
use crate::recurrence::{OpenItem, Rule};

/// `AND i.team = ?` when a team is chosen (bound after the fixed parameters).
fn team_clause(team: Option<&str>) -> &'static str {
    if team.is_some() {
        " AND i.team = ?"
    } else {
        ""
    }
}

/// The incidents that started in `[start, end)`, most severe first; restricted ones are not
/// listed (the review is a shared document), though its figures count them.
pub async fn week_incidents(
    pool: &SqlitePool,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    team: Option<&str>,
) -> Result<Vec<ReportIncident>, AppError> {
    // Unchecked: the team condition is added only when a team is chosen (one statement per
    // case would be two copies of the query for the planner's sake).
    let mut query = sqlx::query_as::<_, ReportIncident>(AssertSqlSafe(format!(
        "SELECT i.id, i.number, i.title, i.severity, i.status, i.service, i.category, i.team,
                i.started_at, i.detected_at, i.acknowledged_at, i.mitigated_at, i.resolved_at,
                i.exclude_from_metrics
         FROM incidents i
         WHERE i.started_at >= ? AND i.started_at < ? AND {}{}
         ORDER BY i.severity, i.started_at, i.number",
        crate::visibility::VISIBLE,
        team_clause(team)
    )))
    .bind(ts(start))
    .bind(ts(end))
    .bind(crate::visibility::Viewer::anyone().id().to_owned());
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

/// Action items opened, closed, overdue and due in the week `[start, end)` whose days are
/// `monday..=sunday` (due dates are days). `team` filters on the item's own team.
pub async fn item_counts(
    pool: &SqlitePool,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    monday: NaiveDate,
    today: NaiveDate,
    team: Option<&str>,
) -> Result<ItemCounts, AppError> {
    // Overdue counts items due before this day (`action_items::overdue_cutoff`): the week's
    // end, or today while the week is running.
    let due_cutoff = crate::action_items::overdue_cutoff(monday, today).to_string();
    let sunday = (monday + Duration::days(6)).to_string();
    let team_sql = if team.is_some() {
        " AND a.team = ?"
    } else {
        ""
    };
    // Unchecked: six counts sharing the optional team condition and their index hints.
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
        vec![due_cutoff.clone(), end.clone()],
    )
    .await?;
    let closed_since = count(
        "SELECT COUNT(*) FROM action_items a INDEXED BY action_items_completed_cover
         WHERE a.completed_at IS NOT NULL
           AND a.completed_at >= ? AND a.created_at < ? AND a.due_on < ?"
            .into(),
        vec![end.clone(), end.clone(), due_cutoff],
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
    // Unchecked: the team condition is added only when a team is chosen.
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
    let rows = sqlx::query!(
        r#"SELECT severity, COUNT(*) AS "n!: i64" FROM incidents INDEXED BY incidents_open_severity
         WHERE status IN ('investigating', 'identified', 'monitoring')
         GROUP BY severity ORDER BY severity"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.severity, r.n)).collect())
}

/// A post-mortem waiting for review.
#[derive(Debug, Clone)]
pub struct ReviewWaiting {
    pub number: i64,
    pub title: String,
    pub updated_at: DateTime<Utc>,
    /// The viewer was asked to review it and has not answered.
    pub asked_me: bool,
}

/// Post-mortems in review, those the viewer was asked to review first (each part oldest
/// change first), at most `REVIEWS_SHOWN`.
///
/// Two short reads instead of one sort of every post-mortem in review: the ones the viewer
/// was asked about, from the viewer's reviewer rows (a few), then the oldest in review from
/// the status index, which stops after `REVIEWS_SHOWN` rows. The first `REVIEWS_SHOWN` of the
/// second read hold at least as many not asked as the list has room for.
pub async fn reviews_waiting(
    pool: &SqlitePool,
    user_id: &str,
) -> Result<Vec<ReviewWaiting>, AppError> {
    // CROSS JOIN keeps SQLite's join order: from the viewer's reviewer rows out, not from every
    // post-mortem in review.
    let mut asked = sqlx::query_as!(
        ReviewWaiting,
        r#"SELECT i.number, i.title, p.updated_at AS "updated_at: DateTime<Utc>",
                1 AS "asked_me!: bool"
         FROM postmortem_reviewers r
         CROSS JOIN postmortems p
         CROSS JOIN incidents i
         WHERE r.user_id = ?
           AND (r.state = 'requested' OR (r.state = 'changes_requested'
                AND r.requested_at > r.decided_at))
           AND p.id = r.postmortem_id AND p.status = 'in_review'
           AND i.id = p.incident_id
           AND (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                WHERE x.incident_id = i.id AND x.user_id = ?))
         ORDER BY p.updated_at
         LIMIT ?"#,
        user_id,
        user_id,
        REVIEWS_SHOWN
    )
    .fetch_all(pool)
    .await?;
    let oldest = sqlx::query_as!(
        ReviewWaiting,
        r#"SELECT i.number, i.title, p.updated_at AS "updated_at: DateTime<Utc>",
                EXISTS (SELECT 1 FROM postmortem_reviewers r
                        WHERE r.postmortem_id = p.id AND r.user_id = ?
                          AND (r.state = 'requested' OR (r.state = 'changes_requested'
                               AND r.requested_at > r.decided_at)))
                    AS "asked_me!: bool"
         FROM postmortems p JOIN incidents i ON i.id = p.incident_id
         WHERE p.status = 'in_review'
           AND (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                WHERE x.incident_id = i.id AND x.user_id = ?))
         ORDER BY p.updated_at
         LIMIT ?"#,
        user_id,
        user_id,
        REVIEWS_SHOWN
    )
    .fetch_all(pool)
    .await?;
    asked.extend(oldest.into_iter().filter(|r| !r.asked_me));
    asked.truncate(usize::try_from(REVIEWS_SHOWN).unwrap_or(0));
    Ok(asked)
}

/// Post-mortems in review the home page lists.
pub const REVIEWS_SHOWN: i64 = 20;

/// The viewer's open action items, overdue (then soonest due) first.
pub async fn my_items(
    pool: &SqlitePool,
    user_id: &str,
    limit: i64,
) -> Result<Vec<OpenItem>, AppError> {
    Ok(sqlx::query_as!(
        OpenItem,
        r#"SELECT a.id AS "id!", i.number AS incident, a.incident_id, a.title, a.status,
                a.priority, u.name AS "owner?", a.due_on AS "due_on?: NaiveDate"
         FROM action_items a
         JOIN incidents i ON i.id = a.incident_id
         LEFT JOIN users u ON u.id = a.owner_id
         WHERE a.owner_id = ? AND a.status IN ('open', 'in_progress')
           AND (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                WHERE x.incident_id = i.id AND x.user_id = ?))
         ORDER BY coalesce(a.due_on, '9999-12-31'), a.created_at
         LIMIT ?"#,
        user_id,
        user_id,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// Seconds from milestone `a` to `b` of incident `i` in SQL, as `Measure::of` computes them
/// (truncated to whole seconds, never negative); NULL when either is missing.
fn duration_sql(measure: Measure) -> &'static str {
    match measure {
        Measure::Detect => {
            "max(0, CAST(round((julianday(i.detected_at) - julianday(i.started_at)) * 86400000) AS INTEGER) / 1000)"
        }
        Measure::Acknowledge => {
            "max(0, CAST(round((julianday(i.acknowledged_at) - julianday(i.detected_at)) * 86400000) AS INTEGER) / 1000)"
        }
        Measure::Mitigate => {
            "max(0, CAST(round((julianday(i.mitigated_at) - julianday(i.started_at)) * 86400000) AS INTEGER) / 1000)"
        }
        Measure::Resolve => {
            "max(0, CAST(round((julianday(i.resolved_at) - julianday(i.started_at)) * 86400000) AS INTEGER) / 1000)"
        }
    }
}

/// The durations of the incidents that started in `[start, end)`, read off the
/// `incidents_durations` index, which holds the durations themselves (parsing thousands of
/// timestamps per review was most of its time).
pub async fn week_durations(
    pool: &SqlitePool,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    team: Option<&str>,
) -> Result<super::WeekDurations, AppError> {
    let sql = format!(
        "SELECT i.exclude_from_metrics, {d}, {a}, {m}, {r}
         FROM incidents i INDEXED BY incidents_durations
         WHERE i.started_at >= ? AND i.started_at < ?{team}",
        d = duration_sql(Measure::Detect),
        a = duration_sql(Measure::Acknowledge),
        m = duration_sql(Measure::Mitigate),
        r = duration_sql(Measure::Resolve),
        team = team_clause(team),
    );
    // Unchecked: the duration expressions are shared fragments and the team condition optional.
    let mut query = sqlx::query_as::<_, DurationRow>(AssertSqlSafe(sql))
        .bind(ts(start))
        .bind(ts(end));
    if let Some(t) = team {
        query = query.bind(t);
    }
    let mut week = super::WeekDurations::default();
    for (excluded, d, a, m, r) in query.fetch_all(pool).await? {
        week.add(excluded, [d, a, m, r]);
    }
    Ok(week)
}

/// Excluded from metrics, then the detect, acknowledge, mitigate and resolve durations.
type DurationRow = (bool, Option<i64>, Option<i64>, Option<i64>, Option<i64>);

/// Categories (and service + primary root-cause pairs) with more than K incidents in
/// `[start, end)`, counted in SQL, each with its `list_max` most recent incidents. A service +
/// cause pair counts only when some of its incidents have another category (otherwise its
/// category's group already shows them).
pub async fn recurring_groups(
    pool: &SqlitePool,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    rule: Rule,
    team: Option<&str>,
    list_max: i64,
) -> Result<Vec<RecurringGroup>, AppError> {
    let thirty = ts(end - Duration::days(30));
    let (start, end) = (ts(start), ts(end));
    let k = i64::from(rule.min_others);
    let team_sql = team_clause(team);
    // Groups count restricted incidents; their member lists (a shared document) do not show
    // them.
    let (shared, visible) = (
        crate::visibility::Viewer::anyone(),
        crate::visibility::VISIBLE,
    );
    // Unchecked (these three): the team condition is added only when a team is chosen, and
    // the members query depends on the kind of group.
    let mut by_category = sqlx::query_as::<_, (String, i64, i64)>(AssertSqlSafe(format!(
        "SELECT i.category, COUNT(*), SUM(i.started_at >= ?)
         FROM incidents i INDEXED BY incidents_report
         WHERE i.started_at >= ? AND i.started_at < ? AND i.category <> 'unknown'{team_sql}
         GROUP BY i.category HAVING COUNT(*) > ?"
    )))
    .bind(&thirty)
    .bind(&start)
    .bind(&end);
    if let Some(t) = team {
        by_category = by_category.bind(t);
    }
    let by_category = by_category.bind(k).fetch_all(pool).await?;
    let mut by_cause = sqlx::query_as::<_, (String, String, i64, i64)>(AssertSqlSafe(format!(
        "SELECT r.category, i.service, COUNT(*), SUM(i.started_at >= ?)
         FROM incidents i INDEXED BY incidents_report
         CROSS JOIN root_causes r INDEXED BY root_causes_primary_incident
         WHERE i.id = r.incident_id AND r.is_primary = 1 AND r.category <> 'unknown'
           AND i.started_at >= ? AND i.started_at < ?{team_sql}
         GROUP BY r.category, i.service
         HAVING COUNT(*) > ? AND SUM(i.category <> r.category) > 0"
    )))
    .bind(&thirty)
    .bind(&start)
    .bind(&end);
    if let Some(t) = team {
        by_cause = by_cause.bind(t);
    }
    let by_cause = by_cause.bind(k).fetch_all(pool).await?;

    let mut groups = Vec::new();
    for (category, service, count, count_30) in by_category
        .into_iter()
        .map(|(c, n, n30)| (c, None, n, n30))
        .chain(
            by_cause
                .into_iter()
                .map(|(c, s, n, n30)| (c, Some(s), n, n30)),
        )
    {
        let members_sql = match &service {
            None => format!(
                "SELECT i.number, i.title, i.started_at, i.service, i.category, i.id,
                        NULL AS primary_cause
                 FROM incidents i
                 WHERE i.category = ? AND i.started_at >= ? AND i.started_at < ?{team_sql}
                   AND {visible}
                 ORDER BY i.started_at DESC LIMIT ?"
            ),
            Some(_) => format!(
                "SELECT i.number, i.title, i.started_at, i.service, i.category, i.id,
                        r.category AS primary_cause
                 FROM root_causes r JOIN incidents i ON i.id = r.incident_id
                 WHERE r.is_primary = 1 AND r.category = ? AND i.service = ?
                   AND i.started_at >= ? AND i.started_at < ?{team_sql}
                   AND {visible}
                 ORDER BY i.started_at DESC LIMIT ?"
            ),
        };
        let mut members =
            sqlx::query_as::<_, GroupIncident>(AssertSqlSafe(members_sql)).bind(&category);
        if let Some(s) = &service {
            members = members.bind(s);
        }
        members = members.bind(&start).bind(&end);
        if let Some(t) = team {
            members = members.bind(t);
        }
        members = members.bind(shared.id().to_owned());
        groups.push(RecurringGroup {
            incidents: members.bind(list_max).fetch_all(pool).await?,
            count: usize::try_from(count).unwrap_or(0),
            count_30: usize::try_from(count_30).unwrap_or(0),
            category,
            service,
            open_action_items: Vec::new(),
        });
    }
    super::rank_groups(&mut groups);
    Ok(groups)
}
