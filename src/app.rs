//! The app assembly: builds the state every area owns, merges the areas' routers and wraps
//! them in the middleware every request passes through. The only module that knows them all.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::IntoResponse;
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

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub login_limiter: Arc<crate::auth::LoginLimiter>,
    pub sessions: Arc<crate::auth::sessions::SessionCache>,
    pub catalog: Arc<crate::catalog::CatalogCache>,
    pub incident_lists: Arc<crate::incidents::ListCache>,
    pub signals: Arc<crate::signals::Signals>,
    pub alert_evaluator: Arc<crate::alerts::Evaluator>,
    pub alert_mapping: Arc<crate::integrations::Mapping>,
    pub items: Arc<crate::action_items::ItemCaches>,
    pub reports: Arc<crate::reports::ReportCache>,
    pub month: Arc<crate::reports::MonthCache>,
    pub recurrence: Arc<crate::recurrence::RecurrenceState>,
    pub search_hits: Arc<crate::search::HitCache>,
    pub report_weeks: Arc<crate::reports::WeekCache>,
}

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
        .expect("Config validates the collector window settings");
        let limiter =
            crate::auth::LoginLimiter::new(config.login_max_failures, config.login_window);
        let alert_mapping = Arc::new(config.alert_mapping.clone());
        let recurrence = Arc::new(crate::recurrence::RecurrenceState::new(
            config.recurrence,
            Duration::from_secs(30),
        ));
        Self {
            db,
            recurrence,
            config: Arc::new(config),
            alert_mapping,
            login_limiter: Arc::new(limiter),
            sessions: Arc::new(crate::auth::sessions::SessionCache::new(
                Duration::from_secs(5),
            )),
            catalog: Arc::new(crate::catalog::CatalogCache::new(Duration::from_secs(10))),
            incident_lists: Arc::new(crate::incidents::ListCache::new(Duration::from_secs(2))),
            signals: Arc::new(signals),
            alert_evaluator: Arc::new(crate::alerts::Evaluator::default()),
            items: Arc::new(crate::action_items::ItemCaches::new(Duration::from_secs(5))),
            reports: Arc::new(crate::reports::ReportCache::new(
                crate::reports::REPORT_MAX_AGE,
            )),
            month: Arc::new(crate::reports::MonthCache::new(Duration::from_secs(30))),
            search_hits: Arc::new(crate::search::HitCache::new(Duration::from_secs(30))),
            report_weeks: Arc::new(crate::reports::WeekCache::new(
                crate::reports::REPORT_MAX_AGE,
            )),
        }
    }
}

const CSP: &str = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The whole application: every route and the security middleware around them.
pub fn app(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let max_body = state.config.max_body_bytes;
    let timeout = state.config.request_timeout;

    let routes = Router::new()
        .route("/healthz", get(healthz))
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
                .with_insecure_bypass(|_: &Method, uri: &Uri| uri.path().starts_with("/api/")),
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
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.signals),
            middleware::observe,
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
        }
    }
}

/// The action-item pages and API: the database and the item caches (shared with the header).
impl FromRef<AppState> for crate::action_items::ActionItemsState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            db: app.db.clone(),
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
            catalog: Arc::clone(&app.catalog),
        }
    }
}

/// The search page: its hit cache, the zone dates are typed in and the catalog's lists.
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

async fn not_found(uri: Uri) -> crate::error::AppError {
    crate::error::AppError::not_found("the page", uri.path())
}
