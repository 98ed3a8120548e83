//! JSON API for timeline entries.

use crate::web::extract::Path;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use serde::Deserialize;

use super::{EntryChanges, TimelineState};
use crate::error::{AppError, AppResult};
use crate::web::extract::{ApiResponder, CallerState, IncidentInPath, Json};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    TimelineState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/incidents/{incident}/timeline", post(create_entry))
        .route("/timeline/{id}", patch(update_entry).delete(delete_entry))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEntry {
    /// Left out: now. `null` or empty is refused: a client that sent one lost a time.
    #[serde(default, deserialize_with = "crate::web::extract::not_null")]
    occurred_at: Option<String>,
    #[serde(default, deserialize_with = "crate::web::extract::not_null")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "crate::web::extract::not_null")]
    body: Option<String>,
}

async fn create_entry(
    State(state): State<TimelineState>,
    ApiResponder(caller): ApiResponder,
    IncidentInPath(incident): IncidentInPath,
    Json(body): Json<NewEntry>,
) -> AppResult<Response> {
    required_time(body.occurred_at.as_deref())?;
    // API times carry their own offset; one without is read as UTC.
    let changes = EntryChanges::parse(
        body.occurred_at.as_deref(),
        body.kind.as_deref(),
        Some(body.body.as_deref().unwrap_or("")),
        chrono_tz::Tz::UTC,
    )?;
    let entry = super::add(&state.db, &caller.user, &incident.id, &changes).await?;
    Ok((StatusCode::CREATED, axum::Json(entry)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryPatch {
    version: i64,
    #[serde(default, deserialize_with = "crate::web::extract::not_null")]
    occurred_at: Option<String>,
    #[serde(default, deserialize_with = "crate::web::extract::not_null")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "crate::web::extract::not_null")]
    body: Option<String>,
}

async fn update_entry(
    State(state): State<TimelineState>,
    ApiResponder(caller): ApiResponder,
    Path(id): Path<String>,
    Json(body): Json<EntryPatch>,
) -> AppResult<Response> {
    let entry = visible_entry(&state, &caller, &id).await?;
    required_time(body.occurred_at.as_deref())?;
    let changes = EntryChanges::parse(
        body.occurred_at.as_deref(),
        body.kind.as_deref(),
        body.body.as_deref(),
        chrono_tz::Tz::UTC,
    )?;
    let saved = super::edit(&state.db, &entry, body.version, &changes)
        .await
        .map_err(|e| e.current_as(|now: &super::Entry| now.clone()))?;
    Ok(axum::Json(saved).into_response())
}

/// On the API an empty `occurred_at` is an error, not "now" (the page's empty field is "now").
fn required_time(raw: Option<&str>) -> AppResult<()> {
    match raw {
        Some(t) if t.trim().is_empty() => Err(AppError::field(
            "occurred_at",
            "must be a date and time; leave it out for now",
        )),
        _ => Ok(()),
    }
}

async fn delete_entry(
    State(state): State<TimelineState>,
    ApiResponder(caller): ApiResponder,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let entry = visible_entry(&state, &caller, &id).await?;
    super::remove(&state.db, &caller.user, &entry).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The entry `id` when the caller may see its incident; one of a restricted incident they may
/// not see answers like a missing one.
async fn visible_entry(
    state: &TimelineState,
    caller: &crate::web::extract::ApiCaller,
    id: &str,
) -> AppResult<super::Entry> {
    let viewer = crate::visibility::Viewer::user(&caller.user.id);
    match super::db::find(&state.db.reader, id).await? {
        Some(entry)
            if crate::incidents::db::visible(&state.db.reader, &entry.incident_id, &viewer)
                .await? =>
        {
            Ok(entry)
        }
        _ => Err(AppError::missing("timeline entry")),
    }
}
