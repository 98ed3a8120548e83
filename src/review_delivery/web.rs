//! The weekly review's subscriptions page (`/reports/weekly/subscriptions`): who gets the
//! review when and where, "Send a test now", and the delivery log.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{Delivery, Draft, ReviewDeliveryState, Subscription};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::web::chrome::{Chrome, redirect_with_flash};
use crate::web::extract::{CallerState, Form, Page, Path, Responder};

const PAGE: &str = "/reports/weekly/subscriptions";

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ReviewDeliveryState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route(PAGE, get(show).post(create))
        .route("/reports/weekly/subscriptions/{id}/delete", post(delete))
        .route("/reports/weekly/subscriptions/{id}/send", post(send))
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SubscriptionForm {
    #[serde(default)]
    team: String,
    #[serde(default)]
    weekday: String,
    #[serde(default)]
    hour: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    emails: String,
    #[serde(default)]
    webhook_destination: String,
}

impl SubscriptionForm {
    fn draft(&self) -> Draft {
        Draft {
            team: Some(self.team.clone()),
            weekday: self.weekday.clone(),
            hour: self.hour.clone(),
            timezone: self.timezone.clone(),
            emails: self
                .emails
                .split([',', '\n', ';'])
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            webhook_destination: Some(self.webhook_destination.clone()),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "reports/subscriptions.html")]
struct SubscriptionsPage {
    chrome: Chrome,
    subscriptions: Vec<Subscription>,
    deliveries: Vec<Delivery>,
    teams: Vec<String>,
    destinations: Vec<(String, String)>,
    form: SubscriptionForm,
    errors: FieldErrors,
    can_subscribe: bool,
    is_admin: bool,
    mail_configured: bool,
}

impl SubscriptionsPage {
    fn weekdays(&self) -> Vec<(String, &'static str)> {
        (1..=7u8)
            .filter_map(|n| {
                chrono::Weekday::try_from(n - 1)
                    .ok()
                    .map(|d| (n.to_string(), super::weekday_name(d)))
            })
            .collect()
    }

    fn hours(&self) -> Vec<String> {
        (0..24).map(|h| h.to_string()).collect()
    }

    fn subscription_label(&self, id: &str) -> String {
        self.subscriptions
            .iter()
            .find(|s| s.id == id)
            .map_or_else(String::new, |s| {
                format!("{} · {} {:02}:00", s.team_label(), s.weekday_name(), s.hour)
            })
    }
}

async fn render(
    state: &ReviewDeliveryState,
    page: Page,
    form: SubscriptionForm,
    errors: FieldErrors,
) -> AppResult<SubscriptionsPage> {
    let user = &page.user;
    let lists = state.catalog.get(&state.db.reader).await?;
    let destinations = if user.role >= crate::auth::Role::Admin {
        crate::notifications::db::list_destinations(&state.db.reader)
            .await?
            .into_iter()
            .map(|d| (d.id, d.name))
            .collect()
    } else {
        Vec::new()
    };
    Ok(SubscriptionsPage {
        subscriptions: super::list(state, user).await?,
        deliveries: super::log(state, user, 50).await?,
        teams: lists.teams.clone(),
        destinations,
        form,
        errors,
        can_subscribe: user.role >= crate::auth::Role::Responder,
        is_admin: user.role >= crate::auth::Role::Admin,
        mail_configured: state.mailer.is_some(),
        chrome: page.chrome,
    })
}

async fn show(State(state): State<ReviewDeliveryState>, page: Page) -> AppResult<Response> {
    let form = SubscriptionForm {
        weekday: "1".into(),
        hour: "9".into(),
        timezone: state.tz.name().to_owned(),
        emails: page.user.email.clone(),
        ..SubscriptionForm::default()
    };
    Ok(render(&state, page, form, FieldErrors::new())
        .await?
        .into_response())
}

async fn create(
    State(state): State<ReviewDeliveryState>,
    Responder(page): Responder,
    Form(form): Form<SubscriptionForm>,
) -> AppResult<Response> {
    match super::create(&state, &page.user, &form.draft()).await {
        Ok(sub) => Ok(redirect_with_flash(
            PAGE,
            "ok",
            &format!(
                "Subscribed: {} every {} at {:02}:00 ({}).",
                sub.team_label(),
                sub.weekday_name(),
                sub.hour,
                sub.timezone
            ),
        )),
        Err(AppError::Validation { fields, .. }) => {
            let html = render(&state, page, form, fields).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e),
    }
}

async fn delete(
    State(state): State<ReviewDeliveryState>,
    Responder(page): Responder,
    Path(id): Path<String>,
) -> AppResult<Response> {
    super::delete(&state, &page.user, &id).await?;
    Ok(redirect_with_flash(PAGE, "ok", "Subscription deleted."))
}

async fn send(
    State(state): State<ReviewDeliveryState>,
    Responder(page): Responder,
    Path(id): Path<String>,
) -> AppResult<Response> {
    super::send_now(&state, &page.user, &id).await?;
    Ok(redirect_with_flash(
        PAGE,
        "ok",
        "The last complete week's review is on its way; its delivery shows in the log below.",
    ))
}
