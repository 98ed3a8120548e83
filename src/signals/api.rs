//! Pushing events (`POST /api/v1/metrics/events`), reading a service's live window
//! (`GET /api/v1/metrics/services/{service}`), and `GET /metrics` for Prometheus.

use crate::web::extract::Path;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::db::Snapshot;
use super::otlp::{self, DecodeError, Encoding};
use super::{PushedBatch, SELF_SERVICE, SignalsState, now_ms, prometheus_text};
use crate::error::{AppError, AppResult};
use crate::metrics::{MetricsError, QuantileMode, WindowReport, WindowStats};
use crate::web::extract::{
    ApiAdmin, ApiCaller, ApiIngest, ApiResponder, CallerState, IncidentInPath, Json,
};

/// Routes under `/api/v1`.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    SignalsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/metrics/events", post(push_events))
        .route("/metrics/services/{service}", get(service_window))
        .route("/incidents/{incident}/snapshots", post(take_snapshot))
        .route("/snapshots/{id}", get(get_snapshot))
        .route(
            "/services/{service}/prometheus",
            get(get_prometheus_queries)
                .put(put_prometheus_queries)
                .delete(delete_prometheus_queries),
        )
        .route("/otlp/v1/traces", post(otlp_traces))
}

fn queries_json(
    service: &str,
    q: Option<&super::prometheus::Queries>,
    state: &SignalsState,
) -> serde_json::Value {
    json!({
        "service": service,
        "queries": q,
        // The URL only: credentials are never shown.
        "prometheus_url": state.signals.prometheus.as_ref().map(|p| &p.url),
    })
}

/// `GET /api/v1/services/{service}/prometheus`: the service's queries (null when none).
async fn get_prometheus_queries(
    State(state): State<SignalsState>,
    caller: ApiCaller,
    Path(service): Path<String>,
) -> AppResult<Response> {
    caller.require_read()?;
    crate::metrics::ServiceName::parse(&service)
        .map_err(|e| AppError::field("service", e.to_string()))?;
    let q = super::db::prometheus_queries(&state.db.reader, &service).await?;
    Ok(axum::Json(queries_json(&service, q.as_ref(), &state)).into_response())
}

/// `PUT /api/v1/services/{service}/prometheus` (admins): replaces the queries; all blank
/// clears them.
async fn put_prometheus_queries(
    State(state): State<SignalsState>,
    ApiAdmin(caller): ApiAdmin,
    Path(service): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> AppResult<Response> {
    // serde reads a struct from an array too (`[null, null]`); the contract is an object.
    if !body.is_object() {
        return Err(AppError::field("body", "must be a JSON object of queries"));
    }
    let body: PrometheusQueriesBody =
        serde_json::from_value(body).map_err(|e| AppError::field("body", e.to_string()))?;
    let q = super::set_prometheus_queries(&state.db, &caller.user, &service, body.into()).await?;
    Ok(axum::Json(queries_json(&service, q.as_ref(), &state)).into_response())
}

/// `DELETE /api/v1/services/{service}/prometheus` (admins).
async fn delete_prometheus_queries(
    State(state): State<SignalsState>,
    ApiAdmin(caller): ApiAdmin,
    Path(service): Path<String>,
) -> AppResult<Response> {
    super::set_prometheus_queries(
        &state.db,
        &caller.user,
        &service,
        super::prometheus::Queries::default(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The queries as the API takes them: unknown fields are refused (a typo would otherwise
/// silently clear a query).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PrometheusQueriesBody {
    #[serde(default)]
    latency_p50: Option<String>,
    #[serde(default)]
    latency_p90: Option<String>,
    #[serde(default)]
    latency_p99: Option<String>,
    #[serde(default)]
    error_rate: Option<String>,
    #[serde(default)]
    traffic: Option<String>,
    #[serde(default)]
    saturation: Option<String>,
}

impl From<PrometheusQueriesBody> for super::prometheus::Queries {
    fn from(b: PrometheusQueriesBody) -> Self {
        Self {
            latency_p50: b.latency_p50,
            latency_p90: b.latency_p90,
            latency_p99: b.latency_p99,
            error_rate: b.error_rate,
            traffic: b.traffic,
            saturation: b.saturation,
        }
    }
}

/// `GET /metrics`, outside `/api/v1`.
pub fn metrics_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    SignalsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new().route("/metrics", get(prometheus))
}

async fn push_events(
    State(state): State<SignalsState>,
    _caller: ApiIngest,
    Json(batch): Json<PushedBatch>,
) -> AppResult<Response> {
    let signals = &state.signals;
    let window_ms = u64::from(signals.registry.config().window_secs) * 1000;
    let checked = batch.check(now_ms(), window_ms, signals.max_batch)?;
    let name = checked.service.as_str();
    let lists = state.catalog.get(&state.db.reader).await?;
    super::admit_service(signals, &lists, state.growth, name)?;
    // The gauge is stamped with the batch's last event time, not the wall clock: a window's
    // clock only moves forward, so stamping "now" would make the next batch's (earlier)
    // events count as late.
    let saturation_at = checked.events.last().map_or_else(now_ms, |e| e.at_ms);
    let result = signals
        .registry
        .record_batch(name, &checked.events)
        .and_then(|()| match checked.saturation {
            Some(value) => signals
                .registry
                .record_saturation(name, value, saturation_at),
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
    State(state): State<SignalsState>,
    caller: ApiCaller,
    Path(service): Path<String>,
) -> AppResult<Response> {
    caller.require_read()?;
    let report = state
        .signals
        .registry
        .report(&service, now_ms(), QuantileMode::Exact)
        .map_err(|_| AppError::not_found("metrics for service", &service))?;
    Ok(axum::Json(window_json(&service, &report)).into_response())
}

async fn prometheus(
    State(state): State<SignalsState>,
    caller: Option<ApiCaller>,
) -> AppResult<Response> {
    if state.metrics_require_token {
        caller.ok_or(AppError::Unauthenticated)?.require_read()?;
    }
    let signals = &state.signals;
    let report = signals
        .registry
        .report(SELF_SERVICE, now_ms(), QuantileMode::Fast)
        .ok();
    let mut text = prometheus_text(
        &signals.own,
        report.as_ref(),
        signals.registry.services().len(),
    );
    text.push_str(&super::write_health_text(
        state.db.health(),
        state.db.disk_free_bytes(),
    ));
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// A snapshot as the API shows it: headline figures and the per-interval series.
pub fn snapshot_json(s: &Snapshot) -> serde_json::Value {
    let report = s.report();
    json!({
        "id": s.id,
        "incident": format!("INC-{}", s.incident_number),
        "service": s.service,
        "taken_at": s.taken_at,
        "trigger": s.trigger,
        "window": {"events": s.window_events, "seconds": s.window_secs},
        "count": s.count,
        "errors": s.errors,
        "error_rate": s.error_rate,
        "rate_per_s": s.rate_per_s,
        "latency_ms": {
            "min": s.latency_min, "mean": s.latency_mean, "p50": s.latency_p50,
            "p90": s.latency_p90, "p95": s.latency_p95, "p99": s.latency_p99,
            "max": s.latency_max,
        },
        "saturation": s.saturation,
        "series": report.as_ref().map(|r| &r.series),
        "histogram": report.as_ref().map(|r| &r.histogram),
        "prometheus": s.prometheus(),
    })
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotRequest {
    #[serde(default, deserialize_with = "crate::web::extract::not_null")]
    service: Option<String>,
}

async fn take_snapshot(
    State(state): State<SignalsState>,
    ApiResponder(caller): ApiResponder,
    IncidentInPath(incident): IncidentInPath,
    Json(body): Json<SnapshotRequest>,
) -> AppResult<Response> {
    let service = body
        .service
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| incident.service.clone());
    let snapshot = super::freeze(
        &state.db,
        &state.signals,
        &incident.id,
        &service,
        super::Trigger::Manual,
        Some(&caller.user.id),
    )
    .await?
    .ok_or_else(|| {
        AppError::field(
            "service",
            format!("no metrics have been recorded for {service}; push events first"),
        )
    })?;
    Ok((StatusCode::CREATED, axum::Json(snapshot_json(&snapshot))).into_response())
}

async fn get_snapshot(
    State(state): State<SignalsState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> AppResult<Response> {
    caller.require_read()?;
    let viewer = crate::visibility::Viewer::user(&caller.user.id);
    let snapshot = super::db::find(&state.db.reader, &id, Some(&viewer))
        .await?
        .ok_or_else(|| AppError::missing("snapshot"))?;
    Ok(axum::Json(snapshot_json(&snapshot)).into_response())
}

/// `POST /v1/traces`, the OTLP/HTTP default path (outside `/api/v1`).
pub fn otlp_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    SignalsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new().route("/v1/traces", post(otlp_traces))
}

/// An OTLP/HTTP error answer: a `google.rpc.Status` in the request's encoding.
fn otlp_error(status: StatusCode, encoding: Encoding, code: i32, message: &str) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        otlp::encode_status(encoding, code, message),
    )
        .into_response();
    if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    }
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// Takes an OTLP trace export: the whole request is read, inflated and decoded before any
/// span is recorded; spans that count become events (see `otlp::convert`), and what could not
/// be recorded is answered as a partial success, as the OTLP/HTTP specification says. Every
/// answer is complete (Content-Type set), so the error renderer leaves it as it is.
async fn otlp_traces(
    State(state): State<SignalsState>,
    caller: Result<ApiCaller, AppError>,
    headers: header::HeaderMap,
    body: axum::body::Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        return otlp_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Encoding::Json,
            otlp::rpc_code::INVALID_ARGUMENT,
            "send application/x-protobuf or application/json",
        );
    };
    if let Err(e) = caller.and_then(|c| c.require_ingest()) {
        let (status, code) = match e {
            AppError::Unauthenticated => {
                (StatusCode::UNAUTHORIZED, otlp::rpc_code::UNAUTHENTICATED)
            }
            _ => (StatusCode::FORBIDDEN, otlp::rpc_code::PERMISSION_DENIED),
        };
        let message = match e {
            AppError::Unauthenticated => {
                "an ingest token is required: send Authorization: Bearer <token>".to_owned()
            }
            other => other.public_message(),
        };
        return otlp_error(status, encoding, code, &message);
    }
    // Overload: more exports in flight than the bound get 429 + Retry-After at once.
    let Ok(_slot) = state.signals.otlp_slots.try_acquire() else {
        return otlp_error(
            StatusCode::TOO_MANY_REQUESTS,
            encoding,
            otlp::rpc_code::UNAVAILABLE,
            "too many exports at once; retry after the delay in Retry-After",
        );
    };
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "identity") => false,
        Some("gzip") => true,
        Some(other) => {
            return otlp_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                encoding,
                otlp::rpc_code::INVALID_ARGUMENT,
                &format!("Content-Encoding {other:?} is not supported; use gzip or none"),
            );
        }
    };
    let too_large = |limit: usize| {
        otlp_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            encoding,
            otlp::rpc_code::RESOURCE_EXHAUSTED,
            &format!("the request body is larger than this server accepts ({limit} bytes)"),
        )
    };
    // The body limit layer caps what arrives; reading past it fails here.
    let Ok(raw) = axum::body::to_bytes(body, usize::MAX).await else {
        return too_large(state.max_inflated_bytes / 8);
    };
    let decoded = otlp::inflate(&raw, gzip, state.max_inflated_bytes)
        .and_then(|bytes| otlp::decode(encoding, &bytes));
    let request = match decoded {
        Ok(request) => request,
        Err(DecodeError::TooLarge(limit)) => return too_large(limit),
        Err(DecodeError::Invalid(message)) => {
            return otlp_error(
                StatusCode::BAD_REQUEST,
                encoding,
                otlp::rpc_code::INVALID_ARGUMENT,
                &message,
            );
        }
    };
    let signals = &state.signals;
    let window_ms = u64::from(signals.registry.config().window_secs) * 1000;
    let converted = otlp::convert(&request, &state.otlp, now_ms(), window_ms);
    // The service list is only needed when a request names a service without a window yet.
    let windows = signals.registry.services();
    let lists = if converted
        .services
        .keys()
        .all(|name| windows.iter().any(|s| s == name))
    {
        None
    } else {
        match state.catalog.get(&state.db.reader).await {
            Ok(lists) => Some(lists),
            Err(_) => {
                return otlp_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    encoding,
                    otlp::rpc_code::UNAVAILABLE,
                    "the service list cannot be read right now; retry later",
                );
            }
        }
    };
    let response = otlp::record(signals, converted, |name| match &lists {
        None => Ok(()),
        Some(lists) => {
            super::admit_service(signals, lists, state.growth, name).map_err(|e| match e {
                AppError::Validation { fields, .. } => {
                    fields.into_values().next().unwrap_or_default()
                }
                other => other.public_message(),
            })
        }
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        otlp::encode_response(encoding, &response),
    )
        .into_response()
}
