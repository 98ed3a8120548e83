//! The integrations admin page: receiver URLs and how to authenticate them, the last payloads
//! each receiver got, outgoing webhook destinations and their deliveries.

use crate::web::extract::Path;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::IntegrationsState;
use super::db::LoggedPayload;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::notifications::Event;
use crate::notifications::db::{DeliveryRow, Destination};
use crate::web::chrome::{Chrome, redirect_with_flash};
use crate::web::extract::{Admin, CallerState, Form};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    IntegrationsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/admin/integrations", get(show).post(add_destination))
        .route(
            "/admin/integrations/destinations/{id}/delete",
            post(delete_destination),
        )
        .route(
            "/admin/integrations/destinations/{id}/secret",
            post(rotate_secret),
        )
        .route(
            "/admin/integrations/destinations/{id}/restricted",
            post(set_restricted_details),
        )
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/integrations.html")]
struct IntegrationsPage {
    chrome: Chrome,
    base_url: String,
    ingest_tokens: Vec<crate::auth::db::TokenInfo>,
    payloads: Vec<LoggedPayload>,
    destinations: Vec<Destination>,
    deliveries: Vec<DeliveryRow>,
    form: DestinationForm,
    errors: FieldErrors,
    /// A signing secret just made: shown on this one response only.
    created: Option<crate::notifications::NewSecret>,
}

impl IntegrationsPage {
    fn events(&self) -> [Event; 4] {
        Event::ALL
    }
    fn short(&self, text: &str) -> String {
        if text.chars().count() > 300 {
            let mut cut: String = text.chars().take(300).collect();
            cut.push('…');
            cut
        } else {
            text.to_owned()
        }
    }
}

/// The destination form; checkboxes are separate fields because HTML repeats names.
#[derive(Debug, Clone, Default, Deserialize)]
struct DestinationForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    event_incident_opened: String,
    #[serde(default)]
    event_severity_raised: String,
    #[serde(default)]
    event_alert_fired: String,
    #[serde(default)]
    event_postmortem_published: String,
    #[serde(default)]
    tier_page: String,
    #[serde(default)]
    tier_ticket: String,
    #[serde(default)]
    tier_log: String,
    /// Checked: this destination receives restricted incidents' titles and links.
    #[serde(default)]
    restricted_details: String,
}

impl DestinationForm {
    fn checked(&self, key: &str) -> bool {
        let value = match key {
            "incident_opened" => &self.event_incident_opened,
            "severity_raised" => &self.event_severity_raised,
            "alert_fired" => &self.event_alert_fired,
            "postmortem_published" => &self.event_postmortem_published,
            "page" => &self.tier_page,
            "ticket" => &self.tier_ticket,
            "log" => &self.tier_log,
            "restricted_details" => &self.restricted_details,
            _ => return false,
        };
        !value.is_empty()
    }
}

async fn page(
    state: &IntegrationsState,
    chrome: Chrome,
    form: DestinationForm,
    errors: FieldErrors,
) -> AppResult<IntegrationsPage> {
    Ok(IntegrationsPage {
        chrome,
        base_url: state.base_url.clone(),
        ingest_tokens: crate::auth::db::list_tokens(&state.db.reader)
            .await?
            .into_iter()
            .filter(|t| t.scope == crate::auth::Scope::Ingest && t.revoked_at.is_none())
            .collect(),
        payloads: super::db::recent_payloads(&state.db.reader, 20).await?,
        destinations: crate::notifications::db::list_destinations(&state.db.reader).await?,
        deliveries: crate::notifications::db::recent_deliveries(&state.db.reader, 30).await?,
        form,
        errors,
        created: None,
    })
}

/// The page showing a new signing secret once, kept out of caches.
async fn secret_page(
    state: &IntegrationsState,
    chrome: Chrome,
    created: crate::notifications::NewSecret,
    status: StatusCode,
) -> AppResult<Response> {
    let mut html = page(
        state,
        chrome,
        DestinationForm::default(),
        FieldErrors::new(),
    )
    .await?;
    html.form = default_form();
    html.created = Some(created);
    Ok((
        status,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        html,
    )
        .into_response())
}

fn default_form() -> DestinationForm {
    DestinationForm {
        format: "json".into(),
        event_incident_opened: "on".into(),
        event_alert_fired: "on".into(),
        tier_page: "on".into(),
        ..DestinationForm::default()
    }
}

async fn show(State(state): State<IntegrationsState>, Admin(p): Admin) -> AppResult<Response> {
    Ok(page(&state, p.chrome, default_form(), FieldErrors::new())
        .await?
        .into_response())
}

async fn add_destination(
    State(state): State<IntegrationsState>,
    Admin(p): Admin,
    Form(form): Form<DestinationForm>,
) -> AppResult<Response> {
    let events: Vec<String> = Event::ALL
        .iter()
        .filter(|e| form.checked(e.as_str()))
        .map(|e| e.as_str().to_owned())
        .collect();
    let tiers: Vec<String> = ["page", "ticket", "log"]
        .iter()
        .filter(|t| form.checked(t))
        .map(|t| (*t).to_owned())
        .collect();
    match crate::notifications::add_destination(
        &state.db,
        &form.name,
        &form.url,
        &form.format,
        &events,
        &tiers,
        !form.restricted_details.is_empty(),
    )
    .await
    {
        Ok(created) => secret_page(&state, p.chrome, created, StatusCode::CREATED).await,
        Err(AppError::Validation { fields, .. }) => {
            let html = page(&state, p.chrome, form, fields).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e),
    }
}

async fn rotate_secret(
    State(state): State<IntegrationsState>,
    Admin(p): Admin,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let created = crate::notifications::rotate_secret(&state.db, &id).await?;
    secret_page(&state, p.chrome, created, StatusCode::OK).await
}

async fn delete_destination(
    State(state): State<IntegrationsState>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> AppResult<Response> {
    crate::notifications::delete_destination(&state.db, &id).await?;
    Ok(redirect_with_flash(
        "/admin/integrations",
        "ok",
        "Destination deleted.",
    ))
}

#[derive(Debug, Deserialize)]
struct RestrictedDetailsForm {
    /// Checked: the destination receives restricted incidents' titles and links.
    #[serde(default)]
    restricted_details: String,
}

/// Marks a destination as allowed (or not) to receive restricted incidents' details.
async fn set_restricted_details(
    State(state): State<IntegrationsState>,
    Admin(p): Admin,
    Path(id): Path<String>,
    Form(form): Form<RestrictedDetailsForm>,
) -> AppResult<Response> {
    let allowed = !form.restricted_details.is_empty();
    let name =
        crate::notifications::set_restricted_details(&state.db, &p.user, &id, allowed).await?;
    Ok(redirect_with_flash(
        "/admin/integrations",
        "ok",
        &if allowed {
            format!("{name} now receives restricted incidents' titles and links.")
        } else {
            format!("{name} is now told only that a restricted incident was opened.")
        },
    ))
}
