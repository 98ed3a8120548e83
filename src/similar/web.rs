//! Pages for similar incidents and links: the suggestions fragment the declare form asks for
//! while someone types, and the link forms on the incident page.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{LinkKind, SimilarRequest, SimilarState};
use crate::error::{AppError, AppResult};
use crate::visibility::Viewer;
use crate::web::chrome::redirect_with_flash;
use crate::web::extract::{CallerState, Form, IncidentInPath, Page, Path, Query, Responder};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    SimilarState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/incidents/similar", get(suggestions))
        .route("/incidents/{incident}/links", post(add_link))
        .route("/incidents/{incident}/links/{id}/delete", post(remove_link))
}

/// The suggestions list, as the declare form shows it (also inside the incident pages).
#[derive(Template, WebTemplate)]
#[template(path = "similar/_suggestions.html")]
pub struct SuggestionsFragment {
    pub similar: Vec<super::db::Suggestion>,
    /// The title had words to match on (otherwise nothing is said).
    pub asked: bool,
}

#[derive(Debug, Default, Deserialize)]
struct SuggestParams {
    #[serde(default)]
    title: String,
    #[serde(default)]
    service: String,
}

/// `GET /incidents/similar?title=…&service=…`: the list the declare form's script puts in
/// its live region. A title too short to match on answers an empty fragment, not an error,
/// since the script asks while people type.
async fn suggestions(
    State(state): State<SimilarState>,
    page: Page,
    Query(params): Query<SuggestParams>,
) -> AppResult<Response> {
    let similar = match SimilarRequest::parse(Some(&params.title), Some(&params.service), None) {
        Ok(req) => super::suggest(&state.db, &req, &Viewer::user(&page.user.id)).await?,
        Err(AppError::Validation { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(SuggestionsFragment {
        asked: super::similar_query(&params.title).is_some(),
        similar,
    }
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
struct LinkForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    incident: String,
}

async fn add_link(
    State(state): State<SimilarState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Form(form): Form<LinkForm>,
) -> AppResult<Response> {
    let back = format!("{}#related", incident.url());
    let from = super::db::IncidentRef {
        id: incident.id.clone(),
        number: incident.number,
        restricted: incident.restricted,
    };
    let result = match LinkKind::parse_or_refuse(&form.kind) {
        Ok(kind) => super::link(&state.db, &page.user, &from, &form.incident, kind).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(link) => Ok(redirect_with_flash(
            &back,
            "ok",
            &format!(
                "{} is now {} INC-{}.",
                incident.key(),
                link.label(),
                link.other_number
            ),
        )),
        Err(e @ (AppError::Validation { .. } | AppError::AlreadyExists(_))) => Ok(
            redirect_with_flash(&back, "error", &format!("Not linked: {e}.")),
        ),
        Err(e) => Err(e),
    }
}

async fn remove_link(
    State(state): State<SimilarState>,
    Responder(page): Responder,
    IncidentInPath(incident): IncidentInPath,
    Path((_, id)): Path<(String, String)>,
) -> AppResult<Response> {
    let on = super::db::IncidentRef {
        id: incident.id.clone(),
        number: incident.number,
        restricted: incident.restricted,
    };
    super::unlink(&state.db, &page.user, &on, &id).await?;
    Ok(redirect_with_flash(
        &format!("{}#related", incident.url()),
        "ok",
        "Link removed.",
    ))
}
