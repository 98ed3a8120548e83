//! `POST /api/v1/integrations/alertmanager` and `/grafana`: webhook receivers authenticated by
//! an ingest token. Every delivery is logged, answered or not.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::{IntegrationsState, Source, WebhookPayload, receive};
use crate::error::{AppError, AppResult};
use crate::web::extract::{ApiIngest, CallerState, from_json_value};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    IntegrationsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/integrations/alertmanager", post(alertmanager))
        .route("/integrations/grafana", post(grafana))
}

async fn alertmanager(
    State(state): State<IntegrationsState>,
    _caller: ApiIngest,
    body: Bytes,
) -> AppResult<Response> {
    handle(&state, Source::Alertmanager, &body).await
}

async fn grafana(
    State(state): State<IntegrationsState>,
    _caller: ApiIngest,
    body: Bytes,
) -> AppResult<Response> {
    handle(&state, Source::Grafana, &body).await
}

async fn handle(state: &IntegrationsState, source: Source, body: &[u8]) -> AppResult<Response> {
    let result = async {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| AppError::BadRequest(format!("malformed JSON: {e}")))?;
        let payload: WebhookPayload = from_json_value(value)?;
        receive(&state.db, &state.mapping, state.growth, source, &payload).await
    }
    .await;
    let (status, outcome) = match &result {
        Ok(receipt) => (200, serde_json::to_string(receipt).unwrap_or_default()),
        Err(e) => (e.status().as_u16(), e.public_message()),
    };
    if let Err(e) = super::log_delivery(&state.db, source, status, &outcome, body).await {
        tracing::warn!(error = %e, "could not log a webhook payload");
    }
    let receipt = result?;
    Ok((StatusCode::OK, axum::Json(receipt)).into_response())
}
