//! Admin pages for post-mortem templates: list, add, edit (sections added, removed and
//! reordered; the default template and defaults per severity) and delete. Post-mortems already
//! started keep the sections they were started with.

use crate::web::extract::Path;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::templates::{self, SectionRow, TemplateInput};
use super::{PostmortemsState, db};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::incidents::Severity;
use crate::web::chrome::{Chrome, redirect_with_flash};
use crate::web::extract::{Admin, CallerState, Form, Page};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    PostmortemsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/admin/templates", get(list).post(create))
        .route("/admin/templates/new", get(new_template))
        .route("/admin/templates/{id}", get(edit).post(update))
        .route("/admin/templates/{id}/delete", post(delete))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/templates.html")]
struct ListPage {
    chrome: Chrome,
    templates: Vec<db::Template>,
}

async fn list(State(state): State<PostmortemsState>, Admin(page): Admin) -> AppResult<Response> {
    Ok(ListPage {
        chrome: page.chrome,
        templates: db::templates(&state.db.reader).await?,
    }
    .into_response())
}

/// The template form as typed.
#[derive(Debug, Clone, Default)]
struct TemplateForm {
    name: String,
    description: String,
    is_default: bool,
    default_for: Vec<String>,
    version: String,
    rows: Vec<SectionRow>,
}

impl TemplateForm {
    /// Rows arrive as `key.N`, `title.N`, `help.N`, `required.N`, `position.N`, `remove.N`.
    fn parse(pairs: Vec<(String, String)>) -> Self {
        let mut f = Self::default();
        let mut rows: std::collections::BTreeMap<usize, SectionRow> = Default::default();
        for (name, value) in pairs {
            match name.as_str() {
                "name" => f.name = value,
                "description" => f.description = value,
                "is_default" => f.is_default = true,
                "default_for" => f.default_for.push(value),
                "version" => f.version = value,
                other => {
                    let Some((field, index)) = other.split_once('.') else {
                        continue;
                    };
                    let Ok(index) = index.parse::<usize>() else {
                        continue;
                    };
                    if index >= 100 {
                        continue;
                    }
                    let row = rows.entry(index).or_default();
                    match field {
                        "key" => row.key = value,
                        "title" => row.title = value,
                        "help" => row.help = value,
                        "required" => row.required = true,
                        "position" => row.position = value,
                        "remove" => row.remove = true,
                        _ => {}
                    }
                }
            }
        }
        f.rows = rows.into_values().collect();
        f
    }

    fn from_stored(t: &db::Template, sections: &[super::Section]) -> Self {
        Self {
            name: t.name.clone(),
            description: t.description.clone(),
            is_default: t.is_default,
            default_for: t
                .default_for
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            version: t.version.to_string(),
            rows: sections
                .iter()
                .enumerate()
                .map(|(i, s)| SectionRow {
                    key: s.key.clone(),
                    title: s.title.clone(),
                    help: s.help.clone(),
                    required: s.required,
                    position: (i + 1).to_string(),
                    remove: false,
                })
                .collect(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/template_form.html")]
struct FormPage {
    chrome: Chrome,
    /// The template being edited (none when adding).
    id: Option<String>,
    used_by: i64,
    form: TemplateForm,
    rows: Vec<(usize, SectionRow)>,
    errors: FieldErrors,
    stale: bool,
}

impl FormPage {
    fn severities(&self) -> [Severity; 4] {
        Severity::ALL
    }
    fn defaults_to(&self, s: &Severity) -> bool {
        self.form.default_for.iter().any(|d| d == s.as_str())
    }
    fn error(&self, row: &usize, field: &str) -> Option<String> {
        self.errors
            .get(&format!("sections[{row}].{field}"))
            .cloned()
    }
}

fn form_page(
    chrome: Chrome,
    id: Option<String>,
    used_by: i64,
    form: TemplateForm,
    errors: FieldErrors,
    stale: bool,
) -> FormPage {
    // The rows typed so far, under the numbers their errors are named by, then three empty
    // ones to add sections without JavaScript (empty ones sent back are not shown again).
    let mut rows: Vec<(usize, SectionRow)> = form
        .rows
        .iter()
        .cloned()
        .enumerate()
        .filter(|(_, row)| !row.is_blank())
        .collect();
    let (next, shown) = (form.rows.len(), rows.len());
    for k in 0..3 {
        rows.push((
            next + k,
            SectionRow {
                position: (shown + k + 1).to_string(),
                ..SectionRow::default()
            },
        ));
    }
    FormPage {
        chrome,
        id,
        used_by,
        form,
        rows,
        errors,
        stale,
    }
}

async fn new_template(Admin(page): Admin) -> AppResult<Response> {
    Ok(form_page(
        page.chrome,
        None,
        0,
        TemplateForm::default(),
        FieldErrors::new(),
        false,
    )
    .into_response())
}

async fn create(
    State(state): State<PostmortemsState>,
    Admin(page): Admin,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let form = TemplateForm::parse(pairs);
    save(&state, page, None, form).await
}

async fn edit(
    State(state): State<PostmortemsState>,
    Admin(page): Admin,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let t = db::template(&state.db.reader, &id)
        .await?
        .ok_or_else(|| AppError::missing("template"))?;
    let sections = db::template_sections(&state.db.reader, &id).await?;
    let form = TemplateForm::from_stored(&t, &sections);
    Ok(form_page(
        page.chrome,
        Some(t.id),
        t.used_by,
        form,
        FieldErrors::new(),
        false,
    )
    .into_response())
}

async fn update(
    State(state): State<PostmortemsState>,
    Admin(page): Admin,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let t = db::template(&state.db.reader, &id)
        .await?
        .ok_or_else(|| AppError::missing("template"))?;
    let form = TemplateForm::parse(pairs);
    let version: i64 = form.version.trim().parse().map_err(|_| {
        AppError::BadRequest("the form lacks the version it was loaded at; reload the page".into())
    })?;
    save(&state, page, Some((t, version)), form).await
}

/// Hands the typed template to `templates::save`; a refusal re-renders the form with the
/// typed values (422), a stale version shows it again marked as stale (409).
async fn save(
    state: &PostmortemsState,
    page: Page,
    existing: Option<(db::Template, i64)>,
    form: TemplateForm,
) -> AppResult<Response> {
    let (id, used_by) = existing
        .as_ref()
        .map_or((None, 0), |(t, _)| (Some(t.id.clone()), t.used_by));
    let input = TemplateInput {
        name: &form.name,
        description: &form.description,
        is_default: form.is_default,
        default_for: &form.default_for,
        rows: &form.rows,
    };
    let existing = existing.as_ref().map(|(t, v)| (t, *v));
    match templates::save(&state.db, &page.user, existing, input).await {
        Ok((saved, values)) => Ok(redirect_with_flash(
            &format!("/admin/templates/{saved}"),
            "ok",
            &format!(
                "Saved the template {}. Post-mortems already started keep their own sections.",
                values.name
            ),
        )),
        Err(AppError::Validation { fields, .. }) => {
            let html = form_page(page.chrome, id, used_by, form, fields, false);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(AppError::Conflict { .. }) => {
            let html = form_page(page.chrome, id, used_by, form, FieldErrors::new(), true);
            Ok((StatusCode::CONFLICT, html).into_response())
        }
        Err(e) => Err(e),
    }
}

async fn delete(
    State(state): State<PostmortemsState>,
    Admin(page): Admin,
    Path(id): Path<String>,
) -> AppResult<Response> {
    match templates::delete(&state.db, &page.user, &id).await {
        Ok(t) => Ok(redirect_with_flash(
            "/admin/templates",
            "ok",
            &format!(
                "Deleted the template {}. Post-mortems started from it are unchanged.",
                t.name
            ),
        )),
        Err(AppError::Validation { fields, .. }) => Ok(redirect_with_flash(
            "/admin/templates",
            "error",
            fields.values().next().map_or("", String::as_str),
        )),
        Err(e) => Err(e),
    }
}
