//! JSON API for timeline entries.

use axum::Router;
use axum::extract::{FromRef, Path, State};
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
    occurred_at: Option<String>,
    kind: Option<String>,
    body: Option<String>,
}

async fn create_entry(
    State(state): State<TimelineState>,
    ApiResponder(caller): ApiResponder,
    IncidentInPath(incident): IncidentInPath,
    Json(body): Json<NewEntry>,
) -> AppResult<Response> {
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
    occurred_at: Option<String>,
    kind: Option<String>,
    body: Option<String>,
}

async fn update_entry(
    State(state): State<TimelineState>,
    _caller: ApiResponder,
    Path(id): Path<String>,
    Json(body): Json<EntryPatch>,
) -> AppResult<Response> {
    let entry = super::db::find(&state.db.reader, &id)
        .await?
        .ok_or_else(|| AppError::missing("timeline entry"))?;
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

async fn delete_entry(
    State(state): State<TimelineState>,
    ApiResponder(caller): ApiResponder,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let entry = super::db::find(&state.db.reader, &id)
        .await?
        .ok_or_else(|| AppError::missing("timeline entry"))?;
    super::remove(&state.db, &caller.user, &entry).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
