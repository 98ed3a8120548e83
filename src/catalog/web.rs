//! Admin pages for the service and category lists: add, rename, delete when unused.

use crate::web::extract::Path;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{CatalogState, Category, ListKind, Service, db};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::web::chrome::{Chrome, redirect_with_flash};
use crate::web::extract::{Admin, CallerState, Form, Page};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    CatalogState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/admin/services", get(list_services).post(create_service))
        .route("/admin/services/{name}", post(update_service))
        .route("/admin/services/{name}/delete", post(delete_service))
        .route(
            "/admin/categories",
            get(list_categories).post(create_category),
        )
        .route("/admin/categories/{name}", post(rename_category))
        .route("/admin/categories/{name}/delete", post(delete_category))
}

/// One row of either list, as the shared template shows it.
struct Entry {
    name: String,
    team: String,
    incidents: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/catalog.html")]
struct CatalogPage {
    chrome: Chrome,
    /// `services` or `categories`: the URL segment and the heading.
    list: &'static str,
    has_team: bool,
    entries: Vec<Entry>,
    form_name: String,
    form_team: String,
    errors: FieldErrors,
}

async fn catalog_page(
    state: &CatalogState,
    chrome: Chrome,
    kind: ListKind,
    form: Option<&EntryForm>,
    errors: FieldErrors,
) -> AppResult<CatalogPage> {
    let entries = match kind {
        ListKind::Service => db::list_services_with_usage(&state.db.reader)
            .await?
            .into_iter()
            .map(
                |Service {
                     name,
                     team,
                     incidents,
                 }| Entry {
                    name,
                    team,
                    incidents,
                },
            )
            .collect(),
        ListKind::Category => db::list_categories_with_usage(&state.db.reader)
            .await?
            .into_iter()
            .map(|Category { name, incidents }| Entry {
                name,
                team: String::new(),
                incidents,
            })
            .collect(),
    };
    Ok(CatalogPage {
        chrome,
        list: match kind {
            ListKind::Service => "services",
            ListKind::Category => "categories",
        },
        has_team: kind == ListKind::Service,
        entries,
        form_name: form.map(|f| f.name.clone()).unwrap_or_default(),
        form_team: form.map(|f| f.team.clone()).unwrap_or_default(),
        errors,
    })
}

#[derive(Debug, Deserialize)]
struct EntryForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    team: String,
}

async fn show(state: &CatalogState, page: Page, kind: ListKind) -> AppResult<Response> {
    Ok(
        catalog_page(state, page.chrome, kind, None, FieldErrors::new())
            .await?
            .into_response(),
    )
}

async fn list_services(
    State(state): State<CatalogState>,
    Admin(page): Admin,
) -> AppResult<Response> {
    show(&state, page, ListKind::Service).await
}

async fn list_categories(
    State(state): State<CatalogState>,
    Admin(page): Admin,
) -> AppResult<Response> {
    show(&state, page, ListKind::Category).await
}

/// Validates and applies an add or rename; invalid input re-renders the page with the message.
async fn save(
    state: &CatalogState,
    page: Page,
    kind: ListKind,
    old_name: Option<String>,
    form: EntryForm,
) -> AppResult<Response> {
    let result = super::save(
        state,
        &page.user,
        kind,
        old_name.as_deref(),
        &form.name,
        &form.team,
    )
    .await
    .map(|(name, _)| name);
    let list_url = match kind {
        ListKind::Service => "/admin/services",
        ListKind::Category => "/admin/categories",
    };
    match result {
        Ok(name) => Ok(redirect_with_flash(
            list_url,
            "ok",
            &format!("Saved {} {name}.", kind.label()),
        )),
        Err(AppError::Validation { fields, .. }) => {
            let html = catalog_page(state, page.chrome, kind, Some(&form), fields).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(AppError::AlreadyExists(message)) => {
            let mut fields = FieldErrors::new();
            fields.insert("name".into(), message);
            let html = catalog_page(state, page.chrome, kind, Some(&form), fields).await?;
            Ok((StatusCode::CONFLICT, html).into_response())
        }
        Err(e) => Err(e),
    }
}

async fn create_service(
    State(state): State<CatalogState>,
    Admin(page): Admin,
    Form(form): Form<EntryForm>,
) -> AppResult<Response> {
    save(&state, page, ListKind::Service, None, form).await
}

async fn create_category(
    State(state): State<CatalogState>,
    Admin(page): Admin,
    Form(form): Form<EntryForm>,
) -> AppResult<Response> {
    save(&state, page, ListKind::Category, None, form).await
}

async fn update_service(
    State(state): State<CatalogState>,
    Admin(page): Admin,
    Path(name): Path<String>,
    Form(form): Form<EntryForm>,
) -> AppResult<Response> {
    save(&state, page, ListKind::Service, Some(name), form).await
}

async fn rename_category(
    State(state): State<CatalogState>,
    Admin(page): Admin,
    Path(name): Path<String>,
    Form(form): Form<EntryForm>,
) -> AppResult<Response> {
    save(&state, page, ListKind::Category, Some(name), form).await
}

async fn delete(
    state: &CatalogState,
    page: Page,
    kind: ListKind,
    name: &str,
) -> AppResult<Response> {
    let list_url = match kind {
        ListKind::Service => "/admin/services",
        ListKind::Category => "/admin/categories",
    };
    match super::delete(state, &page.user, kind, name).await {
        Ok(()) => {}
        Err(AppError::Validation { message, .. }) => {
            return Ok(redirect_with_flash(list_url, "error", &message));
        }
        Err(e) => return Err(e),
    }
    Ok(redirect_with_flash(
        list_url,
        "ok",
        &format!("Deleted {} {name}.", kind.label()),
    ))
}

async fn delete_service(
    State(state): State<CatalogState>,
    Admin(page): Admin,
    Path(name): Path<String>,
) -> AppResult<Response> {
    delete(&state, page, ListKind::Service, &name).await
}

async fn delete_category(
    State(state): State<CatalogState>,
    Admin(page): Admin,
    Path(name): Path<String>,
) -> AppResult<Response> {
    delete(&state, page, ListKind::Category, &name).await
}
