//! JSON API for alert rules (`GET/POST /api/v1/alert-rules`) and alerts (`GET /api/v1/alerts`).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::{RuleInput, db};
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::web::extract::{ApiAdmin, ApiCaller, Json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/alert-rules", get(list_rules).post(create_rule))
        .route("/alerts", get(list_alerts))
}

async fn list_rules(State(state): State<AppState>, caller: ApiCaller) -> AppResult<Response> {
    caller.require_read()?;
    let items = db::list_rules(&state.db.reader).await?;
    Ok(axum::Json(json!({"items": items, "total": items.len()})).into_response())
}

async fn create_rule(
    State(state): State<AppState>,
    ApiAdmin(caller): ApiAdmin,
    Json(body): Json<RuleInput>,
) -> AppResult<Response> {
    let values = body.check()?;
    let mut tx = state.db.begin_write().await?;
    let id = db::insert_rule(&mut tx, &values).await?;
    crate::auth::db::audit(
        &mut tx,
        Some(&caller.user.id),
        "alert_rule.create",
        &values.name,
        "",
    )
    .await?;
    tx.commit().await?;
    let rule = db::find_rule(&state.db.writer, &id)
        .await?
        .ok_or_else(|| AppError::Internal("rule vanished after insert".into()))?;
    Ok((StatusCode::CREATED, axum::Json(rule)).into_response())
}

async fn list_alerts(State(state): State<AppState>, caller: ApiCaller) -> AppResult<Response> {
    caller.require_read()?;
    Ok(axum::Json(json!({
        "firing": db::firing(&state.db.reader).await?,
        "history": db::history(&state.db.reader, 100).await?,
    }))
    .into_response())
}
