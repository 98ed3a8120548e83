//! Pushing events (`POST /api/v1/metrics/events`), reading a service's live window
//! (`GET /api/v1/metrics/services/{service}`), and `GET /metrics` for Prometheus.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::{PushedBatch, SELF_SERVICE, now_ms, prometheus_text};
use crate::error::{AppError, AppResult};
use crate::metrics::{MetricsError, QuantileMode, WindowReport, WindowStats};
use crate::web::AppState;
use crate::web::extract::{ApiCaller, ApiIngest, Json};

/// Routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics/events", post(push_events))
        .route("/metrics/services/{service}", get(service_window))
}

/// `GET /metrics`, outside `/api/v1`.
pub fn metrics_router() -> Router<AppState> {
    Router::new().route("/metrics", get(prometheus))
}

async fn push_events(
    State(state): State<AppState>,
    _caller: ApiIngest,
    Json(batch): Json<PushedBatch>,
) -> AppResult<Response> {
    let signals = &state.signals;
    let window_ms = u64::from(signals.registry.config().window_secs) * 1000;
    let checked = batch.check(now_ms(), window_ms, signals.max_batch)?;
    let name = checked.service.as_str();
    let known = signals.registry.services().iter().any(|s| s == name)
        || state
            .catalog
            .get(&state.db.reader)
            .await?
            .services
            .iter()
            .any(|s| s.name.eq_ignore_ascii_case(name));
    if !known && !signals.auto_create {
        return Err(AppError::field(
            "service",
            format!("{name} is not a known service; an admin can add it under Admin › Services"),
        ));
    }
    let result = signals
        .registry
        .record_batch(name, &checked.events)
        .and_then(|()| match checked.saturation {
            Some(value) => signals.registry.record_saturation(name, value, now_ms()),
            None => Ok(()),
        });
    match result {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({"accepted": checked.events.len(), "service": name})),
        )
            .into_response()),
        Err(
            e @ (MetricsError::TooManyServices { .. } | MetricsError::InvalidServiceName { .. }),
        ) => Err(AppError::field("service", e.to_string())),
        Err(e) => Err(AppError::BadRequest(e.to_string())),
    }
}

/// The figures of one window in the API's shape.
fn stats_json(stats: &WindowStats) -> serde_json::Value {
    json!({
        "count": stats.count,
        "errors": stats.errors,
        "error_rate": stats.error_rate,
        "rate_per_s": stats.rate_per_s,
        "covered_seconds": stats.covered_secs,
        "exact": stats.quantiles_exact,
        "latency_ms": stats.latency_ms,
    })
}

pub fn window_json(service: &str, report: &WindowReport) -> serde_json::Value {
    let mut body = stats_json(&report.last_n);
    body["service"] = json!(service);
    body["window"] = json!({
        "events": report.config.max_events,
        "seconds": report.config.window_secs,
    });
    body["last_seconds"] = stats_json(&report.last_t);
    body["saturation"] = json!(report.saturation);
    body["series"] = json!(report.series);
    body["taken_at"] = json!(chrono::DateTime::from_timestamp_millis(
        i64::try_from(report.taken_at_ms).unwrap_or(0)
    ));
    body
}

async fn service_window(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(service): Path<String>,
) -> AppResult<Response> {
    caller.require_read()?;
    let report = state
        .signals
        .registry
        .report(&service, now_ms(), QuantileMode::Exact)
        .map_err(|_| AppError::NotFound(format!("metrics for service {service}")))?;
    Ok(axum::Json(window_json(&service, &report)).into_response())
}

async fn prometheus(
    State(state): State<AppState>,
    caller: Option<ApiCaller>,
) -> AppResult<Response> {
    if state.config.metrics_require_token {
        caller.ok_or(AppError::Unauthenticated)?.require_read()?;
    }
    let signals = &state.signals;
    let report = signals
        .registry
        .report(SELF_SERVICE, now_ms(), QuantileMode::Fast)
        .ok();
    let text = prometheus_text(
        &signals.own,
        report.as_ref(),
        signals.registry.services().len(),
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
