//! The audit log over the API: `GET /api/v1/audit?actor=&action=&from=&to=&page=` (an admin's
//! read or write token) → `{total, page, pages, per_page, items}`, newest first.

use axum::Router;
use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{AuditQuery, AuditState, PER_PAGE};
use crate::auth::Role;
use crate::error::AppResult;
use crate::web::extract::{ApiCaller, ApiQuery, CallerState};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AuditState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new().route("/audit", get(list))
}

async fn list(
    State(state): State<AuditState>,
    caller: ApiCaller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> AppResult<Response> {
    // Reading the log needs a read (or write) token of an admin.
    caller.require_read()?;
    caller.user.require(Role::Admin)?;
    let found = super::page(&state, &q).await?;
    let items: Vec<serde_json::Value> = found
        .entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id,
                "at": e.at,
                "actor_email": e.actor_email,
                "actor_name": e.actor_name,
                "action": e.action,
                "target": e.target,
                "detail": e.detail,
            })
        })
        .collect();
    Ok(axum::Json(serde_json::json!({
        "total": found.total,
        "page": found.page,
        "pages": found.pages,
        "per_page": PER_PAGE,
        "items": items,
    }))
    .into_response())
}
