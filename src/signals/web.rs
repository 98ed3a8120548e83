//! Pages for observed services: the list, a live page per service (refreshing in place when
//! JavaScript is on), and the incident page's "take snapshot" button.

use crate::web::extract::Path;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::prometheus::Queries;
use super::{SignalsState, Trigger, now_ms};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::metrics::{QuantileMode, WindowStats};
use crate::web::chrome::{Chrome, redirect_with_flash};
use crate::web::extract::{Admin, CallerState, Form, IncidentInPath, Page, Responder};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    SignalsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/services", get(list_services))
        .route("/services/{service}", get(show_service))
        .route("/services/{service}/live", get(live_fragment))
        .route(
            "/services/{service}/prometheus",
            post(save_prometheus_queries),
        )
        .route("/incidents/{incident}/snapshots", post(take_snapshot))
}

/// One observed service on the list.
struct ServiceRow {
    name: String,
    /// The live window's figures; none for a service whose figures come from Prometheus only.
    stats: Option<WindowStats>,
    /// Snapshots of this service also freeze its Prometheus queries.
    prometheus: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "services/list.html")]
struct ServicesPage {
    chrome: Chrome,
    rows: Vec<ServiceRow>,
}

/// Whether the service is on the admin's list: its page exists before its first event (a
/// restarted server has no windows until services push again).
async fn listed(state: &SignalsState, service: &str) -> AppResult<bool> {
    let lists = state.catalog.get(&state.db.reader).await?;
    Ok(lists
        .services
        .iter()
        .any(|s| s.name.eq_ignore_ascii_case(service)))
}

async fn list_services(State(state): State<SignalsState>, page: Page) -> AppResult<Response> {
    let with_queries = super::db::services_with_prometheus(&state.db.reader).await?;
    let lists = state.catalog.get(&state.db.reader).await?;
    let mut names = state.signals.registry.services();
    let known = with_queries
        .iter()
        .chain(lists.services.iter().map(|s| &s.name));
    for name in known {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.clone());
        }
    }
    names.sort();
    let now = now_ms();
    let rows = names
        .into_iter()
        .map(|name| ServiceRow {
            stats: state
                .signals
                .registry
                .last_t_stats(&name, now, QuantileMode::Fast)
                .ok(),
            prometheus: with_queries.iter().any(|q| q.eq_ignore_ascii_case(&name)),
            name,
        })
        .collect();
    Ok(ServicesPage {
        chrome: page.chrome,
        rows,
    }
    .into_response())
}

/// The live part of a service page: figures, chart, firing alerts.
#[derive(Template, WebTemplate)]
#[template(path = "services/_live.html")]
struct LiveFragment {
    chrome: Chrome,
    /// The window's report and chart, at most `LIVE_VIEW_REUSE_MS` old.
    view: std::sync::Arc<super::LiveView>,
    /// The newest alerts firing on the service (`FIRING_SHOWN` at most).
    firing: Vec<crate::alerts::db::AlertEvent>,
    /// How many fire in all.
    firing_total: i64,
}

/// Firing alerts a service page names; the rest are counted, and listed on the alerts page.
const FIRING_SHOWN: i64 = 20;

impl LiveFragment {
    /// Firing alerts not named on the page.
    fn firing_more(&self) -> i64 {
        self.firing_total - i64::try_from(self.firing.len()).unwrap_or(i64::MAX)
    }

    fn latencies(&self, l: &crate::metrics::LatencyMs) -> [f64; 8] {
        [l.min, l.mean, l.p50, l.p90, l.p95, l.p99, l.p999, l.max]
    }

    fn windows(&self) -> [(&'static str, &WindowStats); 2] {
        [
            ("last N events", &self.view.report.last_n),
            ("last T seconds", &self.view.report.last_t),
        ]
    }

    fn taken_at(&self) -> String {
        chrono::DateTime::from_timestamp_millis(
            i64::try_from(self.view.report.taken_at_ms).unwrap_or(0),
        )
        .map(|t| self.chrome.time(&t))
        .unwrap_or_default()
    }
}

async fn live(state: &SignalsState, chrome: Chrome, service: &str) -> AppResult<LiveFragment> {
    let view = state
        .signals
        .live_view(service, now_ms())
        .map_err(|_| AppError::not_found("metrics for service", service))?;
    let (firing, firing_total) = crate::alerts::db::firing_for_service(
        &state.db.reader,
        service,
        &crate::visibility::Viewer::user(chrome.user.as_ref().map_or("", |u| u.id.as_str())),
        FIRING_SHOWN,
    )
    .await?;
    Ok(LiveFragment {
        firing,
        firing_total,
        chrome,
        view,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "services/show.html")]
struct ServicePage {
    chrome: Chrome,
    service: String,
    /// None when the collector has no window for the service (Prometheus-only).
    live: Option<LiveFragment>,
    snapshots: Vec<super::db::SnapshotLine>,
    /// The saved queries, or what the admin just submitted when it was refused.
    queries: Queries,
    has_queries: bool,
    prometheus_url: Option<String>,
    errors: FieldErrors,
}

impl ServicePage {
    /// Where this service's figures come from, in words.
    fn source(&self) -> &'static str {
        match (self.live.is_some(), self.has_queries) {
            (true, true) => "Hindsight's own window and Prometheus",
            (true, false) => "Hindsight's own window",
            (false, true) => "Prometheus",
            (false, false) => "nowhere yet",
        }
    }

    fn query_fields(&self) -> [(&'static str, &'static str, &str); 6] {
        let q = &self.queries;
        fn v(o: &Option<String>) -> &str {
            o.as_deref().unwrap_or("")
        }
        [
            ("latency_p50", "Latency p50", v(&q.latency_p50)),
            ("latency_p90", "Latency p90", v(&q.latency_p90)),
            ("latency_p99", "Latency p99", v(&q.latency_p99)),
            ("error_rate", "Error rate", v(&q.error_rate)),
            ("traffic", "Traffic", v(&q.traffic)),
            ("saturation", "Saturation", v(&q.saturation)),
        ]
    }
}

async fn service_page(
    state: &SignalsState,
    chrome: Chrome,
    service: String,
    submitted: Option<Queries>,
    errors: FieldErrors,
) -> AppResult<ServicePage> {
    let saved = super::db::prometheus_queries(&state.db.reader, &service).await?;
    let live = match live(state, chrome.clone(), &service).await {
        Ok(live) => Some(live),
        Err(AppError::NotFound { .. })
            if saved.is_some() || submitted.is_some() || listed(state, &service).await? =>
        {
            None
        }
        Err(e) => return Err(e),
    };
    Ok(ServicePage {
        snapshots: super::db::recent_for_service(
            &state.db.reader,
            &service,
            10,
            &crate::visibility::Viewer::user(chrome.user.as_ref().map_or("", |u| u.id.as_str())),
        )
        .await?,
        has_queries: saved.is_some(),
        queries: submitted.or(saved).unwrap_or_default(),
        prometheus_url: state.signals.prometheus.as_ref().map(|p| p.url.clone()),
        chrome,
        service,
        live,
        errors,
    })
}

async fn show_service(
    State(state): State<SignalsState>,
    page: Page,
    Path(service): Path<String>,
) -> AppResult<Response> {
    Ok(
        service_page(&state, page.chrome, service, None, FieldErrors::new())
            .await?
            .into_response(),
    )
}

#[derive(Debug, Deserialize)]
struct QueriesForm {
    #[serde(default)]
    latency_p50: String,
    #[serde(default)]
    latency_p90: String,
    #[serde(default)]
    latency_p99: String,
    #[serde(default)]
    error_rate: String,
    #[serde(default)]
    traffic: String,
    #[serde(default)]
    saturation: String,
}

/// Admins set the service's Prometheus queries; all blank clears them. Refused input comes
/// back on the page with the messages and what was typed.
async fn save_prometheus_queries(
    State(state): State<SignalsState>,
    Admin(page): Admin,
    Path(service): Path<String>,
    Form(form): Form<QueriesForm>,
) -> AppResult<Response> {
    let some = |s: String| Some(s);
    let queries = Queries {
        latency_p50: some(form.latency_p50),
        latency_p90: some(form.latency_p90),
        latency_p99: some(form.latency_p99),
        error_rate: some(form.error_rate),
        traffic: some(form.traffic),
        saturation: some(form.saturation),
    };
    match super::set_prometheus_queries(&state.db, &page.user, &service, queries.clone()).await {
        Ok(saved) => Ok(redirect_with_flash(
            &format!("/services/{service}#prometheus"),
            "ok",
            &if saved.is_some() {
                format!("Saved the Prometheus queries of {service}.")
            } else {
                format!("Cleared the Prometheus queries of {service}.")
            },
        )),
        Err(AppError::Validation { fields, .. }) => {
            let html = service_page(&state, page.chrome, service, Some(queries), fields).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e),
    }
}

/// Just the live part, fetched every few seconds by `app.js`.
async fn live_fragment(
    State(state): State<SignalsState>,
    page: Page,
    Path(service): Path<String>,
) -> AppResult<Response> {
    let fragment = live(&state, page.chrome, &service).await?;
    Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], fragment).into_response())
}

#[derive(Debug, Deserialize)]
struct SnapshotForm {
    #[serde(default)]
    service: String,
}

async fn take_snapshot(
    State(state): State<SignalsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Form(form): Form<SnapshotForm>,
) -> AppResult<Response> {
    let service = match form.service.trim() {
        "" => incident.service.clone(),
        s => s.to_owned(),
    };
    let taken = super::freeze(
        &state.db,
        &state.signals,
        &incident.id,
        &service,
        Trigger::Manual,
        Some(&page.user.id),
    )
    .await?;
    let target = format!("{}#snapshots", incident.url());
    Ok(match taken {
        Some(_) => redirect_with_flash(
            &target,
            "ok",
            &format!("Froze the current window of {service}."),
        ),
        None => redirect_with_flash(
            &target,
            "error",
            &format!(
                "No metrics have been recorded for {service} yet, so there is nothing to freeze."
            ),
        ),
    })
}
