//! `POST /api/v1/integrations/alertmanager` and `/grafana`: webhook receivers authenticated by
//! an ingest token. Every delivery is logged, answered or not.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::{Source, WebhookPayload, db, receive};
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::web::extract::{ApiIngest, from_json_value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/integrations/alertmanager", post(alertmanager))
        .route("/integrations/grafana", post(grafana))
}

async fn alertmanager(
    State(state): State<AppState>,
    _caller: ApiIngest,
    body: Bytes,
) -> AppResult<Response> {
    handle(&state, Source::Alertmanager, &body).await
}

async fn grafana(
    State(state): State<AppState>,
    _caller: ApiIngest,
    body: Bytes,
) -> AppResult<Response> {
    handle(&state, Source::Grafana, &body).await
}

/// Deliveries are applied one at a time, so two retries of one group arriving together cannot
/// both open an incident.
static RECEIVING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn handle(state: &AppState, source: Source, body: &[u8]) -> AppResult<Response> {
    let result = async {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| AppError::BadRequest(format!("malformed JSON: {e}")))?;
        let payload: WebhookPayload = from_json_value(value)?;
        let _one_at_a_time = RECEIVING.lock().await;
        receive(&state.db, &state.alert_mapping, source, &payload).await
    }
    .await;
    let (status, outcome) = match &result {
        Ok(receipt) => (200, serde_json::to_string(receipt).unwrap_or_default()),
        Err(e) => (e.status().as_u16(), e.public_message()),
    };
    if let Err(e) = db::log_payload(&state.db, source, status, &outcome, body).await {
        tracing::warn!(error = %e, "could not log a webhook payload");
    }
    let receipt = result?;
    Ok((StatusCode::OK, axum::Json(receipt)).into_response())
}
