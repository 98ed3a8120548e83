//! The inbox over the API: `GET /api/v1/inbox[?unread=true]` → `{unread, items}`.

use axum::Router;
use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::InboxState;
use crate::error::{AppError, AppResult};
use crate::web::extract::{ApiCaller, ApiQuery, CallerState};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    InboxState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new().route("/inbox", get(list))
}

#[derive(Debug, Default, Deserialize)]
struct InboxQuery {
    unread: Option<String>,
}

async fn list(
    State(state): State<InboxState>,
    caller: ApiCaller,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> AppResult<Response> {
    caller.require_read()?;
    let unread_only = match q.unread.as_deref().map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        _ => return Err(AppError::field("unread", "must be true or false")),
    };
    let (messages, unread) = super::messages(&state.db, &caller.user, unread_only).await?;
    let items: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "id": m.id,
                "kind": m.kind,
                "actor": m.actor_name,
                "incident": format!("INC-{}", m.incident_number),
                "incident_title": m.incident_title,
                "text": m.text,
                "url": m.link(),
                "created_at": m.created_at,
                "read_at": m.read_at,
            })
        })
        .collect();
    Ok(axum::Json(serde_json::json!({"unread": unread, "items": items})).into_response())
}
