//! Incident pages: the filtered list, declaring, the incident page with its timeline, editing
//! (with a conflict page for stale saves) and status changes.

use crate::web::extract::Query;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{Duration, Utc};
use serde::Deserialize;

use super::db::{self, ListFilter, ListRow, Sort};
pub use super::record::{EntryFormView, EntryView, IncidentRecord, RenderedTimeline, TimelineGap};
use super::{Incident, IncidentInput, IncidentsState, ListParams, Severity, Status};
use crate::auth::User;
use std::sync::Arc;

use crate::catalog::Lists;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::timeline::EntryKind;
use crate::web::chrome::{Chrome, redirect_with_flash};
use crate::web::extract::{CallerState, Form, IncidentInPath, Page, Responder, VersionedForm};
use crate::web::middleware::form_urlencode;

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    IncidentsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/incidents", get(list_incidents).post(declare_incident))
        .route("/incidents/new", get(new_incident))
        .route("/incidents/{incident}", get(show_incident))
        .route(
            "/incidents/{incident}/edit",
            get(edit_incident).post(update_incident),
        )
        .route("/incidents/{incident}/status", post(change_status))
        .route("/incidents/{incident}/detected", post(set_detected))
        .route("/incidents/{incident}/access", post(change_access))
}

// ---------------------------------------------------------------------------------------------
// List

#[derive(Template, WebTemplate)]
#[template(path = "incidents/list.html")]
struct ListPage {
    chrome: Chrome,
    /// The page's rows and the total matching, shared with the list cache.
    result: Arc<(Vec<ListRow>, i64)>,
    total: i64,
    /// The count stopped at its cap: at least `total` match.
    at_least: bool,
    page: u32,
    pages: u32,
    /// More pages match than can be paged through.
    truncated: bool,
    /// The query string of the current filter without `page`, for pagination links.
    filter_query: String,
    q: ListQueryView,
    lists: Arc<Lists>,
    errors: FieldErrors,
}

/// The filter as typed, to refill the form.
struct ListQueryView {
    status: String,
    severity: String,
    service: String,
    category: String,
    team: String,
    since: String,
    until: String,
    q: String,
    recurring: bool,
    sort: String,
}

impl ListPage {
    fn severities(&self) -> [Severity; 4] {
        Severity::ALL
    }
    fn statuses(&self) -> [Status; 5] {
        Status::ALL
    }
    fn sorts(&self) -> [Sort; 4] {
        Sort::ALL
    }
    fn page_url<P: std::borrow::Borrow<u32>>(&self, page: P) -> String {
        let page = *page.borrow();
        if self.filter_query.is_empty() {
            format!("/incidents?page={page}")
        } else {
            format!("/incidents?{}&page={page}", self.filter_query)
        }
    }
    fn is_filtered(&self) -> bool {
        !self.filter_query.is_empty() && self.filter_query != format!("sort={}", self.q.sort)
    }
}

const PER_PAGE: u32 = 50;
/// Deep OFFSETs cost a scan of every skipped row; past this page people narrow the filter
/// (a date range, or oldest first) instead.
const MAX_PAGE: u32 = db::MAX_OFFSET / PER_PAGE + 1;

async fn list_incidents(
    State(state): State<IncidentsState>,
    page: Page,
    Query(query): Query<ListParams>,
) -> AppResult<Response> {
    let (mut filter, sort, errors) = match query.parse(state.tz) {
        Ok((filter, sort)) => (filter, sort, FieldErrors::new()),
        Err(errors) => (ListFilter::default(), Sort::Newest, errors),
    };
    filter.rule = state.rule;
    let page_no = query
        .page
        .trim()
        .parse::<u32>()
        .unwrap_or(1)
        .clamp(1, MAX_PAGE);

    let result = if errors.is_empty() {
        let viewer = crate::visibility::Viewer::user(&page.user.id);
        super::list_cached(
            &state.db,
            &state.lists,
            &viewer,
            &filter,
            sort,
            page_no,
            PER_PAGE,
        )
        .await?
    } else {
        Arc::new((Vec::new(), 0))
    };
    let total = result.1;
    let at_least = filter.recurring && total >= db::RECURRING_COUNT_CAP;
    let all_pages = u32::try_from((total + i64::from(PER_PAGE) - 1) / i64::from(PER_PAGE))
        .unwrap_or(u32::MAX)
        .max(1);
    let pages = all_pages.min(MAX_PAGE);

    let mut params: Vec<(&str, &str)> = Vec::new();
    for (k, v) in [
        ("status", &query.status),
        ("severity", &query.severity),
        ("service", &query.service),
        ("category", &query.category),
        ("team", &query.team),
        ("since", &query.since),
        ("until", &query.until),
        ("q", &query.q),
        ("recurring", &query.recurring),
        ("sort", &query.sort),
    ] {
        if !v.trim().is_empty() {
            params.push((k, v.as_str()));
        }
    }
    let filter_query = serde_urlencoded::to_string(&params).unwrap_or_default();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let html = ListPage {
        chrome: page.chrome,
        result,
        total,
        at_least,
        page: page_no,
        pages,
        truncated: all_pages > pages,
        filter_query,
        q: ListQueryView {
            status: query.status,
            severity: query.severity,
            service: query.service,
            category: query.category,
            team: query.team,
            since: query.since,
            until: query.until,
            q: query.q,
            recurring: filter.recurring,
            sort: sort.as_str().to_owned(),
        },
        lists: state.catalog.get(&state.db.reader).await?,
        errors,
    };
    Ok((status, html).into_response())
}

// ---------------------------------------------------------------------------------------------
// Declare and edit

/// The incident form as posted (every field a string, so nothing typed is lost on error).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IncidentForm {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub team: String,
    #[serde(default)]
    pub commander: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub customer_impact: String,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub detected_at: String,
    #[serde(default)]
    pub acknowledged_at: String,
    #[serde(default)]
    pub mitigated_at: String,
    #[serde(default)]
    pub resolved_at: String,
    #[serde(default)]
    pub closed_at: String,
    #[serde(default)]
    pub exclude_from_metrics: String,
    #[serde(default)]
    pub version: String,
    /// Declaring only (the incident page has its own access form): checked = restricted.
    #[serde(default)]
    pub restricted: String,
    /// Declaring only: participants' e-mail addresses, separated by commas or lines.
    #[serde(default)]
    pub participants: String,
    /// The declare form's "similar incidents were shown" mark: `0` from the page (the
    /// server shows them before declaring), `1` once they were (by the script, live, or by
    /// that step). Absent (API-like posts): no step.
    #[serde(default)]
    pub similar_checked: String,
}

impl IncidentForm {
    /// The form prefilled from a stored incident.
    fn from_incident(i: &Incident, chrome: &Chrome, commander_email: String) -> Self {
        Self {
            title: i.title.clone(),
            severity: i.severity.as_str().to_owned(),
            service: i.service.clone(),
            category: i.category.clone(),
            team: i.team.clone(),
            commander: commander_email,
            summary: i.summary.clone(),
            customer_impact: i.customer_impact.clone(),
            started_at: chrome.input_time(&Some(i.started_at)),
            detected_at: chrome.input_time(&i.detected_at),
            acknowledged_at: chrome.input_time(&i.acknowledged_at),
            mitigated_at: chrome.input_time(&i.mitigated_at),
            resolved_at: chrome.input_time(&i.resolved_at),
            closed_at: chrome.input_time(&i.closed_at),
            exclude_from_metrics: if i.exclude_from_metrics {
                "on".into()
            } else {
                String::new()
            },
            version: i.version.to_string(),
            restricted: if i.restricted {
                "on".into()
            } else {
                String::new()
            },
            participants: String::new(),
            similar_checked: String::new(),
        }
    }

    /// As parser input. Declaring leaves out empty optional times (defaults apply); editing
    /// sends every field, so an emptied milestone is cleared.
    fn to_input(&self, editing: bool) -> IncidentInput {
        let opt = |s: &String| {
            if editing || !s.trim().is_empty() {
                Some(Some(s.clone()))
            } else {
                None
            }
        };
        IncidentInput {
            title: Some(self.title.clone()),
            summary: Some(self.summary.clone()),
            customer_impact: Some(self.customer_impact.clone()),
            severity: Some(self.severity.clone()),
            status: None,
            service: Some(self.service.clone()),
            category: Some(self.category.clone()),
            team: Some(self.team.clone()),
            commander: Some(Some(self.commander.clone())),
            started_at: (editing || !self.started_at.trim().is_empty())
                .then(|| self.started_at.clone()),
            detected_at: opt(&self.detected_at),
            acknowledged_at: if editing {
                opt(&self.acknowledged_at)
            } else {
                None
            },
            mitigated_at: if editing {
                opt(&self.mitigated_at)
            } else {
                None
            },
            resolved_at: if editing {
                opt(&self.resolved_at)
            } else {
                None
            },
            closed_at: if editing { opt(&self.closed_at) } else { None },
            exclude_from_metrics: Some(!self.exclude_from_metrics.is_empty()),
            // Editing leaves who may see it alone: that has its own form (commander or admin).
            restricted: (!editing).then_some(!self.restricted.is_empty()),
            participants: (!editing && !self.participants.trim().is_empty())
                .then(|| vec![self.participants.clone()]),
        }
    }
}

/// Choices offered by the incident form.
struct FormOptions {
    lists: Arc<Lists>,
    users: Vec<User>,
    /// Everyone who can sign in: the participants field suggests them.
    everyone: Vec<User>,
}

/// The lists the incident form offers. Commanders are responders and admins, plus `keep`
/// (the email already in the form), so an older commander is not silently dropped.
async fn form_options(state: &IncidentsState, keep: &str) -> AppResult<FormOptions> {
    let everyone = crate::auth::db::list_active_users(&state.db.reader).await?;
    let users = everyone
        .iter()
        .filter(|u| u.can_be_assigned() || (!keep.is_empty() && u.email == keep))
        .cloned()
        .collect();
    Ok(FormOptions {
        lists: state.catalog.get(&state.db.reader).await?,
        users,
        everyone,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "incidents/new.html")]
struct NewPage {
    chrome: Chrome,
    form: IncidentForm,
    options: FormOptions,
    errors: FieldErrors,
    /// Earlier incidents like the one being declared, shown before it is created.
    similar: Vec<crate::similar::db::Suggestion>,
}

impl NewPage {
    fn severities(&self) -> [Severity; 4] {
        Severity::ALL
    }
}

async fn new_incident(
    State(state): State<IncidentsState>,
    Responder(page): Responder,
) -> AppResult<Response> {
    let form = IncidentForm {
        severity: "sev2".into(),
        category: "unknown".into(),
        commander: page.user.email.clone(),
        similar_checked: "0".into(),
        ..IncidentForm::default()
    };
    Ok(NewPage {
        chrome: page.chrome,
        options: form_options(&state, &form.commander).await?,
        form,
        errors: FieldErrors::new(),
        similar: Vec::new(),
    }
    .into_response())
}

async fn declare_incident(
    State(state): State<IncidentsState>,
    Responder(page): Responder,
    Form(mut form): Form<IncidentForm>,
) -> AppResult<Response> {
    // Without the script, the similar incidents are shown once, before declaring: the same
    // form with everything typed, the list above it, and "Declare anyway".
    if form.similar_checked == "0" {
        form.similar_checked = "1".into();
        if let Ok(req) =
            crate::similar::SimilarRequest::parse(Some(&form.title), Some(&form.service), None)
        {
            let viewer = crate::visibility::Viewer::user(&page.user.id);
            let similar = crate::similar::suggest(&state.db, &req, &viewer).await?;
            if !similar.is_empty() {
                return Ok(NewPage {
                    chrome: page.chrome,
                    options: form_options(&state, &form.commander).await?,
                    form,
                    errors: FieldErrors::new(),
                    similar,
                }
                .into_response());
            }
        }
    }
    let (changes, errors) = form.to_input(false).parse(state.tz);
    let both_times_empty = form.started_at.trim().is_empty() && form.detected_at.trim().is_empty();
    let result = super::declare_by(&state.db, &state.signals, &page.user, &changes, errors).await;
    match result {
        // Both left empty means both are "now": a time to detect of 0 s, which is rarely true.
        Ok(incident) if both_times_empty => Ok(redirect_with_flash(
            &incident.url(),
            "warn",
            &format!(
                "{} declared. Started and Detected were left empty, so both are now and time to detect is 0 s: if it began earlier, correct them under Edit.",
                incident.key()
            ),
        )),
        Ok(incident) => Ok(redirect_with_flash(
            &incident.url(),
            "ok",
            &format!(
                "{} declared. Add to its timeline as things happen.",
                incident.key()
            ),
        )),
        Err(AppError::Validation { fields, .. }) => {
            let html = NewPage {
                chrome: page.chrome,
                options: form_options(&state, &form.commander).await?,
                form,
                errors: fields,
                similar: Vec::new(),
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "incidents/edit.html")]
struct EditPage {
    chrome: Chrome,
    incident: Incident,
    form: IncidentForm,
    options: FormOptions,
    errors: FieldErrors,
}

impl EditPage {
    fn severities(&self) -> [Severity; 4] {
        Severity::ALL
    }
}

async fn commander_email(state: &IncidentsState, i: &Incident) -> AppResult<String> {
    Ok(match &i.commander_id {
        Some(id) => crate::auth::db::find_user(&state.db.reader, id)
            .await?
            .map(|u| u.email)
            .unwrap_or_default(),
        None => String::new(),
    })
}

async fn edit_incident(
    State(state): State<IncidentsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
) -> AppResult<Response> {
    let form = IncidentForm::from_incident(
        &incident,
        &page.chrome,
        commander_email(&state, &incident).await?,
    );
    Ok(EditPage {
        chrome: page.chrome,
        incident,
        options: form_options(&state, &form.commander).await?,
        form,
        errors: FieldErrors::new(),
    }
    .into_response())
}

/// One row of the conflict page: a field whose saved value differs from what was typed.
struct ConflictRow {
    label: &'static str,
    theirs: String,
    yours: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "incidents/conflict.html")]
struct ConflictPage {
    chrome: Chrome,
    incident: Incident,
    rows: Vec<ConflictRow>,
    form: IncidentForm,
    options: FormOptions,
    errors: FieldErrors,
}

impl ConflictPage {
    fn severities(&self) -> [Severity; 4] {
        Severity::ALL
    }
}

fn conflict_rows(saved: &IncidentForm, yours: &IncidentForm) -> Vec<ConflictRow> {
    let pairs: [(&'static str, &String, &String); 14] = [
        ("Title", &saved.title, &yours.title),
        ("Severity", &saved.severity, &yours.severity),
        ("Service", &saved.service, &yours.service),
        ("Category", &saved.category, &yours.category),
        ("Team", &saved.team, &yours.team),
        ("Commander", &saved.commander, &yours.commander),
        ("Summary", &saved.summary, &yours.summary),
        (
            "Customer impact",
            &saved.customer_impact,
            &yours.customer_impact,
        ),
        ("Started", &saved.started_at, &yours.started_at),
        ("Detected", &saved.detected_at, &yours.detected_at),
        (
            "Acknowledged",
            &saved.acknowledged_at,
            &yours.acknowledged_at,
        ),
        ("Mitigated", &saved.mitigated_at, &yours.mitigated_at),
        ("Resolved", &saved.resolved_at, &yours.resolved_at),
        ("Closed", &saved.closed_at, &yours.closed_at),
    ];
    pairs
        .into_iter()
        .filter(|(_, a, b)| a.trim() != b.trim())
        .map(|(label, theirs, yours)| ConflictRow {
            label,
            theirs: theirs.clone(),
            yours: yours.clone(),
        })
        .collect()
}

async fn update_incident(
    State(state): State<IncidentsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    VersionedForm { version, form }: VersionedForm<IncidentForm>,
) -> AppResult<Response> {
    let (changes, errors) = form.to_input(true).parse(state.tz);
    let result = super::update(
        &state.db,
        super::Actor::Person(&page.user),
        &incident,
        version,
        &changes,
        errors,
        "",
    )
    .await;
    match result {
        Ok(updated) => Ok(redirect_with_flash(
            &updated.url(),
            "ok",
            &format!("Saved {}.", updated.key()),
        )),
        Err(AppError::Validation { fields, .. }) => {
            let html = EditPage {
                chrome: page.chrome,
                incident,
                options: form_options(&state, &form.commander).await?,
                form,
                errors: fields,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(AppError::Conflict { .. }) => {
            let viewer = crate::visibility::Viewer::user(&page.user.id);
            let fresh = super::find(&state.db, &incident.id, &viewer).await?;
            let saved = IncidentForm::from_incident(
                &fresh,
                &page.chrome,
                commander_email(&state, &fresh).await?,
            );
            let rows = conflict_rows(&saved, &form);
            // Resubmitting from the conflict page applies what the person typed on top of the
            // version they have now seen.
            let mut mine = form;
            mine.version = fresh.version.to_string();
            let html = ConflictPage {
                chrome: page.chrome,
                incident: fresh,
                rows,
                options: form_options(&state, &mine.commander).await?,
                form: mine,
                errors: FieldErrors::new(),
            };
            Ok((StatusCode::CONFLICT, html).into_response())
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Show and status

#[derive(Debug, Default, Deserialize)]
struct ShowQuery {
    /// Id of the timeline entry to show as an inline edit form.
    #[serde(default)]
    edit: String,
    /// How many of the newest timeline entries to show (`all`: every one); see `TimelineWindow`.
    #[serde(default)]
    entries: String,
    /// `1`: look for similar earlier incidents (a full-text ranking over every incident, so
    /// only when asked, not on every view during a storm).
    #[serde(default)]
    similar: String,
}

/// How much of a long timeline the incident page shows: the first `TIMELINE_OLDEST` entries
/// (how it started) and the newest `newest` (what is happening now), with links between them
/// that show more. A major incident's timeline runs to thousands of entries; rendering every
/// one on each refresh made the page cost grow with the incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineWindow {
    Newest(i64),
    All,
}

/// Entries shown from the start of a long timeline.
pub const TIMELINE_OLDEST: i64 = 10;
/// Newest entries shown by default, and how many more each "show more" link adds.
pub const TIMELINE_NEWEST: i64 = 100;
const TIMELINE_MORE: i64 = 200;

impl Default for TimelineWindow {
    fn default() -> Self {
        Self::Newest(TIMELINE_NEWEST)
    }
}

impl TimelineWindow {
    /// `?entries=` as typed: a count (at least the default; bad input means the default) or
    /// `all`.
    pub fn parse(raw: &str) -> Self {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("all") {
            return Self::All;
        }
        raw.parse::<i64>().ok().map_or_else(Self::default, |n| {
            Self::Newest(n.clamp(TIMELINE_NEWEST, 100_000))
        })
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "incidents/show.html")]
pub struct ShowPage {
    pub chrome: Chrome,
    pub incident: Incident,
    pub summary_html: String,
    pub impact_html: String,
    pub entries: Arc<Vec<EntryView>>,
    /// The first entries of a long timeline; `entries` then holds the newest, after `gap`.
    pub oldest: Arc<Vec<EntryView>>,
    /// `oldest` and `entries` as HTML.
    pub timeline: Arc<RenderedTimeline>,
    pub gap: Option<TimelineGap>,
    /// A detection entry earlier than Detected, offered as the milestone.
    pub earlier_detection: Option<chrono::DateTime<Utc>>,
    pub entry_form: EntryFormView,
    pub status_form: StatusFormView,
    pub snapshots: Arc<Vec<crate::signals::chart::SnapshotView>>,
    pub items: Vec<crate::action_items::ActionItem>,
    pub today: chrono::NaiveDate,
    /// Services the collector has a window for (the snapshot button's choices).
    pub observed_services: Vec<String>,
    /// The post-mortem's status and how many of its sections are written, if one was started.
    pub postmortem: Option<(String, i64, i64)>,
    /// Earlier incidents alike this one, when it recurs.
    pub recurrence: std::sync::Arc<crate::recurrence::Recurrence>,
    /// Declared in the last few minutes: the recurrence banner is shown at the top.
    pub just_declared: bool,
    pub errors: FieldErrors,
    /// The people added to it by name.
    pub participants: Vec<super::db::Participant>,
    /// The signed-in user may change whether it is restricted and who is added (its
    /// commander or an admin).
    pub may_change_access: bool,
    /// Everyone who can sign in: the participants field suggests them.
    pub everyone: Vec<User>,
    /// Linked incidents, from either side.
    pub links: Vec<crate::similar::db::Link>,
    /// Earlier incidents alike by text (not linked yet), when asked for.
    pub similar: Vec<crate::similar::db::Suggestion>,
    /// Similar incidents were asked for (so an empty list means none were found).
    pub similar_asked: bool,
    /// Chat messages imported as evidence.
    pub evidence: Vec<crate::evidence::db::Message>,
}

/// Values of the status form, and why it was not applied.
#[derive(Debug, Clone, Default)]
pub struct StatusFormView {
    pub status: String,
    pub note: String,
    pub message: Option<String>,
}

/// What a re-rendered incident page should show besides the stored incident.
#[derive(Debug, Default)]
pub struct ShowState {
    /// Entry shown as an inline edit form, with the values to put in it.
    pub editing: Option<(String, Option<EntryFormView>)>,
    pub entry_form: Option<EntryFormView>,
    pub status_form: Option<StatusFormView>,
    pub errors: FieldErrors,
    /// How much of a long timeline to show.
    pub timeline: TimelineWindow,
    /// Someone asked for similar earlier incidents (`?similar=1`).
    pub look_similar: bool,
}

impl ShowPage {
    fn statuses(&self) -> [Status; 5] {
        Status::ALL
    }
    fn kinds(&self) -> [EntryKind; 7] {
        EntryKind::WRITABLE
    }
    fn item_statuses(&self) -> &'static [crate::action_items::ItemStatus] {
        &crate::action_items::ItemStatus::ALL
    }
    fn items_done(&self) -> usize {
        crate::action_items::done_count(&self.items)
    }
    /// Open p1 items: closing the incident with these left is worth a second look.
    fn open_p1(&self) -> Vec<&crate::action_items::ActionItem> {
        crate::action_items::open_p1(&self.items)
    }
    fn item_overdue(&self, item: &crate::action_items::ActionItem) -> bool {
        item.overdue(self.today)
    }
    /// True while an entry is shown as an edit form (field errors then belong to it).
    fn is_editing(&self) -> bool {
        self.entries.iter().any(|e| e.edit_form.is_some())
    }
    /// "Time to …" figures of the milestones that are set.
    fn durations(&self) -> Vec<(&'static str, String)> {
        let i = &self.incident;
        let mut out = Vec::new();
        for (label, from, to) in [
            ("Time to detect", Some(i.started_at), i.detected_at),
            ("Time to acknowledge", i.detected_at, i.acknowledged_at),
            ("Time to mitigate", Some(i.started_at), i.mitigated_at),
            ("Time to resolve", Some(i.started_at), i.resolved_at),
        ] {
            if let (Some(a), Some(b)) = (from, to) {
                out.push((label, crate::time::human_duration(b - a)));
            }
        }
        out
    }
}

/// Reads what `IncidentRecord` holds, with `window` of the timeline.
async fn read_record(
    state: &IncidentsState,
    incident: &Incident,
    window: TimelineWindow,
) -> AppResult<IncidentRecord> {
    let pool = &state.db.reader;
    let total = match window {
        TimelineWindow::All => None,
        TimelineWindow::Newest(_) => {
            Some(crate::timeline::db::count_for_incident(pool, &incident.id).await?)
        }
    };
    let (oldest, entries, gap) = match (window, total) {
        (TimelineWindow::Newest(newest), Some(total)) if total > TIMELINE_OLDEST + newest => {
            let oldest =
                crate::timeline::db::oldest_for_incident(pool, &incident.id, TIMELINE_OLDEST)
                    .await?;
            let entries =
                crate::timeline::db::newest_for_incident(pool, &incident.id, newest).await?;
            let hidden = total - TIMELINE_OLDEST - newest;
            let more_count = hidden.min(TIMELINE_MORE);
            let gap = TimelineGap {
                hidden,
                more: newest + more_count,
                more_count,
                total,
            };
            (oldest, entries, Some(gap))
        }
        _ => (
            Vec::new(),
            crate::timeline::db::list_for_incident(pool, &incident.id).await?,
            None,
        ),
    };
    let earlier_detection = match gap {
        None => super::earlier_detection(incident, &entries),
        Some(_) => crate::timeline::db::earliest_detection(pool, &incident.id, incident.started_at)
            .await?
            .filter(|at| incident.detected_at.is_none_or(|detected| *at < detected)),
    };
    let view = |entry: crate::timeline::Entry| EntryView {
        html: crate::markdown::render(&entry.body),
        edit_form: None,
        entry,
    };
    let snapshots = crate::signals::db::list_for_incident(pool, &incident.id)
        .await?
        .into_iter()
        .map(crate::signals::chart::SnapshotView::new)
        .collect();
    Ok(IncidentRecord {
        oldest: Arc::new(oldest.into_iter().map(view).collect()),
        entries: Arc::new(entries.into_iter().map(view).collect()),
        gap,
        earlier_detection,
        snapshots: Arc::new(snapshots),
        items: crate::action_items::db::list_for_incident(pool, &incident.id).await?,
        participants: super::db::participants(pool, &incident.id).await?,
        evidence: crate::evidence::db::list(pool, &incident.id, None).await?,
        markers: crate::evidence::db::markers(pool, &incident.id).await?,
        postmortem: crate::postmortems::db::summary(pool, &incident.id).await?,
        everyone: crate::auth::db::list_active_users(pool).await?,
        rendered: Default::default(),
    })
}

/// Timeline entries as the incident page lists them (with the edit form in the one being
/// edited).
#[derive(Template)]
#[template(path = "incidents/_entries.html", whitespace = "minimize")]
struct EntryList<'a> {
    number: i64,
    entries: &'a [EntryView],
    markers: &'a std::collections::HashMap<String, crate::evidence::Marker>,
    can_write: bool,
    tz: chrono_tz::Tz,
    /// What was wrong with a refused edit.
    errors: &'a FieldErrors,
}

impl EntryList<'_> {
    /// The chat marker of a timeline entry promoted from a message.
    fn marker(&self, entry_id: &str) -> Option<&'static str> {
        self.markers.get(entry_id).map(|m| m.label())
    }
    fn time(&self, at: &chrono::DateTime<Utc>) -> String {
        crate::time::format_time(self.tz, *at)
    }
    /// What the inline edit form offers for an entry of kind `current`.
    fn edit_kinds(&self, current: &str) -> Vec<EntryKind> {
        EntryKind::editable_from(current)
    }
}

/// Renders a record's timeline (`entries` in place of its newest when one is being edited).
fn render_timeline(
    record: &IncidentRecord,
    entries: &[EntryView],
    number: i64,
    chrome: &Chrome,
    errors: &FieldErrors,
) -> AppResult<RenderedTimeline> {
    let list = |entries: &[EntryView]| {
        EntryList {
            number,
            entries,
            markers: &record.markers,
            can_write: chrome.can_write(),
            tz: chrome.tz,
            errors,
        }
        .render()
        .map_err(|e| AppError::Internal(format!("timeline failed to render: {e}")))
    };
    Ok(RenderedTimeline {
        oldest: list(&record.oldest)?,
        entries: list(entries)?,
    })
}

/// Renders the incident page; used by the page itself and by the forms on it when they
/// re-render with an error.
/// Renders the incident page; used by the page itself and by the forms on it when they
/// re-render with an error.
pub async fn render_show(
    state: &IncidentsState,
    chrome: Chrome,
    incident: Incident,
    show: ShowState,
) -> AppResult<ShowPage> {
    let record = match &show.editing {
        None if show.timeline == TimelineWindow::default() => {
            state
                .records
                .get_or_load(&state.db, &incident.id, || async {
                    read_record(state, &incident, show.timeline)
                        .await
                        .map(Arc::new)
                })
                .await?
        }
        // Editing an entry (or showing a failed edit) needs that entry on the page: show
        // them all.
        Some(_) => Arc::new(read_record(state, &incident, TimelineWindow::All).await?),
        None => Arc::new(read_record(state, &incident, show.timeline).await?),
    };
    let entries = match &show.editing {
        None => Arc::clone(&record.entries),
        Some((id, form)) => Arc::new(
            record
                .entries
                .iter()
                .map(|view| {
                    let mut view = view.clone();
                    if view.entry.id == *id {
                        let entry = &view.entry;
                        view.edit_form = Some(form.clone().unwrap_or_else(|| EntryFormView {
                            occurred_at: chrome.input_time(&Some(entry.occurred_at)),
                            kind: entry.kind.as_str().to_owned(),
                            body: entry.body.clone(),
                            version: entry.version.to_string(),
                        }));
                    }
                    view
                })
                .collect(),
        ),
    };
    let timeline = match &show.editing {
        None => record.rendered(chrome.can_write(), || {
            render_timeline(
                &record,
                &record.entries,
                incident.number,
                &chrome,
                &show.errors,
            )
        })?,
        Some(_) => Arc::new(render_timeline(
            &record,
            &entries,
            incident.number,
            &chrome,
            &show.errors,
        )?),
    };
    let entry_form = show.entry_form.unwrap_or_else(|| EntryFormView {
        // Empty: the entry is stamped when it is submitted, not when the page was loaded.
        occurred_at: String::new(),
        kind: "note".into(),
        ..EntryFormView::default()
    });
    let status_form = show.status_form.unwrap_or_else(|| StatusFormView {
        status: incident.status.as_str().to_owned(),
        ..StatusFormView::default()
    });
    let mut observed_services = state.signals.registry.services();
    observed_services.sort();
    let recurrence = state
        .recurrence
        .of(&state.db, &incident.id, incident.started_at)
        .await?;
    let may_change_access = chrome
        .user
        .as_ref()
        .is_some_and(|u| super::access::may_change(super::Actor::Person(u), &incident).is_ok());
    let everyone = if may_change_access {
        record.everyone.clone()
    } else {
        Vec::new()
    };
    let viewer = chrome
        .user
        .as_ref()
        .map_or_else(crate::visibility::Viewer::anyone, |u| {
            crate::visibility::Viewer::user(&u.id)
        });
    let links = crate::similar::db::links_of(&state.db.reader, &incident.id, &viewer).await?;
    // Earlier incidents alike by text, not linked yet, when asked: ranking every incident by
    // text costs tens of milliseconds at 100k incidents, too much for each view of a page
    // dozens of people refresh during an incident (a title the suggestions cannot read just
    // shows none).
    let similar = match crate::similar::SimilarRequest::parse(
        Some(&incident.title),
        Some(&incident.service),
        None,
    ) {
        Ok(mut req) if show.look_similar => {
            req.exclude = Some(incident.id.clone());
            crate::similar::suggest(&state.db, &req, &viewer)
                .await?
                .into_iter()
                .filter(|s| !links.iter().any(|l| l.other_id == s.id))
                .collect()
        }
        Ok(_) | Err(_) => Vec::new(),
    };
    Ok(ShowPage {
        participants: record.participants.clone(),
        may_change_access,
        everyone,
        links,
        similar,
        similar_asked: show.look_similar,
        evidence: record.evidence.clone(),
        postmortem: record.postmortem.clone(),
        recurrence,
        just_declared: Utc::now() - incident.created_at < Duration::minutes(10),
        snapshots: Arc::clone(&record.snapshots),
        items: record.items.clone(),
        today: crate::time::today(state.tz),
        observed_services,
        summary_html: crate::markdown::render(&incident.summary),
        impact_html: crate::markdown::render(&incident.customer_impact),
        chrome,
        incident,
        entries,
        oldest: Arc::clone(&record.oldest),
        timeline,
        gap: record.gap.clone(),
        earlier_detection: record.earlier_detection,
        entry_form,
        status_form,
        errors: show.errors,
    })
}

async fn show_incident(
    State(state): State<IncidentsState>,
    page: Page,
    IncidentInPath(incident): IncidentInPath,
    Query(query): Query<ShowQuery>,
) -> AppResult<Response> {
    let show = ShowState {
        editing: (!query.edit.is_empty() && page.user.can_write()).then_some((query.edit, None)),
        timeline: TimelineWindow::parse(&query.entries),
        look_similar: query.similar == "1",
        ..ShowState::default()
    };
    Ok(render_show(&state, page.chrome, incident, show)
        .await?
        .into_response())
}

#[derive(Debug, Deserialize)]
struct StatusForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    version: String,
}

async fn change_status(
    State(state): State<IncidentsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Form(form): Form<StatusForm>,
) -> AppResult<Response> {
    let status = Status::parse(&form.status)
        .ok_or_else(|| AppError::field("status", Status::field_error()))?;
    let version: i64 = form.version.trim().parse().map_err(|_| {
        AppError::BadRequest("the form lacks the version it was loaded at; reload the page".into())
    })?;
    if form.note.chars().count() > crate::timeline::BODY_MAX {
        return Err(AppError::field("note", "is too long"));
    }
    let changes = super::IncidentChanges {
        status: Some(status),
        ..super::IncidentChanges::default()
    };
    match super::update(
        &state.db,
        super::Actor::Person(&page.user),
        &incident,
        version,
        &changes,
        FieldErrors::new(),
        &form.note,
    )
    .await
    {
        Ok(updated) => {
            // Closing with p1 follow-ups still open is allowed, but said out loud.
            let open_p1 = crate::action_items::open_p1_titles(&state.db, &updated.id).await?;
            if updated.status >= Status::Resolved && !open_p1.is_empty() {
                return Ok(redirect_with_flash(
                    &updated.url(),
                    "warn",
                    &format!(
                        "{} is now {}, but p1 action items are still open: {}.",
                        updated.key(),
                        updated.status.as_str(),
                        open_p1.join("; ")
                    ),
                ));
            }
            Ok(redirect_with_flash(
                &updated.url(),
                "ok",
                &format!("{} is now {}.", updated.key(), updated.status.as_str()),
            ))
        }
        Err(AppError::Conflict { .. }) => {
            let viewer = crate::visibility::Viewer::user(&page.user.id);
            let fresh = super::find(&state.db, &incident.id, &viewer).await?;
            let show = ShowState {
                status_form: Some(StatusFormView {
                    status: form.status,
                    note: form.note,
                    message: Some(format!(
                        "Someone else changed {} while you were looking at it (it is now {}), so your change was not applied. Check the page as it is now and submit again.",
                        fresh.key(),
                        fresh.status.as_str()
                    )),
                }),
                ..ShowState::default()
            };
            let html = render_show(&state, page.chrome, fresh, show).await?;
            Ok((StatusCode::CONFLICT, html).into_response())
        }
        Err(e) => Err(e),
    }
}

/// Query-string value of a service or category for list links.
pub fn filter_link(key: &str, value: &str) -> String {
    format!("/incidents?{key}={}", form_urlencode(value))
}

#[derive(Debug, Deserialize)]
struct DetectedForm {
    detected_at: String,
}

/// Sets the Detected milestone to the time the page offered (an earlier detection entry).
async fn set_detected(
    State(state): State<IncidentsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    VersionedForm { version, form }: VersionedForm<DetectedForm>,
) -> AppResult<Response> {
    let at = crate::time::parse_form_time(&form.detected_at, state.tz)
        .map_err(|message| AppError::field("detected_at", message))?
        .ok_or_else(|| AppError::field("detected_at", "is required"))?;
    let changes = super::IncidentChanges {
        detected_at: Some(Some(at)),
        ..super::IncidentChanges::default()
    };
    match super::update(
        &state.db,
        super::Actor::Person(&page.user),
        &incident,
        version,
        &changes,
        FieldErrors::new(),
        "",
    )
    .await
    {
        Ok(updated) => Ok(redirect_with_flash(
            &updated.url(),
            "ok",
            &format!(
                "Detected is now {}.",
                crate::time::format_time(state.tz, at)
            ),
        )),
        Err(AppError::Conflict { .. }) => Ok(redirect_with_flash(
            &incident.url(),
            "error",
            "Someone changed this incident meanwhile; nothing was saved. Check Detected below and try again.",
        )),
        Err(AppError::Validation { message, .. }) => Ok(redirect_with_flash(
            &incident.url(),
            "error",
            &format!("Detected was not changed: {message}"),
        )),
        Err(other) => Err(other),
    }
}

#[derive(Debug, Deserialize)]
struct AccessForm {
    /// Checked: restricted.
    #[serde(default)]
    restricted: String,
    /// E-mail addresses, separated by commas or lines: the whole list.
    #[serde(default)]
    participants: String,
}

/// Makes the incident restricted (or not) and sets who is added to it, from the incident
/// page's *Who may see it* form: its commander or an admin (others get 403, and someone who
/// cannot see it 404 from `IncidentInPath`).
async fn change_access(
    State(state): State<IncidentsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Form(form): Form<AccessForm>,
) -> AppResult<Response> {
    let input = IncidentInput {
        restricted: Some(!form.restricted.is_empty()),
        participants: Some(vec![form.participants.clone()]),
        ..IncidentInput::default()
    };
    let (changes, errors) = input.parse(state.tz);
    match super::update(
        &state.db,
        super::Actor::Person(&page.user),
        &incident,
        incident.version,
        &changes,
        errors,
        "",
    )
    .await
    {
        Ok(updated) => Ok(redirect_with_flash(
            &updated.url(),
            "ok",
            &if updated.restricted {
                format!(
                    "{} is restricted to the people listed under Who may see it.",
                    updated.key()
                )
            } else {
                format!("{} is visible to everyone signed in.", updated.key())
            },
        )),
        Err(AppError::Validation { fields, .. }) => {
            let show = ShowState {
                errors: fields,
                ..ShowState::default()
            };
            let html = render_show(&state, page.chrome, incident, show).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e),
    }
}
