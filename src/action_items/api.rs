//! JSON API for action items: create on an incident, list with filters, get, patch with a
//! version.

use crate::web::extract::{ApiQuery, Path};
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{ActionItemsState, ItemInput, ItemStatus, db};
use crate::error::{AppError, AppResult};
use crate::visibility::Viewer;
use crate::web::extract::{
    ApiCaller, ApiResponder, CallerState, IncidentInPath, Json, from_json_value, take_version,
};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ActionItemsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/incidents/{incident}/action-items", post(create_item))
        .route("/action-items", get(list_items))
        .route("/action-items/{id}", get(get_item).patch(update_item))
}

fn item_json(item: &super::ActionItem, today: chrono::NaiveDate) -> serde_json::Value {
    let mut body = serde_json::to_value(item).unwrap_or_default();
    body["incident"] = serde_json::json!(format!("INC-{}", item.incident_number));
    body["overdue"] = serde_json::json!(item.overdue(today));
    body
}

async fn create_item(
    State(state): State<ActionItemsState>,
    ApiResponder(caller): ApiResponder,
    IncidentInPath(incident): IncidentInPath,
    Json(input): Json<ItemInput>,
) -> AppResult<Response> {
    refuse_empty_due_date(&input)?;
    let item = super::create(&state.db, &caller.user, &incident.id, &input).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(item_json(&item, crate::time::today(state.tz))),
    )
        .into_response())
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    overdue: String,
    #[serde(default)]
    page: String,
    #[serde(default)]
    per_page: String,
}

async fn list_items(
    State(state): State<ActionItemsState>,
    caller: ApiCaller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Response> {
    caller.require_read()?;
    let mut filter = db::ItemFilter::default();
    if !q.status.trim().is_empty() {
        filter.status = Some(
            ItemStatus::parse(&q.status)
                .ok_or_else(|| AppError::field(ItemStatus::FIELD, ItemStatus::field_error()))?,
        );
    }
    if !q.owner.trim().is_empty() {
        let user = crate::auth::db::find_user_by_email(&state.db.reader, &q.owner)
            .await?
            .ok_or_else(|| AppError::field("owner", format!("no user is {}", q.owner.trim())))?;
        filter.owner_id = Some(user.id);
    }
    if !q.team.trim().is_empty() {
        filter.team = Some(q.team.trim().to_owned());
    }
    match q.overdue.trim() {
        "" | "false" => {}
        "true" => filter.overdue_before = Some(crate::time::today(state.tz)),
        _ => return Err(AppError::field("overdue", "must be true or false")),
    }
    let number = |raw: &str, field: &str, default: u32, max: u32| -> AppResult<u32> {
        match raw.trim() {
            "" => Ok(default),
            s => s
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    AppError::field(field, format!("must be a whole number from 1 to {max}"))
                }),
        }
    };
    let page = number(&q.page, "page", 1, 100_000)?;
    let per_page = number(&q.per_page, "per_page", 50, 200)?;
    let viewer = Viewer::user(&caller.user.id);
    let (items, total) = db::list(&state.db.reader, &viewer, &filter, page, per_page).await?;
    let items: Vec<serde_json::Value> = {
        let today = crate::time::today(state.tz);
        items.iter().map(|i| item_json(i, today)).collect()
    };
    Ok(axum::Json(
        serde_json::json!({"items": items, "total": total, "page": page, "per_page": per_page}),
    )
    .into_response())
}

async fn get_item(
    State(state): State<ActionItemsState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> AppResult<Response> {
    caller.require_read()?;
    let item = super::find(&state.db, &id, &Viewer::user(&caller.user.id)).await?;
    Ok(axum::Json(item_json(&item, crate::time::today(state.tz))).into_response())
}

/// On the API `null` clears the due date; an empty string is a lost value, not "clear" (the
/// page's empty date field is).
fn refuse_empty_due_date(input: &ItemInput) -> AppResult<()> {
    match &input.due_on {
        Some(Some(raw)) if raw.trim().is_empty() => Err(AppError::field(
            "due_on",
            "must be a date like 2026-12-01; null clears it",
        )),
        _ => Ok(()),
    }
}

async fn update_item(
    State(state): State<ActionItemsState>,
    ApiResponder(caller): ApiResponder,
    Path(id): Path<String>,
    Json(mut body): Json<serde_json::Value>,
) -> AppResult<Response> {
    let item = super::find(&state.db, &id, &Viewer::user(&caller.user.id)).await?;
    let version = take_version(&mut body)?;
    let input: ItemInput = from_json_value(body)?;
    refuse_empty_due_date(&input)?;
    let updated = super::update(&state.db, &caller.user, &item, version, &input)
        .await
        .map_err(|e| e.current_as(|now: &super::ActionItem| now.clone()))?;
    Ok(axum::Json(item_json(&updated, crate::time::today(state.tz))).into_response())
}
