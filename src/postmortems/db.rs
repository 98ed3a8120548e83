//! SQL for post-mortems and their templates: the post-mortem row (compare-and-swap on
//! `version`), sections, root causes, revisions, reviewers, workflow events and the list.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::{Content, EventKind, PmStatus, Postmortem, ReviewState, Reviewer, RootCause, Section};
use crate::db::{new_id, ts};
use crate::error::AppError;

pub async fn find_for_incident(
    pool: &SqlitePool,
    incident_id: &str,
) -> Result<Option<Postmortem>, AppError> {
    Ok(sqlx::query_as!(
        Postmortem,
        r#"SELECT p.id AS "id!", p.incident_id, p.status AS "status: PmStatus", p.template_id,
            p.template_name, p.detection_method, p.no_action_items_reason, p.version,
            p.author_id, a.name AS "author_name?", p.created_at AS "created_at: DateTime<Utc>",
            u.name AS "updated_by_name?", p.updated_at AS "updated_at: DateTime<Utc>",
            p.published_at AS "published_at: DateTime<Utc>"
        FROM postmortems p
        LEFT JOIN users a ON a.id = p.author_id
        LEFT JOIN users u ON u.id = p.updated_by
        WHERE p.incident_id = ?"#,
        incident_id
    )
    .fetch_optional(pool)
    .await?)
}

pub async fn sections(pool: &SqlitePool, postmortem_id: &str) -> Result<Vec<Section>, AppError> {
    Ok(sqlx::query_as!(
        Section,
        r#"SELECT key, title, help, required AS "required: bool", body FROM postmortem_sections
         WHERE postmortem_id = ? ORDER BY position"#,
        postmortem_id
    )
    .fetch_all(pool)
    .await?)
}

pub async fn root_causes(
    pool: &SqlitePool,
    postmortem_id: &str,
) -> Result<Vec<RootCause>, AppError> {
    Ok(sqlx::query_as!(
        RootCause,
        r#"SELECT category, description, is_primary AS "primary: bool" FROM root_causes
         WHERE postmortem_id = ? ORDER BY position"#,
        postmortem_id
    )
    .fetch_all(pool)
    .await?)
}

pub async fn reviewers(pool: &SqlitePool, postmortem_id: &str) -> Result<Vec<Reviewer>, AppError> {
    Ok(sqlx::query_as!(
        Reviewer,
        r#"SELECT r.user_id, u.name, u.email, r.state AS "state: ReviewState", r.comment,
            r.requested_at AS "requested_at: DateTime<Utc>",
            r.decided_at AS "decided_at: DateTime<Utc>"
         FROM postmortem_reviewers r JOIN users u ON u.id = r.user_id
         WHERE r.postmortem_id = ? ORDER BY r.requested_at, u.name"#,
        postmortem_id
    )
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
    let done = sqlx::query!(
        "INSERT INTO postmortems (id, incident_id, status, template_id, template_name, version,
            author_id, created_at, updated_by, updated_at)
         VALUES (?, ?, 'draft', ?, ?, 1, ?, ?, ?, ?)
         ON CONFLICT (incident_id) DO NOTHING",
        id,
        incident_id,
        template_id,
        template_name,
        user_id,
        now,
        user_id,
        now
    )
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
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        sqlx::query!(
            "INSERT INTO postmortem_sections (postmortem_id, position, key, title, help,
                required, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
            postmortem_id,
            position,
            s.key,
            s.title,
            s.help,
            s.required,
            s.body
        )
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
    let now = ts(Utc::now());
    let done = sqlx::query!(
        "UPDATE postmortems SET detection_method = ?, no_action_items_reason = ?,
            version = version + 1, updated_by = ?, updated_at = ?
         WHERE id = ? AND version = ?",
        content.detection_method,
        content.no_action_items_reason,
        user_id,
        now,
        id,
        version
    )
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
    sqlx::query!(
        "UPDATE postmortem_sections SET body = ? WHERE postmortem_id = ? AND key = ?",
        body,
        postmortem_id,
        key
    )
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
    sqlx::query!(
        "DELETE FROM root_causes WHERE postmortem_id = ?",
        postmortem_id
    )
    .execute(&mut *conn)
    .await?;
    for (position, c) in causes.iter().enumerate() {
        let id = new_id();
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        sqlx::query!(
            "INSERT INTO root_causes (id, postmortem_id, incident_id, category, description,
                is_primary, position) VALUES (?, ?, ?, ?, ?, ?, ?)",
            id,
            postmortem_id,
            incident_id,
            c.category,
            c.description,
            c.primary,
            position
        )
        .execute(&mut *conn)
        .await?;
    }
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
    let done = sqlx::query!(
        "UPDATE postmortems SET status = ?, version = version + 1, updated_by = ?, updated_at = ?,
            published_at = CASE WHEN ? = 'published' THEN ? ELSE NULL END
         WHERE id = ? AND version = ?",
        to,
        user_id,
        now,
        to,
        now,
        id,
        version
    )
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
    let now = ts(Utc::now());
    sqlx::query!(
        "INSERT INTO postmortem_revisions (postmortem_id, version, author_id, created_at, changed,
            content) VALUES (?, ?, ?, ?, ?, ?)",
        postmortem_id,
        version,
        user_id,
        now,
        changed,
        json
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A revision in the history list.
#[derive(Debug, Clone, serde::Serialize)]
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
    Ok(sqlx::query_as!(
        RevisionInfo,
        r#"SELECT r.version, u.name AS "author_name?", r.created_at AS "created_at: DateTime<Utc>",
            r.changed
         FROM postmortem_revisions r LEFT JOIN users u ON u.id = r.author_id
         WHERE r.postmortem_id = ? ORDER BY r.version DESC"#,
        postmortem_id
    )
    .fetch_all(pool)
    .await?)
}

/// One revision's whole content.
pub async fn revision(
    pool: &SqlitePool,
    postmortem_id: &str,
    version: i64,
) -> Result<Option<(RevisionInfo, Content)>, AppError> {
    let row = sqlx::query!(
        r#"SELECT r.version, u.name AS "author_name?",
            r.created_at AS "created_at: DateTime<Utc>", r.changed, r.content
         FROM postmortem_revisions r LEFT JOIN users u ON u.id = r.author_id
         WHERE r.postmortem_id = ? AND r.version = ?"#,
        postmortem_id,
        version
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let content: Content = serde_json::from_str(&row.content)
        .map_err(|e| AppError::Internal(format!("revision {} is unreadable: {e}", row.version)))?;
    Ok(Some((
        RevisionInfo {
            version: row.version,
            author_name: row.author_name,
            created_at: row.created_at,
            changed: row.changed,
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
    let now = ts(Utc::now());
    sqlx::query!(
        "INSERT INTO postmortem_reviewers (postmortem_id, user_id, state, requested_by,
            requested_at) VALUES (?, ?, 'requested', ?, ?)
         ON CONFLICT (postmortem_id, user_id) DO UPDATE SET
            state = CASE state WHEN 'changes_requested' THEN state ELSE 'requested' END,
            comment = CASE state WHEN 'changes_requested' THEN comment ELSE '' END,
            decided_at = CASE state WHEN 'changes_requested' THEN decided_at ELSE NULL END,
            requested_by = excluded.requested_by, requested_at = excluded.requested_at",
        postmortem_id,
        user_id,
        requested_by,
        now
    )
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
    let now = ts(Utc::now());
    sqlx::query!(
        "UPDATE postmortem_reviewers SET state = ?, comment = ?, decided_at = ?
         WHERE postmortem_id = ? AND user_id = ?",
        state,
        comment,
        now,
        postmortem_id,
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_event(
    conn: &mut SqliteConnection,
    postmortem_id: &str,
    actor_id: &str,
    kind: EventKind,
    from: Option<PmStatus>,
    to: Option<PmStatus>,
    comment: &str,
) -> Result<(), AppError> {
    let (id, now) = (new_id(), ts(Utc::now()));
    sqlx::query!(
        "INSERT INTO postmortem_events (id, postmortem_id, at, actor_id, kind, from_status,
            to_status, comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        id,
        postmortem_id,
        now,
        actor_id,
        kind,
        from,
        to,
        comment
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A step of the workflow, for the post-mortem page's activity list.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub actor_name: Option<String>,
    pub kind: EventKind,
    pub from_status: Option<PmStatus>,
    pub to_status: Option<PmStatus>,
    pub comment: String,
}

impl Event {
    /// The step in words.
    pub fn describe(&self) -> String {
        let status = |s: &Option<PmStatus>| s.map_or("?", PmStatus::label);
        match self.kind {
            EventKind::Started => "started the post-mortem".to_owned(),
            EventKind::ReviewRequested => format!("asked {} to review", self.comment),
            EventKind::Approved => "approved".to_owned(),
            EventKind::ChangesRequested => "requested changes".to_owned(),
            EventKind::Status => format!(
                "moved it from {} to {}",
                status(&self.from_status),
                status(&self.to_status)
            ),
        }
    }

    /// The comment worth showing under the step (review requests carry names instead).
    /// A reviewer's decision (its comment is kept out of the published page).
    pub fn is_review(&self) -> bool {
        matches!(self.kind, EventKind::Approved | EventKind::ChangesRequested)
    }

    pub fn note(&self) -> &str {
        if self.kind == EventKind::ReviewRequested {
            ""
        } else {
            &self.comment
        }
    }
}

pub async fn events(pool: &SqlitePool, postmortem_id: &str) -> Result<Vec<Event>, AppError> {
    Ok(sqlx::query_as!(
        Event,
        r#"SELECT e.at AS "at: DateTime<Utc>", u.name AS "actor_name?", e.kind AS "kind: EventKind",
            e.from_status AS "from_status: PmStatus", e.to_status AS "to_status: PmStatus",
            e.comment
         FROM postmortem_events e LEFT JOIN users u ON u.id = e.actor_id
         WHERE e.postmortem_id = ? ORDER BY e.at, e.rowid"#,
        postmortem_id
    )
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

/// Post-mortems of incidents `viewer` may see, matching the filter.
pub async fn list(
    pool: &SqlitePool,
    viewer: &crate::visibility::Viewer,
    f: &ListFilter,
) -> Result<Vec<ListRow>, AppError> {
    // Built from the filters that are set, so not a checked macro; every value is bound.
    let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT i.number AS incident_number, i.title AS incident_title, i.severity, p.status,
            a.name AS author_name, p.created_at, p.updated_at, p.published_at,
            (SELECT COUNT(*) FROM postmortem_reviewers r
              WHERE r.postmortem_id = p.id AND (r.state = 'requested'
                OR (r.state = 'changes_requested' AND r.requested_at > r.decided_at)))
              AS pending_reviews,
            (SELECT COUNT(*) FROM postmortem_reviewers r
              WHERE r.postmortem_id = p.id AND r.state = 'approved') AS approvals,
            (SELECT COUNT(*) FROM postmortem_reviewers r
              WHERE r.postmortem_id = p.id AND r.state = 'changes_requested') AS changes_requested
         FROM postmortems p
         JOIN incidents i ON i.id = p.incident_id
         LEFT JOIN users a ON a.id = p.author_id
         WHERE ",
    );
    viewer.push_visible(&mut query);
    if let Some(status) = f.status {
        query.push(" AND p.status = ").push_bind(status);
    }
    if let Some(author) = &f.author_id {
        query.push(" AND p.author_id = ").push_bind(author.clone());
    }
    if f.open_review {
        query.push(
            " AND p.status = 'in_review' AND EXISTS (SELECT 1 FROM postmortem_reviewers r
                WHERE r.postmortem_id = p.id AND (r.state = 'requested'
                  OR (r.state = 'changes_requested' AND r.requested_at > r.decided_at)))",
        );
    }
    if let Some(reviewer) = &f.awaiting_reviewer {
        query
            .push(
                " AND p.status = 'in_review' AND EXISTS (SELECT 1 FROM postmortem_reviewers r
                WHERE r.postmortem_id = p.id AND r.user_id = ",
            )
            .push_bind(reviewer.clone())
            // Asked again after requesting changes: waiting for them too.
            .push(
                " AND (r.state = 'requested'
                  OR (r.state = 'changes_requested' AND r.requested_at > r.decided_at)))",
            );
    }
    if let Some(before) = f.older_than {
        query
            .push(" AND p.status <> 'published' AND p.created_at < ")
            .push_bind(ts(before));
    }
    query.push(" ORDER BY p.status = 'published', p.created_at ASC LIMIT 500");
    Ok(query.build_query_as().fetch_all(pool).await?)
}

/// An incident that should have a post-mortem by now and has none.
#[derive(Debug, Clone)]
pub struct Missing {
    pub number: i64,
    pub title: String,
    pub severity: String,
}

/// sev1 and sev2 incidents resolved before `resolved_before` with no post-mortem started.
pub async fn missing(
    pool: &SqlitePool,
    viewer: &crate::visibility::Viewer,
    resolved_before: DateTime<Utc>,
) -> Result<Vec<Missing>, AppError> {
    let before = ts(resolved_before);
    let viewer = viewer.id();
    Ok(sqlx::query_as!(
        Missing,
        "SELECT i.number, i.title, i.severity FROM incidents i
         WHERE i.severity IN ('sev1', 'sev2') AND i.resolved_at IS NOT NULL AND i.resolved_at < ?
           AND NOT EXISTS (SELECT 1 FROM postmortems p WHERE p.incident_id = i.id)
           AND (i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x
                WHERE x.incident_id = i.id AND x.user_id = ?))
         ORDER BY i.started_at DESC, i.number DESC LIMIT 20",
        before,
        viewer
    )
    .fetch_all(pool)
    .await?)
}

/// The incident page's line about its post-mortem: status, sections written and in all.
pub async fn summary(
    pool: &SqlitePool,
    incident_id: &str,
) -> Result<Option<(String, i64, i64)>, AppError> {
    let row = sqlx::query!(
        r#"SELECT p.status,
            (SELECT COUNT(*) FROM postmortem_sections s WHERE s.postmortem_id = p.id AND s.body <> '')
                AS "written!: i64",
            (SELECT COUNT(*) FROM postmortem_sections s WHERE s.postmortem_id = p.id)
                AS "total!: i64"
         FROM postmortems p WHERE p.incident_id = ?"#,
        incident_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.status, r.written, r.total)))
}

// ---------------------------------------------------------------------------------------------
// Templates

/// A template's own fields.
#[derive(Debug, Clone, serde::Serialize)]
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

// The three template reads share their column list; the checked macros need each query whole.

pub async fn templates(pool: &SqlitePool) -> Result<Vec<Template>, AppError> {
    Ok(sqlx::query_as!(
        Template,
        r#"SELECT t.id AS "id!", t.name, t.description, t.is_default AS "is_default: bool",
            t.version,
            coalesce((SELECT group_concat(d.severity, ',') FROM
                (SELECT severity FROM postmortem_template_defaults WHERE template_id = t.id
                 ORDER BY severity) d), '') AS "default_for!: String",
            (SELECT COUNT(*) FROM postmortems p WHERE p.template_id = t.id) AS "used_by!: i64"
        FROM postmortem_templates t
        ORDER BY t.is_default DESC, t.name"#
    )
    .fetch_all(pool)
    .await?)
}

pub async fn template(pool: &SqlitePool, id: &str) -> Result<Option<Template>, AppError> {
    Ok(sqlx::query_as!(
        Template,
        r#"SELECT t.id AS "id!", t.name, t.description, t.is_default AS "is_default: bool",
            t.version,
            coalesce((SELECT group_concat(d.severity, ',') FROM
                (SELECT severity FROM postmortem_template_defaults WHERE template_id = t.id
                 ORDER BY severity) d), '') AS "default_for!: String",
            (SELECT COUNT(*) FROM postmortems p WHERE p.template_id = t.id) AS "used_by!: i64"
        FROM postmortem_templates t
        WHERE t.id = ?"#,
        id
    )
    .fetch_optional(pool)
    .await?)
}

/// The template a new post-mortem of `severity` starts from: the severity's default, else the
/// general default, else the oldest template.
pub async fn default_template(
    pool: &SqlitePool,
    severity: &str,
) -> Result<Option<Template>, AppError> {
    Ok(sqlx::query_as!(
        Template,
        r#"SELECT t.id AS "id!", t.name, t.description, t.is_default AS "is_default: bool",
            t.version,
            coalesce((SELECT group_concat(d.severity, ',') FROM
                (SELECT severity FROM postmortem_template_defaults WHERE template_id = t.id
                 ORDER BY severity) d), '') AS "default_for!: String",
            (SELECT COUNT(*) FROM postmortems p WHERE p.template_id = t.id) AS "used_by!: i64"
        FROM postmortem_templates t
        LEFT JOIN postmortem_template_defaults d ON d.template_id = t.id AND d.severity = ?
        ORDER BY d.severity IS NULL, t.is_default DESC, t.created_at LIMIT 1"#,
        severity
    )
    .fetch_optional(pool)
    .await?)
}

pub async fn template_sections(
    pool: &SqlitePool,
    template_id: &str,
) -> Result<Vec<Section>, AppError> {
    Ok(sqlx::query_as!(
        Section,
        r#"SELECT key, title, help, required AS "required: bool", '' AS "body!: String"
         FROM postmortem_template_sections
         WHERE template_id = ? ORDER BY position"#,
        template_id
    )
    .fetch_all(pool)
    .await?)
}

/// Inserts a template or, with `existing = Some((id, version))`, replaces it if still at that
/// version. Returns the id, or `None` on a stale version. The sections and severity defaults
/// are replaced as a whole; post-mortems already started keep their own copies.
pub async fn save_template(
    conn: &mut SqliteConnection,
    existing: Option<(&str, i64)>,
    t: &super::TemplateValues,
) -> Result<Option<String>, AppError> {
    let now = ts(Utc::now());
    if t.is_default {
        sqlx::query!("UPDATE postmortem_templates SET is_default = 0 WHERE is_default = 1")
            .execute(&mut *conn)
            .await?;
    }
    let id = match existing {
        Some((id, version)) => {
            let done = sqlx::query!(
                "UPDATE postmortem_templates SET name = ?, description = ?, is_default = ?,
                    version = version + 1, updated_at = ? WHERE id = ? AND version = ?",
                t.name,
                t.description,
                t.is_default,
                now,
                id,
                version
            )
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(None);
            }
            id.to_owned()
        }
        None => {
            let id = new_id();
            sqlx::query!(
                "INSERT INTO postmortem_templates (id, name, description, is_default, version,
                    created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)",
                id,
                t.name,
                t.description,
                t.is_default,
                now,
                now
            )
            .execute(&mut *conn)
            .await?;
            id
        }
    };
    sqlx::query!(
        "DELETE FROM postmortem_template_sections WHERE template_id = ?",
        id
    )
    .execute(&mut *conn)
    .await?;
    for (position, s) in t.sections.iter().enumerate() {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        sqlx::query!(
            "INSERT INTO postmortem_template_sections (template_id, position, key, title, help,
                required) VALUES (?, ?, ?, ?, ?, ?)",
            id,
            position,
            s.key,
            s.title,
            s.help,
            s.required
        )
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query!(
        "DELETE FROM postmortem_template_defaults WHERE template_id = ?",
        id
    )
    .execute(&mut *conn)
    .await?;
    for severity in &t.default_for {
        sqlx::query!(
            "INSERT INTO postmortem_template_defaults (severity, template_id) VALUES (?, ?)
             ON CONFLICT (severity) DO UPDATE SET template_id = excluded.template_id",
            severity,
            id
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(Some(id))
}

/// Deletes a template; post-mortems started from it keep their sections and its name.
pub async fn delete_template(conn: &mut SqliteConnection, id: &str) -> Result<bool, AppError> {
    let done = sqlx::query!(
        "DELETE FROM postmortem_templates WHERE id = ? AND is_default = 0",
        id
    )
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
    /// The Trigger, Detection, Resolution and What went well sections.
    pub trigger: &'a str,
    pub detection: &'a str,
    pub resolution: &'a str,
    pub went_well: &'a str,
    /// `alert`, `customer_report`, `employee`, …
    pub detection_method: &'a str,
    pub category: &'a str,
    pub cause_description: &'a str,
    /// A colleague of the author named as reviewer: approved when published, asked when in
    /// review (publishing needs an approval from someone other than the author).
    pub reviewer_id: &'a str,
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
         VALUES (?, ?, ?, ?, ?, ?, 2, ?, ?, ?, ?, ?)",
        id,
        s.incident_id,
        s.status,
        template.id,
        template.name,
        s.detection_method,
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
             WHEN 'trigger' THEN ?
             WHEN 'root_cause' THEN ?
             WHEN 'detection' THEN ?
             WHEN 'resolution' THEN ?
             WHEN 'went_well' THEN ?
             ELSE '' END
         FROM postmortem_template_sections WHERE template_id = ?",
        id,
        s.summary,
        s.impact,
        s.trigger,
        s.root_cause,
        s.detection,
        s.resolution,
        s.went_well,
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
    if s.status != "draft" {
        let approved = s.status == "published";
        let state = if approved { "approved" } else { "requested" };
        let comment = if approved {
            "Clear and blameless. Ship it."
        } else {
            ""
        };
        let requested_at = crate::db::ts(s.started_at + chrono::Duration::hours(36));
        let decided_at = crate::db::ts_opt(approved.then_some(written));
        sqlx::query!(
            "INSERT INTO postmortem_reviewers (postmortem_id, user_id, state, comment, requested_by,
                requested_at, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            id,
            s.reviewer_id,
            state,
            comment,
            s.author_id,
            requested_at,
            decided_at,
        )
        .execute(&mut *conn)
        .await?;
    }
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
                 'detection_method', CASE WHEN ? = 1 THEN '' ELSE ? END,
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
            s.detection_method,
            id,
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Drafts: one person's unsaved edit form

/// A person's kept draft: the form pairs as JSON, the version it was loaded at and when.
pub struct DraftRow {
    pub base_version: i64,
    pub form: String,
    pub saved_at: DateTime<Utc>,
}

/// Keeps (or replaces) `user_id`'s draft of the post-mortem.
pub async fn put_draft(
    conn: &mut SqliteConnection,
    pm_id: &str,
    user_id: &str,
    base_version: i64,
    form: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let at = ts(at);
    sqlx::query!(
        "INSERT INTO postmortem_drafts (postmortem_id, user_id, base_version, form, saved_at)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (postmortem_id, user_id) DO UPDATE SET
             base_version = excluded.base_version, form = excluded.form,
             saved_at = excluded.saved_at",
        pm_id,
        user_id,
        base_version,
        form,
        at,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `user_id`'s draft of the post-mortem, if one is kept.
pub async fn draft(
    pool: &SqlitePool,
    pm_id: &str,
    user_id: &str,
) -> Result<Option<DraftRow>, sqlx::Error> {
    sqlx::query_as!(
        DraftRow,
        r#"SELECT base_version, form, saved_at AS "saved_at: DateTime<Utc>"
           FROM postmortem_drafts WHERE postmortem_id = ? AND user_id = ?"#,
        pm_id,
        user_id,
    )
    .fetch_optional(pool)
    .await
}

/// Removes `user_id`'s draft; true when there was one.
pub async fn delete_draft(
    conn: &mut SqliteConnection,
    pm_id: &str,
    user_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM postmortem_drafts WHERE postmortem_id = ? AND user_id = ?",
        pm_id,
        user_id,
    )
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

// ---------------------------------------------------------------------------------------------
// Publications: what a published post-mortem showed

/// The frozen lists of a publication, as stored (JSON).
pub struct PublicationRow {
    pub version: i64,
    pub published_at: DateTime<Utc>,
    pub timeline: String,
    pub action_items: String,
    pub snapshot_ids: String,
}

/// Keeps (or replaces) the post-mortem's publication.
pub async fn put_publication(
    conn: &mut SqliteConnection,
    pm_id: &str,
    row: &PublicationRow,
) -> Result<(), sqlx::Error> {
    let at = ts(row.published_at);
    sqlx::query!(
        "INSERT INTO postmortem_publications
             (postmortem_id, version, published_at, timeline, action_items, snapshot_ids)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (postmortem_id) DO UPDATE SET
             version = excluded.version, published_at = excluded.published_at,
             timeline = excluded.timeline, action_items = excluded.action_items,
             snapshot_ids = excluded.snapshot_ids",
        pm_id,
        row.version,
        at,
        row.timeline,
        row.action_items,
        row.snapshot_ids,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The post-mortem's last publication, if it was ever published since publications are kept.
pub async fn publication(
    pool: &SqlitePool,
    pm_id: &str,
) -> Result<Option<PublicationRow>, sqlx::Error> {
    sqlx::query_as!(
        PublicationRow,
        r#"SELECT version, published_at AS "published_at: DateTime<Utc>", timeline,
               action_items, snapshot_ids
           FROM postmortem_publications WHERE postmortem_id = ?"#,
        pm_id,
    )
    .fetch_optional(pool)
    .await
}
