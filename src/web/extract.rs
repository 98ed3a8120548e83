//! Extractors: who is asking (session for pages, bearer token for the API) and request bodies
//! whose rejections become `AppError`s with a message naming the problem.

use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use chrono::Utc;
use serde::de::DeserializeOwned;

use std::sync::Arc;

use axum::extract::FromRef;
use chrono_tz::Tz;

use super::chrome::{Chrome, Flash, cookie};
use crate::action_items::ItemCaches;
use crate::auth::sessions::SessionCache;
use crate::auth::{Role, Scope, User};
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::visibility::Viewer;

/// What the extractors and the error pages need to know who is asking: the database, the
/// session cache, the header's count of open action items, the zone times are shown in and the
/// body limit (for its error message). The app assembly derives it from the app state.
#[derive(Clone, Debug)]
pub struct CallerState {
    pub db: Db,
    pub sessions: Arc<SessionCache>,
    pub items: Arc<ItemCaches>,
    pub tz: Tz,
    pub max_body_bytes: usize,
    /// The session cookie's name (`__Host-` prefixed on https).
    pub session_cookie: &'static str,
    /// A session idle this long is over.
    pub session_idle: std::time::Duration,
}

/// The session cookie's name on plain http (on https it carries the `__Host-` prefix: see
/// `auth::session_cookie_name`).
pub const SESSION_COOKIE: &str = "hindsight_session";

/// A page request from a signed-in user: the user and the layout context.
#[derive(Debug, Clone)]
pub struct Page {
    pub user: User,
    pub chrome: Chrome,
}

impl Page {
    pub fn require(&self, role: Role) -> AppResult<()> {
        self.user.require(role)
    }
}

fn chrome(
    parts: &Parts,
    state: &CallerState,
    user: Option<User>,
    (my_items, inbox_unread): (i64, i64),
) -> Chrome {
    Chrome {
        user,
        flash: Flash::from_headers(&parts.headers),
        tz: state.tz,
        path: parts.uri.path().to_owned(),
        my_items,
        inbox_unread,
        disk_warning: state.db.health().disk_warning(),
    }
}

/// Names the caller on the request's log span (`web::middleware::log_requests`), so every
/// line of the request says who made it: ids only, never an e-mail, a name or a secret.
fn log_caller(user_id: &str, token_id: Option<&str>) {
    let span = tracing::Span::current();
    span.record("user_id", user_id);
    if let Some(token_id) = token_id {
        span.record("token_id", token_id);
    }
}

async fn session_user(parts: &Parts, state: &CallerState) -> AppResult<Option<User>> {
    let Some(secret) = cookie(&parts.headers, state.session_cookie).filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    let now = std::time::Instant::now();
    if let Some(user) = state.sessions.get(secret, now) {
        log_caller(&user.id, None);
        return Ok(Some(user));
    }
    let Some(found) = crate::auth::db::session_user(
        state.db.reads_for(!parts.method.is_safe()),
        secret,
        state.session_idle,
    )
    .await?
    else {
        return Ok(None);
    };
    // Keep the session alive, at most about once a minute and off the request path: a write
    // per page view would queue every read behind the single writer.
    let every = (state.session_idle / 4).min(std::time::Duration::from_secs(60));
    let stale = chrono::Duration::from_std(every)
        .is_ok_and(|every| Utc::now() - found.last_seen_at >= every);
    if stale {
        let db = state.db.clone();
        let secret = secret.to_owned();
        tokio::spawn(async move {
            if let Ok(mut conn) = db.writer.acquire().await
                && let Err(e) = crate::auth::db::touch_session(&mut conn, &secret).await
            {
                tracing::warn!(error = %e, "could not record session use");
            }
        });
    }
    state.sessions.insert(secret, found.user.clone(), now);
    log_caller(&found.user.id, None);
    Ok(Some(found.user))
}

impl<S> FromRequestParts<S> for Page
where
    S: Send + Sync,
    CallerState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Self> {
        let state = &CallerState::from_ref(state);
        let user = session_user(parts, state)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let mine = crate::action_items::db::ItemFilter {
            not_closed: true,
            owner_id: Some(user.id.clone()),
            ..crate::action_items::db::ItemFilter::default()
        };
        let my_items = state
            .items
            .count(&state.db, &Viewer::user(&user.id), &mine)
            .await?;
        let unread =
            crate::inbox::db::unread_count(state.db.reads_for(!parts.method.is_safe()), &user.id)
                .await?;
        Ok(Self {
            chrome: chrome(parts, state, Some(user.clone()), (my_items, unread)),
            user,
        })
    }
}

/// Layout context for pages anyone may see (login, setup); the user is there if signed in.
#[derive(Debug, Clone)]
pub struct PublicPage {
    pub chrome: Chrome,
}

impl<S> FromRequestParts<S> for PublicPage
where
    S: Send + Sync,
    CallerState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Self> {
        let state = &CallerState::from_ref(state);
        let user = session_user(parts, state).await?;
        Ok(Self {
            chrome: chrome(parts, state, user, (0, 0)),
        })
    }
}

/// The owner of the bearer token on an API request, and what the token allows.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub user: User,
    pub scope: Scope,
}

impl ApiCaller {
    /// Reading needs a `read` or `write` token.
    pub fn require_read(&self) -> AppResult<()> {
        match self.scope {
            Scope::Read | Scope::Write => Ok(()),
            Scope::Ingest => Err(AppError::Forbidden(
                "an ingest token can only push events and alerts".into(),
            )),
        }
    }

    /// Changing data needs a `write` token whose owner is at least `role`.
    pub fn require_write(&self, role: Role) -> AppResult<()> {
        if self.scope != Scope::Write {
            return Err(AppError::Forbidden(format!(
                "this needs a write token; this token's scope is {}",
                self.scope.as_str()
            )));
        }
        self.user.require(role)
    }

    /// Pushing metric events and alert webhooks needs an `ingest` token.
    pub fn require_ingest(&self) -> AppResult<()> {
        if self.scope == Scope::Ingest {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "this needs an ingest token; this token's scope is {}",
                self.scope.as_str()
            )))
        }
    }
}

/// The bearer token of the request, if it has one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl<S> FromRequestParts<S> for ApiCaller
where
    S: Send + Sync,
    CallerState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Self> {
        let secret = bearer(parts).ok_or(AppError::Unauthenticated)?;
        let state = &CallerState::from_ref(state);
        let found =
            crate::auth::db::token_user(state.db.reads_for(!parts.method.is_safe()), secret)
                .await?
                .ok_or(AppError::Unauthenticated)?;
        log_caller(&found.user.id, Some(&found.token_id));
        // Record use at most every few minutes, off the request path: a write per API call
        // would queue every read behind the single writer.
        let stale = found
            .last_used_at
            .is_none_or(|t| Utc::now() - t > chrono::Duration::minutes(5));
        if stale {
            let db = state.db.clone();
            let token_id = found.token_id.clone();
            tokio::spawn(async move {
                if let Ok(mut conn) = db.writer.acquire().await
                    && let Err(e) = crate::auth::db::touch_token(&mut conn, &token_id).await
                {
                    tracing::warn!(error = %e, "could not record token use");
                }
            });
        }
        Ok(Self {
            user: found.user,
            scope: found.scope,
        })
    }
}

impl<S> OptionalFromRequestParts<S> for ApiCaller
where
    S: Send + Sync,
    CallerState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Option<Self>> {
        if bearer(parts).is_none() {
            return Ok(None);
        }
        <Self as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

/// `axum::Json` whose rejections are `AppError`s: 400 malformed, 413 too large, 415 wrong
/// content type, 422 wrong types or missing fields (naming the field).
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> AppResult<Self> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> AppError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return AppError::PayloadTooLarge;
    }
    let text = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => {
            // axum reports "…target type: <path>: <serde message> at line L column C".
            let detail = text
                .split_once("target type: ")
                .map_or(text.as_str(), |(_, rest)| rest);
            let detail = detail
                .rsplit_once(" at line ")
                .map_or(detail, |(head, _)| head);
            let (field, message) = match detail.split_once(": ") {
                Some((path, msg)) if !path.contains(' ') => (path.to_owned(), msg.to_owned()),
                _ => match missing_field(detail) {
                    Some(field) => (field, "is required".to_owned()),
                    None => ("body".to_owned(), detail.to_owned()),
                },
            };
            AppError::field(&field, message)
        }
        JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType(
            "send the body as JSON with Content-Type: application/json".into(),
        ),
        _ => AppError::BadRequest(format!("malformed JSON: {text}")),
    }
}

/// `missing field `title`` → `title`.
fn missing_field(detail: &str) -> Option<String> {
    let rest = detail.split_once("missing field `")?.1;
    Some(rest.split_once('`')?.0.to_owned())
}

/// `axum::extract::Query` whose rejections are `AppError`s naming the parameter (422, as the
/// JSON error on the API and the error page on pages): a value of the wrong kind, or one given
/// twice (`?status=open&status=all`).
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> AppResult<Self> {
        read_query(parts.uri.query().unwrap_or("")).map(Self)
    }
}

/// The query string of an API request: like [`Query`], and a parameter given with an empty
/// value (`?status=`, `?week=`) is refused (422 naming it) instead of read as "no filter", so a
/// client that lost a value learns it rather than getting every row. Pages keep [`Query`]:
/// their filter forms send empty fields for "any".
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> AppResult<Self> {
        let raw = parts.uri.query().unwrap_or("");
        let mut errors = crate::error::FieldErrors::new();
        for (name, value) in form_pairs(raw)? {
            if value.chars().all(is_pattern_space) {
                errors.insert(
                    name,
                    "must not be empty; leave the parameter out for no filter".into(),
                );
            }
        }
        if !errors.is_empty() {
            return Err(AppError::fields(errors));
        }
        read_query(raw).map(Self)
    }
}

/// White space as the OpenAPI description's patterns (ECMAScript `\s`) define it, so that a
/// value its `\S` pattern admits is never refused as empty (Rust's `trim` also strips U+0085
/// and keeps U+FEFF; ECMAScript does the reverse).
fn is_pattern_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

fn form_pairs(raw: &str) -> AppResult<Vec<(String, String)>> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
        .map_err(|e| AppError::field("query", format!("the query string could not be read: {e}")))
}

fn read_query<T: DeserializeOwned>(raw: &str) -> AppResult<T> {
    serde_urlencoded::from_str::<T>(raw).map_err(|e| {
        let message = e.to_string();
        let field = duplicate_field(&message)
            .or_else(|| missing_field(&message))
            .or_else(|| unknown_field(&message));
        match field {
            Some(field) if message.starts_with("duplicate field") => {
                AppError::field(&field, "is given more than once; give it once")
            }
            Some(field) => AppError::field(&field, message),
            None => AppError::field(
                "query",
                format!("the query string could not be read: {message}"),
            ),
        }
    })
}

/// `duplicate field `status`` → `status`.
fn duplicate_field(detail: &str) -> Option<String> {
    let rest = detail.split_once("duplicate field `")?.1;
    Some(rest.split_once('`')?.0.to_owned())
}

/// `axum::extract::Path` whose rejections (a segment that is not valid UTF-8 once decoded, or
/// not of the expected type) are `AppError`s naming the segment, not axum's plain text.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Self> {
        match <axum::extract::Path<T> as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
        {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => {
                use axum::extract::rejection::PathRejection;
                let message = rejection.body_text();
                let field = match &rejection {
                    PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
                        axum::extract::path::ErrorKind::InvalidUtf8InPathParam { key }
                        | axum::extract::path::ErrorKind::ParseErrorAtKey { key, .. }
                        | axum::extract::path::ErrorKind::DeserializeError { key, .. } => {
                            key.clone()
                        }
                        _ => "path".to_owned(),
                    },
                    _ => "path".to_owned(),
                };
                Err(AppError::field(&field, message))
            }
        }
    }
}

/// For `#[serde(default, deserialize_with = "crate::web::extract::not_null")]` on an optional
/// JSON field: leaving the field out means "not given", but an explicit `null` is refused
/// (422 naming it) instead of being read as "not given" — `"occurred_at": null` is not "now".
pub fn not_null<'de, D, V>(deserializer: D) -> Result<Option<V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: serde::Deserialize<'de>,
{
    V::deserialize(deserializer).map(Some)
}

/// `axum::Form` whose rejections are `AppError`s.
pub struct Form<T>(pub T);

impl<T, S> FromRequest<S> for Form<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> AppResult<Self> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(value)) => Ok(Self(value)),
            Err(rejection) => Err(form_rejection(&rejection)),
        }
    }
}

fn form_rejection(rejection: &FormRejection) -> AppError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return AppError::PayloadTooLarge;
    }
    match rejection {
        FormRejection::InvalidFormContentType(_) => AppError::UnsupportedMediaType(
            "send the form as application/x-www-form-urlencoded".into(),
        ),
        other => AppError::BadRequest(format!("the form could not be read: {}", other.body_text())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_field_is_named() {
        assert_eq!(
            missing_field("missing field `title`").as_deref(),
            Some("title")
        );
        assert_eq!(missing_field("something else"), None);
    }

    #[test]
    fn blank_means_what_the_openapi_patterns_call_white_space() {
        for blank in ["\t", " \u{a0}", "\u{feff}", "\u{2028}\u{3000}"] {
            assert!(blank.chars().all(is_pattern_space), "{blank:?} is blank");
        }
        // Rust's trim would strip U+0085, but the pattern `\S` admits it.
        for value in ["\u{85}", "INC-1", " x "] {
            assert!(
                !value.chars().all(is_pattern_space),
                "{value:?} is not blank"
            );
        }
    }
}

/// Deserializes a JSON value into `T`, naming the offending field on failure (422).
pub fn from_json_value<T: DeserializeOwned>(value: serde_json::Value) -> AppResult<T> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        let field = if path == "." {
            missing_field(&inner)
                .or_else(|| unknown_field(&inner))
                .unwrap_or_else(|| "body".to_owned())
        } else {
            path
        };
        AppError::field(&field, inner)
    })
}

/// Takes the required `version` (the version an edit started from) out of a JSON object body.
pub fn take_version(body: &mut serde_json::Value) -> AppResult<i64> {
    let object = body
        .as_object_mut()
        .ok_or_else(|| AppError::field("body", "must be a JSON object"))?;
    match object.remove("version") {
        Some(v) => v
            .as_i64()
            .ok_or_else(|| AppError::field("version", "must be a whole number")),
        None => Err(AppError::field(
            "version",
            "is required (the version you edited)",
        )),
    }
}

/// `unknown field `colour`, expected …` → `colour`.
fn unknown_field(detail: &str) -> Option<String> {
    let rest = detail.split_once("unknown field `")?.1;
    Some(rest.split_once('`')?.0.to_owned())
}

/// An extractor that is `$inner` (a signed-in page or an API caller) plus a check of what it
/// may do, run before the body is read, so a refused caller learns nothing about it.
macro_rules! checked_extractor {
    ($name:ident, $inner:ty, |$who:ident| $check:expr) => {
        impl<S> FromRequestParts<S> for $name
        where
            S: Send + Sync,
            CallerState: FromRef<S>,
        {
            type Rejection = AppError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Self> {
                let $who =
                    <$inner as FromRequestParts<S>>::from_request_parts(parts, state).await?;
                $check?;
                Ok(Self($who))
            }
        }
    };
}

/// An API caller allowed to change incidents and timelines (`write` token, responder or
/// admin). Checked before the body is read, so a refused caller learns nothing about it.
#[derive(Debug, Clone)]
pub struct ApiResponder(pub ApiCaller);

/// An API caller allowed to change the managed lists (`write` token, admin).
#[derive(Debug, Clone)]
pub struct ApiAdmin(pub ApiCaller);

checked_extractor!(ApiResponder, ApiCaller, |caller| caller
    .require_write(Role::Responder));

checked_extractor!(ApiAdmin, ApiCaller, |caller| caller
    .require_write(Role::Admin));

/// An API caller allowed to push metric events and alerts (`ingest` token).
#[derive(Debug, Clone)]
pub struct ApiIngest(pub ApiCaller);

checked_extractor!(ApiIngest, ApiCaller, |caller| caller.require_ingest());

/// The incident named by the `{incident}` segment of the path (`INC-42` or its id), resolved
/// once for every handler under `/incidents/{incident}/…`. Missing → 404 (a page or the JSON
/// error, decided by the route like every other error).
#[derive(Debug, Clone)]
pub struct IncidentInPath(pub crate::incidents::Incident);

impl<S> FromRequestParts<S> for IncidentInPath
where
    S: Send + Sync,
    CallerState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Self> {
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| AppError::field("incident", e.body_text()))?;
        let raw = params
            .iter()
            .find(|(name, _)| *name == "incident")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(|| AppError::Internal("route has no {incident} segment".into()))?;
        let state = CallerState::from_ref(state);
        let viewer = caller_viewer(parts, &state).await?;
        let pool = state.db.reads_for(!parts.method.is_safe());
        crate::incidents::find_in(pool, &raw, &viewer)
            .await
            .map(Self)
    }
}

/// Whose view of the incidents the request takes: the API token's owner when it carries a
/// bearer token, else the signed-in user; neither is 401. Every route that shows incidents
/// takes one (directly or through [`IncidentInPath`]) and hands it to the area's query.
async fn caller_viewer(parts: &mut Parts, state: &CallerState) -> AppResult<Viewer> {
    if let Some(secret) = bearer(parts) {
        let found =
            crate::auth::db::token_user(state.db.reads_for(!parts.method.is_safe()), secret)
                .await?
                .ok_or(AppError::Unauthenticated)?;
        return Ok(Viewer::user(&found.user.id));
    }
    let user = session_user(parts, state)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    Ok(Viewer::user(&user.id))
}

impl<S> FromRequestParts<S> for Viewer
where
    S: Send + Sync,
    CallerState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> AppResult<Self> {
        let state = CallerState::from_ref(state);
        caller_viewer(parts, &state).await
    }
}

/// A page whose user may change incidents, timelines, post-mortems and action items
/// (responder or admin); others get 403 before anything else is read.
#[derive(Debug, Clone)]
pub struct Responder(pub Page);

/// A page only admins may open.
#[derive(Debug, Clone)]
pub struct Admin(pub Page);

checked_extractor!(Responder, Page, |page| page.require(Role::Responder));

checked_extractor!(Admin, Page, |page| page.require(Role::Admin));

/// A form that edits something versioned: its fields, and the `version` the page was loaded
/// at (a hidden field) already read as a number. A form without one was not made by our page
/// (or the page is too old): 400 with a message saying to reload.
#[derive(Debug, Clone)]
pub struct VersionedForm<T> {
    pub version: i64,
    pub form: T,
}

impl<T, S> FromRequest<S> for VersionedForm<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> AppResult<Self> {
        let Form(pairs) = Form::<Vec<(String, String)>>::from_request(req, state).await?;
        let version = pairs
            .iter()
            .find(|(k, _)| k == "version")
            .and_then(|(_, v)| v.trim().parse::<i64>().ok())
            .ok_or_else(|| {
                AppError::BadRequest(
                    "the form lacks the version it was loaded at; reload the page".into(),
                )
            })?;
        // The pairs are read again into the form's own type (which may keep `version` as
        // text to show it back on a re-rendered page).
        let encoded = serde_urlencoded::to_string(&pairs)
            .map_err(|e| AppError::BadRequest(format!("the form could not be read: {e}")))?;
        let form = serde_urlencoded::from_str(&encoded)
            .map_err(|e| AppError::BadRequest(format!("the form could not be read: {e}")))?;
        Ok(Self { version, form })
    }
}
