//! Admin pages for the service and category lists: add, rename, delete when unused.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::db::{self, ListKind};
use super::{Category, Service, parse_name, parse_team};
use crate::app::AppState;
use crate::auth::Role;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::web::chrome::{Chrome, redirect_with_flash};
use crate::web::extract::{Form, Page};

pub fn router() -> Router<AppState> {
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
    state: &AppState,
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

async fn show(state: &AppState, page: Page, kind: ListKind) -> AppResult<Response> {
    page.require(Role::Admin)?;
    Ok(
        catalog_page(state, page.chrome, kind, None, FieldErrors::new())
            .await?
            .into_response(),
    )
}

async fn list_services(State(state): State<AppState>, page: Page) -> AppResult<Response> {
    show(&state, page, ListKind::Service).await
}

async fn list_categories(State(state): State<AppState>, page: Page) -> AppResult<Response> {
    show(&state, page, ListKind::Category).await
}

/// Validates and applies an add or rename; invalid input re-renders the page with the message.
async fn save(
    state: &AppState,
    page: Page,
    kind: ListKind,
    old_name: Option<String>,
    form: EntryForm,
) -> AppResult<Response> {
    page.require(Role::Admin)?;
    let result = async {
        let name = parse_name("name", &form.name)?;
        let team = parse_team(&form.team)?;
        let mut tx = state.db.begin_write().await?;
        match (&old_name, kind) {
            (None, ListKind::Service) => db::insert_service(&mut tx, &name, &team).await?,
            (None, ListKind::Category) => db::insert_category(&mut tx, &name).await?,
            (Some(old), ListKind::Service) => {
                if !db::update_service(&mut tx, old, &name, &team).await? {
                    return Err(AppError::not_found("service", old));
                }
            }
            (Some(old), ListKind::Category) => {
                if !db::rename_category(&mut tx, old, &name).await? {
                    return Err(AppError::not_found("category", old));
                }
            }
        }
        let action = if old_name.is_some() {
            "update"
        } else {
            "create"
        };
        crate::auth::db::audit(
            &mut tx,
            Some(&page.user.id),
            &format!("{}.{action}", kind.label()),
            &name,
            old_name.as_deref().unwrap_or(""),
        )
        .await?;
        tx.commit().await?;
        state.catalog.clear();
        Ok(name)
    }
    .await;
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
    State(state): State<AppState>,
    page: Page,
    Form(form): Form<EntryForm>,
) -> AppResult<Response> {
    save(&state, page, ListKind::Service, None, form).await
}

async fn create_category(
    State(state): State<AppState>,
    page: Page,
    Form(form): Form<EntryForm>,
) -> AppResult<Response> {
    save(&state, page, ListKind::Category, None, form).await
}

async fn update_service(
    State(state): State<AppState>,
    page: Page,
    Path(name): Path<String>,
    Form(form): Form<EntryForm>,
) -> AppResult<Response> {
    save(&state, page, ListKind::Service, Some(name), form).await
}

async fn rename_category(
    State(state): State<AppState>,
    page: Page,
    Path(name): Path<String>,
    Form(form): Form<EntryForm>,
) -> AppResult<Response> {
    save(&state, page, ListKind::Category, Some(name), form).await
}

async fn delete(state: &AppState, page: Page, kind: ListKind, name: &str) -> AppResult<Response> {
    page.require(Role::Admin)?;
    let mut tx = state.db.begin_write().await?;
    let list_url = match kind {
        ListKind::Service => "/admin/services",
        ListKind::Category => "/admin/categories",
    };
    match db::delete_unused(&mut tx, kind, name).await {
        Ok(()) => {}
        Err(AppError::Validation { message, .. }) => {
            return Ok(redirect_with_flash(list_url, "error", &message));
        }
        Err(e) => return Err(e),
    }
    crate::auth::db::audit(
        &mut tx,
        Some(&page.user.id),
        &format!("{}.delete", kind.label()),
        name,
        "",
    )
    .await?;
    tx.commit().await?;
    state.catalog.clear();
    Ok(redirect_with_flash(
        list_url,
        "ok",
        &format!("Deleted {} {name}.", kind.label()),
    ))
}

async fn delete_service(
    State(state): State<AppState>,
    page: Page,
    Path(name): Path<String>,
) -> AppResult<Response> {
    delete(&state, page, ListKind::Service, &name).await
}

async fn delete_category(
    State(state): State<AppState>,
    page: Page,
    Path(name): Path<String>,
) -> AppResult<Response> {
    delete(&state, page, ListKind::Category, &name).await
}
