//! JSON API for reports: the weekly review as JSON, Markdown or CSV.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::web::{WeekQuery, cached_weekly, csv_response, markdown_response};
use crate::app::AppState;
use crate::error::AppResult;
use crate::web::extract::ApiCaller;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reports/weekly", get(weekly_json))
        .route("/reports/weekly.md", get(weekly_markdown))
        .route("/reports/weekly.csv", get(weekly_csv))
}

async fn weekly_json(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(q): Query<WeekQuery>,
) -> AppResult<Response> {
    caller.require_read()?;
    let (week, team) = q.parse(&state)?;
    let report = cached_weekly(&state, week, team.as_deref()).await?;
    Ok(axum::Json(&*report).into_response())
}

async fn weekly_markdown(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(q): Query<WeekQuery>,
) -> AppResult<Response> {
    caller.require_read()?;
    markdown_response(&state, &q).await
}

async fn weekly_csv(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(q): Query<WeekQuery>,
) -> AppResult<Response> {
    caller.require_read()?;
    csv_response(&state, &q).await
}
