//! Timeline forms on the incident page: add, edit inline (with a conflict page for stale
//! saves) and delete.

use crate::web::extract::Path;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;

use super::{Entry, EntryChanges, EntryKind, TimelineState};
use crate::error::{AppError, AppResult};
use crate::incidents::web::{EntryFormView, ShowState, render_show};
use crate::incidents::{Incident, IncidentsState};
use crate::web::chrome::{Chrome, redirect_with_flash};
use crate::web::extract::{CallerState, Form, IncidentInPath, Responder, VersionedForm};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    TimelineState: FromRef<S>,
    IncidentsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/incidents/{incident}/timeline", post(add_entry))
        .route("/incidents/{incident}/timeline/{id}", post(update_entry))
        .route(
            "/incidents/{incident}/timeline/{id}/delete",
            post(delete_entry),
        )
}

#[derive(Debug, Clone, Deserialize)]
struct EntryForm {
    #[serde(default)]
    occurred_at: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    version: String,
}

impl EntryForm {
    fn view(&self) -> EntryFormView {
        EntryFormView {
            occurred_at: self.occurred_at.clone(),
            kind: self.kind.clone(),
            body: self.body.clone(),
            version: self.version.clone(),
        }
    }

    fn changes(&self, state: &TimelineState) -> Result<EntryChanges, AppError> {
        EntryChanges::parse(
            Some(&self.occurred_at),
            Some(&self.kind),
            Some(&self.body),
            state.tz,
        )
    }
}

async fn add_entry(
    State(state): State<TimelineState>,
    State(incidents): State<IncidentsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Form(form): Form<EntryForm>,
) -> AppResult<Response> {
    let result = match form.changes(&state) {
        Ok(changes) => super::add(&state.db, &page.user, &incident.id, &changes).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(entry) => Ok(redirect_with_flash(
            &format!("{}#entry-{}", incident.url(), entry.id),
            "ok",
            "Added to the timeline.",
        )),
        Err(AppError::Validation { fields, .. }) => {
            let show = ShowState {
                entry_form: Some(form.view()),
                errors: fields,
                ..ShowState::default()
            };
            let html = render_show(&incidents, page.chrome, incident, show).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e),
    }
}

/// Loads an entry and checks it belongs to the incident in the URL.
async fn load_entry(state: &TimelineState, incident: &Incident, id: &str) -> AppResult<Entry> {
    super::db::find(&state.db.reader, id)
        .await?
        .filter(|e| e.incident_id == incident.id)
        .ok_or_else(|| AppError::missing("timeline entry"))
}

#[derive(Template, WebTemplate)]
#[template(path = "timeline/conflict.html")]
struct ConflictPage {
    chrome: Chrome,
    incident: Incident,
    saved: Entry,
    saved_time: String,
    form: EntryFormView,
}

impl ConflictPage {
    fn kinds(&self) -> Vec<EntryKind> {
        EntryKind::editable_from(self.saved.kind.as_str())
    }
}

async fn update_entry(
    State(state): State<TimelineState>,
    State(incidents): State<IncidentsState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Path((_, id)): Path<(String, String)>,
    VersionedForm { version, form }: VersionedForm<EntryForm>,
) -> AppResult<Response> {
    let entry = load_entry(&state, &incident, &id).await?;
    let result = match form.changes(&state) {
        Ok(changes) => super::edit(&state.db, &entry, version, &changes).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(saved) => Ok(redirect_with_flash(
            &format!("{}#entry-{}", incident.url(), saved.id),
            "ok",
            "Timeline entry saved.",
        )),
        Err(AppError::Validation { fields, .. }) => {
            let show = ShowState {
                editing: Some((entry.id.clone(), Some(form.view()))),
                errors: fields,
                ..ShowState::default()
            };
            let html = render_show(&incidents, page.chrome, incident, show).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(AppError::Conflict { .. }) => {
            let saved = load_entry(&state, &incident, &id).await?;
            // Submitting from the conflict page applies the typed text on top of the version
            // the person has now seen.
            let mut mine = form.view();
            mine.version = saved.version.to_string();
            let html = ConflictPage {
                saved_time: page.chrome.time(&saved.occurred_at),
                chrome: page.chrome,
                incident,
                saved,
                form: mine,
            };
            Ok((StatusCode::CONFLICT, html).into_response())
        }
        Err(e) => Err(e),
    }
}

async fn delete_entry(
    State(state): State<TimelineState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Path((_, id)): Path<(String, String)>,
) -> AppResult<Response> {
    let entry = load_entry(&state, &incident, &id).await?;
    super::remove(&state.db, &page.user, &entry).await?;
    Ok(redirect_with_flash(
        &format!("{}#timeline", incident.url()),
        "ok",
        "Timeline entry deleted.",
    ))
}
