//! JSON API for the managed lists: `GET/POST /api/v1/services` and `/api/v1/categories`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::{db, parse_name, parse_team};
use crate::app::AppState;
use crate::error::AppResult;
use crate::web::extract::{ApiAdmin, ApiCaller, Json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/services", get(list_services).post(create_service))
        .route("/categories", get(list_categories).post(create_category))
}

async fn list_services(State(state): State<AppState>, caller: ApiCaller) -> AppResult<Response> {
    caller.require_read()?;
    let items = db::list_services(&state.db.reader).await?;
    Ok(axum::Json(serde_json::json!({ "items": items, "total": items.len() })).into_response())
}

async fn list_categories(State(state): State<AppState>, caller: ApiCaller) -> AppResult<Response> {
    caller.require_read()?;
    let items = db::list_categories(&state.db.reader).await?;
    Ok(axum::Json(serde_json::json!({ "items": items, "total": items.len() })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewService {
    name: String,
    #[serde(default)]
    team: Option<String>,
}

async fn create_service(
    State(state): State<AppState>,
    ApiAdmin(caller): ApiAdmin,
    Json(body): Json<NewService>,
) -> AppResult<Response> {
    let name = parse_name("name", &body.name)?;
    let team = parse_team(body.team.as_deref().unwrap_or(""))?;
    let mut tx = state.db.begin_write().await?;
    db::insert_service(&mut tx, &name, &team).await?;
    crate::auth::db::audit(&mut tx, Some(&caller.user.id), "service.create", &name, "").await?;
    tx.commit().await?;
    state.catalog.clear();
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({"name": name, "team": team})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCategory {
    name: String,
}

async fn create_category(
    State(state): State<AppState>,
    ApiAdmin(caller): ApiAdmin,
    Json(body): Json<NewCategory>,
) -> AppResult<Response> {
    let name = parse_name("name", &body.name)?;
    let mut tx = state.db.begin_write().await?;
    db::insert_category(&mut tx, &name).await?;
    crate::auth::db::audit(&mut tx, Some(&caller.user.id), "category.create", &name, "").await?;
    tx.commit().await?;
    state.catalog.clear();
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({"name": name})),
    )
        .into_response())
}
