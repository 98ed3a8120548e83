//! Middleware of our own: request logging with a request id, rendering errors as an HTML page
//! or JSON by route, and clearing a flash message once it has been shown.

use std::sync::Arc;
use std::time::Instant;

use askama::Template;
use axum::extract::{Request, State};
use axum::http::HeaderName;
use axum::http::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use tracing::Instrument;

use super::chrome::{Chrome, FLASH_COOKIE, cookie};
use super::extract::CallerState;
use crate::error::{AppError, ErrorInfo};

/// One span per request carrying its id (and, once known, the caller's user and token ids), so
/// every log line inside it names the request and who made it; one line when it completes.
/// Only method, path, status, timing and those ids are logged: never headers, query strings,
/// bodies, e-mails or names, which may hold passwords, tokens, cookies or personal data.
pub async fn log_requests(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    // The caller's user id and API token id are filled in once an extractor knows them.
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %loggable_path(req.uri().path()),
        user_id = tracing::field::Empty,
        token_id = tracing::field::Empty,
    );
    let started = Instant::now();
    async move {
        let response = next.run(req).await;
        let status = response.status().as_u16();
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::error!(status, latency_ms, "request failed");
        } else {
            tracing::info!(status, latency_ms, "request done");
        }
        response
    }
    .instrument(span)
    .await
}

/// The path as the access log shows it: the one-time setup link carries its secret in the
/// path, so that part is replaced (whoever reads the logs must not be able to take it).
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/setup/") {
        Some(_) => "/setup/{secret}".into(),
        None => path.into(),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    title: String,
    message: String,
    /// A form that could not be saved: what was typed, to send again (see `KeptForm`).
    kept: Option<KeptForm>,
}

/// The fields of a form post that failed for a known fault (full disk, locked database), shown
/// again in a form that posts to the same address, so nothing typed is lost. Passwords are
/// never echoed back.
struct KeptForm {
    action: String,
    /// Short single-line values that look like bookkeeping (versions, ids) stay hidden.
    hidden: Vec<(String, String)>,
    shown: Vec<(String, String)>,
}

impl KeptForm {
    fn new(action: String, body: &[u8]) -> Option<Self> {
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
        let (mut hidden, mut shown) = (Vec::new(), Vec::new());
        for (name, value) in fields {
            let lower = name.to_ascii_lowercase();
            if lower.contains("password") || lower.contains("secret") {
                continue;
            }
            if lower == "version" || lower.ends_with("_version") || lower.ends_with("_id") {
                hidden.push((name, value));
            } else {
                shown.push((name, value));
            }
        }
        (!shown.is_empty()).then_some(Self {
            action,
            hidden,
            shown,
        })
    }
}

/// Turns errors into what the client understands: JSON `{"error": …}` under `/api/`, an HTML
/// page elsewhere, a redirect to the login page for a page that needs a session. Also dresses
/// the bare error statuses of inner layers (CSRF 403, body limit 413, timeout 408, 404/405).
pub async fn render_errors(State(state): State<CallerState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |pq| pq.as_str().to_owned());
    let is_api = path.starts_with("/api/") || path == "/metrics" || path == "/v1/traces";
    let session = cookie(req.headers(), state.session_cookie).map(str::to_owned);
    let is_get = req.method() == axum::http::Method::GET;
    let is_write = !matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );

    // A page's form post is kept until the answer is known: if a fault (full disk, locked
    // database) stops it from being saved, the error page hands the typed values back.
    let is_form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let (req, form_body) = if !is_api && is_write && is_form {
        let (parts, body) = req.into_parts();
        match axum::body::to_bytes(body, state.max_body_bytes).await {
            Ok(bytes) => (
                Request::from_parts(parts, axum::body::Body::from(bytes.clone())),
                Some(bytes),
            ),
            // Too large: answer as the body limit would have.
            Err(_) => (
                Request::from_parts(parts, axum::body::Body::empty()),
                None::<axum::body::Bytes>,
            ),
        }
    } else {
        (req, None)
    };
    let too_large = !is_api && is_write && is_form && form_body.is_none();

    let response = if too_large {
        AppError::PayloadTooLarge.into_response()
    } else {
        next.run(req).await
    };
    let status = response.status();
    let info = response.extensions().get::<ErrorInfo>().cloned();
    // Refused writes are counted by cause (`/metrics`, `/readyz`, the self-alert).
    if is_write && let Some(ErrorInfo(err)) = &info {
        match &**err {
            AppError::Unavailable { fault, detail } => {
                tracing::warn!(cause = fault.as_str(), detail = %detail, "write refused");
                state.db.health().failed(Some(*fault));
            }
            AppError::Database(_) => state.db.health().failed(None),
            _ => {}
        }
    }
    if info.is_none() && (!status.is_client_error() && !status.is_server_error()) {
        return response;
    }
    if info.is_none() && response.headers().contains_key(CONTENT_TYPE) {
        // A handler already rendered a full error page (form with field errors, conflict page).
        return response;
    }

    let (code, message, fields, current) = match &info {
        Some(ErrorInfo(err)) => {
            if matches!(**err, AppError::Database(_) | AppError::Internal(_)) {
                tracing::error!(error = %err, detail = ?err, "internal error");
            }
            let (fields, current) = match &**err {
                AppError::Validation { fields, .. } => (Some(fields.clone()), None),
                AppError::Conflict { current, .. } => (None, current.json().cloned()),
                _ => (None, None),
            };
            let message = match &**err {
                AppError::PayloadTooLarge => payload_message(&state),
                other => other.public_message(),
            };
            (err.code(), message, fields, current)
        }
        None => bare_status(status, &state),
    };

    if is_api {
        let message = if status == StatusCode::UNAUTHORIZED {
            "a valid API token is required: send Authorization: Bearer <token>".to_owned()
        } else {
            message
        };
        let mut error = serde_json::json!({"code": code, "message": message});
        if let Some(fields) = fields {
            error["fields"] = serde_json::json!(fields);
        }
        if let Some(current) = current {
            error["current"] = current;
        }
        let mut out = (status, axum::Json(serde_json::json!({ "error": error }))).into_response();
        copy_header(&response, &mut out, RETRY_AFTER);
        if status == StatusCode::UNAUTHORIZED {
            out.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        return out;
    }

    if status == StatusCode::UNAUTHORIZED {
        let next_path = if is_get { path_and_query.as_str() } else { "/" };
        let location = format!("/login?next={}", form_urlencode(next_path));
        let mut out = (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response();
        copy_header(&response, &mut out, SET_COOKIE);
        return out;
    }

    let user = match session {
        Some(secret) => {
            crate::auth::db::session_user(&state.db.reader, &secret, state.session_idle)
                .await
                .ok()
                .flatten()
                .map(|found| found.user)
        }
        None => None,
    };
    let fault = info.as_ref().and_then(|ErrorInfo(err)| match &**err {
        AppError::Unavailable { fault, .. } => Some(*fault),
        _ => None,
    });
    let kept = match (fault, &form_body) {
        (Some(_), Some(body)) => KeptForm::new(path.clone(), body),
        _ => None,
    };
    let page = ErrorPage {
        chrome: Chrome {
            user,
            // The fault's message is the banner; the page below keeps the form.
            flash: fault.map(|f| super::chrome::Flash {
                kind: "error".to_owned(),
                message: f.message().to_owned(),
            }),
            tz: state.tz,
            path,
            my_items: 0,
            inbox_unread: 0,
            disk_warning: state.db.health().disk_warning(),
        },
        status: status.as_u16(),
        title: match fault {
            Some(_) => "Not saved".to_owned(),
            None => status.canonical_reason().unwrap_or("Error").to_owned(),
        },
        message,
        kept,
    };
    let mut out = match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "error page failed to render");
            (status, page.message).into_response()
        }
    };
    copy_header(&response, &mut out, RETRY_AFTER);
    out
}

fn payload_message(state: &CallerState) -> String {
    format!(
        "The request body is larger than this server accepts ({} bytes).",
        state.max_body_bytes
    )
}

/// Code and message for an error status that came without an `AppError`.
fn bare_status(
    status: StatusCode,
    state: &CallerState,
) -> (
    &'static str,
    String,
    Option<crate::error::FieldErrors>,
    Option<serde_json::Value>,
) {
    let (code, message) = match status {
        StatusCode::FORBIDDEN => (
            "forbidden",
            "This request came from another site and was refused to protect your account (cross-site request forgery). Go back, reload the page and try again.".to_owned(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", payload_message(state)),
        StatusCode::REQUEST_TIMEOUT => (
            "timeout",
            "The request took too long and was stopped.".to_owned(),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "This address does not accept that method.".to_owned(),
        ),
        StatusCode::NOT_FOUND => ("not_found", "There is nothing at this address.".to_owned()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "The request body has a content type this address does not accept.".to_owned(),
        ),
        s if s.is_server_error() => (
            "internal",
            "Something went wrong on our side. The error has been logged.".to_owned(),
        ),
        _ => ("bad_request", "The request could not be understood.".to_owned()),
    };
    (code, message, None, None)
}

fn copy_header(from: &Response, to: &mut Response, name: HeaderName) {
    for v in from.headers().get_all(&name) {
        to.headers_mut().append(name.clone(), v.clone());
    }
}

/// Percent-encodes a query parameter value.
pub fn form_urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)])
        .map(|encoded| encoded.trim_start_matches("v=").to_owned())
        .unwrap_or_default()
}

/// Once shutdown has begun, requests that arrive get 503 with Retry-After (in-flight ones
/// finish); `/healthz` still answers, since the process is alive.
pub async fn refuse_while_draining(
    State(draining): State<Arc<std::sync::atomic::AtomicBool>>,
    req: Request,
    next: Next,
) -> Response {
    if draining.load(std::sync::atomic::Ordering::Acquire) && req.uri().path() != "/healthz" {
        let mut out = (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"error": {
                "code": "shutting_down",
                "message": "Hindsight is restarting or shutting down; try again in a few seconds.",
            }})),
        )
            .into_response();
        out.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("5"));
        return out;
    }
    next.run(req).await
}

/// Expires the flash cookie once a page (not a redirect) has been rendered with it.
pub async fn clear_flash(req: Request, next: Next) -> Response {
    let had_flash = cookie(req.headers(), FLASH_COOKIE).is_some();
    let mut response = next.run(req).await;
    if had_flash && !response.status().is_redirection() {
        let expire = format!("{FLASH_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
        if let Ok(v) = HeaderValue::from_str(&expire) {
            response.headers_mut().append(SET_COOKIE, v);
        }
    }
    response
}

/// Hindsight observes itself: every request's latency, outcome (5xx = error) and the number
/// in flight go into the collector as the service `hindsight`.
pub async fn observe(
    State(signals): State<Arc<crate::signals::Signals>>,
    req: Request,
    next: Next,
) -> Response {
    let in_flight = signals.own.enter();
    let _ = signals.registry.record_saturation(
        crate::signals::SELF_SERVICE,
        in_flight as f64,
        crate::signals::now_ms(),
    );
    // The guard keeps the in-flight gauge right when a request is cancelled mid-way.
    let mut guard = InFlight {
        signals: &signals,
        started: Instant::now(),
        finished: None,
    };
    let response = next.run(req).await;
    guard.finished = Some(!response.status().is_server_error());
    response
}

struct InFlight<'a> {
    signals: &'a crate::signals::Signals,
    started: Instant,
    /// Whether the request completed, and if so whether it succeeded.
    finished: Option<bool>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let latency_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let signals = self.signals;
        signals.own.leave(
            latency_us,
            self.finished.unwrap_or(false),
            self.finished.is_some(),
        );
        if let Some(ok) = self.finished {
            let _ = signals.registry.record(
                crate::signals::SELF_SERVICE,
                latency_us,
                ok,
                crate::signals::now_ms(),
            );
        }
    }
}
