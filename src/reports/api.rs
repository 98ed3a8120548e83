//! JSON API for reports: the weekly review as JSON, Markdown or CSV.

use crate::web::extract::ApiQuery;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{ReportsState, WeekQuery, review_for};
use crate::error::AppResult;
use crate::web::extract::{ApiCaller, CallerState};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ReportsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/reports/weekly", get(weekly_json))
        .route("/reports/weekly.md", get(weekly_markdown))
        .route("/reports/weekly.csv", get(weekly_csv))
}

async fn weekly_json(
    State(state): State<ReportsState>,
    caller: ApiCaller,
    ApiQuery(q): ApiQuery<WeekQuery>,
) -> AppResult<Response> {
    caller.require_read()?;
    let report = review_for(&state, &q).await?;
    Ok(axum::Json(&*report).into_response())
}

async fn weekly_markdown(
    State(state): State<ReportsState>,
    caller: ApiCaller,
    ApiQuery(q): ApiQuery<WeekQuery>,
) -> AppResult<Response> {
    caller.require_read()?;
    let report = review_for(&state, &q).await?;
    Ok(crate::web::download::attachment(
        "text/markdown; charset=utf-8",
        &format!("weekly-review-{}.md", report.week),
        super::export::markdown(&report, state.tz, &state.base_url),
    ))
}

async fn weekly_csv(
    State(state): State<ReportsState>,
    caller: ApiCaller,
    ApiQuery(q): ApiQuery<WeekQuery>,
) -> AppResult<Response> {
    caller.require_read()?;
    let report = review_for(&state, &q).await?;
    Ok(crate::web::download::attachment(
        "text/csv; charset=utf-8",
        &format!("weekly-review-{}.csv", report.week),
        super::export::csv(&report),
    ))
}
