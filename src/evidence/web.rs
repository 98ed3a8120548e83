//! Evidence pages: the import form (Slack export files or zip, pasted text, CSV), the
//! messages of an incident with a search box, and the Promote forms.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{EvidenceState, Marker, Source, Upload};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::incidents::Incident;
use crate::web::chrome::{Chrome, redirect_with_flash};
use crate::web::extract::{CallerState, Form, IncidentInPath, Page, Path, Query, Responder};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    EvidenceState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/incidents/{incident}/evidence", get(show).post(import))
        .route("/incidents/{incident}/evidence/{id}/promote", post(promote))
}

/// The import form's values, kept when an import is refused.
#[derive(Debug, Clone, Default)]
pub struct ImportForm {
    pub source: String,
    pub day: String,
    pub until: String,
    pub text: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "evidence/show.html")]
struct EvidencePage {
    chrome: Chrome,
    incident: Incident,
    messages: Vec<super::db::Message>,
    query: String,
    form: ImportForm,
    errors: FieldErrors,
}

impl EvidencePage {
    fn markers(&self) -> [Marker; 5] {
        Marker::ALL
    }
    fn html(&self, text: &str) -> String {
        crate::markdown::render(text)
    }
}

#[derive(Debug, Default, Deserialize)]
struct ShowQuery {
    #[serde(default)]
    q: String,
}

async fn render(
    state: &EvidenceState,
    chrome: Chrome,
    incident: Incident,
    query: String,
    form: ImportForm,
    errors: FieldErrors,
) -> AppResult<EvidencePage> {
    let q = Some(query.as_str()).filter(|q| !q.trim().is_empty());
    let messages = super::db::list(&state.db.reader, &incident.id, q).await?;
    Ok(EvidencePage {
        chrome,
        incident,
        messages,
        query,
        form,
        errors,
    })
}

async fn show(
    State(state): State<EvidenceState>,
    page: Page,
    IncidentInPath(incident): IncidentInPath,
    Query(q): Query<ShowQuery>,
) -> AppResult<Response> {
    let form = ImportForm {
        source: "slack".into(),
        ..ImportForm::default()
    };
    Ok(
        render(&state, page.chrome, incident, q.q, form, FieldErrors::new())
            .await?
            .into_response(),
    )
}

/// Reads the multipart form: files, pasted text and the fields beside them.
async fn read_form(mut multipart: Multipart) -> AppResult<(ImportForm, Vec<Upload>)> {
    let mut form = ImportForm::default();
    let mut uploads = Vec::new();
    let bad = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge
        } else {
            AppError::BadRequest(format!("the upload could not be read: {}", e.body_text()))
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "files" => {
                let file_name = field.file_name().unwrap_or("upload").to_owned();
                let bytes = field.bytes().await.map_err(bad)?;
                if !bytes.is_empty() {
                    uploads.push(Upload {
                        name: file_name,
                        bytes: bytes.to_vec(),
                    });
                }
            }
            "source" | "day" | "until" | "text" => {
                let value = field.text().await.map_err(bad)?;
                match name.as_str() {
                    "source" => form.source = value,
                    "day" => form.day = value,
                    "until" => form.until = value,
                    _ => form.text = value,
                }
            }
            _ => {}
        }
    }
    Ok((form, uploads))
}

/// Checks the form's fields and reads its messages (nothing stored).
fn parse(
    form: &ImportForm,
    mut uploads: Vec<Upload>,
    tz: chrono_tz::Tz,
) -> AppResult<(Source, Vec<super::ChatMessage>)> {
    let mut errors = FieldErrors::new();
    let source = Source::parse_field(&form.source, &mut errors);
    let mut date = |field: &str, raw: &str| match crate::time::parse_date(raw) {
        Ok(d) => d,
        Err(e) => {
            errors.insert(field.into(), e);
            None
        }
    };
    let day = date("day", &form.day);
    let until = date("until", &form.until);
    if let (Some(a), Some(b)) = (day, until)
        && b < a
    {
        errors.insert("until".into(), "must not be before the first day".into());
    }
    let Some(source) = source.filter(|_| errors.is_empty()) else {
        return Err(AppError::fields(errors));
    };
    if !form.text.trim().is_empty() {
        uploads.push(Upload {
            name: "pasted text".into(),
            bytes: form.text.clone().into_bytes(),
        });
    }
    if uploads.is_empty() {
        return Err(AppError::field(
            "file",
            "choose the export's files (or its zip), or paste the conversation",
        ));
    }
    let messages = super::read(source, uploads, day, until, tz)?;
    Ok((source, messages))
}

async fn import(
    State(state): State<EvidenceState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    multipart: Multipart,
) -> AppResult<Response> {
    let (form, uploads) = read_form(multipart).await?;
    let result = match parse(&form, uploads, state.tz) {
        Ok((source, messages)) => {
            super::import(&state.db, &page.user, &incident.id, source, messages).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(outcome) => {
            let masked = super::mask::describe(&outcome.masked);
            let mut message = format!(
                "Imported {} message{} ({} already there).",
                outcome.added,
                if outcome.added == 1 { "" } else { "s" },
                outcome.skipped
            );
            if !masked.is_empty() {
                message.push_str(&format!(
                    " Masked before saving: {masked}. Check that nothing else sensitive is left."
                ));
            }
            let kind = if masked.is_empty() { "ok" } else { "warn" };
            Ok(redirect_with_flash(
                &format!("{}/evidence", incident.url()),
                kind,
                &message,
            ))
        }
        Err(AppError::Validation { fields, .. }) => {
            let html = render(&state, page.chrome, incident, String::new(), form, fields).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct PromoteForm {
    #[serde(default)]
    marker: String,
    /// Where to go back to: the incident page or the evidence page.
    #[serde(default)]
    back: String,
}

async fn promote(
    State(state): State<EvidenceState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Path((_, id)): Path<(String, String)>,
    Form(form): Form<PromoteForm>,
) -> AppResult<Response> {
    let back = if form.back == "evidence" {
        format!("{}/evidence#msg-{id}", incident.url())
    } else {
        format!("{}#evidence", incident.url())
    };
    let marker = Marker::parse_or_refuse(&form.marker)?;
    match super::promote(
        &state.db,
        &page.user,
        &incident.id,
        incident.number,
        &id,
        marker,
    )
    .await
    {
        Ok(entry) => Ok(redirect_with_flash(
            &format!("{}#entry-{entry}", incident.url()),
            "ok",
            &format!("Added to the timeline as {}.", marker.label()),
        )),
        Err(AppError::AlreadyExists(msg)) => Ok(redirect_with_flash(&back, "error", &msg)),
        Err(e) => Err(e),
    }
}
