//! JSON API for chat evidence: import (Slack per-day files, pasted text, CSV), list, promote.

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{EvidenceState, Marker, Source, Upload};
use crate::error::{AppError, AppResult};
use crate::web::extract::{
    ApiCaller, ApiQuery, ApiResponder, CallerState, IncidentInPath, Json, Path,
};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    EvidenceState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/incidents/{incident}/evidence", get(list).post(import))
        .route("/incidents/{incident}/evidence/{id}/promote", post(promote))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    q: Option<String>,
}

pub fn message_json(m: &super::db::Message) -> serde_json::Value {
    serde_json::json!({
        "id": m.id,
        "source": m.source,
        "author": m.author,
        "posted_at": m.posted_at,
        "text": m.text,
        "thread_ts": m.thread_ts,
        "edited": m.edited,
        "files": m.files,
        "timeline_entry_id": m.entry_id,
        "marker": m.marker,
    })
}

async fn list(
    State(state): State<EvidenceState>,
    caller: ApiCaller,
    IncidentInPath(incident): IncidentInPath,
    ApiQuery(params): ApiQuery<ListParams>,
) -> AppResult<Response> {
    caller.require_read()?;
    let messages = super::db::list(&state.db.reader, &incident.id, params.q.as_deref()).await?;
    let items: Vec<serde_json::Value> = messages.iter().map(message_json).collect();
    Ok(axum::Json(serde_json::json!({ "items": items })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportFile {
    name: String,
    content: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    source: String,
    /// Slack: the channel's per-day files (and `users.json`); CSV: one file.
    #[serde(default)]
    files: Vec<ImportFile>,
    /// Pasted text or CSV text.
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    day: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

async fn import(
    State(state): State<EvidenceState>,
    ApiResponder(caller): ApiResponder,
    IncidentInPath(incident): IncidentInPath,
    Json(body): Json<ImportBody>,
) -> AppResult<Response> {
    let source = Source::parse_or_refuse(&body.source)?;
    let date = |field: &str, raw: &Option<String>| {
        crate::time::parse_date(raw.as_deref().unwrap_or("")).map_err(|e| AppError::field(field, e))
    };
    let day = date("day", &body.day)?;
    let until = date("until", &body.until)?;
    let mut uploads: Vec<Upload> = body
        .files
        .into_iter()
        .map(|f| Upload {
            name: f.name.chars().take(200).collect(),
            bytes: f.content.into_bytes(),
        })
        .collect();
    if let Some(text) = body.text.filter(|t| !t.trim().is_empty()) {
        uploads.push(Upload {
            name: "text".into(),
            bytes: text.into_bytes(),
        });
    }
    if uploads.is_empty() {
        return Err(AppError::field("files", "give `files` or `text`"));
    }
    let messages = super::read(source, uploads, day, until, chrono_tz::Tz::UTC)?;
    let outcome = super::import(&state.db, &caller.user, &incident.id, source, messages).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({
            "read": outcome.read,
            "added": outcome.added,
            "skipped": outcome.skipped,
            "masked": outcome.masked,
        })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteBody {
    marker: String,
}

async fn promote(
    State(state): State<EvidenceState>,
    ApiResponder(caller): ApiResponder,
    IncidentInPath(incident): IncidentInPath,
    Path((_, id)): Path<(String, String)>,
    Json(body): Json<PromoteBody>,
) -> AppResult<Response> {
    let marker = Marker::parse_or_refuse(&body.marker)?;
    let entry = super::promote(
        &state.db,
        &caller.user,
        &incident.id,
        incident.number,
        &id,
        marker,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "timeline_entry_id": entry, "marker": marker })),
    )
        .into_response())
}
