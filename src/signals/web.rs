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

use super::db::Snapshot;
use super::{SignalsState, Trigger, now_ms};
use crate::error::{AppError, AppResult};
use crate::metrics::{QuantileMode, WindowReport, WindowStats};
use crate::web::chrome::{Chrome, redirect_with_flash};
use crate::web::extract::{CallerState, Form, IncidentInPath, Page, Responder};

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
        .route("/incidents/{incident}/snapshots", post(take_snapshot))
}

/// One observed service on the list.
struct ServiceRow {
    name: String,
    stats: WindowStats,
}

#[derive(Template, WebTemplate)]
#[template(path = "services/list.html")]
struct ServicesPage {
    chrome: Chrome,
    rows: Vec<ServiceRow>,
}

async fn list_services(State(state): State<SignalsState>, page: Page) -> AppResult<Response> {
    let mut names = state.signals.registry.services();
    names.sort();
    let now = now_ms();
    let rows = names
        .into_iter()
        .filter_map(|name| {
            let report = state
                .signals
                .registry
                .report(&name, now, QuantileMode::Fast)
                .ok()?;
            Some(ServiceRow {
                name,
                stats: report.last_t,
            })
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
    report: WindowReport,
    chart: String,
    firing: Vec<crate::alerts::db::AlertEvent>,
}

impl LiveFragment {
    fn latencies(&self, l: &crate::metrics::LatencyMs) -> [f64; 8] {
        [l.min, l.mean, l.p50, l.p90, l.p95, l.p99, l.p999, l.max]
    }

    fn windows(&self) -> [(&'static str, &WindowStats); 2] {
        [
            ("last N events", &self.report.last_n),
            ("last T seconds", &self.report.last_t),
        ]
    }

    fn taken_at(&self) -> String {
        chrono::DateTime::from_timestamp_millis(i64::try_from(self.report.taken_at_ms).unwrap_or(0))
            .map(|t| self.chrome.time(&t))
            .unwrap_or_default()
    }
}

async fn live(state: &SignalsState, chrome: Chrome, service: &str) -> AppResult<LiveFragment> {
    let report = state
        .signals
        .registry
        .report(service, now_ms(), QuantileMode::Exact)
        .map_err(|_| AppError::not_found("metrics for service", service))?;
    let chart =
        super::chart::latency_chart(&report.series, &format!("{service} latency and errors"));
    Ok(LiveFragment {
        firing: crate::alerts::db::firing_for_service(&state.db.reader, service).await?,
        chrome,
        report,
        chart,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "services/show.html")]
struct ServicePage {
    chrome: Chrome,
    service: String,
    live: LiveFragment,
    snapshots: Vec<Snapshot>,
}

async fn show_service(
    State(state): State<SignalsState>,
    page: Page,
    Path(service): Path<String>,
) -> AppResult<Response> {
    let live = live(&state, page.chrome.clone(), &service).await?;
    Ok(ServicePage {
        snapshots: super::db::recent_for_service(&state.db.reader, &service, 10).await?,
        chrome: page.chrome,
        service,
        live,
    }
    .into_response())
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
