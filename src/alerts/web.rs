//! The alerts page (firing now, per-rule firings per week, history) and the admin page for
//! alert rules.

use crate::web::extract::Path;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

use super::db::{self, AlertEvent, WeeklyFirings};
use super::{AlertRule, AlertsState, RuleInput, Tier, Watched};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::incidents::Severity;
use crate::visibility::Viewer;
use crate::web::chrome::{Chrome, redirect_with_flash};
use crate::web::extract::{Admin, CallerState, Form, Page};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AlertsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/alerts", get(show_alerts))
        .route("/alerts/rules", get(list_rules).post(create_rule))
        .route("/alerts/rules/{id}", post(update_rule))
        .route("/alerts/rules/{id}/delete", post(delete_rule))
}

/// A rule is called noisy when it fires this often in one week: alerts people learn to ignore.
pub const NOISY_PER_WEEK: i64 = 5;

#[derive(Template, WebTemplate)]
#[template(path = "alerts/index.html")]
struct AlertsPage {
    chrome: Chrome,
    firing: Vec<AlertEvent>,
    weeks: Vec<String>,
    weekly: Vec<WeeklyFirings>,
    history: Vec<AlertEvent>,
}

impl AlertsPage {
    fn noisy_threshold(&self) -> i64 {
        NOISY_PER_WEEK
    }
    fn noisy(&self, count: &i64) -> bool {
        *count >= NOISY_PER_WEEK
    }
    fn value(&self, e: &AlertEvent) -> String {
        match (e.value, super::Watched::parse(&e.signal)) {
            (Some(v), Some(w)) => w.format(v),
            (Some(v), None) => format!("{v:.3}"),
            (None, _) => "—".to_owned(),
        }
    }
}

async fn show_alerts(State(state): State<AlertsState>, page: Page) -> AppResult<Response> {
    let (weeks, weekly) = db::weekly_firings(&state.db.reader, Utc::now(), 8).await?;
    Ok(AlertsPage {
        chrome: page.chrome,
        firing: db::firing(&state.db.reader, &Viewer::user(&page.user.id)).await?,
        weeks,
        weekly,
        history: db::history(&state.db.reader, 100, &Viewer::user(&page.user.id)).await?,
    }
    .into_response())
}

/// The rule form as typed (strings, so nothing is lost on error).
#[derive(Debug, Clone, Default, Deserialize)]
struct RuleForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    signal: String,
    #[serde(default)]
    threshold: String,
    #[serde(default)]
    min_samples: String,
    #[serde(default)]
    for_secs: String,
    #[serde(default)]
    tier: String,
    #[serde(default)]
    page_severity: String,
    #[serde(default)]
    enabled: String,
    #[serde(default)]
    version: String,
}

impl RuleForm {
    fn from_rule(r: &AlertRule) -> Self {
        Self {
            name: r.name.clone(),
            service: r.service.clone(),
            signal: r.signal.as_str().to_owned(),
            threshold: r.threshold.to_string(),
            min_samples: r.min_samples.to_string(),
            for_secs: r.for_secs.to_string(),
            tier: r.tier.as_str().to_owned(),
            page_severity: r.page_severity.as_str().to_owned(),
            enabled: if r.enabled {
                "on".into()
            } else {
                String::new()
            },
            version: r.version.to_string(),
        }
    }

    /// Parses numbers (naming bad ones) and hands the rest to `RuleInput::check`.
    fn check(&self) -> Result<super::RuleValues, AppError> {
        let mut errors = FieldErrors::new();
        let mut number = |field: &str, raw: &str| -> Option<f64> {
            match raw.trim().parse::<f64>() {
                Ok(v) => Some(v),
                Err(_) if raw.trim().is_empty() => None,
                Err(_) => {
                    errors.insert(field.into(), "must be a number".into());
                    None
                }
            }
        };
        let threshold = number("threshold", &self.threshold);
        let min_samples = number("min_samples", &self.min_samples).map(|v| v as i64);
        let for_secs = number("for_secs", &self.for_secs).map(|v| v as i64);
        let input = RuleInput {
            name: Some(self.name.clone()),
            service: Some(self.service.clone()),
            signal: Some(self.signal.clone()),
            threshold,
            tier: Some(self.tier.clone()),
            min_samples,
            for_secs,
            page_severity: Some(self.page_severity.clone()),
            enabled: Some(!self.enabled.is_empty()),
        };
        match input.check() {
            Ok(v) if errors.is_empty() => Ok(v),
            Ok(_) => Err(AppError::fields(errors)),
            Err(AppError::Validation { fields, .. }) => {
                let mut all = fields;
                all.extend(errors);
                Err(AppError::fields(all))
            }
            Err(e) => Err(e),
        }
    }
}

struct RuleRow {
    rule: AlertRule,
    form: RuleForm,
    errors: FieldErrors,
}

#[derive(Template, WebTemplate)]
#[template(path = "alerts/rules.html")]
struct RulesPage {
    chrome: Chrome,
    rows: Vec<RuleRow>,
    new_form: RuleForm,
    errors: FieldErrors,
    services: Vec<String>,
}

impl RulesPage {
    fn signals(&self) -> [Watched; 7] {
        Watched::ALL
    }
    fn tiers(&self) -> [Tier; 3] {
        Tier::ALL
    }
    fn severities(&self) -> [Severity; 4] {
        Severity::ALL
    }
}

/// Renders the rules page; `failed` re-shows one form (new or a rule's) with its errors.
async fn rules_page(
    state: &AlertsState,
    chrome: Chrome,
    failed: Option<(Option<String>, RuleForm, FieldErrors)>,
) -> AppResult<RulesPage> {
    let mut rows: Vec<RuleRow> = db::list_rules(&state.db.reader)
        .await?
        .into_iter()
        .map(|rule| RuleRow {
            form: RuleForm::from_rule(&rule),
            rule,
            errors: FieldErrors::new(),
        })
        .collect();
    let mut new_form = RuleForm {
        signal: "p99".into(),
        min_samples: "20".into(),
        for_secs: "60".into(),
        tier: "ticket".into(),
        page_severity: "sev2".into(),
        enabled: "on".into(),
        ..RuleForm::default()
    };
    let mut errors = FieldErrors::new();
    match failed {
        Some((None, form, e)) => {
            new_form = form;
            errors = e;
        }
        Some((Some(id), form, e)) => {
            if let Some(row) = rows.iter_mut().find(|r| r.rule.id == id) {
                row.form = form;
                row.errors = e;
            }
        }
        None => {}
    }
    let mut services = state.signals.registry.services();
    for s in &state.catalog.get(&state.db.reader).await?.services {
        if !services.contains(&s.name) {
            services.push(s.name.clone());
        }
    }
    services.sort();
    Ok(RulesPage {
        chrome,
        rows,
        new_form,
        errors,
        services,
    })
}

async fn list_rules(State(state): State<AlertsState>, page: Page) -> AppResult<Response> {
    Ok(rules_page(&state, page.chrome, None).await?.into_response())
}

async fn create_rule(
    State(state): State<AlertsState>,
    Admin(page): Admin,
    Form(form): Form<RuleForm>,
) -> AppResult<Response> {
    let values = match form.check() {
        Ok(v) => v,
        Err(AppError::Validation { fields, .. }) => {
            let html = rules_page(&state, page.chrome, Some((None, form, fields))).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response());
        }
        Err(e) => return Err(e),
    };
    super::create_rule(&state.db, &page.user, &values).await?;
    Ok(redirect_with_flash(
        "/alerts/rules",
        "ok",
        &format!("Added the rule {}.", values.name),
    ))
}

async fn update_rule(
    State(state): State<AlertsState>,
    Admin(page): Admin,
    Path(id): Path<String>,
    Form(form): Form<RuleForm>,
) -> AppResult<Response> {
    let rule = db::find_rule(&state.db.reader, &id)
        .await?
        .ok_or_else(|| AppError::missing("alert rule"))?;
    let values = match form.check() {
        Ok(v) => v,
        Err(AppError::Validation { fields, .. }) => {
            let html = rules_page(&state, page.chrome, Some((Some(id), form, fields))).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response());
        }
        Err(e) => return Err(e),
    };
    let version = form.version.trim().parse::<i64>().unwrap_or(rule.version);
    match super::update_rule(&state, &page.user, &id, version, &values).await {
        Ok(()) => {}
        Err(AppError::Conflict { .. }) => {
            let mut errors = FieldErrors::new();
            errors.insert(
                "name".into(),
                "someone else changed this rule while you were editing; the form shows what you typed, the list shows theirs after a reload".into(),
            );
            let html = rules_page(&state, page.chrome, Some((Some(id), form, errors))).await?;
            return Ok((StatusCode::CONFLICT, html).into_response());
        }
        Err(e) => return Err(e),
    }
    Ok(redirect_with_flash(
        "/alerts/rules",
        "ok",
        &format!("Saved the rule {}.", values.name),
    ))
}

async fn delete_rule(
    State(state): State<AlertsState>,
    Admin(page): Admin,
    Path(id): Path<String>,
) -> AppResult<Response> {
    super::delete_rule(&state, &page.user, &id).await?;
    Ok(redirect_with_flash(
        "/alerts/rules",
        "ok",
        "Rule deleted; its past firings stay in the history.",
    ))
}
