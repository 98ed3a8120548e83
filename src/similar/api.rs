//! JSON API for similar incidents and incident links.

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::Deserialize;

use super::{LinkKind, SimilarRequest, SimilarState};
use crate::error::{AppError, AppResult};
use crate::visibility::Viewer;
use crate::web::extract::{
    ApiCaller, ApiQuery, ApiResponder, CallerState, IncidentInPath, Json, Path,
};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    SimilarState: FromRef<S>,
    CallerState: FromRef<S>,
{
    // `/incidents/similar` is a static segment, which the router prefers to the
    // `/incidents/{incident}` capture, so no incident is ever looked up as "similar".
    Router::new()
        .route("/incidents/similar", get(similar))
        .route(
            "/incidents/{incident}/links",
            get(list_links).post(add_link),
        )
        .route("/incidents/{incident}/links/{id}", delete(remove_link))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimilarParams {
    title: Option<String>,
    service: Option<String>,
    limit: Option<String>,
    /// An incident (`INC-42`) to leave out, e.g. the one whose page asks.
    exclude: Option<String>,
}

/// One suggestion as the API shows it.
pub fn suggestion_json(s: &super::db::Suggestion) -> serde_json::Value {
    serde_json::json!({
        "id": s.id,
        "number": format!("INC-{}", s.number),
        "title": s.title,
        "status": s.status,
        "severity": s.severity,
        "service": s.service,
        "started_at": s.started_at,
        "score": s.score,
        "postmortem": s.postmortem_status.as_ref().map(|status| serde_json::json!({
            "status": status,
            "url": format!("/incidents/INC-{}/postmortem", s.number),
        })),
        "open_action_items": s.open_action_items,
        "url": format!("/incidents/INC-{}", s.number),
    })
}

async fn similar(
    State(state): State<SimilarState>,
    caller: ApiCaller,
    ApiQuery(params): ApiQuery<SimilarParams>,
) -> AppResult<Response> {
    caller.require_read()?;
    let viewer = Viewer::user(&caller.user.id);
    let mut req = SimilarRequest::parse(
        params.title.as_deref(),
        params.service.as_deref(),
        params.limit.as_deref(),
    )?;
    if let Some(key) = params.exclude.as_deref() {
        req.exclude = super::db::find_incident(&state.db.reader, key, &viewer)
            .await?
            .map(|i| i.id);
    }
    let items: Vec<serde_json::Value> = super::suggest(&state.db, &req, &viewer)
        .await?
        .iter()
        .map(suggestion_json)
        .collect();
    Ok(axum::Json(serde_json::json!({ "items": items })).into_response())
}

/// A link as the API shows it, from the side it is read on.
pub fn link_json(l: &super::db::Link) -> serde_json::Value {
    serde_json::json!({
        "id": l.id,
        "kind": l.name(),
        "label": l.label(),
        "incident": {
            "id": l.other_id,
            "number": format!("INC-{}", l.other_number),
            "title": l.other_title,
            "status": l.other_status,
            "url": format!("/incidents/INC-{}", l.other_number),
        },
        "created_at": l.created_at,
    })
}

async fn list_links(
    State(state): State<SimilarState>,
    caller: ApiCaller,
    IncidentInPath(incident): IncidentInPath,
) -> AppResult<Response> {
    caller.require_read()?;
    let viewer = Viewer::user(&caller.user.id);
    let links = super::db::links_of(&state.db.reader, &incident.id, &viewer).await?;
    let items: Vec<serde_json::Value> = links.iter().map(link_json).collect();
    Ok(axum::Json(serde_json::json!({ "items": items })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLink {
    kind: String,
    /// The other incident: `INC-42`, `42` or its id.
    incident: String,
}

async fn add_link(
    State(state): State<SimilarState>,
    ApiResponder(caller): ApiResponder,
    IncidentInPath(incident): IncidentInPath,
    Json(body): Json<NewLink>,
) -> AppResult<Response> {
    let kind = LinkKind::parse_or_refuse(&body.kind)?;
    let from = super::db::IncidentRef {
        id: incident.id.clone(),
        number: incident.number,
        restricted: incident.restricted,
    };
    let link = super::link(&state.db, &caller.user, &from, &body.incident, kind).await?;
    Ok((StatusCode::CREATED, axum::Json(link_json(&link))).into_response())
}

async fn remove_link(
    State(state): State<SimilarState>,
    ApiResponder(caller): ApiResponder,
    IncidentInPath(incident): IncidentInPath,
    Path((_, id)): Path<(String, String)>,
) -> AppResult<Response> {
    let on = super::db::IncidentRef {
        id: incident.id.clone(),
        number: incident.number,
        restricted: incident.restricted,
    };
    super::unlink(&state.db, &caller.user, &on, &id)
        .await
        .map_err(|e| match e {
            AppError::NotFound { .. } => AppError::not_found("link", &id),
            other => other,
        })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
