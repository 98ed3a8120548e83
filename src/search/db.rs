//! SQL for search: ranked candidates per kind of record (bm25), then the page's rows with
//! their snippets.
//!
//! Ranking every match of a common word in a million timeline entries would cost far more
//! than a search may take, so each kind contributes its `CANDIDATES` most recent matches
//! (FTS5 walks its index newest first and stops there) and those are ranked by bm25. Snippets,
//! the expensive part, are made only for the rows of the page shown.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, SqlitePool};

use super::Kind;
use crate::db::ts;
use crate::error::AppError;
use crate::incidents::db::{ListFilter, StatusFilter};
use crate::visibility::Viewer;

/// Most matches per kind that are ranked.
pub const CANDIDATES: i64 = 200;

/// A match before its details are read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub kind: Kind,
    pub rowid: i64,
    /// bm25: lower is better.
    pub score: f64,
}

/// A match as the results page shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub number: i64,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub at: DateTime<Utc>,
    /// Timeline entry or action-item id, or post-mortem section key.
    pub target: String,
    /// Entry kind, section title or action-item title.
    pub label: String,
    /// The matched record's text, which the snippet is cut from.
    pub text: String,
}

/// How each kind's full-text table reaches its incident, and how it is ranked.
struct Source {
    fts: &'static str,
    /// The record table behind the FTS table, joined to its incident `i`.
    record: &'static str,
    /// Joins from the FTS table to the incident `i`.
    joins: &'static str,
    rank: &'static str,
    /// Columns of `Row` besides the incident's.
    detail: &'static str,
}

fn source(kind: Kind) -> Source {
    match kind {
        Kind::Incident => Source {
            fts: "incidents_fts",
            record: "incidents i",
            joins: "JOIN incidents i ON i.rowid = incidents_fts.rowid",
            rank: "bm25(incidents_fts, 2.0, 1.0)",
            detail: "i.started_at AS at, '' AS target, i.title AS label,
                     CASE WHEN i.summary = '' THEN i.title
                          ELSE i.title || '. ' || i.summary END AS text",
        },
        Kind::Timeline => Source {
            fts: "timeline_fts",
            record: "timeline_entries t JOIN incidents i ON i.id = t.incident_id",
            joins: "JOIN timeline_entries t ON t.rowid = timeline_fts.rowid
                    JOIN incidents i ON i.id = t.incident_id",
            rank: "bm25(timeline_fts)",
            detail: "t.occurred_at AS at, t.id AS target, t.kind AS label, t.body AS text",
        },
        Kind::Postmortem => Source {
            fts: "postmortem_sections_fts",
            record: "postmortem_sections s JOIN postmortems p ON p.id = s.postmortem_id
                     JOIN incidents i ON i.id = p.incident_id",
            joins: "JOIN postmortem_sections s ON s.rowid = postmortem_sections_fts.rowid
                    JOIN postmortems p ON p.id = s.postmortem_id
                    JOIN incidents i ON i.id = p.incident_id",
            rank: "bm25(postmortem_sections_fts, 1.0, 1.0)",
            detail: "p.updated_at AS at, s.key AS target, s.title AS label, s.body AS text",
        },
        Kind::ActionItem => Source {
            fts: "action_items_fts",
            record: "action_items a JOIN incidents i ON i.id = a.incident_id",
            joins: "JOIN action_items a ON a.rowid = action_items_fts.rowid
                    JOIN incidents i ON i.id = a.incident_id",
            rank: "bm25(action_items_fts, 2.0, 1.0)",
            detail: "a.created_at AS at, a.id AS target, a.title AS label,
                     CASE WHEN a.description = '' THEN a.title
                          ELSE a.title || '. ' || a.description END AS text",
        },
    }
}

/// The incident filter as SQL on `i` (fixed fragments; every value bound).
fn filter_sql(filter: &ListFilter) -> (String, Vec<String>) {
    let mut sql = String::new();
    let mut binds = Vec::new();
    match filter.status {
        Some(StatusFilter::Is(s)) => {
            sql.push_str(" AND i.status = ?");
            binds.push(s.as_str().to_owned());
        }
        Some(StatusFilter::Open) => {
            sql.push_str(" AND i.status IN ('investigating', 'identified', 'monitoring')");
        }
        None => {}
    }
    if let Some(s) = filter.severity {
        sql.push_str(" AND i.severity = ?");
        binds.push(s.as_str().to_owned());
    }
    for (column, value) in [
        (" AND i.service = ?", &filter.service),
        (" AND i.category = ?", &filter.category),
        (" AND i.team = ?", &filter.team),
    ] {
        if let Some(v) = value {
            sql.push_str(column);
            binds.push(v.clone());
        }
    }
    if let Some(since) = filter.since {
        sql.push_str(" AND i.started_at >= ?");
        binds.push(ts(since));
    }
    if let Some(until) = filter.until {
        sql.push_str(" AND i.started_at < ?");
        binds.push(ts(until));
    }
    (sql, binds)
}

/// Up to `CANDIDATES` most recent matches of `kind` passing the filter, with their rank.
pub async fn candidates(
    pool: &SqlitePool,
    viewer: &Viewer,
    kind: Kind,
    fts_query: &str,
    filter: &ListFilter,
) -> Result<Vec<Hit>, AppError> {
    let src = source(kind);
    let (where_sql, binds) = filter_sql(filter);
    // The incident is always joined: only matches in incidents the viewer may see count.
    let sql = format!(
        "SELECT {fts}.rowid, {rank} FROM {fts} {joins}
         WHERE {fts} MATCH ? AND {visible}{where_sql}
         ORDER BY {fts}.rowid DESC LIMIT ?",
        fts = src.fts,
        rank = src.rank,
        joins = src.joins,
        visible = crate::visibility::VISIBLE,
    );
    // Unchecked: the FTS table, rank and joins depend on the kind, the WHERE on the filter.
    let mut query = sqlx::query_as::<_, (i64, f64)>(AssertSqlSafe(sql))
        .bind(fts_query)
        .bind(viewer.id().to_owned());
    for b in binds {
        query = query.bind(b);
    }
    let rows = query.bind(CANDIDATES).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(rowid, score)| Hit { kind, rowid, score })
        .collect())
}

/// The first table of a kind's record joins, whose rowid the FTS table shares.
fn record_alias(kind: Kind) -> &'static str {
    match kind {
        Kind::Incident => "i",
        Kind::Timeline => "t",
        Kind::Postmortem => "s",
        Kind::ActionItem => "a",
    }
}

/// The details and text of the matches `rowids` of one kind, read by rowid from the record
/// tables. (Asking FTS5 for `snippet()` here would load the query's whole doclist once per
/// row: milliseconds each for a common word in a million entries; the snippet is cut from
/// the text in Rust instead.)
pub async fn rows(
    pool: &SqlitePool,
    kind: Kind,
    rowids: &[i64],
) -> Result<Vec<(i64, Row)>, AppError> {
    if rowids.is_empty() {
        return Ok(Vec::new());
    }
    let src = source(kind);
    let alias = record_alias(kind);
    let marks = vec!["?"; rowids.len()].join(", ");
    let sql = format!(
        "SELECT {alias}.rowid AS rowid, i.number, i.title, i.severity, i.status, {detail}
         FROM {record} WHERE {alias}.rowid IN ({marks})",
        record = src.record,
        detail = src.detail,
    );
    // Unchecked: the tables depend on the kind, and the IN list on the page's rows.
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for id in rowids {
        query = query.bind(*id);
    }
    let mut out = Vec::with_capacity(rowids.len());
    for r in query.fetch_all(pool).await? {
        use sqlx::{FromRow, Row as _};
        let rowid: i64 = r.try_get("rowid")?;
        out.push((rowid, Row::from_row(&r)?));
    }
    Ok(out)
}
