//! JSON API for insights: `GET /api/v1/insights` (every figure, or one with `figure=`).

use axum::Router;
use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::{FigureName, InsightsQuery, InsightsState, insights};
use crate::error::AppResult;
use crate::web::extract::{ApiCaller, ApiQuery, CallerState};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    InsightsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new().route("/insights", get(insights_json))
}

async fn insights_json(
    State(state): State<InsightsState>,
    caller: ApiCaller,
    ApiQuery(q): ApiQuery<InsightsQuery>,
) -> AppResult<Response> {
    caller.require_read()?;
    let filter = q.filter(crate::time::today(state.tz))?;
    let data = insights(&state, &filter).await?;
    Ok(axum::Json(body(&data, &q.figure)).into_response())
}

/// The figures as JSON: all of them, or only `figure` (with the filter it was computed for and
/// the incident count). Also what the page's JSON links (`/insights.json`) answer.
pub fn body(data: &super::Insights, figure: &str) -> Value {
    let mut body = serde_json::to_value(data).unwrap_or(Value::Null);
    if let (Some(figure), Some(map)) = (FigureName::parse(figure.trim()), body.as_object_mut()) {
        let keep = figure.as_str();
        map.retain(|k, _| k == keep || k == "filter" || k == "incidents");
    }
    json!(body)
}
