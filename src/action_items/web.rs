//! Action-item pages: the board across incidents (filters with counts, bulk changes, CSV), the
//! add and edit forms, and the quick status change used on the incident page and the board.

use crate::web::extract::{Path, Query};
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{Datelike, Duration, NaiveDate};
use serde::Deserialize;

use super::db::{self, ItemFilter};
use super::{ActionItem, ActionItemsState, ItemInput, ItemStatus, Kind, Priority};
use crate::auth::User;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::incidents::Incident;
use crate::visibility::Viewer;
use crate::web::chrome::{Chrome, redirect_with_flash};
use crate::web::extract::{CallerState, Form, IncidentInPath, Page, Responder, VersionedForm};
use crate::web::middleware::form_urlencode;

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ActionItemsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/action-items", get(board))
        .route("/action-items.csv", get(export_csv))
        .route("/action-items/progress", get(show_progress))
        .route("/action-items/bulk", post(bulk_change))
        .route("/action-items/{id}/edit", get(edit_item).post(update_item))
        .route("/action-items/{id}/status", post(change_status))
        .route("/incidents/{incident}/action-items/new", get(new_item))
        .route("/incidents/{incident}/action-items", post(create_item))
}

/// The board's filter as typed in the query string.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BoardQuery {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub team: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub priority: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub incident: String,
    #[serde(default)]
    pub due: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub page: String,
}

/// Monday to Sunday of the week holding `today`.
fn this_week(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    (today, monday + Duration::days(6))
}

impl BoardQuery {
    /// The filter, resolving `owner=me`/`none`/email; bad values are named.
    async fn filter(
        &self,
        state: &ActionItemsState,
        me: &User,
        today: NaiveDate,
    ) -> AppResult<ItemFilter> {
        let mut f = ItemFilter::default();
        let mut errors = FieldErrors::new();
        match self.status.trim() {
            "" | "open" => f.not_closed = true,
            "all" => {}
            other => match ItemStatus::parse(other) {
                Some(s) => f.status = Some(s),
                None => {
                    errors.insert(
                        "status".into(),
                        "must be open, all, in_progress, done or wont_do".into(),
                    );
                }
            },
        }
        match self.owner.trim() {
            "" => {}
            "me" => f.owner_id = Some(me.id.clone()),
            "none" => f.no_owner = true,
            email => match crate::auth::db::find_user_by_email(&state.db.reader, email).await? {
                Some(u) => f.owner_id = Some(u.id),
                None => {
                    errors.insert("owner".into(), format!("no user is {email}"));
                }
            },
        }
        if !self.team.trim().is_empty() {
            f.team = Some(self.team.trim().to_owned());
        }
        if !self.kind.trim().is_empty() {
            f.kind = Kind::parse_field(&self.kind, &mut errors);
        }
        if !self.priority.trim().is_empty() {
            f.priority = Priority::parse_field(&self.priority, &mut errors);
        }
        if !self.service.trim().is_empty() {
            f.service = Some(self.service.trim().to_owned());
        }
        if !self.incident.trim().is_empty() {
            match crate::incidents::IncidentRef::parse(&self.incident) {
                Ok(crate::incidents::IncidentRef::Number(n)) => f.incident_number = Some(n),
                _ => {
                    errors.insert(
                        "incident".into(),
                        "must be an incident number like INC-42".into(),
                    );
                }
            }
        }
        match self.due.trim() {
            "" => {}
            "overdue" => f.overdue_before = Some(today),
            "week" => f.due_between = Some(this_week(today)),
            _ => {
                errors.insert("due".into(), "must be overdue or week".into());
            }
        }
        match self.sort.trim() {
            "" | "due" => {}
            "age" => f.by_age = true,
            _ => {
                errors.insert("sort".into(), "must be due or age".into());
            }
        }
        if errors.is_empty() {
            Ok(f)
        } else {
            Err(AppError::fields(errors))
        }
    }

    /// The query string with one key replaced (or removed when `value` is empty).
    pub fn with(&self, key: &str, value: &str) -> String {
        let mut pairs: Vec<(&str, String)> = [
            ("status", &self.status),
            ("owner", &self.owner),
            ("team", &self.team),
            ("kind", &self.kind),
            ("priority", &self.priority),
            ("service", &self.service),
            ("incident", &self.incident),
            ("due", &self.due),
            ("sort", &self.sort),
        ]
        .into_iter()
        .filter(|(k, v)| *k != key && !v.trim().is_empty())
        .map(|(k, v)| (k, v.clone()))
        .collect();
        if !value.is_empty() {
            pairs.push((key, value.to_owned()));
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", form_urlencode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// A quick filter with how many items it holds now.
struct QuickFilter {
    label: &'static str,
    query: String,
    count: i64,
    warn: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "action_items/board.html")]
struct BoardPage {
    chrome: Chrome,
    q: BoardQuery,
    items: Vec<ActionItem>,
    total: i64,
    quick: Vec<QuickFilter>,
    users: Vec<User>,
    today: NaiveDate,
    errors: FieldErrors,
}

impl BoardPage {
    fn statuses(&self) -> &'static [ItemStatus] {
        &ItemStatus::ALL
    }
    fn kinds(&self) -> &'static [Kind] {
        &Kind::ALL
    }
    fn priorities(&self) -> &'static [Priority] {
        &Priority::ALL
    }
    fn overdue(&self, item: &ActionItem) -> bool {
        item.overdue(self.today)
    }
}

const BOARD_PAGE: u32 = 100;

async fn board(
    State(state): State<ActionItemsState>,
    page: Page,
    Query(q): Query<BoardQuery>,
) -> AppResult<Response> {
    let today = crate::time::today(state.tz);
    let (items, total, errors) = match q.filter(&state, &page.user, today).await {
        Ok(filter) => {
            let page_no = q.page.trim().parse::<u32>().unwrap_or(1).clamp(1, 1000);
            let result = state
                .items
                .page(
                    &state.db,
                    &Viewer::user(&page.user.id),
                    &filter,
                    page_no,
                    BOARD_PAGE,
                )
                .await?;
            (result.0.clone(), result.1, FieldErrors::new())
        }
        Err(AppError::Validation { fields, .. }) => (Vec::new(), 0, fields),
        Err(e) => return Err(e),
    };
    let mut quick = Vec::new();
    for (label, query, warn, filter) in [
        (
            "Open",
            "",
            false,
            ItemFilter {
                not_closed: true,
                ..ItemFilter::default()
            },
        ),
        (
            "Mine",
            "owner=me",
            false,
            ItemFilter {
                not_closed: true,
                owner_id: Some(page.user.id.clone()),
                ..ItemFilter::default()
            },
        ),
        (
            "Overdue",
            "due=overdue",
            true,
            ItemFilter {
                overdue_before: Some(today),
                ..ItemFilter::default()
            },
        ),
        (
            "Due this week",
            "due=week",
            false,
            ItemFilter {
                due_between: Some(this_week(today)),
                ..ItemFilter::default()
            },
        ),
        (
            "No owner",
            "owner=none",
            true,
            ItemFilter {
                not_closed: true,
                no_owner: true,
                ..ItemFilter::default()
            },
        ),
        (
            "Done",
            "status=done",
            false,
            ItemFilter {
                status: Some(ItemStatus::Done),
                ..ItemFilter::default()
            },
        ),
    ] {
        quick.push(QuickFilter {
            label,
            query: query.to_owned(),
            count: state
                .items
                .count(&state.db, &Viewer::user(&page.user.id), &filter)
                .await?,
            warn,
        });
    }
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let html = BoardPage {
        chrome: page.chrome,
        q,
        items,
        total,
        quick,
        users: crate::auth::db::list_active_users(&state.db.reader).await?,
        today,
        errors,
    };
    Ok((status, html).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "action_items/progress.html")]
struct ProgressPage {
    chrome: Chrome,
    teams: Vec<super::progress::TeamProgress>,
    weeks: Vec<super::progress::WeekPoint>,
    chart: String,
}

impl ProgressPage {
    fn percent(&self, rate: &f64) -> String {
        format!("{:.0}%", rate * 100.0)
    }
}

/// Completion per team and the weekly series of opened, closed and overdue items.
async fn show_progress(State(state): State<ActionItemsState>, page: Page) -> AppResult<Response> {
    let today = crate::time::today(state.tz);
    let facts = db::facts(&state.db.reader).await?;
    let weeks = super::progress::weekly(&facts, today, 12);
    Ok(ProgressPage {
        chrome: page.chrome,
        teams: super::progress::per_team(&facts, today),
        chart: super::progress::weekly_chart(&weeks),
        weeks,
    }
    .into_response())
}

/// CSV of the board's current filter (every matching row).
async fn export_csv(
    State(state): State<ActionItemsState>,
    page: Page,
    Query(q): Query<BoardQuery>,
) -> AppResult<Response> {
    let today = crate::time::today(state.tz);
    let filter = q.filter(&state, &page.user, today).await?;
    let viewer = Viewer::user(&page.user.id);
    let (items, _) = db::list(&state.db.reader, &viewer, &filter, 1, 0).await?;
    let mut csv = String::from(
        "incident,title,status,priority,kind,owner,team,due_on,overdue,external_url,completed_at,wont_do_reason\n",
    );
    for i in &items {
        let row = [
            format!("INC-{}", i.incident_number),
            i.title.clone(),
            i.status.as_str().to_owned(),
            i.priority.as_str().to_owned(),
            i.kind.as_str().to_owned(),
            i.owner_email.clone().unwrap_or_default(),
            i.team.clone(),
            i.due_on.map(|d| d.to_string()).unwrap_or_default(),
            i.overdue(today).to_string(),
            i.external_url.clone(),
            i.completed_at.map(crate::db::ts).unwrap_or_default(),
            i.wont_do_reason.clone(),
        ];
        csv.push_str(
            &row.iter()
                .map(|f| crate::csv::csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        csv.push('\n');
    }
    Ok(crate::web::download::attachment(
        "text/csv; charset=utf-8",
        "action-items.csv",
        csv,
    ))
}

/// Bulk change from the board: `ids` (repeated) and a new `status` (with `reason`) or `owner`.
async fn bulk_change(
    State(state): State<ActionItemsState>,
    Responder(page): Responder,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let ids: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "ids")
        .map(|(_, v)| v.as_str())
        .collect();
    let back = format!("/action-items?{}", get("back"));
    if ids.is_empty() {
        return Ok(redirect_with_flash(
            &back,
            "error",
            "Select at least one action item.",
        ));
    }
    let status = get("status");
    let owner = get("owner");
    let input = ItemInput {
        status: (!status.is_empty()).then(|| status.clone()),
        wont_do_reason: Some(get("reason")).filter(|r| !r.is_empty()),
        owner: match owner.as_str() {
            "" => None,
            "none" => Some(None),
            email => Some(Some(email.to_owned())),
        },
        ..ItemInput::default()
    };
    if input.status.is_none() && input.owner.is_none() {
        return Ok(redirect_with_flash(
            &back,
            "error",
            "Choose a new status or owner for the selected items.",
        ));
    }
    let super::BulkOutcome { changed, failed } =
        super::bulk_update(&state.db, &page.user, &ids, &input).await?;
    let message = if failed.is_empty() {
        format!("Changed {changed} action item(s).")
    } else {
        format!("Changed {changed}; not changed: {}", failed.join("; "))
    };
    Ok(redirect_with_flash(
        &back,
        if failed.is_empty() { "ok" } else { "warn" },
        &message,
    ))
}

/// The add/edit form as typed.
#[derive(Debug, Clone, Default, Deserialize)]
struct ItemForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    due_on: String,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    wont_do_reason: String,
    #[serde(default)]
    version: String,
    /// `postmortem` when added from the post-mortem page, which is where to go back to.
    #[serde(default)]
    back: String,
}

impl ItemForm {
    fn from_item(i: &ActionItem) -> Self {
        Self {
            title: i.title.clone(),
            description: i.description.clone(),
            owner: i.owner_email.clone().unwrap_or_default(),
            team: i.team.clone(),
            kind: i.kind.as_str().into(),
            priority: i.priority.as_str().into(),
            due_on: i.due_on.map(|d| d.to_string()).unwrap_or_default(),
            external_url: i.external_url.clone(),
            status: i.status.as_str().into(),
            wont_do_reason: i.wont_do_reason.clone(),
            version: i.version.to_string(),
            back: String::new(),
        }
    }

    fn input(&self) -> ItemInput {
        ItemInput {
            title: Some(self.title.clone()),
            description: Some(self.description.clone()),
            owner: Some(Some(self.owner.clone())),
            team: Some(self.team.clone()),
            kind: Some(self.kind.clone()),
            priority: Some(self.priority.clone()),
            due_on: Some(Some(self.due_on.clone())),
            external_url: Some(self.external_url.clone()),
            status: (!self.status.is_empty()).then(|| self.status.clone()),
            wont_do_reason: Some(self.wont_do_reason.clone()),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "action_items/form.html")]
struct FormPage {
    chrome: Chrome,
    incident: Incident,
    /// The item being edited (none when adding).
    item_id: Option<String>,
    form: ItemForm,
    users: Vec<User>,
    errors: FieldErrors,
    conflict: Option<ActionItem>,
}

impl FormPage {
    fn statuses(&self) -> &'static [ItemStatus] {
        &ItemStatus::ALL
    }
    fn kinds(&self) -> &'static [Kind] {
        &Kind::ALL
    }
    fn priorities(&self) -> &'static [Priority] {
        &Priority::ALL
    }
}

async fn form_page(
    state: &ActionItemsState,
    chrome: Chrome,
    incident: Incident,
    item_id: Option<String>,
    form: ItemForm,
    errors: FieldErrors,
    conflict: Option<ActionItem>,
) -> AppResult<FormPage> {
    Ok(FormPage {
        chrome,
        incident,
        item_id,
        // Owners are responders and admins, plus whoever already owns the item.
        users: crate::auth::db::list_active_users(&state.db.reader)
            .await?
            .into_iter()
            .filter(|u| u.can_be_assigned() || u.email == form.owner)
            .collect(),
        form,
        errors,
        conflict,
    })
}

async fn new_item(
    State(state): State<ActionItemsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
) -> AppResult<Response> {
    let form = ItemForm {
        kind: "prevent".into(),
        priority: "p2".into(),
        team: incident.team.clone(),
        ..ItemForm::default()
    };
    Ok(form_page(
        &state,
        page.chrome,
        incident,
        None,
        form,
        FieldErrors::new(),
        None,
    )
    .await?
    .into_response())
}

async fn create_item(
    State(state): State<ActionItemsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Form(form): Form<ItemForm>,
) -> AppResult<Response> {
    match super::create(&state.db, &page.user, &incident.id, &form.input()).await {
        Ok(item) => Ok(redirect_with_flash(
            &if form.back == "postmortem" {
                format!("{}/postmortem#action-items", incident.url())
            } else {
                format!("{}#action-items", incident.url())
            },
            "ok",
            &format!("Added the action item {}.", item.title),
        )),
        Err(AppError::Validation { fields, .. }) => {
            let html = form_page(&state, page.chrome, incident, None, form, fields, None).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e),
    }
}

/// The item and its incident, as `user` may see it: an item of an incident they may not see
/// is not found.
async fn load_item(
    state: &ActionItemsState,
    id: &str,
    user: &crate::auth::User,
) -> AppResult<(ActionItem, Incident)> {
    let viewer = crate::visibility::Viewer::user(&user.id);
    let item = super::find(&state.db, id, &viewer).await?;
    let incident = crate::incidents::find(&state.db, &item.incident_id, &viewer)
        .await
        .map_err(|e| match e {
            AppError::NotFound { .. } => AppError::missing("action item"),
            other => other,
        })?;
    Ok((item, incident))
}

async fn edit_item(
    State(state): State<ActionItemsState>,
    Responder(page): Responder,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let (item, incident) = load_item(&state, &id, &page.user).await?;
    let form = ItemForm::from_item(&item);
    Ok(form_page(
        &state,
        page.chrome,
        incident,
        Some(id),
        form,
        FieldErrors::new(),
        None,
    )
    .await?
    .into_response())
}

async fn update_item(
    State(state): State<ActionItemsState>,
    Responder(page): Responder,
    Path(id): Path<String>,
    VersionedForm { version, form }: VersionedForm<ItemForm>,
) -> AppResult<Response> {
    let (item, incident) = load_item(&state, &id, &page.user).await?;
    match super::update(&state.db, &page.user, &item, version, &form.input()).await {
        Ok(saved) => Ok(redirect_with_flash(
            &format!("{}#action-items", incident.url()),
            "ok",
            &format!("Saved the action item {}.", saved.title),
        )),
        Err(AppError::Validation { fields, .. }) => {
            let html =
                form_page(&state, page.chrome, incident, Some(id), form, fields, None).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(AppError::Conflict { .. }) => {
            let (fresh, incident) = load_item(&state, &id, &page.user).await?;
            let mut mine = form;
            mine.version = fresh.version.to_string();
            let html = form_page(
                &state,
                page.chrome,
                incident,
                Some(id),
                mine,
                FieldErrors::new(),
                Some(fresh),
            )
            .await?;
            Ok((StatusCode::CONFLICT, html).into_response())
        }
        Err(e) => Err(e),
    }
}

#[derive(Debug, Deserialize)]
struct StatusForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    version: String,
    /// Where to go back to: the incident page (default) or the board.
    #[serde(default)]
    back: String,
}

async fn change_status(
    State(state): State<ActionItemsState>,
    Responder(page): Responder,
    Path(id): Path<String>,
    Form(form): Form<StatusForm>,
) -> AppResult<Response> {
    let (item, incident) = load_item(&state, &id, &page.user).await?;
    let back = if form.back.starts_with("/action-items")
        || form
            .back
            .starts_with(&format!("{}/postmortem", incident.url()))
    {
        form.back.clone()
    } else {
        format!("{}#action-items", incident.url())
    };
    let version = form.version.trim().parse::<i64>().unwrap_or(-1);
    let input = ItemInput {
        status: Some(form.status.clone()),
        wont_do_reason: Some(form.reason.clone()).filter(|r| !r.trim().is_empty()),
        ..ItemInput::default()
    };
    Ok(
        match super::update(&state.db, &page.user, &item, version, &input).await {
            Ok(saved) => redirect_with_flash(
                &back,
                "ok",
                &format!(
                    "{} is now {}.",
                    saved.title,
                    saved.status.as_str().replace('_', " ")
                ),
            ),
            Err(AppError::Validation { message, .. }) => redirect_with_flash(
                &back,
                "error",
                &format!("{} was not changed: {message}", item.title),
            ),
            Err(AppError::Conflict { .. }) => redirect_with_flash(
                &back,
                "error",
                &format!(
                    "{} was changed by someone else meanwhile; check it and try again.",
                    item.title
                ),
            ),
            Err(e) => return Err(e),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_week_runs_from_today_to_sunday() {
        let wednesday = NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
        let (from, to) = this_week(wednesday);
        assert_eq!(
            (from.to_string(), to.to_string()),
            ("2026-11-25".into(), "2026-11-29".into())
        );
    }
}
