//! The app assembly: builds the state every area owns, merges the areas' routers and wraps
//! them in the middleware every request passes through. The only module that knows them all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::csrf::CsrfLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::Config;
use crate::db::Db;
use crate::web::extract::CallerState;
use crate::web::{middleware, static_files};

/// What every handler can reach. Cheap to clone: the router clones it for every request, so it
/// is one shared allocation (`AppParts`) rather than two dozen counted references.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What an `AppState` holds.
pub struct AppParts {
    pub db: Db,
    pub config: Arc<Config>,
    pub login_limiter: Arc<crate::auth::LoginLimiter>,
    pub sessions: Arc<crate::auth::sessions::SessionCache>,
    pub catalog: Arc<crate::catalog::CatalogCache>,
    pub incident_lists: Arc<crate::incidents::ListCache>,
    pub incident_records: Arc<crate::incidents::RecordCache>,
    pub postmortem_records: Arc<crate::postmortems::RecordCache>,
    pub signals: Arc<crate::signals::Signals>,
    pub alert_evaluator: Arc<crate::alerts::Evaluator>,
    pub alert_mapping: Arc<crate::integrations::Mapping>,
    pub items: Arc<crate::action_items::ItemCaches>,
    pub reports: Arc<crate::reports::ReportCache>,
    pub month: Arc<crate::reports::MonthCache>,
    pub dashboards: Arc<crate::reports::DashboardCache>,
    pub recurrence: Arc<crate::recurrence::RecurrenceState>,
    pub search_hits: Arc<crate::search::HitCache>,
    pub report_weeks: Arc<crate::reports::WeekCache>,
    pub trusted_proxies: Arc<crate::auth::proxies::TrustedProxies>,
    /// Set when shutdown begins: new requests get 503 while in-flight ones finish.
    pub draining: Arc<AtomicBool>,
    /// The OpenID Connect provider (`HINDSIGHT_OIDC_*`), discovered lazily.
    pub oidc: Option<Arc<crate::auth::oidc::Oidc>>,
}

/// Most keys (account × address, address, account, known addresses) the sign-in limiter keeps
/// in memory, about 10 MB at worst; beyond it the least recently used are forgotten.
const LOGIN_LIMITER_MAX_KEYS: usize = 50_000;

impl AppState {
    /// Panics only if `config` was built by hand with an invalid collector window:
    /// `Config::from_env` rejects those with a message naming the setting.
    pub fn new(db: Db, config: Config) -> Self {
        let signals = crate::signals::Signals::new(
            config.metrics_window,
            config.metrics_max_services,
            config.metrics_auto_create,
            config.metrics_max_batch,
        )
        .expect("Config validates the collector window settings")
        .with_prometheus(config.prometheus.clone());
        let limiter = crate::auth::LoginLimiter::new(crate::auth::limiter::Limits {
            per_account_and_address: config.login_max_failures,
            per_address: config.login_address_max_failures,
            per_account: config.login_account_max_failures,
            window: config.login_window,
            max_concurrent: config.login_max_concurrent,
            max_keys: LOGIN_LIMITER_MAX_KEYS,
        });
        let trusted_proxies = Arc::new(config.trusted_proxies.clone());
        let alert_mapping = Arc::new(config.alert_mapping.clone());
        let recurrence = Arc::new(crate::recurrence::RecurrenceState::new(
            config.recurrence,
            Duration::from_secs(30),
        ));
        let signals = Arc::new(signals);
        crate::signals::observe_writes(&db, &signals);
        let oidc = config
            .oidc
            .clone()
            .map(|settings| Arc::new(crate::auth::oidc::Oidc::new(settings)));
        Self(Arc::new(AppParts {
            db,
            recurrence,
            config: Arc::new(config),
            alert_mapping,
            login_limiter: Arc::new(limiter),
            trusted_proxies,
            sessions: Arc::new(crate::auth::sessions::SessionCache::new(
                Duration::from_secs(5),
            )),
            catalog: Arc::new(crate::catalog::CatalogCache::new(Duration::from_secs(10))),
            incident_lists: Arc::new(crate::incidents::ListCache::new(Duration::from_secs(2))),
            // Writes by another process (`hindsight demo`) are seen within a minute.
            incident_records: Arc::new(crate::incidents::RecordCache::new(
                Duration::from_secs(60),
                256,
            )),
            postmortem_records: Arc::new(crate::postmortems::RecordCache::new(
                Duration::from_secs(60),
                256,
            )),
            signals,
            alert_evaluator: Arc::new(crate::alerts::Evaluator::default()),
            items: Arc::new(crate::action_items::ItemCaches::new(Duration::from_secs(5))),
            reports: Arc::new(crate::reports::ReportCache::new(
                crate::reports::REPORT_MAX_AGE,
            )),
            month: Arc::new(crate::reports::MonthCache::new(Duration::from_secs(30))),
            dashboards: Arc::new(crate::reports::DashboardCache::new(Duration::from_secs(5))),
            search_hits: Arc::new(crate::search::HitCache::with_timeline(Duration::from_secs(
                30,
            ))),
            report_weeks: Arc::new(crate::reports::WeekCache::new(
                crate::reports::REPORT_MAX_AGE,
            )),
            draining: Arc::new(AtomicBool::new(false)),
            oidc,
        }))
    }
}

const CSP: &str = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The whole application: every route and the security middleware around them.
pub fn app(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let max_body = state.config.max_body_bytes;
    let timeout = state.config.request_timeout;
    let hsts = state
        .config
        .secure_cookies()
        .then(|| HeaderValue::from_static("max-age=31536000"));

    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(static_files::router())
        .merge(crate::signals::api::metrics_router())
        .merge(crate::auth::web::router())
        .merge(crate::catalog::web::router())
        .merge(crate::incidents::web::router())
        .merge(crate::timeline::web::router())
        .merge(crate::signals::web::router())
        .merge(crate::alerts::web::router())
        .merge(crate::integrations::web::router())
        .merge(crate::action_items::web::router())
        .merge(crate::postmortems::web::router())
        .merge(crate::postmortems::templates_web::router())
        .merge(crate::reports::web::router())
        .merge(crate::search::web::router())
        .merge(crate::inbox::web::router())
        .merge(crate::signals::api::otlp_router())
        .merge(crate::auth::account_web::router())
        .merge(crate::audit::web::router())
        .merge(crate::auth::oidc_web::router())
        .merge(crate::insights::web::router())
        .merge(crate::review_delivery::web::router())
        .merge(crate::similar::web::router())
        .merge(crate::evidence::web::router())
        .nest("/api/v1", api_router())
        .route("/api/openapi.json", get(crate::web::static_files::openapi))
        .fallback(not_found)
        .with_state(state.clone());

    // Layers run outside-in in the reverse order of these calls: the request id is set first,
    // then logging and headers, then the error renderer, which sees every error status the
    // inner layers produce (CSRF 403, body limit 413, timeout 408) as well as handlers'.
    routes
        .layer(axum::middleware::from_fn(middleware::clear_flash))
        .layer(
            CsrfLayer::new()
                // API and ingest paths authenticate with bearer tokens, which a browser never
                // attaches on its own, so cross-site requests there cannot ride on a session.
                .with_insecure_bypass(|_: &Method, uri: &Uri| {
                    uri.path().starts_with("/api/") || uri.path() == "/v1/traces"
                }),
        )
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout.max(Duration::from_secs(1)),
        ))
        .layer(axum::middleware::from_fn_with_state(
            CallerState::from_ref(&state),
            middleware::render_errors,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ))
        // Pages and API answers show what a signed-in person may see: no cache (the browser's
        // back button on a shared machine, a proxy) keeps them. Static files set their own.
        .layer(SetResponseHeaderLayer::if_not_present(
            axum::http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        // Served over https: browsers come back over https only, for a year.
        .layer(SetResponseHeaderLayer::if_not_present(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            hsts,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.signals),
            middleware::observe,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.draining),
            middleware::refuse_while_draining,
        ))
        .layer(axum::middleware::from_fn(middleware::log_requests))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

fn api_router() -> Router<AppState> {
    Router::new()
        .merge(crate::incidents::api::router())
        .merge(crate::timeline::api::router())
        .merge(crate::catalog::api::router())
        .merge(crate::signals::api::router())
        .merge(crate::alerts::api::router())
        .merge(crate::integrations::api::router())
        .merge(crate::action_items::api::router())
        .merge(crate::postmortems::api::router())
        .merge(crate::reports::api::router())
        .merge(crate::inbox::api::router())
        .merge(crate::audit::api::router())
        .merge(crate::insights::api::router())
        .merge(crate::review_delivery::api::router())
        .merge(crate::similar::api::router())
        .merge(crate::evidence::api::router())
}

/// What the extractors and the error pages need: see `web::extract::CallerState`.
impl FromRef<AppState> for CallerState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            sessions: Arc::clone(&app.sessions),
            items: Arc::clone(&app.items),
            tz: app.config.timezone,
            max_body_bytes: app.config.max_body_bytes,
            session_cookie: crate::auth::session_cookie_name(app.config.secure_cookies()),
            session_idle: app.config.session_idle,
        }
    }
}

/// The incident pages and API: the list cache, the recurrence rule and cache, the collector
/// (snapshots at declaration) and the catalog's lists.
impl FromRef<AppState> for crate::incidents::IncidentsState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            tz: app.config.timezone,
            lists: Arc::clone(&app.incident_lists),
            records: Arc::clone(&app.incident_records),
            rule: app.recurrence.rule,
            recurrence: Arc::clone(&app.recurrence),
            signals: Arc::clone(&app.signals),
            catalog: Arc::clone(&app.catalog),
        }
    }
}

/// The timeline forms: the database and the zone typed times are read in.
impl FromRef<AppState> for crate::timeline::TimelineState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            tz: app.config.timezone,
        }
    }
}

/// The service pages, snapshots and `/metrics`: the collector and whether `/metrics` needs a
/// token.
impl FromRef<AppState> for crate::signals::SignalsState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            signals: Arc::clone(&app.signals),
            catalog: Arc::clone(&app.catalog),
            metrics_require_token: app.config.metrics_require_token,
            growth: app.config.service_growth,
            otlp: Arc::clone(&app.config.otlp_rules),
            max_inflated_bytes: app.config.max_body_bytes.saturating_mul(8),
        }
    }
}

/// The action-item pages and API: the database and the item caches (shared with the header).
impl FromRef<AppState> for crate::action_items::ActionItemsState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            tz: app.config.timezone,
            items: Arc::clone(&app.items),
        }
    }
}

/// The report pages, the dashboard and the report API: the review caches, the zone, the
/// recurrence rule and the catalog's lists.
impl FromRef<AppState> for crate::reports::ReportsState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            tz: app.config.timezone,
            base_url: app.config.base_url.clone(),
            rule: app.recurrence.rule,
            reviews: Arc::clone(&app.reports),
            month: Arc::clone(&app.month),
            weeks: Arc::clone(&app.report_weeks),
            dashboards: Arc::clone(&app.dashboards),
            catalog: Arc::clone(&app.catalog),
        }
    }
}

/// The search page: its hit cache, the zone dates are typed in and the catalog's lists.
impl FromRef<AppState> for crate::inbox::InboxState {
    fn from_ref(app: &AppState) -> Self {
        Self { db: app.db.clone() }
    }
}

impl FromRef<AppState> for crate::search::SearchState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            tz: app.config.timezone,
            hits: Arc::clone(&app.search_hits),
            catalog: Arc::clone(&app.catalog),
        }
    }
}

/// The post-mortem pages, template admin and API: the zone and the catalog's lists.
impl FromRef<AppState> for crate::postmortems::PostmortemsState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            tz: app.config.timezone,
            catalog: Arc::clone(&app.catalog),
            records: Arc::clone(&app.postmortem_records),
        }
    }
}

/// Sign-in, sessions and the admin pages for users and tokens: the session cache, the
/// login limiter and the cookie settings.
impl FromRef<AppState> for crate::auth::AuthState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            sessions: Arc::clone(&app.sessions),
            limiter: Arc::clone(&app.login_limiter),
            session_ttl: app.config.session_ttl,
            secure_cookies: app.config.secure_cookies(),
            trusted_proxies: Arc::clone(&app.trusted_proxies),
            session_idle: app.config.session_idle,
            base_url: app.config.base_url.clone(),
            oidc: app.oidc.clone(),
            local_login: app.config.local_login,
        }
    }
}

/// The service and category pages and API: the catalog cache.
impl FromRef<AppState> for crate::catalog::CatalogState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            cache: Arc::clone(&app.catalog),
        }
    }
}

/// The alert rule pages and API: the collector, the evaluator and the catalog's lists.
impl FromRef<AppState> for crate::alerts::AlertsState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            signals: Arc::clone(&app.signals),
            evaluator: Arc::clone(&app.alert_evaluator),
            catalog: Arc::clone(&app.catalog),
        }
    }
}

/// The Alertmanager and Grafana receivers and the integrations page: the label mapping.
impl FromRef<AppState> for crate::integrations::IntegrationsState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            mapping: Arc::clone(&app.alert_mapping),
            base_url: app.config.base_url.clone(),
            growth: app.config.service_growth,
        }
    }
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: 200 while writes can succeed; 503 with the reason while Hindsight is shutting
/// down, the writer has been stuck in one transaction for long, or the last write failed for a
/// known fault (full disk, locked, read-only) and a probe write still fails.
async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let db = &state.db;
    let disk_free = db.disk_free_bytes();
    let not_ready = |reason: &str, message: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "status": "not_ready",
                "reason": reason,
                "message": message,
                "disk_free_bytes": disk_free,
            })),
        )
            .into_response()
    };
    if state.draining.load(Ordering::Acquire) {
        return not_ready("shutting_down", "Hindsight is shutting down.");
    }
    // Longer than any healthy write: a lock wait plus a request's whole time budget.
    let stuck_after = state.config.db_busy_timeout + state.config.request_timeout;
    if db
        .health()
        .open_for()
        .is_some_and(|open| open > stuck_after)
    {
        return not_ready(
            "writer_stuck",
            "A write has held the database for longer than any healthy write takes.",
        );
    }
    // A full disk can still take a tiny write (SQLite reuses space in its log), which would
    // make the probe below pass while real writes fail: under 1 MiB free counts as full.
    if disk_free.is_some_and(|free| free < 1024 * 1024) {
        let fault = crate::db::Fault::DiskFull;
        return not_ready(fault.as_str(), fault.message());
    }
    if let Some(fault) = db.health().failing() {
        // Find out whether the fault has passed with one small write of our own; bounded, so
        // the probe answers quickly even while the database is locked.
        let probe = tokio::time::timeout(Duration::from_secs(1), db.probe_write()).await;
        let still = match probe {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(crate::db::Fault::of(&e).unwrap_or(fault)),
            Err(_) => Some(fault),
        };
        if let Some(fault) = still {
            return not_ready(fault.as_str(), fault.message());
        }
    }
    axum::Json(serde_json::json!({"status": "ready", "disk_free_bytes": disk_free})).into_response()
}

async fn not_found(uri: Uri) -> crate::error::AppError {
    crate::error::AppError::not_found("the page", uri.path())
}

/// Admin › Audit and `GET /api/v1/audit`: the database and the zone filter dates are days in.
impl FromRef<AppState> for crate::audit::AuditState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            tz: app.config.timezone,
        }
    }
}

/// The insights page and API: the zone, the recurrence rule and the catalog's lists.
impl FromRef<AppState> for crate::insights::InsightsState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            tz: app.config.timezone,
            rule: app.recurrence.rule,
            catalog: Arc::clone(&app.catalog),
        }
    }
}

/// The weekly review's subscriptions and their delivery: the review's caches and settings,
/// the mailer and the retry base the webhook outbox uses too.
impl FromRef<AppState> for crate::review_delivery::ReviewDeliveryState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            tz: app.config.timezone,
            base_url: app.config.base_url.clone(),
            rule: app.recurrence.rule,
            weeks: Arc::clone(&app.report_weeks),
            mailer: app.config.mailer.clone(),
            retry_base: app.config.webhook_retry_base,
            catalog: Arc::clone(&app.catalog),
        }
    }
}

/// Similar incidents and incident links: the database and the zone.
impl FromRef<AppState> for crate::similar::SimilarState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            tz: app.config.timezone,
        }
    }
}

/// Chat evidence: the database and the zone pasted times are read in.
impl FromRef<AppState> for crate::evidence::EvidenceState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
            tz: app.config.timezone,
        }
    }
}
