//! Post-mortem pages: start from a template, the document itself (with the timeline, snapshots
//! and action items pulled in), editing in Markdown with preview (whole page or one section),
//! the conflict page with a three-way merge, review and publishing, history with diffs, the
//! print page, the Markdown download and the list of post-mortems.

use crate::web::extract::{Path, Query};
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{Duration, Utc};
use serde::Deserialize;
use std::sync::Arc;

use super::diff::{self, Block};
use super::{
    Content, Detection, Edit, Loaded, PartFindings, PmStatus, PostmortemRecord, PostmortemsState,
    ReviewFilter, ReviewState, RootCauseInput, SectionView, db,
};
use crate::action_items::ActionItem;
use crate::auth::User;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::incidents::Incident;
use crate::timeline::Entry;
use crate::web::chrome::{Chrome, redirect_with_flash};
use crate::web::extract::{CallerState, Form, IncidentInPath, Page, Responder};
use crate::writing::{self, Finding, People};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    PostmortemsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/postmortems", get(list_postmortems))
        .route(
            "/incidents/{incident}/postmortem",
            get(show_postmortem).post(start_postmortem),
        )
        .route(
            "/incidents/{incident}/postmortem/edit",
            get(edit_postmortem).post(save_postmortem),
        )
        .route("/incidents/{incident}/postmortem/preview", post(preview))
        .route("/incidents/{incident}/postmortem/draft", post(keep_draft))
        .route(
            "/incidents/{incident}/postmortem/draft/discard",
            post(discard_draft),
        )
        .route(
            "/incidents/{incident}/postmortem/status",
            post(change_status),
        )
        .route(
            "/incidents/{incident}/postmortem/reviewers",
            post(request_review),
        )
        .route("/incidents/{incident}/postmortem/review", post(review))
        .route("/incidents/{incident}/postmortem/history", get(history))
        .route("/incidents/{incident}/postmortem/diff", get(show_diff))
        .route(
            "/incidents/{incident}/postmortem/revisions/{version}",
            get(show_revision),
        )
        .route("/incidents/{incident}/postmortem/print", get(print))
        .route(
            "/incidents/{incident}/postmortem.md",
            get(download_markdown),
        )
}

fn pm_url(incident: &Incident) -> String {
    format!("{}/postmortem", incident.url())
}

async fn load_pm(state: &PostmortemsState, incident: &Incident) -> AppResult<Loaded> {
    super::load(&state.db, &incident.id)
        .await?
        .ok_or_else(|| AppError::not_found("post-mortem of", incident.key()))
}

/// Runs the writing checks over every section and root-cause description.
fn check_content(content: &Content, people: &People) -> Vec<PartFindings> {
    let mut out = Vec::new();
    for s in &content.sections {
        let findings = writing::check(&s.body, people);
        if !findings.is_empty() {
            out.push(PartFindings {
                title: s.title.clone(),
                anchor: format!("section-{}", s.key),
                findings,
            });
        }
    }
    for (i, c) in content.root_causes.iter().enumerate() {
        let findings = writing::check(&c.description, people);
        if !findings.is_empty() {
            out.push(PartFindings {
                title: if c.primary {
                    "Primary root cause".to_owned()
                } else {
                    format!("Contributing factor {i}")
                },
                anchor: "root-causes".into(),
                findings,
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The document

#[derive(Template, WebTemplate)]
#[template(path = "postmortems/show.html")]
struct ShowPage {
    chrome: Chrome,
    incident: Incident,
    pm: Loaded,
    sections: Vec<SectionView>,
    primary_html: String,
    factors: Vec<(String, String)>,
    no_items_html: String,
    entries: Arc<Vec<(Entry, String)>>,
    snapshots: Arc<Vec<crate::signals::chart::SnapshotView>>,
    items: Vec<ActionItem>,
    /// On a published post-mortem: what changed on the incident after publishing.
    since: Option<Arc<super::SincePublishing>>,
    today: chrono::NaiveDate,
    problems: Vec<String>,
    findings: Vec<PartFindings>,
    events: Vec<db::Event>,
    users: Vec<User>,
    /// The viewer is a named reviewer who has not decided yet (or asked for changes).
    my_review: Option<ReviewState>,
    errors: FieldErrors,
    /// Printed without navigation or forms.
    print: bool,
    /// Linked incidents, as read from this one.
    links: Vec<crate::similar::db::Link>,
    /// Markers of timeline entries promoted from chat, by entry id.
    markers: std::collections::HashMap<String, crate::evidence::Marker>,
}

impl ShowPage {
    /// The chat marker of a timeline entry, if it was promoted from a message.
    fn marker(&self, entry_id: &str) -> Option<&'static str> {
        self.markers.get(entry_id).map(|m| m.label())
    }
    fn items_done(&self) -> usize {
        crate::action_items::done_count(&self.items)
    }
    fn open_p1(&self) -> Vec<&ActionItem> {
        crate::action_items::open_p1(&self.items)
    }
    fn item_overdue(&self, item: &ActionItem) -> bool {
        item.overdue(self.today)
    }
    fn editable(&self) -> bool {
        self.chrome.can_write() && self.pm.pm.status != PmStatus::Published && !self.print
    }
    fn kinds(&self) -> &'static [crate::action_items::Kind] {
        &crate::action_items::Kind::ALL
    }
    fn priorities(&self) -> &'static [crate::action_items::Priority] {
        &crate::action_items::Priority::ALL
    }
    fn item_statuses(&self) -> &'static [crate::action_items::ItemStatus] {
        &crate::action_items::ItemStatus::ALL
    }
    fn findings_count(&self) -> usize {
        self.findings.iter().map(|p| p.findings.len()).sum()
    }
    /// Possible secrets and personal data: worth a look before the text is published.
    fn sensitive_count(&self) -> usize {
        self.findings
            .iter()
            .flat_map(|p| p.findings.iter())
            .filter(|f| f.kind != writing::FindingKind::Blame)
            .count()
    }
    fn approvals(&self) -> usize {
        self.pm
            .reviewers
            .iter()
            .filter(|r| r.state == ReviewState::Approved)
            .count()
    }
}

async fn read_record(
    state: &PostmortemsState,
    incident: &Incident,
    pm: Loaded,
) -> AppResult<PostmortemRecord> {
    let sections = pm
        .content
        .sections
        .iter()
        .map(|s| SectionView {
            key: s.key.clone(),
            title: s.title.clone(),
            help: s.help.clone(),
            required: s.required,
            html: crate::markdown::render(&s.body),
            empty: s.body.trim().is_empty(),
        })
        .collect();
    let primary_html = pm
        .content
        .primary()
        .map(|p| crate::markdown::render(&p.description))
        .unwrap_or_default();
    let factors = pm
        .content
        .contributing()
        .map(|f| (f.category.clone(), crate::markdown::render(&f.description)))
        .collect();
    // Published: the timeline, items and snapshots as they were then; changes since apart.
    let parts = super::attachments(&state.db, incident, &pm).await?;
    let entries = parts
        .timeline
        .into_iter()
        .map(|e| {
            let html = crate::markdown::render(&e.body);
            (e, html)
        })
        .collect();
    let snapshots = parts
        .snapshots
        .into_iter()
        .map(crate::signals::chart::SnapshotView::new)
        .collect();
    let items = parts.items;
    let since = parts.since.filter(|s| !s.is_empty()).map(Arc::new);
    let problems = super::publish_problems(
        pm.pm.status,
        &pm.content,
        items.len(),
        &pm.reviewers,
        pm.pm.author_id.as_deref(),
    );
    let findings = check_content(&pm.content, &super::writing_people(&state.db).await?);
    Ok(PostmortemRecord {
        markers: crate::evidence::db::markers(&state.db.reader, &incident.id).await?,
        no_items_html: crate::markdown::render(&pm.content.no_action_items_reason),
        events: db::events(&state.db.reader, &pm.pm.id).await?,
        // Offered as reviewers and action-item owners: only people who can act.
        users: crate::auth::db::list_active_users(&state.db.reader)
            .await?
            .into_iter()
            .filter(User::can_be_assigned)
            .collect(),
        sections,
        primary_html,
        factors,
        entries: Arc::new(entries),
        snapshots: Arc::new(snapshots),
        items,
        since,
        problems,
        findings,
        pm,
    })
}

/// The post-mortem page's shared record of `incident` (`None`: no post-mortem was started),
/// from `PostmortemsState::records` while nothing that may have changed it was written.
async fn shared_record(
    state: &PostmortemsState,
    incident: &Incident,
) -> AppResult<Option<Arc<PostmortemRecord>>> {
    state
        .records
        .get_or_load(&state.db, &incident.id, || async {
            match super::load(&state.db, &incident.id).await? {
                Some(pm) => Ok(Some(Arc::new(read_record(state, incident, pm).await?))),
                None => Ok(None),
            }
        })
        .await
}

async fn render_show(
    state: &PostmortemsState,
    page: &Page,
    incident: Incident,
    pm: Loaded,
    errors: FieldErrors,
    print: bool,
) -> AppResult<ShowPage> {
    let record = read_record(state, &incident, pm).await?;
    show_page(state, page, incident, &record, errors, print).await
}

/// The page from a record, with what depends on who is looking.
async fn show_page(
    state: &PostmortemsState,
    page: &Page,
    incident: Incident,
    record: &PostmortemRecord,
    errors: FieldErrors,
    print: bool,
) -> AppResult<ShowPage> {
    let my_review = record
        .pm
        .reviewers
        .iter()
        .find(|r| r.user_id == page.user.id)
        .map(|r| r.state);
    Ok(ShowPage {
        links: crate::similar::db::links_of(
            &state.db.reader,
            &incident.id,
            &crate::visibility::Viewer::user(&page.user.id),
        )
        .await?,
        markers: record.markers.clone(),
        chrome: page.chrome.clone(),
        no_items_html: record.no_items_html.clone(),
        events: record.events.clone(),
        users: record.users.clone(),
        incident,
        sections: record.sections.clone(),
        primary_html: record.primary_html.clone(),
        factors: record.factors.clone(),
        entries: Arc::clone(&record.entries),
        snapshots: Arc::clone(&record.snapshots),
        items: record.items.clone(),
        since: record.since.clone(),
        today: crate::time::today(state.tz),
        problems: record.problems.clone(),
        findings: record.findings.clone(),
        my_review,
        errors,
        print,
        pm: record.pm.clone(),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "postmortems/start.html")]
struct StartPage {
    chrome: Chrome,
    incident: Incident,
    templates: Vec<db::Template>,
    chosen: String,
    errors: FieldErrors,
}

async fn start_page(
    state: &PostmortemsState,
    chrome: Chrome,
    incident: Incident,
    errors: FieldErrors,
) -> AppResult<StartPage> {
    let chosen = db::default_template(&state.db.reader, incident.severity.as_str())
        .await?
        .map(|t| t.id)
        .unwrap_or_default();
    Ok(StartPage {
        chrome,
        incident,
        templates: db::templates(&state.db.reader).await?,
        chosen,
        errors,
    })
}

/// The post-mortem page again with what was refused and why (422).
async fn refused(
    state: &PostmortemsState,
    page: &Page,
    incident: Incident,
    errors: FieldErrors,
) -> AppResult<Response> {
    let pm = load_pm(state, &incident).await?;
    let html = render_show(state, page, incident, pm, errors, false).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
}

async fn show_postmortem(
    State(state): State<PostmortemsState>,
    page: Page,
    IncidentInPath(incident): IncidentInPath,
) -> AppResult<Response> {
    match shared_record(&state, &incident).await? {
        Some(record) => Ok(
            show_page(&state, &page, incident, &record, FieldErrors::new(), false)
                .await?
                .into_response(),
        ),
        None => Ok(
            start_page(&state, page.chrome, incident, FieldErrors::new())
                .await?
                .into_response(),
        ),
    }
}

async fn print(
    State(state): State<PostmortemsState>,
    page: Page,
    IncidentInPath(incident): IncidentInPath,
) -> AppResult<Response> {
    let pm = load_pm(&state, &incident).await?;
    Ok(
        render_show(&state, &page, incident, pm, FieldErrors::new(), true)
            .await?
            .into_response(),
    )
}

#[derive(Debug, Default, Deserialize)]
struct StartForm {
    #[serde(default)]
    template: String,
}

async fn start_postmortem(
    State(state): State<PostmortemsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Form(form): Form<StartForm>,
) -> AppResult<Response> {
    match super::start(&state.db, &page.user, &incident, Some(&form.template)).await {
        Ok(_) => Ok(redirect_with_flash(
            &format!("{}/edit", pm_url(&incident)),
            "ok",
            "Post-mortem started. Write it section by section; every save is kept.",
        )),
        Err(AppError::Validation { fields, .. }) => {
            let html = start_page(&state, page.chrome, incident, fields).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Editing

/// The edit form as typed: sections by key, root-cause rows, and the rest.
#[derive(Debug, Clone, Default)]
struct EditForm {
    version: String,
    action: String,
    /// Only this section is on the form (one-section editing); empty = the whole page.
    only: String,
    sections: Vec<(String, String)>,
    has_causes: bool,
    primary_category: String,
    primary_description: String,
    factors: Vec<(String, String)>,
    detection_method: Option<String>,
    no_action_items_reason: Option<String>,
}

impl EditForm {
    fn parse(pairs: Vec<(String, String)>) -> Self {
        let mut f = Self::default();
        let mut factor_categories = Vec::new();
        let mut factor_descriptions = Vec::new();
        for (name, value) in pairs {
            match name.as_str() {
                "version" => f.version = value,
                "action" => f.action = value,
                "only" => f.only = value,
                "primary_category" => {
                    f.has_causes = true;
                    f.primary_category = value;
                }
                "primary_description" => f.primary_description = value,
                "factor_category" => {
                    f.has_causes = true;
                    factor_categories.push(value);
                }
                "factor_description" => factor_descriptions.push(value),
                "detection_method" => f.detection_method = Some(value),
                "no_action_items_reason" => f.no_action_items_reason = Some(value),
                other => {
                    if let Some(key) = other.strip_prefix("section.") {
                        f.sections.push((key.to_owned(), value));
                    }
                }
            }
        }
        factor_descriptions.resize(factor_categories.len(), String::new());
        f.factors = factor_categories
            .into_iter()
            .zip(factor_descriptions)
            .collect();
        f
    }

    /// The form filled from a stored post-mortem.
    fn from_content(content: &Content, version: i64, only: &str) -> Self {
        let primary = content.primary();
        Self {
            version: version.to_string(),
            action: String::new(),
            only: only.to_owned(),
            sections: content
                .sections
                .iter()
                .filter(|s| only.is_empty() || s.key == only)
                .map(|s| (s.key.clone(), s.body.clone()))
                .collect(),
            has_causes: only.is_empty(),
            primary_category: primary.map(|p| p.category.clone()).unwrap_or_default(),
            primary_description: primary.map(|p| p.description.clone()).unwrap_or_default(),
            factors: content
                .contributing()
                .map(|c| (c.category.clone(), c.description.clone()))
                .collect(),
            detection_method: Some(content.detection_method.clone()),
            no_action_items_reason: Some(content.no_action_items_reason.clone()),
        }
    }

    fn edit(&self) -> Edit {
        let root_causes = self.has_causes.then(|| {
            let mut rows = vec![RootCauseInput {
                category: self.primary_category.clone(),
                description: self.primary_description.clone(),
                primary: true,
            }];
            rows.extend(self.factors.iter().map(|(c, d)| RootCauseInput {
                category: c.clone(),
                description: d.clone(),
                primary: false,
            }));
            rows
        });
        Edit {
            sections: self.sections.clone(),
            root_causes,
            detection_method: self.detection_method.clone(),
            no_action_items_reason: self.no_action_items_reason.clone(),
        }
    }

    fn body(&self, key: &str) -> Option<&str> {
        self.sections
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A section on the edit page: what is typed, and its preview when asked for.
pub struct EditSection {
    pub key: String,
    pub title: String,
    pub help: String,
    pub required: bool,
    pub body: String,
    pub preview: Option<String>,
    pub findings: Vec<Finding>,
}

/// One row of the root-cause form.
pub struct FactorRow {
    pub index: usize,
    pub category: String,
    pub description: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "postmortems/edit.html")]
struct EditPage {
    chrome: Chrome,
    incident: Incident,
    form: EditForm,
    sections: Vec<EditSection>,
    factors: Vec<FactorRow>,
    categories: Vec<String>,
    previewing: bool,
    cause_findings: Vec<Finding>,
    errors: FieldErrors,
    /// The incident's timeline beside the editor (entry and its rendered body).
    entries: Arc<Vec<(Entry, String)>>,
    /// Set when the form shows the person's autosaved draft rather than the saved text.
    restored: Option<RestoredDraft>,
}

/// What the edit page says about a draft it brought back.
struct RestoredDraft {
    saved_at: chrono::DateTime<Utc>,
    /// The post-mortem's version now, when someone saved it after the draft's page was
    /// loaded (saving then shows both to merge).
    newer_version: Option<i64>,
}

impl EditPage {
    fn detections(&self) -> &'static [Detection] {
        &Detection::ALL
    }
    fn whole(&self) -> bool {
        self.form.only.is_empty()
    }
    fn detection(&self) -> &str {
        self.form.detection_method.as_deref().unwrap_or_default()
    }
    /// Every problem of a refused save, with where it is on the page and what it is called, so
    /// the message at the top can link to each.
    fn error_links(&self) -> Vec<(String, String, String)> {
        self.errors
            .iter()
            .map(|(field, message)| {
                if let Some(key) = field.strip_prefix("sections.") {
                    let title = self
                        .sections
                        .iter()
                        .find(|s| s.key == key)
                        .map_or(key, |s| s.title.as_str());
                    return (format!("section-{key}"), title.to_owned(), message.clone());
                }
                let label = match field.as_str() {
                    "root_causes" | "root_causes[0].category" | "root_causes[0].description" => {
                        "Primary root cause".to_owned()
                    }
                    "detection_method" => "How it was detected".to_owned(),
                    "no_action_items_reason" => "Why no action items".to_owned(),
                    other => other
                        .strip_prefix("root_causes[")
                        .and_then(|rest| rest.split(']').next())
                        .and_then(|n| n.parse::<usize>().ok())
                        .map_or_else(|| other.to_owned(), |n| format!("Contributing factor {n}")),
                };
                ("root-causes".to_owned(), label, message.clone())
            })
            .collect()
    }
    fn section_error<K: AsRef<str>>(&self, key: K) -> Option<String> {
        self.errors
            .get(&format!("sections.{}", key.as_ref()))
            .cloned()
    }
    /// The category error of contributing factor `index` (root cause `index + 1`).
    fn factor_error<I: std::borrow::Borrow<usize>>(&self, index: I) -> Option<String> {
        self.errors
            .get(&format!("root_causes[{}].category", index.borrow() + 1))
            .cloned()
    }
    fn no_items_reason(&self) -> &str {
        self.form
            .no_action_items_reason
            .as_deref()
            .unwrap_or_default()
    }
}

/// The edit page. `entries` is the incident's timeline when the caller has it already (the
/// page's shared record); otherwise it is read here.
#[allow(clippy::too_many_arguments)]
async fn render_edit(
    state: &PostmortemsState,
    chrome: Chrome,
    incident: Incident,
    pm: Loaded,
    form: EditForm,
    previewing: bool,
    errors: FieldErrors,
    entries: Option<Arc<Vec<(Entry, String)>>>,
) -> AppResult<EditPage> {
    // The writing checks run on a preview only; their list of people is read for it.
    let people = if previewing {
        super::writing_people(&state.db).await?
    } else {
        People::default()
    };
    let sections = pm
        .content
        .sections
        .iter()
        .filter(|s| form.only.is_empty() || s.key == form.only)
        .map(|s| {
            let body = form.body(&s.key).unwrap_or(&s.body).to_owned();
            EditSection {
                key: s.key.clone(),
                title: s.title.clone(),
                help: s.help.clone(),
                required: s.required,
                preview: previewing.then(|| crate::markdown::render(&body)),
                findings: if previewing {
                    writing::check(&body, &people)
                } else {
                    Vec::new()
                },
                body,
            }
        })
        .collect();
    let mut cause_findings = Vec::new();
    if previewing {
        cause_findings.extend(writing::check(&form.primary_description, &people));
        for (_, d) in &form.factors {
            cause_findings.extend(writing::check(d, &people));
        }
    }
    // Two empty rows to add contributing factors without JavaScript.
    let mut factors: Vec<FactorRow> = form
        .factors
        .iter()
        .filter(|(c, d)| !c.trim().is_empty() || !d.trim().is_empty())
        .map(|(c, d)| (c.clone(), d.clone()))
        .chain(std::iter::repeat_n((String::new(), String::new()), 2))
        .enumerate()
        .map(|(index, (category, description))| FactorRow {
            index,
            category,
            description,
        })
        .collect();
    factors.truncate(super::ROOT_CAUSES_MAX);
    let categories = state
        .catalog
        .get(&state.db.reader)
        .await?
        .categories
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let entries = match entries {
        Some(entries) => entries,
        None => Arc::new(
            crate::timeline::db::list_for_incident(&state.db.reader, &incident.id)
                .await?
                .into_iter()
                .map(|e| {
                    let html = crate::markdown::render(&e.body);
                    (e, html)
                })
                .collect(),
        ),
    };
    Ok(EditPage {
        chrome,
        incident,
        form,
        sections,
        factors,
        categories,
        previewing,
        cause_findings,
        errors,
        entries,
        restored: None,
    })
}

#[derive(Debug, Default, Deserialize)]
struct EditQuery {
    #[serde(default)]
    section: String,
}

async fn edit_postmortem(
    State(state): State<PostmortemsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Query(q): Query<EditQuery>,
) -> AppResult<Response> {
    // The shared record of the post-mortem page (read again after any write that may have
    // changed the post-mortem, so the form starts from the saved version).
    let record = shared_record(&state, &incident)
        .await?
        .ok_or_else(|| AppError::not_found("post-mortem of", incident.key()))?;
    let pm = record.pm.clone();
    if pm.pm.status == PmStatus::Published {
        return Ok(redirect_with_flash(
            &pm_url(&incident),
            "warn",
            "This post-mortem is published and read-only. Reopen it as a draft to change it.",
        ));
    }
    let only = if pm.content.section(&q.section).is_some() {
        q.section
    } else {
        String::new()
    };
    // A draft this person left (a closed tab, a lost connection) comes back as it was typed.
    let draft = super::draft_of(&state.db, &pm.pm.id, &page.user).await?;
    let version = pm.pm.version;
    let (form, restored) = match draft {
        Some(d) => (
            EditForm::parse(d.pairs),
            Some(RestoredDraft {
                saved_at: d.saved_at,
                newer_version: (d.base_version < version).then_some(version),
            }),
        ),
        None => (EditForm::from_content(&pm.content, version, &only), None),
    };
    let mut edit = render_edit(
        &state,
        page.chrome,
        incident,
        pm,
        form,
        false,
        FieldErrors::new(),
        Some(Arc::clone(&record.entries)),
    )
    .await?;
    edit.restored = restored;
    Ok(edit.into_response())
}

/// The editor's autosave (JavaScript posts the whole form a moment after typing stops).
/// Answers JSON for the page's status line.
async fn keep_draft(
    State(state): State<PostmortemsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let answer = match super::keep_draft(&state.db, &page.user, &incident, pairs).await? {
        super::DraftKept::Kept(at) => serde_json::json!({
            "kept": true,
            "saved_at": at.to_rfc3339(),
            "saved_at_text": at.with_timezone(&state.tz).format("%H:%M:%S").to_string(),
        }),
        super::DraftKept::Stale { current_version } => serde_json::json!({
            "kept": false,
            "current_version": current_version,
            "message": format!(
                "Saved by someone since you opened this page (now version {current_version}): \
                 your text stays here, and Save shows both versions to merge."
            ),
        }),
    };
    Ok(axum::Json(answer).into_response())
}

/// Throws the restored draft away and shows the saved post-mortem in the editor.
async fn discard_draft(
    State(state): State<PostmortemsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
) -> AppResult<Response> {
    let message = if super::discard_draft(&state.db, &page.user, &incident).await? {
        "Your draft was discarded; this is the saved post-mortem."
    } else {
        "There was no draft to discard."
    };
    Ok(redirect_with_flash(
        &format!("{}/edit", pm_url(&incident)),
        "ok",
        message,
    ))
}

async fn save_postmortem(
    State(state): State<PostmortemsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let pm = load_pm(&state, &incident).await?;
    let form = EditForm::parse(pairs);
    let version: i64 = form.version.trim().parse().map_err(|_| {
        AppError::BadRequest("the form lacks the version it was loaded at; reload the page".into())
    })?;
    if form.action == "preview" {
        return Ok(render_edit(
            &state,
            page.chrome,
            incident,
            pm,
            form,
            true,
            FieldErrors::new(),
            None,
        )
        .await?
        .into_response());
    }
    match super::save(&state.db, &page.user, &incident, version, &form.edit()).await {
        Ok(saved) => {
            let anchor = if form.only.is_empty() {
                String::new()
            } else {
                format!("#section-{}", form.only)
            };
            let message = if saved.pm.version == version {
                "Nothing had changed, so no new revision was made.".to_owned()
            } else {
                format!("Saved as version {}.", saved.pm.version)
            };
            Ok(redirect_with_flash(
                &format!("{}{anchor}", pm_url(&incident)),
                "ok",
                &message,
            ))
        }
        Err(AppError::Validation { fields, .. }) => {
            let html =
                render_edit(&state, page.chrome, incident, pm, form, false, fields, None).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(AppError::Conflict { .. }) => {
            let html = render_conflict(&state, page.chrome, incident, version, form).await?;
            Ok((StatusCode::CONFLICT, html).into_response())
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Conflicts

/// A section both sides changed: shown side by side, with what the person typed editable.
pub struct ConflictSection {
    pub key: String,
    pub title: String,
    pub theirs: String,
    pub yours: String,
    pub diff: Vec<diff::Line>,
    /// Too large to compare line by line: only the two texts are shown.
    pub too_large: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "postmortems/conflict.html")]
struct ConflictPage {
    chrome: Chrome,
    incident: Incident,
    current_version: i64,
    changed_by: String,
    conflicts: Vec<ConflictSection>,
    /// Sections only this person changed: carried over as typed.
    merged: Vec<(String, String, String)>,
    form: EditForm,
    causes_differ: bool,
}

/// Three-way merge of a stale save: sections only the person changed are kept as typed;
/// sections both changed are put side by side for the person to merge.
async fn render_conflict(
    state: &PostmortemsState,
    chrome: Chrome,
    incident: Incident,
    base_version: i64,
    form: EditForm,
) -> AppResult<ConflictPage> {
    let now = load_pm(state, &incident).await?;
    let base = db::revision(&state.db.reader, &now.pm.id, base_version)
        .await?
        .map(|(_, c)| c)
        .unwrap_or_default();
    let mut conflicts = Vec::new();
    let mut merged = Vec::new();
    for (key, typed) in &form.sections {
        let Some(theirs) = now.content.section(key) else {
            continue;
        };
        let yours = typed.replace("\r\n", "\n").trim_end().to_owned();
        let before = base.section(key).map_or("", |s| s.body.as_str());
        if yours == theirs.body || yours == before {
            // Nothing of the person's to keep here: their text is the saved one, or they did
            // not change it.
            continue;
        }
        if theirs.body == before {
            merged.push((key.clone(), theirs.title.clone(), yours));
        } else {
            let compared = diff::lines_off_thread(theirs.body.clone(), yours.clone()).await?;
            conflicts.push(ConflictSection {
                key: key.clone(),
                title: theirs.title.clone(),
                too_large: compared == diff::Lines::TooLarge,
                diff: compared.into_lines(),
                theirs: theirs.body.clone(),
                yours,
            });
        }
    }
    let causes_differ = form.has_causes && {
        let typed = super::apply(&base, &form.edit(), &[]).map(|c| c.root_causes);
        typed.map_or(true, |t| t != now.content.root_causes)
            && now.content.root_causes != base.root_causes
    };
    let mut form = form;
    form.version = now.pm.version.to_string();
    Ok(ConflictPage {
        chrome,
        incident,
        current_version: now.pm.version,
        changed_by: now
            .pm
            .updated_by_name
            .clone()
            .unwrap_or_else(|| "someone".into()),
        conflicts,
        merged,
        form,
        causes_differ,
    })
}

// ---------------------------------------------------------------------------------------------
// Live preview (JavaScript) and workflow

#[derive(Debug, Default, Deserialize)]
struct PreviewForm {
    #[serde(default)]
    text: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "postmortems/_preview.html")]
struct PreviewFragment {
    html: String,
    findings: Vec<Finding>,
}

/// The rendered Markdown and the writing checks for one text, as an HTML fragment that the
/// edit page's script puts under the textarea while someone types.
async fn preview(
    State(state): State<PostmortemsState>,
    Responder(_): Responder,
    // Previews are only offered under an incident that exists.
    IncidentInPath(_): IncidentInPath,
    Form(form): Form<PreviewForm>,
) -> AppResult<Response> {
    if form.text.chars().count() > super::SECTION_MAX {
        return Err(AppError::field("text", "is too long to preview"));
    }
    let people = super::writing_people(&state.db).await?;
    Ok(PreviewFragment {
        html: crate::markdown::render(&form.text),
        findings: writing::check(&form.text, &people),
    }
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
struct StatusForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    version: String,
    /// `publish-flagged` once the person has seen what the writing checks flagged.
    #[serde(default)]
    confirm: String,
}

/// Asked before publishing a post-mortem in which the writing checks flag possible secrets or
/// personal data: each one is listed with where it is.
#[derive(Template, WebTemplate)]
#[template(path = "postmortems/confirm_publish.html")]
struct ConfirmPublishPage {
    chrome: Chrome,
    incident: Incident,
    parts: Vec<PartFindings>,
    version: String,
    comment: String,
}

impl ConfirmPublishPage {
    fn count(&self) -> usize {
        self.parts.iter().map(|p| p.findings.len()).sum()
    }
}

/// The parts of `pm` with possible secrets or personal data (blame findings left out: they do
/// not leak anything).
async fn sensitive_parts(state: &PostmortemsState, pm: &Loaded) -> AppResult<Vec<PartFindings>> {
    let people = super::writing_people(&state.db).await?;
    Ok(check_content(&pm.content, &people)
        .into_iter()
        .filter_map(|mut part| {
            part.findings
                .retain(|f| f.kind != writing::FindingKind::Blame);
            (!part.findings.is_empty()).then_some(part)
        })
        .collect())
}

async fn change_status(
    State(state): State<PostmortemsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Form(form): Form<StatusForm>,
) -> AppResult<Response> {
    let to = super::parse_status(&form.status)?;
    let version = form.version.trim().parse::<i64>().ok();
    if to == PmStatus::Published && form.confirm != "publish-flagged" {
        let pm = load_pm(&state, &incident).await?;
        let parts = sensitive_parts(&state, &pm).await?;
        if !parts.is_empty() {
            return Ok(ConfirmPublishPage {
                chrome: page.chrome,
                incident,
                parts,
                version: form.version,
                comment: form.comment,
            }
            .into_response());
        }
    }
    match super::set_status(&state.db, &page.user, &incident, version, to, &form.comment).await {
        Ok(saved) => {
            if saved.pm.status == PmStatus::Published {
                // Publishing with p1 follow-ups still open is allowed, but said out loud.
                let open_p1 = crate::action_items::open_p1_titles(&state.db, &incident.id).await?;
                if !open_p1.is_empty() {
                    return Ok(redirect_with_flash(
                        &pm_url(&incident),
                        "warn",
                        &format!(
                            "Published, but p1 action items are still open: {}.",
                            open_p1.join("; ")
                        ),
                    ));
                }
            }
            Ok(redirect_with_flash(
                &pm_url(&incident),
                "ok",
                &format!("The post-mortem is now {}.", saved.pm.status.label()),
            ))
        }
        Err(AppError::Validation { fields, .. }) => refused(&state, &page, incident, fields).await,
        Err(AppError::Conflict { .. }) => Ok(redirect_with_flash(
            &pm_url(&incident),
            "error",
            "The post-mortem changed while you were looking at it, so its status was not changed. Check it and try again.",
        )),
        Err(e) => Err(e),
    }
}

async fn request_review(
    State(state): State<PostmortemsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let reviewers: Vec<String> = pairs
        .into_iter()
        .filter(|(k, _)| k == "reviewer")
        .flat_map(|(_, v)| {
            v.split([',', ';', '\n'])
                .map(|s| s.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect();
    match super::request_review(&state.db, &page.user, &incident, &reviewers).await {
        Ok(saved) => {
            let names: Vec<&str> = saved
                .reviewers
                .iter()
                .filter(|r| {
                    // Just asked: a fresh request, or asked again after requesting changes.
                    r.state == ReviewState::Requested
                        || r.decided_at.is_some_and(|d| r.requested_at > d)
                })
                .map(|r| r.name.as_str())
                .collect();
            Ok(redirect_with_flash(
                &pm_url(&incident),
                "ok",
                &format!("Review requested from {}.", names.join(", ")),
            ))
        }
        Err(AppError::Validation { fields, .. }) => refused(&state, &page, incident, fields).await,
        Err(e) => Err(e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct ReviewForm {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    comment: String,
}

async fn review(
    State(state): State<PostmortemsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Form(form): Form<ReviewForm>,
) -> AppResult<Response> {
    let approve = super::parse_decision(&form.decision)?;
    match super::decide(&state.db, &page.user, &incident, approve, &form.comment).await {
        Ok(_) => Ok(redirect_with_flash(
            &pm_url(&incident),
            "ok",
            if approve {
                "You approved the post-mortem."
            } else {
                "You asked for changes; the author sees your comment."
            },
        )),
        Err(AppError::Validation { fields, .. }) => refused(&state, &page, incident, fields).await,
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------------
// History

#[derive(Template, WebTemplate)]
#[template(path = "postmortems/history.html")]
struct HistoryPage {
    chrome: Chrome,
    incident: Incident,
    revisions: Vec<db::RevisionInfo>,
    latest: i64,
}

async fn history(
    State(state): State<PostmortemsState>,
    page: Page,
    IncidentInPath(incident): IncidentInPath,
) -> AppResult<Response> {
    let pm = load_pm(&state, &incident).await?;
    let revisions = db::revisions(&state.db.reader, &pm.pm.id).await?;
    Ok(HistoryPage {
        chrome: page.chrome,
        latest: revisions.first().map_or(1, |r| r.version),
        incident,
        revisions,
    }
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
struct DiffQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "postmortems/diff.html")]
struct DiffPage {
    chrome: Chrome,
    incident: Incident,
    from: db::RevisionInfo,
    to: db::RevisionInfo,
    blocks: Vec<Block>,
}

/// The diff caps, for the "too large to compare" note.
trait DiffCaps {
    fn max_lines(&self) -> usize {
        diff::MAX_LINES
    }
    fn max_kb(&self) -> usize {
        diff::MAX_BYTES / 1024
    }
}

impl DiffCaps for DiffPage {}
impl DiffCaps for ConflictPage {}

fn parse_version(raw: &str, field: &str) -> AppResult<i64> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| AppError::field(field, "must be a revision number (1, 2, 3…)"))
}

async fn show_diff(
    State(state): State<PostmortemsState>,
    page: Page,
    IncidentInPath(incident): IncidentInPath,
    Query(q): Query<DiffQuery>,
) -> AppResult<Response> {
    let pm = load_pm(&state, &incident).await?;
    let (from, to) = (parse_version(&q.from, "from")?, parse_version(&q.to, "to")?);
    let (from, to) = (from.min(to), from.max(to));
    let missing = |v: i64| AppError::not_found("revision", v);
    let (from_info, old) = db::revision(&state.db.reader, &pm.pm.id, from)
        .await?
        .ok_or_else(|| missing(from))?;
    let (to_info, new) = db::revision(&state.db.reader, &pm.pm.id, to)
        .await?
        .ok_or_else(|| missing(to))?;
    let blocks = diff::compare_off_thread(old, new).await?;
    Ok(DiffPage {
        chrome: page.chrome,
        incident,
        from: from_info,
        to: to_info,
        blocks,
    }
    .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "postmortems/revision.html")]
struct RevisionPage {
    chrome: Chrome,
    incident: Incident,
    info: db::RevisionInfo,
    sections: Vec<(String, String)>,
    causes: Vec<(bool, String, String)>,
    latest: i64,
}

async fn show_revision(
    State(state): State<PostmortemsState>,
    page: Page,
    IncidentInPath(incident): IncidentInPath,
    Path((_, version)): Path<(String, String)>,
) -> AppResult<Response> {
    let pm = load_pm(&state, &incident).await?;
    let version = parse_version(&version, "version")?;
    let (info, content) = db::revision(&state.db.reader, &pm.pm.id, version)
        .await?
        .ok_or_else(|| AppError::not_found("revision", version))?;
    Ok(RevisionPage {
        chrome: page.chrome,
        incident,
        info,
        sections: content
            .sections
            .iter()
            .map(|s| (s.title.clone(), crate::markdown::render(&s.body)))
            .collect(),
        causes: content
            .root_causes
            .iter()
            .map(|c| {
                (
                    c.primary,
                    c.category.clone(),
                    crate::markdown::render(&c.description),
                )
            })
            .collect(),
        latest: pm.pm.version,
    }
    .into_response())
}

// ---------------------------------------------------------------------------------------------
// Export

/// A Markdown download of the post-mortem (pages and API alike).
pub fn markdown_response(incident: &Incident, body: String) -> Response {
    crate::web::download::attachment(
        "text/markdown; charset=utf-8",
        &format!("{}-postmortem.md", incident.key().to_lowercase()),
        body,
    )
}

async fn download_markdown(
    State(state): State<PostmortemsState>,
    page: Page,
    IncidentInPath(incident): IncidentInPath,
) -> AppResult<Response> {
    let body = super::export::document(&state.db, state.tz, &incident).await?;
    crate::incidents::access::record_export(&state.db, &page.user, &incident, "postmortem.md")
        .await?;
    Ok(markdown_response(&incident, body))
}

// ---------------------------------------------------------------------------------------------
// The list

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    author: String,
    #[serde(default)]
    review: String,
    #[serde(default)]
    older_than_days: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "postmortems/list.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<db::ListRow>,
    users: Vec<User>,
    status: String,
    author: String,
    review: String,
    older_than_days: String,
    /// Incidents resolved more than this many days ago with no post-mortem yet.
    missing: Vec<db::Missing>,
    now: chrono::DateTime<Utc>,
}

impl ListPage {
    fn statuses(&self) -> &'static [PmStatus] {
        &PmStatus::ALL
    }
    fn ages(&self) -> &'static [&'static str] {
        &["7", "14", "30"]
    }
    fn age(&self, row: &db::ListRow) -> String {
        crate::time::human_duration(self.now - row.created_at)
    }
    /// Unpublished for more than two weeks: late by the usual post-mortem practice.
    fn late(&self, row: &db::ListRow) -> bool {
        row.status != PmStatus::Published && self.now - row.created_at > Duration::days(14)
    }
}

async fn list_postmortems(
    State(state): State<PostmortemsState>,
    page: Page,
    Query(q): Query<ListQuery>,
) -> AppResult<Response> {
    let mut filter = db::ListFilter::default();
    let mut errors = FieldErrors::new();
    if !q.status.trim().is_empty() {
        filter.status = PmStatus::parse_field(&q.status, &mut errors);
    }
    match q.author.trim() {
        "" => {}
        "me" => filter.author_id = Some(page.user.id.clone()),
        email => match crate::auth::db::find_user_by_email(&state.db.reader, email).await? {
            Some(u) => filter.author_id = Some(u.id),
            None => {
                errors.insert("author".into(), format!("no user is {email}"));
            }
        },
    }
    if !q.review.trim().is_empty() {
        match ReviewFilter::parse_field(&q.review, &mut errors) {
            Some(ReviewFilter::Open) => filter.open_review = true,
            Some(ReviewFilter::Mine) => filter.awaiting_reviewer = Some(page.user.id.clone()),
            None => {}
        }
    }
    match q.older_than_days.trim() {
        "" => {}
        raw => match raw.parse::<i64>() {
            Ok(days) if (0..=3650).contains(&days) => {
                filter.older_than = Some(Utc::now() - Duration::days(days));
            }
            _ => {
                errors.insert(
                    "older_than_days".into(),
                    "must be a number of days from 0 to 3650".into(),
                );
            }
        },
    }
    if !errors.is_empty() {
        return Err(AppError::fields(errors));
    }
    let viewer = crate::visibility::Viewer::user(&page.user.id);
    let rows = db::list(&state.db.reader, &viewer, &filter).await?;
    let missing = missing_postmortems(&state, &viewer).await?;
    Ok(ListPage {
        chrome: page.chrome,
        rows,
        users: crate::auth::db::list_active_users(&state.db.reader).await?,
        status: q.status,
        author: q.author,
        review: q.review,
        older_than_days: q.older_than_days,
        missing,
        now: Utc::now(),
    }
    .into_response())
}

/// sev1 and sev2 incidents resolved over two days ago that still have no post-mortem.
async fn missing_postmortems(
    state: &PostmortemsState,
    viewer: &crate::visibility::Viewer,
) -> AppResult<Vec<db::Missing>> {
    db::missing(&state.db.reader, viewer, Utc::now() - Duration::days(2)).await
}
