//! JSON API for the managed lists: `GET/POST /api/v1/services` and `/api/v1/categories`.

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::{CatalogState, ListKind, db};
use crate::error::AppResult;
use crate::web::extract::{ApiAdmin, ApiCaller, CallerState, Json};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    CatalogState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/services", get(list_services).post(create_service))
        .route("/categories", get(list_categories).post(create_category))
}

async fn list_services(
    State(state): State<CatalogState>,
    caller: ApiCaller,
) -> AppResult<Response> {
    caller.require_read()?;
    let items = db::list_services(&state.db.reader).await?;
    Ok(axum::Json(serde_json::json!({ "items": items, "total": items.len() })).into_response())
}

async fn list_categories(
    State(state): State<CatalogState>,
    caller: ApiCaller,
) -> AppResult<Response> {
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
    State(state): State<CatalogState>,
    ApiAdmin(caller): ApiAdmin,
    Json(body): Json<NewService>,
) -> AppResult<Response> {
    let (name, team) = super::save(
        &state,
        &caller.user,
        ListKind::Service,
        None,
        &body.name,
        body.team.as_deref().unwrap_or(""),
    )
    .await?;
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
    State(state): State<CatalogState>,
    ApiAdmin(caller): ApiAdmin,
    Json(body): Json<NewCategory>,
) -> AppResult<Response> {
    let (name, _) = super::save(
        &state,
        &caller.user,
        ListKind::Category,
        None,
        &body.name,
        "",
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({"name": name})),
    )
        .into_response())
}
