//! JSON API for incidents: create, list, get (with its timeline), patch with a version.

use crate::web::extract::ApiQuery;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Incident, IncidentInput, IncidentsState, ListParams, Severity, Status};
use crate::error::{AppError, AppResult};
use crate::web::extract::{
    ApiCaller, ApiResponder, CallerState, IncidentInPath, Json, from_json_value, take_version,
};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    IncidentsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/incidents", get(list_incidents).post(create_incident))
        .route(
            "/incidents/{incident}",
            get(get_incident).patch(update_incident),
        )
}

/// An incident as the API shows it.
#[derive(Debug, Serialize)]
pub struct IncidentJson {
    pub id: String,
    /// `INC-42`.
    pub number: String,
    pub title: String,
    pub summary: String,
    pub customer_impact: String,
    pub severity: Severity,
    pub status: Status,
    pub service: String,
    pub category: String,
    pub team: String,
    pub commander: Option<PersonJson>,
    pub started_at: DateTime<Utc>,
    pub detected_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub mitigated_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub exclude_from_metrics: bool,
    pub version: i64,
    pub created_by: Option<PersonJson>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub url: String,
    /// Only admins, the commander and the participants may see it.
    pub restricted: bool,
    /// The e-mail addresses of the people added to it by name (the commander is not listed
    /// here unless added too).
    pub participants: Vec<String>,
}

impl IncidentJson {
    /// With its participants read from the database.
    async fn with_participants(mut self, state: &IncidentsState) -> AppResult<Self> {
        self.participants = super::db::participants(&state.db.reader, &self.id)
            .await?
            .into_iter()
            .map(|p| p.email)
            .collect();
        Ok(self)
    }
}

#[derive(Debug, Serialize)]
pub struct PersonJson {
    pub id: String,
    pub name: String,
}

fn person(id: &Option<String>, name: &Option<String>) -> Option<PersonJson> {
    match (id, name) {
        (Some(id), Some(name)) => Some(PersonJson {
            id: id.clone(),
            name: name.clone(),
        }),
        _ => None,
    }
}

impl From<&Incident> for IncidentJson {
    fn from(i: &Incident) -> Self {
        Self {
            id: i.id.clone(),
            number: i.key(),
            title: i.title.clone(),
            summary: i.summary.clone(),
            customer_impact: i.customer_impact.clone(),
            severity: i.severity,
            status: i.status,
            service: i.service.clone(),
            category: i.category.clone(),
            team: i.team.clone(),
            commander: person(&i.commander_id, &i.commander_name),
            started_at: i.started_at,
            detected_at: i.detected_at,
            acknowledged_at: i.acknowledged_at,
            mitigated_at: i.mitigated_at,
            resolved_at: i.resolved_at,
            closed_at: i.closed_at,
            exclude_from_metrics: i.exclude_from_metrics,
            version: i.version,
            created_by: person(&i.created_by, &i.created_by_name),
            created_at: i.created_at,
            updated_at: i.updated_at,
            url: i.url(),
            restricted: i.restricted,
            participants: Vec::new(),
        }
    }
}

async fn create_incident(
    State(state): State<IncidentsState>,
    ApiResponder(caller): ApiResponder,
    Json(body): Json<IncidentInput>,
) -> AppResult<Response> {
    // API times carry their own offset; one without is read as UTC.
    let (changes, errors) = body.parse(chrono_tz::Tz::UTC);
    let incident =
        super::declare_by(&state.db, &state.signals, &caller.user, &changes, errors).await?;
    Ok((
        StatusCode::CREATED,
        [(
            axum::http::header::LOCATION,
            format!("/api/v1/incidents/{}", incident.key()),
        )],
        axum::Json(
            IncidentJson::from(&incident)
                .with_participants(&state)
                .await?,
        ),
    )
        .into_response())
}

async fn list_incidents(
    State(state): State<IncidentsState>,
    caller: ApiCaller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> AppResult<Response> {
    caller.require_read()?;
    let (mut filter, sort) = params.parse(chrono_tz::Tz::UTC).map_err(AppError::fields)?;
    filter.rule = state.rule;
    let page = parse_bounded(&params.page, "page", 1, 1, 1_000_000)?;
    let per_page = parse_bounded(&params.per_page, "per_page", 50, 1, 200)?;
    let viewer = crate::visibility::Viewer::user(&caller.user.id);
    let result = super::list_cached(
        &state.db,
        &state.lists,
        &viewer,
        &filter,
        sort,
        page,
        per_page,
    )
    .await?;
    let (rows, total) = (&result.0, result.1);
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "number": format!("INC-{}", r.number),
                "title": r.title,
                "severity": r.severity,
                "status": r.status,
                "service": r.service,
                "category": r.category,
                "team": r.team,
                "started_at": r.started_at,
                "resolved_at": r.resolved_at,
                "updated_at": r.updated_at,
                "recurring": r.recurring,
                "restricted": r.restricted,
                "url": format!("/incidents/INC-{}", r.number),
            })
        })
        .collect();
    Ok(axum::Json(serde_json::json!({
        "items": items, "total": total, "page": page, "per_page": per_page
    }))
    .into_response())
}

fn parse_bounded(raw: &str, field: &str, default: u32, min: u32, max: u32) -> AppResult<u32> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(default);
    }
    match raw.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(AppError::field(
            field,
            format!("must be a whole number from {min} to {max}"),
        )),
    }
}

async fn get_incident(
    State(state): State<IncidentsState>,
    caller: ApiCaller,
    IncidentInPath(incident): IncidentInPath,
) -> AppResult<Response> {
    caller.require_read()?;
    let timeline = crate::timeline::db::list_for_incident(&state.db.reader, &incident.id).await?;
    let mut body = serde_json::to_value(
        IncidentJson::from(&incident)
            .with_participants(&state)
            .await?,
    )
    .map_err(|e| AppError::Internal(e.to_string()))?;
    body["timeline"] =
        serde_json::to_value(timeline).map_err(|e| AppError::Internal(e.to_string()))?;
    let snapshots = crate::signals::db::list_for_incident(&state.db.reader, &incident.id).await?;
    body["snapshots"] = snapshots
        .iter()
        .map(crate::signals::api::snapshot_json)
        .collect();
    let items = crate::action_items::db::list_for_incident(&state.db.reader, &incident.id).await?;
    body["action_items"] =
        serde_json::to_value(items).map_err(|e| AppError::Internal(e.to_string()))?;
    body["postmortem"] =
        match crate::postmortems::db::summary(&state.db.reader, &incident.id).await? {
            Some((status, written, sections)) => serde_json::json!({
                "status": status, "sections_written": written, "sections": sections,
                "url": format!("{}/postmortem", incident.url()),
            }),
            None => serde_json::Value::Null,
        };
    let recurrence = state
        .recurrence
        .of(&state.db, &incident.id, incident.started_at)
        .await?;
    body["recurrence"] =
        serde_json::to_value(&*recurrence).map_err(|e| AppError::Internal(e.to_string()))?;
    let viewer = crate::visibility::Viewer::user(&caller.user.id);
    let links = crate::similar::db::links_of(&state.db.reader, &incident.id, &viewer).await?;
    body["links"] = links.iter().map(crate::similar::api::link_json).collect();
    Ok(axum::Json(body).into_response())
}

async fn update_incident(
    State(state): State<IncidentsState>,
    ApiResponder(caller): ApiResponder,
    IncidentInPath(incident): IncidentInPath,
    Json(mut body): Json<serde_json::Value>,
) -> AppResult<Response> {
    let version = take_version(&mut body)?;
    let object = body
        .as_object_mut()
        .ok_or_else(|| AppError::field("body", "must be a JSON object"))?;
    let note = match object.remove("note") {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s,
        Some(_) => return Err(AppError::field("note", "must be a string")),
    };
    let input: IncidentInput = from_json_value(body)?;
    let (changes, errors) = input.parse(chrono_tz::Tz::UTC);
    let updated = super::update(
        &state.db,
        super::Actor::Person(&caller.user),
        &incident,
        version,
        &changes,
        errors,
        &note,
    )
    .await
    .map_err(|e| e.current_as(|now: &Incident| IncidentJson::from(now)))?;
    Ok(axum::Json(
        IncidentJson::from(&updated)
            .with_participants(&state)
            .await?,
    )
    .into_response())
}
