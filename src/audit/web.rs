//! Admin › Audit (`/admin/audit`) and its CSV export (`/admin/audit.csv`), admins only.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{AuditQuery, AuditState, db};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::web::chrome::Chrome;
use crate::web::extract::{Admin, CallerState, Query};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AuditState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/admin/audit", get(show_audit))
        .route("/admin/audit.csv", get(export_csv))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html")]
struct AuditPageView {
    chrome: Chrome,
    q: AuditQuery,
    entries: Vec<db::Entry>,
    total: i64,
    page: u32,
    pages: u32,
    actions: Vec<String>,
    actors: Vec<(String, String)>,
    errors: FieldErrors,
    filter_query: String,
    tz: chrono_tz::Tz,
}

impl AuditPageView {
    fn page_url<P: std::borrow::Borrow<u32>>(&self, page: P) -> String {
        let page = *page.borrow();
        if self.filter_query.is_empty() {
            format!("/admin/audit?page={page}")
        } else {
            format!("/admin/audit?{}&page={page}", self.filter_query)
        }
    }

    fn csv_url(&self) -> String {
        if self.filter_query.is_empty() {
            "/admin/audit.csv".to_owned()
        } else {
            format!("/admin/audit.csv?{}", self.filter_query)
        }
    }

    fn time(&self, at: &chrono::DateTime<chrono::Utc>) -> String {
        crate::time::format_time(self.tz, *at)
    }
}

async fn show_audit(
    State(state): State<AuditState>,
    Admin(page): Admin,
    Query(q): Query<AuditQuery>,
) -> AppResult<Response> {
    let (actions, actors) = super::choices(&state).await?;
    let filter_query = q.filter_query();
    let mut view = AuditPageView {
        chrome: page.chrome,
        q: q.clone(),
        entries: Vec::new(),
        total: 0,
        page: 1,
        pages: 1,
        actions,
        actors,
        errors: FieldErrors::new(),
        filter_query,
        tz: state.tz,
    };
    match super::page(&state, &q).await {
        Ok(found) => {
            view.entries = found.entries;
            view.total = found.total;
            view.page = found.page;
            view.pages = found.pages;
            Ok(view.into_response())
        }
        // The form stays as typed, with what is wrong next to it.
        Err(AppError::Validation { fields, .. }) => {
            view.errors = fields;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, view).into_response())
        }
        Err(e) => Err(e),
    }
}

async fn export_csv(
    State(state): State<AuditState>,
    Admin(_page): Admin,
    Query(q): Query<AuditQuery>,
) -> AppResult<Response> {
    let entries = super::all(&state, &q).await?;
    Ok(crate::web::download::attachment(
        "text/csv; charset=utf-8",
        "audit.csv",
        super::to_csv(&entries),
    ))
}
