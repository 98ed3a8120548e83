//! SQL for post-mortems and their templates: the post-mortem row (compare-and-swap on
//! `version`), sections, root causes, revisions, reviewers, workflow events and the list.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, SqliteConnection, SqlitePool};

use super::{Content, PmStatus, Postmortem, ReviewState, Reviewer, RootCause, Section};
use crate::db::{new_id, ts};
use crate::error::AppError;

const SELECT: &str = "SELECT p.id, p.incident_id, p.status, p.template_id, p.template_name,
        p.detection_method, p.no_action_items_reason, p.version, p.author_id,
        a.name AS author_name, p.created_at, u.name AS updated_by_name, p.updated_at,
        p.published_at
    FROM postmortems p
    LEFT JOIN users a ON a.id = p.author_id
    LEFT JOIN users u ON u.id = p.updated_by";

pub async fn find_for_incident(
    pool: &SqlitePool,
    incident_id: &str,
) -> Result<Option<Postmortem>, AppError> {
    Ok(
        sqlx::query_as(AssertSqlSafe(format!("{SELECT} WHERE p.incident_id = ?")))
            .bind(incident_id)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn sections(pool: &SqlitePool, postmortem_id: &str) -> Result<Vec<Section>, AppError> {
    Ok(sqlx::query_as(
        "SELECT key, title, help, required, body FROM postmortem_sections
         WHERE postmortem_id = ? ORDER BY position",
    )
    .bind(postmortem_id)
    .fetch_all(pool)
    .await?)
}

pub async fn root_causes(
    pool: &SqlitePool,
    postmortem_id: &str,
) -> Result<Vec<RootCause>, AppError> {
    Ok(sqlx::query_as(
        "SELECT category, description, is_primary FROM root_causes
         WHERE postmortem_id = ? ORDER BY position",
    )
    .bind(postmortem_id)
    .fetch_all(pool)
    .await?)
}

pub async fn reviewers(pool: &SqlitePool, postmortem_id: &str) -> Result<Vec<Reviewer>, AppError> {
    Ok(sqlx::query_as(
        "SELECT r.user_id, u.name, u.email, r.state, r.comment, r.requested_at, r.decided_at
         FROM postmortem_reviewers r JOIN users u ON u.id = r.user_id
         WHERE r.postmortem_id = ? ORDER BY r.requested_at, u.name",
    )
    .bind(postmortem_id)
    .fetch_all(pool)
    .await?)
}

/// Creates the post-mortem row; `None` when the incident already has one.
pub async fn insert(
    conn: &mut SqliteConnection,
    incident_id: &str,
    template_id: &str,
    template_name: &str,
    user_id: &str,
) -> Result<Option<String>, AppError> {
    let id = new_id();
    let now = ts(Utc::now());
    let done = sqlx::query(
        "INSERT INTO postmortems (id, incident_id, status, template_id, template_name, version,
            author_id, created_at, updated_by, updated_at)
         VALUES (?, ?, 'draft', ?, ?, 1, ?, ?, ?, ?)
         ON CONFLICT (incident_id) DO NOTHING",
    )
    .bind(&id)
    .bind(incident_id)
    .bind(template_id)
    .bind(template_name)
    .bind(user_id)
    .bind(&now)
    .bind(user_id)
    .bind(&now)
    .execute(conn)
    .await?;
    Ok((done.rows_affected() == 1).then_some(id))
}

pub async fn insert_sections(
    conn: &mut SqliteConnection,
    postmortem_id: &str,
    sections: &[Section],
) -> Result<(), AppError> {
    for (position, s) in sections.iter().enumerate() {
        sqlx::query(
            "INSERT INTO postmortem_sections (postmortem_id, position, key, title, help,
                required, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(postmortem_id)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(&s.key)
        .bind(&s.title)
        .bind(&s.help)
        .bind(s.required)
        .bind(&s.body)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Writes the post-mortem's own fields if it is still at `version`, advancing it.
pub async fn update(
    conn: &mut SqliteConnection,
    id: &str,
    version: i64,
    content: &Content,
    user_id: &str,
) -> Result<bool, AppError> {
    let done = sqlx::query(
        "UPDATE postmortems SET detection_method = ?, no_action_items_reason = ?,
            version = version + 1, updated_by = ?, updated_at = ?
         WHERE id = ? AND version = ?",
    )
    .bind(&content.detection_method)
    .bind(&content.no_action_items_reason)
    .bind(user_id)
    .bind(ts(Utc::now()))
    .bind(id)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_section_body(
    conn: &mut SqliteConnection,
    postmortem_id: &str,
    key: &str,
    body: &str,
) -> Result<(), AppError> {
    sqlx::query("UPDATE postmortem_sections SET body = ? WHERE postmortem_id = ? AND key = ?")
        .bind(body)
        .bind(postmortem_id)
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn replace_root_causes(
    conn: &mut SqliteConnection,
    postmortem_id: &str,
    incident_id: &str,
    causes: &[RootCause],
) -> Result<(), AppError> {
    sqlx::query("DELETE FROM root_causes WHERE postmortem_id = ?")
        .bind(postmortem_id)
        .execute(&mut *conn)
        .await?;
    for (position, c) in causes.iter().enumerate() {
        sqlx::query(
            "INSERT INTO root_causes (id, postmortem_id, incident_id, category, description,
                is_primary, position) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(new_id())
        .bind(postmortem_id)
        .bind(incident_id)
        .bind(&c.category)
        .bind(&c.description)
        .bind(c.primary)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The incident's category follows the primary root cause; the version moves so that an
/// incident edit started before this is told about it.
pub async fn set_incident_category(
    conn: &mut SqliteConnection,
    incident_id: &str,
    category: &str,
) -> Result<(), AppError> {
    sqlx::query(
        "UPDATE incidents SET category = ?, version = version + 1, updated_at = ? WHERE id = ?",
    )
    .bind(category)
    .bind(ts(Utc::now()))
    .bind(incident_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_status(
    conn: &mut SqliteConnection,
    id: &str,
    version: i64,
    to: PmStatus,
    user_id: &str,
) -> Result<bool, AppError> {
    let now = ts(Utc::now());
    let done = sqlx::query(
        "UPDATE postmortems SET status = ?, version = version + 1, updated_by = ?, updated_at = ?,
            published_at = CASE WHEN ? = 'published' THEN ? ELSE NULL END
         WHERE id = ? AND version = ?",
    )
    .bind(to.as_str())
    .bind(user_id)
    .bind(&now)
    .bind(to.as_str())
    .bind(&now)
    .bind(id)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn insert_revision(
    conn: &mut SqliteConnection,
    postmortem_id: &str,
    version: i64,
    user_id: &str,
    changed: &str,
    content: &Content,
) -> Result<(), AppError> {
    let json = serde_json::to_string(content)
        .map_err(|e| AppError::Internal(format!("revision could not be encoded: {e}")))?;
    sqlx::query(
        "INSERT INTO postmortem_revisions (postmortem_id, version, author_id, created_at, changed,
            content) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(postmortem_id)
    .bind(version)
    .bind(user_id)
    .bind(ts(Utc::now()))
    .bind(changed)
    .bind(json)
    .execute(conn)
    .await?;
    Ok(())
}

/// A revision in the history list.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct RevisionInfo {
    pub version: i64,
    pub author_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub changed: String,
}

pub async fn revisions(
    pool: &SqlitePool,
    postmortem_id: &str,
) -> Result<Vec<RevisionInfo>, AppError> {
    Ok(sqlx::query_as(
        "SELECT r.version, u.name AS author_name, r.created_at, r.changed
         FROM postmortem_revisions r LEFT JOIN users u ON u.id = r.author_id
         WHERE r.postmortem_id = ? ORDER BY r.version DESC",
    )
    .bind(postmortem_id)
    .fetch_all(pool)
    .await?)
}

/// version, author, when, what changed, content JSON.
type RevisionRow = (i64, Option<String>, DateTime<Utc>, String, String);

/// One revision's whole content.
pub async fn revision(
    pool: &SqlitePool,
    postmortem_id: &str,
    version: i64,
) -> Result<Option<(RevisionInfo, Content)>, AppError> {
    let row: Option<RevisionRow> = sqlx::query_as(
        "SELECT r.version, u.name, r.created_at, r.changed, r.content
         FROM postmortem_revisions r LEFT JOIN users u ON u.id = r.author_id
         WHERE r.postmortem_id = ? AND r.version = ?",
    )
    .bind(postmortem_id)
    .bind(version)
    .fetch_optional(pool)
    .await?;
    let Some((version, author_name, created_at, changed, json)) = row else {
        return Ok(None);
    };
    let content: Content = serde_json::from_str(&json)
        .map_err(|e| AppError::Internal(format!("revision {version} is unreadable: {e}")))?;
    Ok(Some((
        RevisionInfo {
            version,
            author_name,
            created_at,
            changed,
        },
        content,
    )))
}

pub async fn upsert_reviewer(
    conn: &mut SqliteConnection,
    postmortem_id: &str,
    user_id: &str,
    requested_by: &str,
) -> Result<(), AppError> {
    sqlx::query(
        "INSERT INTO postmortem_reviewers (postmortem_id, user_id, state, requested_by,
            requested_at) VALUES (?, ?, 'requested', ?, ?)
         ON CONFLICT (postmortem_id, user_id) DO UPDATE SET state = 'requested', comment = '',
            requested_by = excluded.requested_by, requested_at = excluded.requested_at,
            decided_at = NULL",
    )
    .bind(postmortem_id)
    .bind(user_id)
    .bind(requested_by)
    .bind(ts(Utc::now()))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn decide(
    conn: &mut SqliteConnection,
    postmortem_id: &str,
    user_id: &str,
    state: ReviewState,
    comment: &str,
) -> Result<(), AppError> {
    sqlx::query(
        "UPDATE postmortem_reviewers SET state = ?, comment = ?, decided_at = ?
         WHERE postmortem_id = ? AND user_id = ?",
    )
    .bind(state.as_str())
    .bind(comment)
    .bind(ts(Utc::now()))
    .bind(postmortem_id)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_event(
    conn: &mut SqliteConnection,
    postmortem_id: &str,
    actor_id: &str,
    kind: &str,
    from: Option<PmStatus>,
    to: Option<PmStatus>,
    comment: &str,
) -> Result<(), AppError> {
    sqlx::query(
        "INSERT INTO postmortem_events (id, postmortem_id, at, actor_id, kind, from_status,
            to_status, comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(new_id())
    .bind(postmortem_id)
    .bind(ts(Utc::now()))
    .bind(actor_id)
    .bind(kind)
    .bind(from.map(PmStatus::as_str))
    .bind(to.map(PmStatus::as_str))
    .bind(comment)
    .execute(conn)
    .await?;
    Ok(())
}

/// A step of the workflow, for the post-mortem page's activity list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub actor_name: Option<String>,
    pub kind: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub comment: String,
}

impl Event {
    /// The step in words.
    pub fn describe(&self) -> String {
        let status = |s: &Option<String>| {
            s.as_deref()
                .and_then(PmStatus::parse)
                .map_or("?", PmStatus::label)
        };
        match self.kind.as_str() {
            "started" => "started the post-mortem".to_owned(),
            "review_requested" => format!("asked {} to review", self.comment),
            "approved" => "approved".to_owned(),
            "changes_requested" => "requested changes".to_owned(),
            _ => format!(
                "moved it from {} to {}",
                status(&self.from_status),
                status(&self.to_status)
            ),
        }
    }

    /// The comment worth showing under the step (review requests carry names instead).
    pub fn note(&self) -> &str {
        if self.kind == "review_requested" {
            ""
        } else {
            &self.comment
        }
    }
}

pub async fn events(pool: &SqlitePool, postmortem_id: &str) -> Result<Vec<Event>, AppError> {
    Ok(sqlx::query_as(
        "SELECT e.at, u.name AS actor_name, e.kind, e.from_status, e.to_status, e.comment
         FROM postmortem_events e LEFT JOIN users u ON u.id = e.actor_id
         WHERE e.postmortem_id = ? ORDER BY e.at, e.rowid",
    )
    .bind(postmortem_id)
    .fetch_all(pool)
    .await?)
}

// ---------------------------------------------------------------------------------------------
// The list of post-mortems

/// Filters of the post-mortem list; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<PmStatus>,
    pub author_id: Option<String>,
    /// Only post-mortems with a review still outstanding (a reviewer who has not decided).
    pub open_review: bool,
    /// Only those this user was asked to review and has not yet.
    pub awaiting_reviewer: Option<String>,
    /// Only unpublished post-mortems started before this time.
    pub older_than: Option<DateTime<Utc>>,
}

/// A row of the post-mortem list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListRow {
    pub incident_number: i64,
    pub incident_title: String,
    pub severity: String,
    #[sqlx(try_from = "String")]
    pub status: PmStatus,
    pub author_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub pending_reviews: i64,
    pub approvals: i64,
    pub changes_requested: i64,
}

pub async fn list(pool: &SqlitePool, f: &ListFilter) -> Result<Vec<ListRow>, AppError> {
    let mut sql = String::from(
        "SELECT i.number AS incident_number, i.title AS incident_title, i.severity, p.status,
            a.name AS author_name, p.created_at, p.updated_at, p.published_at,
            (SELECT COUNT(*) FROM postmortem_reviewers r
              WHERE r.postmortem_id = p.id AND r.state = 'requested') AS pending_reviews,
            (SELECT COUNT(*) FROM postmortem_reviewers r
              WHERE r.postmortem_id = p.id AND r.state = 'approved') AS approvals,
            (SELECT COUNT(*) FROM postmortem_reviewers r
              WHERE r.postmortem_id = p.id AND r.state = 'changes_requested') AS changes_requested
         FROM postmortems p
         JOIN incidents i ON i.id = p.incident_id
         LEFT JOIN users a ON a.id = p.author_id
         WHERE 1 = 1",
    );
    if f.status.is_some() {
        sql.push_str(" AND p.status = ?");
    }
    if f.author_id.is_some() {
        sql.push_str(" AND p.author_id = ?");
    }
    if f.open_review {
        sql.push_str(
            " AND p.status = 'in_review' AND EXISTS (SELECT 1 FROM postmortem_reviewers r
                WHERE r.postmortem_id = p.id AND r.state = 'requested')",
        );
    }
    if f.awaiting_reviewer.is_some() {
        sql.push_str(
            " AND p.status = 'in_review' AND EXISTS (SELECT 1 FROM postmortem_reviewers r
                WHERE r.postmortem_id = p.id AND r.user_id = ? AND r.state = 'requested')",
        );
    }
    if f.older_than.is_some() {
        sql.push_str(" AND p.status <> 'published' AND p.created_at < ?");
    }
    sql.push_str(" ORDER BY p.status = 'published', p.created_at ASC LIMIT 500");
    let mut query = sqlx::query_as(AssertSqlSafe(sql));
    if let Some(status) = f.status {
        query = query.bind(status.as_str());
    }
    if let Some(author) = &f.author_id {
        query = query.bind(author.clone());
    }
    if let Some(reviewer) = &f.awaiting_reviewer {
        query = query.bind(reviewer.clone());
    }
    if let Some(before) = f.older_than {
        query = query.bind(ts(before));
    }
    Ok(query.fetch_all(pool).await?)
}

/// An incident that should have a post-mortem by now and has none.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Missing {
    pub number: i64,
    pub title: String,
    pub severity: String,
}

/// sev1 and sev2 incidents resolved before `resolved_before` with no post-mortem started.
pub async fn missing(
    pool: &SqlitePool,
    resolved_before: DateTime<Utc>,
) -> Result<Vec<Missing>, AppError> {
    Ok(sqlx::query_as(
        "SELECT i.number, i.title, i.severity FROM incidents i
         WHERE i.severity IN ('sev1', 'sev2') AND i.resolved_at IS NOT NULL AND i.resolved_at < ?
           AND NOT EXISTS (SELECT 1 FROM postmortems p WHERE p.incident_id = i.id)
         ORDER BY i.started_at DESC, i.number DESC LIMIT 20",
    )
    .bind(ts(resolved_before))
    .fetch_all(pool)
    .await?)
}

/// The incident page's line about its post-mortem: status, sections written and in all.
pub async fn summary(
    pool: &SqlitePool,
    incident_id: &str,
) -> Result<Option<(String, i64, i64)>, AppError> {
    Ok(sqlx::query_as(
        "SELECT p.status,
            (SELECT COUNT(*) FROM postmortem_sections s WHERE s.postmortem_id = p.id AND s.body <> ''),
            (SELECT COUNT(*) FROM postmortem_sections s WHERE s.postmortem_id = p.id)
         FROM postmortems p WHERE p.incident_id = ?",
    )
    .bind(incident_id)
    .fetch_optional(pool)
    .await?)
}

// ---------------------------------------------------------------------------------------------
// Templates

/// A template's own fields.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub description: String,
    pub is_default: bool,
    pub version: i64,
    /// Severities that start from this template, comma-separated (`sev3,sev4`).
    pub default_for: String,
    /// Post-mortems started from it.
    pub used_by: i64,
}

const TEMPLATE_SELECT: &str = "SELECT t.id, t.name, t.description, t.is_default, t.version,
        coalesce((SELECT group_concat(d.severity, ',') FROM
            (SELECT severity FROM postmortem_template_defaults WHERE template_id = t.id
             ORDER BY severity) d), '') AS default_for,
        (SELECT COUNT(*) FROM postmortems p WHERE p.template_id = t.id) AS used_by
    FROM postmortem_templates t";

pub async fn templates(pool: &SqlitePool) -> Result<Vec<Template>, AppError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "{TEMPLATE_SELECT} ORDER BY t.is_default DESC, t.name"
    )))
    .fetch_all(pool)
    .await?)
}

pub async fn template(pool: &SqlitePool, id: &str) -> Result<Option<Template>, AppError> {
    Ok(
        sqlx::query_as(AssertSqlSafe(format!("{TEMPLATE_SELECT} WHERE t.id = ?")))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// The template a new post-mortem of `severity` starts from: the severity's default, else the
/// general default, else the oldest template.
pub async fn default_template(
    pool: &SqlitePool,
    severity: &str,
) -> Result<Option<Template>, AppError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "{TEMPLATE_SELECT}
         LEFT JOIN postmortem_template_defaults d ON d.template_id = t.id AND d.severity = ?
         ORDER BY d.severity IS NULL, t.is_default DESC, t.created_at LIMIT 1"
    )))
    .bind(severity)
    .fetch_optional(pool)
    .await?)
}

pub async fn template_sections(
    pool: &SqlitePool,
    template_id: &str,
) -> Result<Vec<Section>, AppError> {
    Ok(sqlx::query_as(
        "SELECT key, title, help, required, '' AS body FROM postmortem_template_sections
         WHERE template_id = ? ORDER BY position",
    )
    .bind(template_id)
    .fetch_all(pool)
    .await?)
}

/// Inserts a template or, with `existing = Some((id, version))`, replaces it if still at that
/// version. Returns the id, or `None` on a stale version. The sections and severity defaults
/// are replaced as a whole; post-mortems already started keep their own copies.
pub async fn save_template(
    conn: &mut SqliteConnection,
    existing: Option<(&str, i64)>,
    t: &super::templates::TemplateValues,
) -> Result<Option<String>, AppError> {
    let now = ts(Utc::now());
    if t.is_default {
        sqlx::query("UPDATE postmortem_templates SET is_default = 0 WHERE is_default = 1")
            .execute(&mut *conn)
            .await?;
    }
    let id = match existing {
        Some((id, version)) => {
            let done = sqlx::query(
                "UPDATE postmortem_templates SET name = ?, description = ?, is_default = ?,
                    version = version + 1, updated_at = ? WHERE id = ? AND version = ?",
            )
            .bind(&t.name)
            .bind(&t.description)
            .bind(t.is_default)
            .bind(&now)
            .bind(id)
            .bind(version)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(None);
            }
            id.to_owned()
        }
        None => {
            let id = new_id();
            sqlx::query(
                "INSERT INTO postmortem_templates (id, name, description, is_default, version,
                    created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)",
            )
            .bind(&id)
            .bind(&t.name)
            .bind(&t.description)
            .bind(t.is_default)
            .bind(&now)
            .bind(&now)
            .execute(&mut *conn)
            .await?;
            id
        }
    };
    sqlx::query("DELETE FROM postmortem_template_sections WHERE template_id = ?")
        .bind(&id)
        .execute(&mut *conn)
        .await?;
    for (position, s) in t.sections.iter().enumerate() {
        sqlx::query(
            "INSERT INTO postmortem_template_sections (template_id, position, key, title, help,
                required) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(&s.key)
        .bind(&s.title)
        .bind(&s.help)
        .bind(s.required)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("DELETE FROM postmortem_template_defaults WHERE template_id = ?")
        .bind(&id)
        .execute(&mut *conn)
        .await?;
    for severity in &t.default_for {
        sqlx::query(
            "INSERT INTO postmortem_template_defaults (severity, template_id) VALUES (?, ?)
             ON CONFLICT (severity) DO UPDATE SET template_id = excluded.template_id",
        )
        .bind(severity.as_str())
        .bind(&id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Some(id))
}

/// Deletes a template; post-mortems started from it keep their sections and its name.
pub async fn delete_template(conn: &mut SqliteConnection, id: &str) -> Result<bool, AppError> {
    let done = sqlx::query("DELETE FROM postmortem_templates WHERE id = ? AND is_default = 0")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A sample post-mortem as `hindsight demo` writes it: from the default template, the story's
/// facts written into its sections, one primary root cause, two revisions.
#[derive(Debug, Clone)]
pub struct SamplePostmortem<'a> {
    pub incident_id: &'a str,
    pub status: &'a str,
    pub author_id: &'a str,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub summary: &'a str,
    pub impact: &'a str,
    pub root_cause: &'a str,
    pub category: &'a str,
    pub cause_description: &'a str,
}

/// Writes a sample post-mortem as given (no validation: demo data only).
pub async fn insert_sample(
    conn: &mut sqlx::SqliteConnection,
    s: &SamplePostmortem<'_>,
) -> Result<(), crate::error::AppError> {
    let id = crate::db::new_id();
    let written = s.started_at + chrono::Duration::days(2);
    let template = sqlx::query!(
        r#"SELECT id AS "id!", name FROM postmortem_templates
           ORDER BY is_default DESC, created_at LIMIT 1"#
    )
    .fetch_one(&mut *conn)
    .await?;
    let created_at = crate::db::ts(s.started_at + chrono::Duration::days(1));
    let updated_at = crate::db::ts(written);
    let published_at = crate::db::ts_opt((s.status == "published").then_some(written));
    sqlx::query!(
        "INSERT INTO postmortems (id, incident_id, status, template_id, template_name,
            detection_method, version, author_id, created_at, updated_by, updated_at, published_at)
         VALUES (?, ?, ?, ?, ?, 'alert', 2, ?, ?, ?, ?, ?)",
        id,
        s.incident_id,
        s.status,
        template.id,
        template.name,
        s.author_id,
        created_at,
        s.author_id,
        updated_at,
        published_at,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO postmortem_sections (postmortem_id, position, key, title, help, required, body)
         SELECT ?, position, key, title, help, required, CASE key
             WHEN 'summary' THEN ? WHEN 'impact' THEN ?
             WHEN 'trigger' THEN 'A change reached production without a check that would have caught it.'
             WHEN 'root_cause' THEN ?
             WHEN 'detection' THEN 'The error-rate alert paged the on-call within minutes.'
             WHEN 'resolution' THEN 'Rolled back, then fixed forward once the cause was understood.'
             WHEN 'went_well' THEN 'Paging and the rollback tooling worked as designed.'
             ELSE '' END
         FROM postmortem_template_sections WHERE template_id = ?",
        id,
        s.summary,
        s.impact,
        s.root_cause,
        template.id,
    )
    .execute(&mut *conn)
    .await?;
    let cause_id = crate::db::new_id();
    sqlx::query!(
        "INSERT INTO root_causes (id, postmortem_id, incident_id, category, description, is_primary,
            position) VALUES (?, ?, ?, ?, ?, 1, 0)",
        cause_id,
        id,
        s.incident_id,
        s.category,
        s.cause_description,
    )
    .execute(&mut *conn)
    .await?;
    for version in [1_i64, 2] {
        let at = crate::db::ts(s.started_at + chrono::Duration::days(version));
        let changed = if version == 1 {
            "Started"
        } else {
            "Summary, Impact, Trigger, Root cause, Detection, Resolution, What went well, Root causes, Detection method"
        };
        sqlx::query!(
            "INSERT INTO postmortem_revisions (postmortem_id, version, author_id, created_at,
                changed, content)
             SELECT ?, ?, ?, ?, ?, json_object('sections', json_group_array(json_object(
                 'key', key, 'title', title, 'help', help, 'required', json(CASE required WHEN 1 THEN 'true' ELSE 'false' END),
                 'body', CASE WHEN ? = 1 THEN '' ELSE body END)),
                 'root_causes', json(CASE WHEN ? = 1 THEN '[]' ELSE json_array(json_object('category', ?, 'description', ?, 'primary', json('true'))) END),
                 'detection_method', CASE WHEN ? = 1 THEN '' ELSE 'alert' END,
                 'no_action_items_reason', '')
             FROM (SELECT * FROM postmortem_sections WHERE postmortem_id = ? ORDER BY position)",
            id,
            version,
            s.author_id,
            at,
            changed,
            version,
            version,
            s.category,
            s.cause_description,
            version,
            id,
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
