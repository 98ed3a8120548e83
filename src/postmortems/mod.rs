//! Blameless post-mortems: one per incident, started from a template whose sections are copied
//! in (so later template edits leave it alone), edited in Markdown with a version on every save,
//! every save kept as a revision, structured root causes, and a review workflow
//! `draft → in_review → published` (and back to draft, recorded). No axum here.

pub mod api;
pub mod db;
pub mod diff;
pub mod export;
pub mod templates;
pub mod templates_web;
pub mod web;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::User;
use crate::db::Db;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::incidents::Incident;
use crate::timeline::EntryKind;

/// What the post-mortem pages and API need, taken from the app state by `app.rs`.
#[derive(Clone)]
pub struct PostmortemsState {
    pub db: Db,
    /// The zone times are shown in (the Markdown export).
    pub tz: chrono_tz::Tz,
    /// The managed root-cause categories offered on the edit page.
    pub catalog: Arc<crate::catalog::CatalogCache>,
    /// Each recently viewed post-mortem page's shared part, by incident (`None`: not started).
    pub records: Arc<RecordCache>,
}

/// The post-mortem page's shared part per incident (see `PostmortemRecord`).
pub type RecordCache = crate::db::IncidentCache<Option<Arc<PostmortemRecord>>>;

/// What the post-mortem page shows the same to everyone: the document rendered, its
/// attachments, the writing checks' findings, the workflow's events and the people it offers.
/// The page's record is kept per incident (`PostmortemsState::records`) until a write that
/// may have changed the incident: reading it took a dozen queries and the writing checks, for
/// a page read far more often than written (and during a storm, timeline writes about another
/// incident leave it alone).
pub struct PostmortemRecord {
    pub pm: Loaded,
    pub sections: Vec<SectionView>,
    pub primary_html: String,
    pub factors: Vec<(String, String)>,
    pub no_items_html: String,
    pub entries: Arc<Vec<(crate::timeline::Entry, String)>>,
    pub snapshots: Arc<Vec<crate::signals::chart::SnapshotView>>,
    pub items: Vec<crate::action_items::ActionItem>,
    pub since: Option<Arc<SincePublishing>>,
    pub problems: Vec<String>,
    pub findings: Vec<PartFindings>,
    pub events: Vec<db::Event>,
    pub users: Vec<crate::auth::User>,
    pub markers: std::collections::HashMap<String, crate::evidence::Marker>,
}

/// A section with its rendered body.
#[derive(Clone)]
pub struct SectionView {
    pub key: String,
    pub title: String,
    pub help: String,
    pub required: bool,
    pub html: String,
    pub empty: bool,
}

/// The writing checks' findings in one part of the post-mortem.
#[derive(Clone)]
pub struct PartFindings {
    pub title: String,
    pub anchor: String,
    pub findings: Vec<crate::writing::Finding>,
}

choice!(
    PmStatus,
    "status",
    [
        Draft = "draft",
        InReview = "in_review",
        Published = "published"
    ]
);
choice!(
    Detection,
    "detection_method",
    [
        Alert = "alert",
        CustomerReport = "customer_report",
        Employee = "employee",
        AutomatedTest = "automated_test",
        Other = "other"
    ]
);
choice!(
    ReviewState,
    "state",
    [
        Requested = "requested",
        Approved = "approved",
        ChangesRequested = "changes_requested"
    ]
);

choice!(
    Decision,
    "decision",
    [Approve = "approve", RequestChanges = "request_changes"]
);
choice! {
    /// A step of the review workflow, as kept in `postmortem_events`.
    pub enum EventKind, "kind" {
        Started = "started",
        Status = "status",
        ReviewRequested = "review_requested",
        Approved = "approved",
        ChangesRequested = "changes_requested",
    }
}
choice! {
    /// The review filter of the post-mortem list: reviews still outstanding, or waiting on me.
    pub enum ReviewFilter, "review" {
        Open = "open",
        Mine = "mine",
    }
}

impl PmStatus {
    pub fn label(self) -> &'static str {
        match self {
            Self::Draft => "Draft",
            Self::InReview => "In review",
            Self::Published => "Published",
        }
    }
}

impl Detection {
    pub fn label(self) -> &'static str {
        match self {
            Self::Alert => "Alert",
            Self::CustomerReport => "Customer report",
            Self::Employee => "Employee noticed",
            Self::AutomatedTest => "Automated test",
            Self::Other => "Other",
        }
    }
}

impl ReviewState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Requested => "Review requested",
            Self::Approved => "Approved",
            Self::ChangesRequested => "Changes requested",
        }
    }
}

/// Longest section body, in characters (a long post-mortem runs to a few thousand words).
pub const SECTION_MAX: usize = 50_000;
/// Longest root-cause description or written reason.
pub const NOTE_MAX: usize = 5_000;
/// Most root-cause rows (one primary plus contributing factors).
pub const ROOT_CAUSES_MAX: usize = 20;

/// A post-mortem as stored, with names for the people it refers to.
#[derive(Debug, Clone, Serialize)]
pub struct Postmortem {
    pub id: String,
    pub incident_id: String,
    pub status: PmStatus,
    pub template_id: Option<String>,
    pub template_name: String,
    pub detection_method: String,
    pub no_action_items_reason: String,
    pub version: i64,
    pub author_id: Option<String>,
    pub author_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_by_name: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

impl Postmortem {
    pub fn detection_label(&self) -> &'static str {
        Detection::parse(&self.detection_method).map_or("Not recorded", Detection::label)
    }
}

/// One section of a post-mortem (or of a template, with an empty body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    pub key: String,
    pub title: String,
    pub help: String,
    pub required: bool,
    pub body: String,
}

/// A checked template, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateValues {
    pub name: String,
    pub description: String,
    pub is_default: bool,
    pub default_for: Vec<crate::incidents::Severity>,
    pub sections: Vec<Section>,
}

/// A root cause: the primary one, or a contributing factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootCause {
    pub category: String,
    pub description: String,
    pub primary: bool,
}

/// A named reviewer and where their review stands.
#[derive(Debug, Clone, Serialize)]
pub struct Reviewer {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub state: ReviewState,
    pub comment: String,
    pub requested_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// Everything a save can change, as kept in each revision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub sections: Vec<Section>,
    pub root_causes: Vec<RootCause>,
    pub detection_method: String,
    pub no_action_items_reason: String,
}

impl Content {
    pub fn primary(&self) -> Option<&RootCause> {
        self.root_causes.iter().find(|r| r.primary)
    }

    pub fn contributing(&self) -> impl Iterator<Item = &RootCause> {
        self.root_causes.iter().filter(|r| !r.primary)
    }

    pub fn section(&self, key: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.key == key)
    }
}

/// A root cause as typed (API body or form row).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootCauseInput {
    pub category: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub primary: bool,
}

/// A save: sections by key (sections not named stay as they are), and optionally the root
/// causes (replacing all of them), the detection method and the reason for having no items.
#[derive(Debug, Clone, Default)]
pub struct Edit {
    pub sections: Vec<(String, String)>,
    pub root_causes: Option<Vec<RootCauseInput>>,
    pub detection_method: Option<String>,
    pub no_action_items_reason: Option<String>,
}

/// Applies `edit` to `current`, checking every part and naming each problem by field
/// (`sections.summary`, `root_causes[1].category`). `categories` is the managed taxonomy.
pub fn apply(
    current: &Content,
    edit: &Edit,
    categories: &[String],
) -> Result<Content, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut next = current.clone();
    for (key, body) in &edit.sections {
        let field = format!("sections.{key}");
        match next.sections.iter_mut().find(|s| s.key == *key) {
            None => {
                errors.insert(field, "this post-mortem has no such section".into());
            }
            Some(section) => {
                if body.chars().count() > SECTION_MAX {
                    errors.insert(field, format!("must be at most {SECTION_MAX} characters"));
                } else if body.contains('\0') {
                    errors.insert(field, "must not contain NUL characters".into());
                } else {
                    // Browsers send CRLF from textareas; store one line ending so revisions
                    // and diffs compare what people wrote, not how it travelled.
                    section.body = body.replace("\r\n", "\n").trim_end().to_owned();
                }
            }
        }
    }
    if let Some(rows) = &edit.root_causes {
        let mut causes = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let category = row.category.trim();
            let description = row.description.replace("\r\n", "\n").trim().to_owned();
            // Blank rows are the empty slots of a form.
            if category.is_empty() && description.is_empty() {
                continue;
            }
            let field = format!("root_causes[{i}]");
            let known = categories.iter().find(|c| c.eq_ignore_ascii_case(category));
            match known {
                Some(name) => {
                    if description.chars().count() > NOTE_MAX {
                        errors.insert(
                            format!("{field}.description"),
                            format!("must be at most {NOTE_MAX} characters"),
                        );
                    }
                    causes.push(RootCause {
                        category: name.clone(),
                        description,
                        primary: row.primary,
                    });
                }
                None if category.is_empty() => {
                    errors.insert(format!("{field}.category"), "choose a category".into());
                }
                None => {
                    errors.insert(
                        format!("{field}.category"),
                        format!("{category:?} is not a category (an admin can add it)"),
                    );
                }
            }
        }
        if causes.iter().filter(|c| c.primary).count() > 1 {
            errors.insert(
                "root_causes".into(),
                "only one root cause can be the primary one".into(),
            );
        }
        if causes.len() > ROOT_CAUSES_MAX {
            errors.insert(
                "root_causes".into(),
                format!("at most {ROOT_CAUSES_MAX} root causes"),
            );
        }
        // The primary cause first, then contributing factors in the order given.
        causes.sort_by_key(|c| !c.primary);
        next.root_causes = causes;
    }
    if let Some(raw) = &edit.detection_method {
        let raw = raw.trim();
        if raw.is_empty() {
            next.detection_method.clear();
        } else if let Some(d) = Detection::parse_field(raw, &mut errors) {
            next.detection_method = d.as_str().to_owned();
        }
    }
    if let Some(reason) = &edit.no_action_items_reason {
        let reason = reason.replace("\r\n", "\n").trim().to_owned();
        if reason.chars().count() > NOTE_MAX {
            errors.insert(
                "no_action_items_reason".into(),
                format!("must be at most {NOTE_MAX} characters"),
            );
        }
        next.no_action_items_reason = reason;
    }
    if errors.is_empty() {
        Ok(next)
    } else {
        Err(errors)
    }
}

/// What a save changed, in words for the history list ("Summary, Root causes").
pub fn changed(old: &Content, new: &Content) -> Vec<String> {
    let mut out: Vec<String> = new
        .sections
        .iter()
        .filter(|s| old.section(&s.key).is_none_or(|o| o.body != s.body))
        .map(|s| s.title.clone())
        .collect();
    if old.root_causes != new.root_causes {
        out.push("Root causes".into());
    }
    if old.detection_method != new.detection_method {
        out.push("Detection method".into());
    }
    if old.no_action_items_reason != new.no_action_items_reason {
        out.push("Reason for no action items".into());
    }
    out
}

/// What stands between a post-mortem and publishing, each said so a person can fix it.
pub fn publish_problems(
    status: PmStatus,
    content: &Content,
    action_items: usize,
    reviewers: &[Reviewer],
    author_id: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    if status == PmStatus::Draft {
        out.push("Request a review first: publishing follows review.".to_owned());
    }
    let missing: Vec<&str> = content
        .sections
        .iter()
        .filter(|s| s.required && s.body.trim().is_empty())
        .map(|s| s.title.as_str())
        .collect();
    if !missing.is_empty() {
        out.push(format!(
            "Fill in the required sections: {}.",
            missing.join(", ")
        ));
    }
    if content.primary().is_none() {
        out.push("Set the primary root cause (its category and what it was).".to_owned());
    }
    if action_items == 0 && content.no_action_items_reason.trim().is_empty() {
        out.push(
            "Add at least one action item, or write down why this incident needs none.".to_owned(),
        );
    }
    let asking: Vec<&str> = reviewers
        .iter()
        .filter(|r| r.state == ReviewState::ChangesRequested)
        .map(|r| r.name.as_str())
        .collect();
    if !asking.is_empty() {
        out.push(format!(
            "Changes were requested by {}: address them and ask again; their approval lifts the request.",
            asking.join(", ")
        ));
    }
    let approved = reviewers
        .iter()
        .any(|r| r.state == ReviewState::Approved && Some(r.user_id.as_str()) != author_id);
    if status != PmStatus::Draft && !approved {
        out.push(
            "At least one reviewer other than the author must approve it: publishing needs an approval."
                .to_owned(),
        );
    }
    out
}

/// A status as typed into a form or API body.
pub fn parse_status(raw: &str) -> AppResult<PmStatus> {
    PmStatus::parse_or_refuse(raw)
}

/// A review decision as typed: `approve` (true) or `request_changes` (false).
pub fn parse_decision(raw: &str) -> AppResult<bool> {
    Decision::parse_or_refuse(raw).map(|d| d == Decision::Approve)
}

/// Which moves the workflow allows.
pub fn can_move(from: PmStatus, to: PmStatus) -> bool {
    use PmStatus::{Draft, InReview, Published};
    matches!(
        (from, to),
        (Draft, InReview) | (InReview, Published) | (InReview, Draft) | (Published, Draft)
    )
}

/// A post-mortem with everything shown alongside it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub pm: Postmortem,
    pub content: Content,
    pub reviewers: Vec<Reviewer>,
}

/// Loads the post-mortem of an incident, if one was started.
pub async fn load(db: &Db, incident_id: &str) -> AppResult<Option<Loaded>> {
    let Some(pm) = db::find_for_incident(&db.reader, incident_id).await? else {
        return Ok(None);
    };
    Ok(Some(load_parts(&db.reader, pm).await?))
}

async fn load_parts(pool: &sqlx::SqlitePool, pm: Postmortem) -> AppResult<Loaded> {
    let content = Content {
        sections: db::sections(pool, &pm.id).await?,
        root_causes: db::root_causes(pool, &pm.id).await?,
        detection_method: pm.detection_method.clone(),
        no_action_items_reason: pm.no_action_items_reason.clone(),
    };
    let reviewers = db::reviewers(pool, &pm.id).await?;
    Ok(Loaded {
        pm,
        content,
        reviewers,
    })
}

/// Reads back a post-mortem right after a write, from the writer (the readers may lag).
async fn reload(db: &Db, incident_id: &str) -> AppResult<Loaded> {
    let pm = db::find_for_incident(&db.writer, incident_id)
        .await?
        .ok_or_else(|| AppError::missing("post-mortem"))?;
    load_parts(&db.writer, pm).await
}

/// Starts the incident's post-mortem from `template_id`, or from the default template for the
/// incident's severity. Starting twice returns the one already there.
pub async fn start(
    db: &Db,
    user: &User,
    incident: &Incident,
    template_id: Option<&str>,
) -> AppResult<Loaded> {
    if let Some(existing) = load(db, &incident.id).await? {
        return Ok(existing);
    }
    let template = match template_id.map(str::trim).filter(|t| !t.is_empty()) {
        Some(id) => db::template(&db.reader, id)
            .await?
            .ok_or_else(|| AppError::field("template", "no such template"))?,
        None => db::default_template(&db.reader, incident.severity.as_str())
            .await?
            .ok_or_else(|| {
                AppError::field("template", "there is no template yet; an admin can add one")
            })?,
    };
    let sections = db::template_sections(&db.reader, &template.id).await?;
    let content = Content {
        sections,
        ..Content::default()
    };
    let mut tx = db.begin_write().await?;
    let Some(id) = db::insert(
        &mut tx,
        &incident.id,
        &template.id,
        &template.name,
        &user.id,
    )
    .await?
    else {
        // Someone started it a moment ago.
        drop(tx);
        return reload(db, &incident.id).await;
    };
    db::insert_sections(&mut tx, &id, &content.sections).await?;
    db::insert_revision(&mut tx, &id, 1, &user.id, "Started", &content).await?;
    db::insert_event(
        &mut tx,
        &id,
        &user.id,
        EventKind::Started,
        None,
        Some(PmStatus::Draft),
        "",
    )
    .await?;
    crate::timeline::db::insert(
        &mut tx,
        &incident.id,
        Utc::now(),
        EntryKind::Note,
        &format!(
            "Post-mortem started from the **{}** template.",
            crate::markdown::escape(&template.name)
        ),
        Some(&user.id),
    )
    .await?;
    tx.commit().await?;
    reload(db, &incident.id).await
}

/// The 409 for a save or move made from an old version, carrying the post-mortem as it is now.
fn conflict(now: &Loaded) -> AppError {
    AppError::conflict("this post-mortem", now.pm.version, now.clone())
}

/// The names the writing checks know as people, compiled once for a request: every active
/// user, so "Bob broke the build" is flagged when Bob uses Hindsight. The pages and the API
/// check every part of a post-mortem against the same [`People`](crate::writing::People).
pub async fn writing_people(db: &Db) -> AppResult<crate::writing::People> {
    let users = crate::auth::db::list_active_users(&db.reader).await?;
    Ok(crate::writing::People::new(users.iter().map(|u| &u.name)))
}

/// Saves an edit made from `version`. A stale version is a 409 with the post-mortem as it is
/// now and nothing written; a published post-mortem is read-only until reopened. A save that
/// changes nothing keeps the version. When the primary root cause's category changes, the
/// incident's category follows it (the recurrence report counts incidents by category).
pub async fn save(
    db: &Db,
    user: &User,
    incident: &Incident,
    version: i64,
    edit: &Edit,
) -> AppResult<Loaded> {
    let current = load(db, &incident.id)
        .await?
        .ok_or_else(|| AppError::missing("post-mortem (start it first)"))?;
    if current.pm.status == PmStatus::Published {
        return Err(AppError::field(
            "status",
            "the post-mortem is published and read-only; reopen it as a draft to change it",
        ));
    }
    let categories: Vec<String> = crate::catalog::db::list_categories(&db.reader)
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
    let next = apply(&current.content, edit, &categories).map_err(AppError::fields)?;
    if current.pm.version != version {
        return Err(conflict(&current));
    }
    let what = changed(&current.content, &next);
    if what.is_empty() {
        // Saved as it was: the person's draft (if any) has been dealt with all the same.
        discard_draft_of(db, &current.pm.id, user).await?;
        return Ok(current);
    }
    let mut tx = db.begin_write().await?;
    // The draft being saved is no longer unsaved.
    db::delete_draft(&mut tx, &current.pm.id, &user.id).await?;
    if !db::update(&mut tx, &current.pm.id, version, &next, &user.id).await? {
        drop(tx);
        return Err(conflict(&reload(db, &incident.id).await?));
    }
    for section in &next.sections {
        if current.content.section(&section.key) != Some(section) {
            db::set_section_body(&mut tx, &current.pm.id, &section.key, &section.body).await?;
        }
    }
    if next.root_causes != current.content.root_causes {
        db::replace_root_causes(&mut tx, &current.pm.id, &incident.id, &next.root_causes).await?;
    }
    db::insert_revision(
        &mut tx,
        &current.pm.id,
        version + 1,
        &user.id,
        &what.join(", "),
        &next,
    )
    .await?;
    if let Some(primary) = next.primary()
        && !primary.category.eq_ignore_ascii_case(&incident.category)
        && current.content.primary().map(|p| &p.category) != Some(&primary.category)
    {
        crate::incidents::db::set_category(&mut tx, &incident.id, &primary.category).await?;
        crate::timeline::db::insert(
            &mut tx,
            &incident.id,
            Utc::now(),
            EntryKind::Note,
            &format!(
                "Category set to **{}**, the post-mortem's primary root cause (was {}).",
                crate::markdown::escape(&primary.category),
                crate::markdown::escape(&incident.category)
            ),
            Some(&user.id),
        )
        .await?;
    }
    tx.commit().await?;
    reload(db, &incident.id).await
}

// ---------------------------------------------------------------------------------------------
// Drafts: the editor's autosave

/// A person's unsaved edit of the post-mortem, kept by the editor while they type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// The edit form's fields as typed (name, value), as the edit page posts them.
    pub pairs: Vec<(String, String)>,
    /// The version the edit page was loaded at.
    pub base_version: i64,
    pub saved_at: DateTime<Utc>,
}

/// What became of an autosave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DraftKept {
    Kept(DateTime<Utc>),
    /// The post-mortem was saved since the page was loaded and this person has no draft
    /// open: most likely their own Save overtook this autosave, so keeping it would bring
    /// back text that is already saved. The page keeps the text; saving it shows a merge.
    Stale {
        current_version: i64,
    },
}

/// Most fields a draft keeps: the edit form has one per section, root cause and factor.
const DRAFT_MAX_FIELDS: usize = 200;

/// Keeps what `user` has typed into the edit form (`pairs`, as the form posts them), replacing
/// their earlier draft. Drafts are private to their author and read by no cached page, so the
/// commit leaves the read caches alone.
pub async fn keep_draft(
    db: &Db,
    user: &User,
    incident: &Incident,
    pairs: Vec<(String, String)>,
) -> AppResult<DraftKept> {
    let current = load(db, &incident.id)
        .await?
        .ok_or_else(|| AppError::missing("post-mortem (start it first)"))?;
    if current.pm.status == PmStatus::Published {
        return Err(AppError::field(
            "status",
            "the post-mortem is published and read-only; reopen it as a draft to change it",
        ));
    }
    if pairs.len() > DRAFT_MAX_FIELDS {
        return Err(AppError::field(
            "form",
            format!("has more than {DRAFT_MAX_FIELDS} fields; this is not the edit form"),
        ));
    }
    let base_version = pairs
        .iter()
        .find(|(name, _)| name == "version")
        .and_then(|(_, v)| v.trim().parse::<i64>().ok())
        .filter(|v| (1..=current.pm.version).contains(v))
        .ok_or_else(|| {
            AppError::field(
                "version",
                "the form lacks the version it was loaded at; reload the page",
            )
        })?;
    let had_draft = db::draft(&db.reader, &current.pm.id, &user.id)
        .await?
        .is_some();
    if base_version < current.pm.version && !had_draft {
        return Ok(DraftKept::Stale {
            current_version: current.pm.version,
        });
    }
    // The button pressed is not part of what was typed.
    let kept: Vec<(String, String)> = pairs.into_iter().filter(|(n, _)| n != "action").collect();
    let form = serde_json::to_string(&kept)
        .map_err(|e| AppError::Internal(format!("encoding a draft: {e}")))?;
    let at = Utc::now();
    let mut tx = db.begin_write().await?;
    db::put_draft(&mut tx, &current.pm.id, &user.id, base_version, &form, at).await?;
    tx.commit_private().await?;
    Ok(DraftKept::Kept(at))
}

/// `user`'s kept draft of the post-mortem `pm_id`, if any (one that cannot be read back, which
/// only a hand-edited database holds, counts as none).
pub async fn draft_of(db: &Db, pm_id: &str, user: &User) -> AppResult<Option<Draft>> {
    let Some(row) = db::draft(&db.reader, pm_id, &user.id).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_str(&row.form).ok().map(|pairs| Draft {
        pairs,
        base_version: row.base_version,
        saved_at: row.saved_at,
    }))
}

/// Throws away `user`'s draft of the post-mortem; true when there was one.
pub async fn discard_draft(db: &Db, user: &User, incident: &Incident) -> AppResult<bool> {
    let current = load(db, &incident.id)
        .await?
        .ok_or_else(|| AppError::missing("post-mortem"))?;
    discard_draft_of(db, &current.pm.id, user).await
}

async fn discard_draft_of(db: &Db, pm_id: &str, user: &User) -> AppResult<bool> {
    if db::draft(&db.reader, pm_id, &user.id).await?.is_none() {
        return Ok(false);
    }
    let mut tx = db.begin_write().await?;
    let gone = db::delete_draft(&mut tx, pm_id, &user.id).await?;
    tx.commit_private().await?;
    Ok(gone)
}

/// Asks named reviewers (by email or id) and moves a draft to review. The post-mortem's author
/// cannot be named (nor can the person asking). Asking again renews an approval into a fresh
/// request, but an open "changes requested" stays until that reviewer decides again: asking
/// cannot erase it.
pub async fn request_review(
    db: &Db,
    user: &User,
    incident: &Incident,
    reviewers: &[String],
) -> AppResult<Loaded> {
    let current = load(db, &incident.id)
        .await?
        .ok_or_else(|| AppError::missing("post-mortem"))?;
    if current.pm.status == PmStatus::Published {
        return Err(AppError::field(
            "status",
            "the post-mortem is published; reopen it before asking for another review",
        ));
    }
    let mut people = Vec::new();
    let mut errors = FieldErrors::new();
    for raw in reviewers.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
        match crate::auth::db::find_user_by_email_or_id(&db.reader, raw).await? {
            Some(u) if current.pm.author_id.as_deref() == Some(u.id.as_str()) => {
                errors.insert(
                    "reviewers".into(),
                    format!(
                        "{} wrote this post-mortem: authors do not review their own post-mortem",
                        u.name
                    ),
                );
            }
            Some(u) if u.id == user.id => {
                errors.insert(
                    "reviewers".into(),
                    "ask someone else: nobody reviews at their own request".into(),
                );
            }
            Some(u) if !u.can_be_assigned() => {
                errors.insert("reviewers".into(), u.assignment_refusal("reviewer"));
            }
            Some(u) => {
                if !people.iter().any(|p: &User| p.id == u.id) {
                    people.push(u);
                }
            }
            None => {
                errors.insert("reviewers".into(), format!("no user is {raw}"));
            }
        }
    }
    if people.is_empty() && errors.is_empty() {
        errors.insert("reviewers".into(), "name at least one reviewer".into());
    }
    if !errors.is_empty() {
        return Err(AppError::fields(errors));
    }
    let mut tx = db.begin_write().await?;
    for person in &people {
        db::upsert_reviewer(&mut tx, &current.pm.id, &person.id, &user.id).await?;
        let notice = crate::inbox::Notice {
            kind: crate::inbox::Kind::ReviewRequested,
            incident_id: &incident.id,
            text: "asked you to review the post-mortem".to_owned(),
            link_suffix: "/postmortem".to_owned(),
        };
        crate::inbox::deliver(&mut tx, &person.id, Some(user), &notice).await?;
    }
    let names: Vec<&str> = people.iter().map(|p| p.name.as_str()).collect();
    db::insert_event(
        &mut tx,
        &current.pm.id,
        &user.id,
        EventKind::ReviewRequested,
        None,
        None,
        &names.join(", "),
    )
    .await?;
    if current.pm.status == PmStatus::Draft {
        move_status(
            &mut tx,
            user,
            incident,
            &current,
            PmStatus::InReview,
            &format!("review requested from {}", names.join(", ")),
        )
        .await?;
    }
    tx.commit().await?;
    reload(db, &incident.id).await
}

/// A reviewer's decision. Requesting changes needs a comment saying which.
pub async fn decide(
    db: &Db,
    user: &User,
    incident: &Incident,
    approve: bool,
    comment: &str,
) -> AppResult<Loaded> {
    let current = load(db, &incident.id)
        .await?
        .ok_or_else(|| AppError::missing("post-mortem"))?;
    if current.pm.status != PmStatus::InReview {
        return Err(AppError::field(
            "decision",
            "the post-mortem is not in review right now",
        ));
    }
    if current.pm.author_id.as_deref() == Some(user.id.as_str()) {
        return Err(AppError::Forbidden(
            "you wrote this post-mortem: only someone other than its author can review it".into(),
        ));
    }
    if !current.reviewers.iter().any(|r| r.user_id == user.id) {
        return Err(AppError::Forbidden(
            "only the reviewers named on this post-mortem can review it".into(),
        ));
    }
    let comment = comment.replace("\r\n", "\n").trim().to_owned();
    if !approve && comment.is_empty() {
        return Err(AppError::field(
            "comment",
            "say what should change, so the author knows what to do",
        ));
    }
    if comment.chars().count() > NOTE_MAX {
        return Err(AppError::field(
            "comment",
            format!("must be at most {NOTE_MAX} characters"),
        ));
    }
    let state = if approve {
        ReviewState::Approved
    } else {
        ReviewState::ChangesRequested
    };
    let mut tx = db.begin_write().await?;
    db::decide(&mut tx, &current.pm.id, &user.id, state, &comment).await?;
    if let Some(author) = &current.pm.author_id {
        let notice = crate::inbox::Notice {
            kind: if approve {
                crate::inbox::Kind::Approved
            } else {
                crate::inbox::Kind::ChangesRequested
            },
            incident_id: &incident.id,
            text: match (approve, comment.is_empty()) {
                (true, true) => "approved your post-mortem".to_owned(),
                (true, false) => format!("approved your post-mortem: “{comment}”"),
                (false, _) => format!("requested changes to your post-mortem: “{comment}”"),
            },
            link_suffix: "/postmortem".to_owned(),
        };
        crate::inbox::deliver(&mut tx, author, Some(user), &notice).await?;
    }
    let kind = if approve {
        EventKind::Approved
    } else {
        EventKind::ChangesRequested
    };
    db::insert_event(
        &mut tx,
        &current.pm.id,
        &user.id,
        kind,
        None,
        None,
        &comment,
    )
    .await?;
    let verb = if approve {
        "approved the post-mortem"
    } else {
        "requested changes to the post-mortem"
    };
    // The comment stays in the review record (the post-mortem's activity), not on the
    // incident's timeline: the timeline is part of the published document and its export, and
    // a review comment often quotes exactly what had to be taken out ("redact the password…").
    let body = format!("{} {verb}.", crate::markdown::escape(&user.name));
    crate::timeline::db::insert(
        &mut tx,
        &incident.id,
        Utc::now(),
        EntryKind::Note,
        &body,
        Some(&user.id),
    )
    .await?;
    tx.commit().await?;
    reload(db, &incident.id).await
}

/// Moves the post-mortem along the workflow from `version`. Publishing checks
/// `publish_problems`; going back to draft (withdrawing a review or reopening a published
/// post-mortem) is recorded with its reason.
pub async fn set_status(
    db: &Db,
    user: &User,
    incident: &Incident,
    version: Option<i64>,
    to: PmStatus,
    comment: &str,
) -> AppResult<Loaded> {
    let current = load(db, &incident.id)
        .await?
        .ok_or_else(|| AppError::missing("post-mortem"))?;
    if version.is_some_and(|v| v != current.pm.version) {
        return Err(conflict(&current));
    }
    if current.pm.status == to {
        return Ok(current);
    }
    if !can_move(current.pm.status, to) {
        return Err(AppError::field(
            "status",
            format!(
                "a post-mortem cannot go from {} to {}",
                current.pm.status.as_str(),
                to.as_str()
            ),
        ));
    }
    let comment = comment.replace("\r\n", "\n").trim().to_owned();
    if comment.chars().count() > NOTE_MAX {
        return Err(AppError::field(
            "comment",
            format!("must be at most {NOTE_MAX} characters"),
        ));
    }
    if to == PmStatus::Published {
        let items = crate::action_items::db::list_for_incident(&db.reader, &incident.id).await?;
        let problems = publish_problems(
            current.pm.status,
            &current.content,
            items.len(),
            &current.reviewers,
            current.pm.author_id.as_deref(),
        );
        if !problems.is_empty() {
            return Err(AppError::Validation {
                message: format!("not ready to publish: {}", problems.join(" ")),
                fields: [("status".to_owned(), problems.join(" "))].into(),
            });
        }
    }
    let mut tx = db.begin_write().await?;
    move_status(&mut tx, user, incident, &current, to, &comment).await?;
    if to == PmStatus::Published {
        freeze(&mut tx, incident, &current.pm.id, current.pm.version + 1).await?;
        if let Some(author) = &current.pm.author_id {
            let notice = crate::inbox::Notice {
                kind: crate::inbox::Kind::Published,
                incident_id: &incident.id,
                text: "published your post-mortem".to_owned(),
                link_suffix: "/postmortem".to_owned(),
            };
            crate::inbox::deliver(&mut tx, author, Some(user), &notice).await?;
        }
        crate::incidents::notify(
            &mut tx,
            crate::notifications::Event::PostmortemPublished,
            incident,
            format!(
                "The post-mortem of {} is published: {}",
                incident.key(),
                incident.title
            ),
        )
        .await?;
    }
    tx.commit().await?;
    reload(db, &incident.id).await
}

// ---------------------------------------------------------------------------------------------
// Publications: a published post-mortem stays as it was published

/// What the post-mortem document shows besides its own text: the incident's timeline, action
/// items and snapshots — as they were at publishing once published (later changes are listed
/// apart, in `since`), live before that.
pub struct Attachments {
    pub timeline: Vec<crate::timeline::Entry>,
    pub items: Vec<crate::action_items::ActionItem>,
    pub snapshots: Vec<crate::signals::db::Snapshot>,
    /// Set on a published post-mortem: what changed on the incident after publishing.
    pub since: Option<SincePublishing>,
}

/// Timeline entries and action items added or changed after the post-mortem was published:
/// shown on the live page, never in the published document or its export.
pub struct SincePublishing {
    pub published_at: DateTime<Utc>,
    pub entries: Vec<crate::timeline::Entry>,
    pub items: Vec<crate::action_items::ActionItem>,
}

impl SincePublishing {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.items.is_empty()
    }
}

/// Keeps the incident's timeline, action items and snapshot ids as they are now, inside the
/// publishing transaction (so they include its own "published" entry and nothing later).
async fn freeze(
    tx: &mut crate::db::WriteTx,
    incident: &Incident,
    pm_id: &str,
    version: i64,
) -> AppResult<()> {
    let timeline = crate::timeline::db::list_for_incident(&mut **tx, &incident.id).await?;
    let items = crate::action_items::db::list_for_incident(&mut **tx, &incident.id).await?;
    let snapshots = crate::signals::db::list_for_incident(&mut **tx, &incident.id).await?;
    let json = |value: serde_json::Result<String>| {
        value.map_err(|e| AppError::Internal(format!("freezing the publication: {e}")))
    };
    let snapshot_ids: Vec<&str> = snapshots.iter().map(|s| s.id.as_str()).collect();
    let row = db::PublicationRow {
        version,
        published_at: Utc::now(),
        timeline: json(serde_json::to_string(&timeline))?,
        action_items: json(serde_json::to_string(&items))?,
        snapshot_ids: json(serde_json::to_string(&snapshot_ids))?,
    };
    db::put_publication(tx, pm_id, &row).await?;
    Ok(())
}

/// The timeline, action items and snapshots the document of `pm` shows (see [`Attachments`]).
/// A post-mortem published before publications were kept shows the live lists.
pub async fn attachments(db: &Db, incident: &Incident, pm: &Loaded) -> AppResult<Attachments> {
    let pool = &db.reader;
    let timeline = crate::timeline::db::list_for_incident(pool, &incident.id).await?;
    let items = crate::action_items::db::list_for_incident(pool, &incident.id).await?;
    let snapshots = crate::signals::db::list_for_incident(pool, &incident.id).await?;
    let frozen = if pm.pm.status == PmStatus::Published {
        db::publication(pool, &pm.pm.id).await?
    } else {
        None
    };
    let Some(row) = frozen else {
        return Ok(Attachments {
            timeline,
            items,
            snapshots,
            since: None,
        });
    };
    let unreadable = |e: serde_json::Error| {
        AppError::Internal(format!(
            "reading the publication of {}: {e}",
            incident.key()
        ))
    };
    let kept_timeline: Vec<crate::timeline::Entry> =
        serde_json::from_str(&row.timeline).map_err(unreadable)?;
    let kept_items: Vec<crate::action_items::ActionItem> =
        serde_json::from_str(&row.action_items).map_err(unreadable)?;
    let kept_snapshots: Vec<String> =
        serde_json::from_str(&row.snapshot_ids).map_err(unreadable)?;
    // Added or edited since: an id the copy lacks, or a version it has an older one of.
    let entries = timeline
        .into_iter()
        .filter(|e| {
            !kept_timeline
                .iter()
                .any(|k| k.id == e.id && k.version == e.version)
        })
        .collect();
    let changed_items = items
        .into_iter()
        .filter(|i| {
            !kept_items
                .iter()
                .any(|k| k.id == i.id && k.version == i.version)
        })
        .collect();
    Ok(Attachments {
        timeline: kept_timeline,
        items: kept_items,
        snapshots: snapshots
            .into_iter()
            .filter(|s| kept_snapshots.contains(&s.id))
            .collect(),
        since: Some(SincePublishing {
            published_at: row.published_at,
            entries,
            items: changed_items,
        }),
    })
}

async fn move_status(
    tx: &mut crate::db::WriteTx,
    user: &User,
    incident: &Incident,
    current: &Loaded,
    to: PmStatus,
    comment: &str,
) -> AppResult<()> {
    if !db::set_status(tx, &current.pm.id, current.pm.version, to, &user.id).await? {
        return Err(conflict(current));
    }
    db::insert_event(
        tx,
        &current.pm.id,
        &user.id,
        EventKind::Status,
        Some(current.pm.status),
        Some(to),
        comment,
    )
    .await?;
    let what = match (current.pm.status, to) {
        (_, PmStatus::InReview) => "Post-mortem sent for review".to_owned(),
        (_, PmStatus::Published) => "Post-mortem published".to_owned(),
        (PmStatus::Published, PmStatus::Draft) => "Post-mortem reopened as a draft".to_owned(),
        _ => "Post-mortem taken back to draft".to_owned(),
    };
    let body = if comment.is_empty() {
        format!("{what}.")
    } else {
        format!("{what}: {}", crate::markdown::escape(comment))
    };
    crate::timeline::db::insert(
        tx,
        &incident.id,
        Utc::now(),
        EntryKind::Note,
        &body,
        Some(&user.id),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(key: &str, required: bool, body: &str) -> Section {
        Section {
            key: key.into(),
            title: key.to_uppercase(),
            help: String::new(),
            required,
            body: body.into(),
        }
    }

    fn content() -> Content {
        Content {
            sections: vec![section("summary", true, ""), section("lucky", false, "")],
            ..Content::default()
        }
    }

    fn categories() -> Vec<String> {
        vec!["deploy".into(), "config change".into(), "unknown".into()]
    }

    fn cause(category: &str, description: &str, primary: bool) -> RootCauseInput {
        RootCauseInput {
            category: category.into(),
            description: description.into(),
            primary,
        }
    }

    #[test]
    fn apply_changes_named_sections_and_keeps_the_rest() {
        let mut start = content();
        start.sections[1].body = "kept".into();
        let edit = Edit {
            sections: vec![(
                "summary".into(),
                "Checkout failed.\r\nFor 20 min.\n\n".into(),
            )],
            ..Edit::default()
        };
        let next = apply(&start, &edit, &categories()).expect("valid edit");
        assert_eq!(next.sections[0].body, "Checkout failed.\nFor 20 min.");
        assert_eq!(next.sections[1].body, "kept");
        assert_eq!(changed(&start, &next), vec!["SUMMARY".to_owned()]);
    }

    #[test]
    fn apply_names_each_bad_part() {
        let edit = Edit {
            sections: vec![
                ("nope".into(), "x".into()),
                ("summary".into(), "y".repeat(SECTION_MAX + 1)),
            ],
            root_causes: Some(vec![
                cause("deploy", "a", true),
                cause("cosmic rays", "b", false),
                cause("", "no category", false),
                cause("config change", "c", true),
            ]),
            detection_method: Some("psychic".into()),
            no_action_items_reason: None,
        };
        let errors = apply(&content(), &edit, &categories()).expect_err("invalid edit");
        for field in [
            "sections.nope",
            "sections.summary",
            "root_causes[1].category",
            "root_causes[2].category",
            "root_causes",
            "detection_method",
        ] {
            assert!(errors.contains_key(field), "{field} missing in {errors:?}");
        }
    }

    #[test]
    fn root_causes_skip_blank_rows_put_primary_first_and_use_the_taxonomy_spelling() {
        let edit = Edit {
            root_causes: Some(vec![
                cause("Config Change", "flag flipped", false),
                cause("", "", false),
                cause("DEPLOY", " bad build ", true),
            ]),
            ..Edit::default()
        };
        let next = apply(&content(), &edit, &categories()).expect("valid");
        assert_eq!(
            next.root_causes,
            vec![
                RootCause {
                    category: "deploy".into(),
                    description: "bad build".into(),
                    primary: true
                },
                RootCause {
                    category: "config change".into(),
                    description: "flag flipped".into(),
                    primary: false
                },
            ]
        );
        assert_eq!(changed(&content(), &next), vec!["Root causes".to_owned()]);
    }

    #[test]
    fn publishing_lists_exactly_what_is_missing() {
        let c = content();
        let problems = publish_problems(PmStatus::Draft, &c, 0, &[], Some("author"));
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[1].contains("SUMMARY") && !problems[1].contains("LUCKY"));

        let reviewer = |id: &str, state: ReviewState| Reviewer {
            user_id: id.into(),
            name: "Grace".into(),
            email: "g@example.com".into(),
            state,
            comment: "more on detection".into(),
            requested_at: Utc::now(),
            decided_at: None,
        };
        let approved = [reviewer("grace", ReviewState::Approved)];
        let mut ready = content();
        ready.sections[0].body = "done".into();
        ready.root_causes.push(RootCause {
            category: "deploy".into(),
            description: String::new(),
            primary: true,
        });
        assert!(
            publish_problems(PmStatus::InReview, &ready, 1, &approved, Some("author")).is_empty()
        );
        // A written reason stands in for action items; whitespace does not.
        ready.no_action_items_reason = "  ".into();
        assert_eq!(
            publish_problems(PmStatus::InReview, &ready, 0, &approved, Some("author")).len(),
            1
        );
        ready.no_action_items_reason = "one-off hardware fault, replaced".into();
        assert!(
            publish_problems(PmStatus::InReview, &ready, 0, &approved, Some("author")).is_empty()
        );

        let asking = [
            reviewer("grace", ReviewState::ChangesRequested),
            reviewer("alan", ReviewState::Approved),
        ];
        let problems = publish_problems(PmStatus::InReview, &ready, 1, &asking, Some("author"));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("Grace"));
    }

    #[test]
    fn publishing_needs_an_approval_from_someone_other_than_the_author() {
        let mut ready = content();
        ready.sections[0].body = "done".into();
        ready.root_causes.push(RootCause {
            category: "deploy".into(),
            description: String::new(),
            primary: true,
        });
        let problems = publish_problems(PmStatus::InReview, &ready, 1, &[], Some("ada"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("approve"));
        let own = Reviewer {
            user_id: "ada".into(),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            state: ReviewState::Approved,
            comment: String::new(),
            requested_at: Utc::now(),
            decided_at: None,
        };
        assert_eq!(
            publish_problems(PmStatus::InReview, &ready, 1, &[own], Some("ada")).len(),
            1,
            "the author's own approval does not count"
        );
    }

    #[test]
    fn the_workflow_allows_review_publish_and_reopen_only() {
        use PmStatus::{Draft, InReview, Published};
        assert!(can_move(Draft, InReview));
        assert!(can_move(InReview, Published));
        assert!(can_move(Published, Draft));
        assert!(can_move(InReview, Draft));
        assert!(!can_move(Draft, Published));
        assert!(!can_move(Published, InReview));
    }
}
