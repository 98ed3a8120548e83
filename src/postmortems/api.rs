//! JSON API for post-mortems: read, start, save with a version, move along the workflow, ask
//! reviewers and review, revisions, and the Markdown export.

use crate::web::extract::Path;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{Edit, PostmortemsState, RootCauseInput, db};
use crate::error::{AppError, AppResult};
use crate::incidents::Incident;
use crate::web::extract::{
    ApiCaller, ApiResponder, CallerState, IncidentInPath, Json, from_json_value, take_version,
};
use crate::writing::{self, People};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    PostmortemsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route(
            "/incidents/{incident}/postmortem",
            get(get_postmortem).put(save).post(start),
        )
        .route("/incidents/{incident}/postmortem/status", post(set_status))
        .route(
            "/incidents/{incident}/postmortem/reviewers",
            post(request_review),
        )
        .route("/incidents/{incident}/postmortem/review", post(review))
        .route("/incidents/{incident}/postmortem/revisions", get(revisions))
        .route(
            "/incidents/{incident}/postmortem/revisions/{version}",
            get(revision),
        )
        .route("/incidents/{incident}/postmortem.md", get(markdown))
        .route("/postmortem-templates", get(templates))
}

/// The post-mortem as the API shows it.
fn json(l: &super::Loaded) -> serde_json::Value {
    let sections: Vec<serde_json::Value> = l
        .content
        .sections
        .iter()
        .map(|s| {
            serde_json::json!({
                "key": s.key, "title": s.title, "help": s.help, "required": s.required,
                "markdown": s.body, "html": crate::markdown::render(&s.body),
            })
        })
        .collect();
    serde_json::json!({
        "id": l.pm.id,
        "status": l.pm.status,
        "version": l.pm.version,
        "template": l.pm.template_name,
        "author": l.pm.author_name,
        "created_at": l.pm.created_at,
        "updated_at": l.pm.updated_at,
        "published_at": l.pm.published_at,
        "detection_method": l.pm.detection_method,
        "no_action_items_reason": l.pm.no_action_items_reason,
        "sections": sections,
        "root_causes": l.content.root_causes,
        "reviewers": l.reviewers.iter().map(|r| serde_json::json!({
            "name": r.name, "email": r.email, "state": r.state, "comment": r.comment,
            "decided_at": r.decided_at,
        })).collect::<Vec<_>>(),
    })
}

async fn loaded(state: &PostmortemsState, incident: &Incident) -> AppResult<super::Loaded> {
    super::load(&state.db, &incident.id).await?.ok_or_else(|| {
        AppError::not_found(
            "post-mortem of",
            format_args!("{} (start one with POST or PUT)", incident.key()),
        )
    })
}

async fn get_postmortem(
    State(state): State<PostmortemsState>,
    caller: ApiCaller,
    IncidentInPath(incident): IncidentInPath,
) -> AppResult<Response> {
    caller.require_read()?;
    let pm = loaded(&state, &incident).await?;
    let people = super::writing_people(&state.db).await?;
    let mut body = json(&pm);
    body["findings"] = findings(&pm.content, &people);
    Ok(axum::Json(body).into_response())
}

/// The writing checks' findings in every section and root-cause description, as the page
/// lists them: `section` is the section key (or `root_causes`), secret excerpts are masked.
fn findings(content: &super::Content, people: &People) -> serde_json::Value {
    let sections = content.sections.iter().map(|s| (s.key.as_str(), &s.body));
    let causes = content
        .root_causes
        .iter()
        .map(|c| ("root_causes", &c.description));
    sections
        .chain(causes)
        .flat_map(|(section, text)| {
            writing::check(text, people).into_iter().map(move |f| {
                serde_json::json!({
                    "section": section, "kind": f.kind.as_str(), "message": f.message,
                    "line": f.line, "column": f.column, "excerpt": f.excerpt,
                })
            })
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default, deserialize_with = "crate::web::extract::not_null")]
    template: Option<String>,
}

async fn start(
    State(state): State<PostmortemsState>,
    ApiResponder(caller): ApiResponder,
    IncidentInPath(incident): IncidentInPath,
    Json(body): Json<StartBody>,
) -> AppResult<Response> {
    let existed = super::load(&state.db, &incident.id).await?.is_some();
    let pm = super::start(&state.db, &caller.user, &incident, body.template.as_deref()).await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(json(&pm))).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveBody {
    #[serde(default)]
    sections: std::collections::BTreeMap<String, String>,
    #[serde(default, deserialize_with = "crate::web::extract::not_null")]
    root_causes: Option<Vec<RootCauseInput>>,
    #[serde(default, deserialize_with = "crate::web::extract::not_null")]
    detection_method: Option<String>,
    #[serde(default, deserialize_with = "crate::web::extract::not_null")]
    no_action_items_reason: Option<String>,
    /// Only used when the PUT starts the post-mortem.
    #[serde(default, deserialize_with = "crate::web::extract::not_null")]
    template: Option<String>,
}

/// Saves sections (by key; others stay), root causes (all replaced when given) and the rest.
/// A PUT on an incident without a post-mortem starts one from `template` (or the default)
/// and applies the body to it.
async fn save(
    State(state): State<PostmortemsState>,
    ApiResponder(caller): ApiResponder,
    IncidentInPath(incident): IncidentInPath,
    Json(mut value): Json<serde_json::Value>,
) -> AppResult<Response> {
    let version = take_version(&mut value)?;
    let body: SaveBody = from_json_value(value)?;
    let version = match super::load(&state.db, &incident.id).await? {
        Some(_) => version,
        None => {
            super::start(&state.db, &caller.user, &incident, body.template.as_deref())
                .await?
                .pm
                .version
        }
    };
    let edit = Edit {
        sections: body.sections.into_iter().collect(),
        root_causes: body.root_causes,
        detection_method: body.detection_method,
        no_action_items_reason: body.no_action_items_reason,
    };
    let saved = super::save(&state.db, &caller.user, &incident, version, &edit)
        .await
        .map_err(|e| e.current_as(json))?;
    Ok(axum::Json(json(&saved)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
    #[serde(default)]
    comment: String,
    #[serde(default, deserialize_with = "crate::web::extract::not_null")]
    version: Option<i64>,
}

async fn set_status(
    State(state): State<PostmortemsState>,
    ApiResponder(caller): ApiResponder,
    IncidentInPath(incident): IncidentInPath,
    Json(body): Json<StatusBody>,
) -> AppResult<Response> {
    let to = super::parse_status(&body.status)?;
    let saved = super::set_status(
        &state.db,
        &caller.user,
        &incident,
        body.version,
        to,
        &body.comment,
    )
    .await
    .map_err(|e| e.current_as(json))?;
    Ok(axum::Json(json(&saved)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewersBody {
    reviewers: Vec<String>,
}

async fn request_review(
    State(state): State<PostmortemsState>,
    ApiResponder(caller): ApiResponder,
    IncidentInPath(incident): IncidentInPath,
    Json(body): Json<ReviewersBody>,
) -> AppResult<Response> {
    let saved = super::request_review(&state.db, &caller.user, &incident, &body.reviewers).await?;
    Ok(axum::Json(json(&saved)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    decision: String,
    #[serde(default)]
    comment: String,
}

async fn review(
    State(state): State<PostmortemsState>,
    ApiResponder(caller): ApiResponder,
    IncidentInPath(incident): IncidentInPath,
    Json(body): Json<ReviewBody>,
) -> AppResult<Response> {
    let approve = super::parse_decision(&body.decision)?;
    let saved = super::decide(&state.db, &caller.user, &incident, approve, &body.comment).await?;
    Ok(axum::Json(json(&saved)).into_response())
}

async fn revisions(
    State(state): State<PostmortemsState>,
    caller: ApiCaller,
    IncidentInPath(incident): IncidentInPath,
) -> AppResult<Response> {
    caller.require_read()?;
    let pm = loaded(&state, &incident).await?;
    let list = db::revisions(&state.db.reader, &pm.pm.id).await?;
    Ok(axum::Json(serde_json::json!({ "items": list, "total": list.len() })).into_response())
}

async fn revision(
    State(state): State<PostmortemsState>,
    caller: ApiCaller,
    IncidentInPath(incident): IncidentInPath,
    Path((_, version)): Path<(String, String)>,
) -> AppResult<Response> {
    caller.require_read()?;
    let pm = loaded(&state, &incident).await?;
    let version: i64 = version
        .parse()
        .map_err(|_| AppError::field("version", "must be a revision number"))?;
    let (info, content) = db::revision(&state.db.reader, &pm.pm.id, version)
        .await?
        .ok_or_else(|| AppError::not_found("revision", version))?;
    Ok(axum::Json(serde_json::json!({
        "version": info.version, "author": info.author_name, "created_at": info.created_at,
        "changed": info.changed, "content": content,
    }))
    .into_response())
}

async fn markdown(
    State(state): State<PostmortemsState>,
    caller: ApiCaller,
    IncidentInPath(incident): IncidentInPath,
) -> AppResult<Response> {
    caller.require_read()?;
    let body = super::export::document(&state.db, state.tz, &incident).await?;
    crate::incidents::access::record_export(&state.db, &caller.user, &incident, "postmortem.md")
        .await?;
    Ok(super::web::markdown_response(&incident, body))
}

async fn templates(
    State(state): State<PostmortemsState>,
    caller: ApiCaller,
) -> AppResult<Response> {
    caller.require_read()?;
    let mut out = Vec::new();
    for t in db::templates(&state.db.reader).await? {
        let sections = db::template_sections(&state.db.reader, &t.id).await?;
        let mut value = serde_json::to_value(&t).unwrap_or_default();
        value["sections"] = serde_json::json!(
            sections
                .iter()
                .map(|s| serde_json::json!({"key": s.key, "title": s.title, "help": s.help, "required": s.required}))
                .collect::<Vec<_>>()
        );
        out.push(value);
    }
    Ok(axum::Json(serde_json::json!({ "items": out, "total": out.len() })).into_response())
}
