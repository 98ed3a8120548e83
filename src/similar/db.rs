//! SQL for similar incidents and incident links: bm25-ranked candidates from the incident,
//! root-cause and post-mortem section full-text indexes, the details a suggestion shows, and
//! the link rows read from either side.
//!
//! Every query here that lists incidents is one function, so a viewer filter (restricted
//! incidents) can be added in one place: `incident_candidates`, `root_cause_candidates`,
//! `section_candidates`, `details`, `links_of`, `find_incident`.

use crate::visibility::{VISIBLE, Viewer};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{AssertSqlSafe, SqliteConnection, SqlitePool};

use super::LinkKind;
use crate::db::{new_id, ts};
use crate::error::AppError;

/// One incident a full-text source matched, with its bm25 turned positive (higher is better).
#[derive(Debug, Clone)]
pub struct Candidate {
    pub incident_id: String,
    pub service: String,
    pub score: f64,
}

fn candidates(rows: Vec<(String, String, f64)>) -> Vec<Candidate> {
    rows.into_iter()
        .map(|(incident_id, service, rank)| Candidate {
            incident_id,
            service,
            score: -rank,
        })
        .collect()
}

/// The best `limit` incidents by title (weighted 4×) and summary.
pub async fn incident_candidates(
    pool: &SqlitePool,
    fts: &str,
    limit: i64,
) -> Result<Vec<Candidate>, AppError> {
    let rows = sqlx::query!(
        r#"SELECT i.id AS "id!", i.service AS "service!", bm25(incidents_fts, 4.0, 1.0) AS "rank!: f64"
           FROM incidents_fts JOIN incidents i ON i.rowid = incidents_fts.rowid
           WHERE incidents_fts MATCH ? ORDER BY bm25(incidents_fts, 4.0, 1.0) LIMIT ?"#,
        fts,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(candidates(
        rows.into_iter()
            .map(|r| (r.id, r.service, r.rank))
            .collect(),
    ))
}

/// The best `limit` root-cause descriptions (an incident may have several).
pub async fn root_cause_candidates(
    pool: &SqlitePool,
    fts: &str,
    limit: i64,
) -> Result<Vec<Candidate>, AppError> {
    let rows = sqlx::query!(
        r#"SELECT i.id AS "id!", i.service AS "service!", bm25(root_causes_fts) AS "rank!: f64"
           FROM root_causes_fts JOIN root_causes r ON r.rowid = root_causes_fts.rowid
           JOIN incidents i ON i.id = r.incident_id
           WHERE root_causes_fts MATCH ? ORDER BY bm25(root_causes_fts) LIMIT ?"#,
        fts,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(candidates(
        rows.into_iter()
            .map(|r| (r.id, r.service, r.rank))
            .collect(),
    ))
}

/// The best `limit` post-mortem sections (title and body).
pub async fn section_candidates(
    pool: &SqlitePool,
    fts: &str,
    limit: i64,
) -> Result<Vec<Candidate>, AppError> {
    let rows = sqlx::query!(
        r#"SELECT i.id AS "id!", i.service AS "service!", bm25(postmortem_sections_fts, 1.0, 1.0) AS "rank!: f64"
           FROM postmortem_sections_fts
           JOIN postmortem_sections s ON s.rowid = postmortem_sections_fts.rowid
           JOIN postmortems p ON p.id = s.postmortem_id
           JOIN incidents i ON i.id = p.incident_id
           WHERE postmortem_sections_fts MATCH ?
           ORDER BY bm25(postmortem_sections_fts, 1.0, 1.0) LIMIT ?"#,
        fts,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(candidates(
        rows.into_iter()
            .map(|r| (r.id, r.service, r.rank))
            .collect(),
    ))
}

/// A suggested incident: what it is, where it stands, its post-mortem and open action items.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Suggestion {
    pub id: String,
    pub number: i64,
    pub title: String,
    pub status: String,
    pub severity: String,
    pub service: String,
    pub started_at: DateTime<Utc>,
    /// `draft`, `in_review`, `published`, or none started.
    pub postmortem_status: Option<String>,
    pub open_action_items: i64,
    #[sqlx(default)]
    pub score: f64,
}

/// The details of the incidents `ids` (any order).
/// Only incidents the viewer may see are returned (a suggestion never names a restricted
/// incident to someone outside it).
pub async fn details(
    pool: &SqlitePool,
    ids: &[String],
    viewer: &Viewer,
) -> Result<Vec<Suggestion>, AppError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; ids.len()].join(", ");
    let sql = format!(
        "SELECT i.id, i.number, i.title, i.status, i.severity, i.service, i.started_at,
                p.status AS postmortem_status,
                (SELECT count(*) FROM action_items a WHERE a.incident_id = i.id
                   AND a.status IN ('open', 'in_progress')) AS open_action_items,
                0.0 AS score
         FROM incidents i LEFT JOIN postmortems p ON p.incident_id = i.id
         WHERE i.id IN ({marks}) AND {VISIBLE}"
    );
    // Unchecked: the IN list has one mark per suggested incident.
    let mut query = sqlx::query_as::<_, Suggestion>(AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id);
    }
    query = query.bind(viewer.id());
    Ok(query.fetch_all(pool).await?)
}

/// Just enough of an incident to link it.
#[derive(Debug, Clone)]
pub struct IncidentRef {
    pub id: String,
    pub number: i64,
    /// Restricted: other incidents' timelines do not name it.
    pub restricted: bool,
}

/// The incident `key` names (`INC-42`, `42` or its id), if the viewer may see it.
pub async fn find_incident(
    pool: &SqlitePool,
    key: &str,
    viewer: &Viewer,
) -> Result<Option<IncidentRef>, AppError> {
    let key = key.trim();
    let number = key
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("inc-"))
        .map_or(key, |_| &key[4..])
        .parse::<i64>()
        .ok();
    let viewer_id = viewer.id();
    Ok(sqlx::query_as!(
        IncidentRef,
        r#"SELECT i.id AS "id!", i.number, i.restricted AS "restricted: bool" FROM incidents i
           WHERE (i.number = ?1 OR i.id = ?2)
             AND (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                  WHERE x.incident_id = i.id AND x.user_id = ?3))"#,
        number,
        key,
        viewer_id
    )
    .fetch_optional(pool)
    .await?)
}

/// A link as seen from one of its incidents.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub id: String,
    pub kind: LinkKind,
    /// True when the link was made on the other incident (shown as the inverse).
    pub inverse: bool,
    pub other_id: String,
    pub other_number: i64,
    pub other_title: String,
    pub other_status: String,
    /// The other incident is restricted: timelines outside it do not name it.
    #[serde(skip)]
    pub other_restricted: bool,
    pub created_at: DateTime<Utc>,
}

impl Link {
    /// As read on this side: "duplicate of", or "duplicated by" when made on the other.
    pub fn label(&self) -> &'static str {
        if self.inverse {
            self.kind.inverse_label()
        } else {
            self.kind.label()
        }
    }

    /// As read on the other side.
    pub fn other_side_label(&self) -> &'static str {
        if self.inverse {
            self.kind.label()
        } else {
            self.kind.inverse_label()
        }
    }

    /// The API's name on this side (`duplicate_of`, `duplicated_by`, …).
    pub fn name(&self) -> &'static str {
        if self.inverse {
            self.kind.inverse_name()
        } else {
            self.kind.as_str()
        }
    }
}

struct LinkRow {
    id: String,
    kind: LinkKind,
    incident_id: String,
    other_id: String,
    number: i64,
    title: String,
    status: String,
    restricted: bool,
    created_at: DateTime<Utc>,
}

fn seen_from(r: LinkRow, incident_id: &str) -> Link {
    let inverse = r.incident_id != incident_id;
    Link {
        id: r.id,
        kind: r.kind,
        inverse,
        other_id: if inverse { r.incident_id } else { r.other_id },
        other_number: r.number,
        other_title: r.title,
        other_status: r.status,
        other_restricted: r.restricted,
        created_at: r.created_at,
    }
}

/// Every link of an incident, from either side, oldest first; links to incidents the viewer
/// may not see are left out.
pub async fn links_of(
    pool: &SqlitePool,
    incident_id: &str,
    viewer: &Viewer,
) -> Result<Vec<Link>, AppError> {
    let viewer_id = viewer.id();
    let rows = sqlx::query_as!(
        LinkRow,
        r#"SELECT l.id AS "id!", l.kind AS "kind: LinkKind", l.incident_id, l.other_id,
                  i.number, i.title, i.status, i.restricted AS "restricted: bool",
                  l.created_at AS "created_at: DateTime<Utc>"
           FROM incident_links l
           JOIN incidents i ON i.id = CASE WHEN l.incident_id = ?1 THEN l.other_id ELSE l.incident_id END
           WHERE (l.incident_id = ?1 OR l.other_id = ?1)
             AND (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                  WHERE x.incident_id = i.id AND x.user_id = ?2))
           ORDER BY l.created_at, l.id"#,
        incident_id,
        viewer_id
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| seen_from(r, incident_id))
        .collect())
}

/// The link `id` if `incident_id` is one of its sides.
pub async fn find_link(
    pool: &SqlitePool,
    id: &str,
    incident_id: &str,
    viewer: &Viewer,
) -> Result<Option<Link>, AppError> {
    let viewer_id = viewer.id();
    let row = sqlx::query_as!(
        LinkRow,
        r#"SELECT l.id AS "id!", l.kind AS "kind: LinkKind", l.incident_id, l.other_id,
                  i.number, i.title, i.status, i.restricted AS "restricted: bool",
                  l.created_at AS "created_at: DateTime<Utc>"
           FROM incident_links l
           JOIN incidents i ON i.id = CASE WHEN l.incident_id = ?2 THEN l.other_id ELSE l.incident_id END
           WHERE l.id = ?1 AND (l.incident_id = ?2 OR l.other_id = ?2)
             AND (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                  WHERE x.incident_id = i.id AND x.user_id = ?3))"#,
        id,
        incident_id,
        viewer_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| seen_from(r, incident_id)))
}

/// The kind of the link between two incidents, made on either.
pub async fn link_between(
    conn: &mut SqliteConnection,
    a: &str,
    b: &str,
) -> Result<Option<LinkKind>, AppError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT kind AS "kind: LinkKind" FROM incident_links
           WHERE (incident_id = ?1 AND other_id = ?2) OR (incident_id = ?2 AND other_id = ?1)"#,
        a,
        b
    )
    .fetch_optional(conn)
    .await?)
}

pub async fn insert_link(
    conn: &mut SqliteConnection,
    from: &str,
    to: &str,
    kind: LinkKind,
    user_id: &str,
) -> Result<String, AppError> {
    let id = new_id();
    let now = ts(Utc::now());
    sqlx::query!(
        "INSERT INTO incident_links (id, incident_id, other_id, kind, created_by, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
        id,
        from,
        to,
        kind,
        user_id,
        now
    )
    .execute(conn)
    .await?;
    Ok(id)
}

pub async fn delete_link(conn: &mut SqliteConnection, id: &str) -> Result<bool, AppError> {
    let done = sqlx::query!("DELETE FROM incident_links WHERE id = ?", id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
