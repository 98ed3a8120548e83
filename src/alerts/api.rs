//! JSON API for alert rules (`GET/POST /api/v1/alert-rules`) and alerts (`GET /api/v1/alerts`).

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::{AlertsState, RuleInput, db};
use crate::error::{AppError, AppResult};
use crate::visibility::Viewer;
use crate::web::extract::{ApiAdmin, ApiCaller, CallerState, Json};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AlertsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/alert-rules", get(list_rules).post(create_rule))
        .route("/alerts", get(list_alerts))
}

async fn list_rules(State(state): State<AlertsState>, caller: ApiCaller) -> AppResult<Response> {
    caller.require_read()?;
    let items = db::list_rules(&state.db.reader).await?;
    Ok(axum::Json(json!({"items": items, "total": items.len()})).into_response())
}

async fn create_rule(
    State(state): State<AlertsState>,
    ApiAdmin(caller): ApiAdmin,
    Json(body): Json<RuleInput>,
) -> AppResult<Response> {
    let values = body.check()?;
    let id = super::create_rule(&state.db, &caller.user, &values).await?;
    let rule = db::find_rule(&state.db.writer, &id)
        .await?
        .ok_or_else(|| AppError::Internal("rule vanished after insert".into()))?;
    Ok((StatusCode::CREATED, axum::Json(rule)).into_response())
}

async fn list_alerts(State(state): State<AlertsState>, caller: ApiCaller) -> AppResult<Response> {
    caller.require_read()?;
    Ok(axum::Json(json!({
        "firing": db::firing(&state.db.reader, &Viewer::user(&caller.user.id)).await?,
        "history": db::history(&state.db.reader, 100, &Viewer::user(&caller.user.id)).await?,
    }))
    .into_response())
}
