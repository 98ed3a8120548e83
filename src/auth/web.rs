//! Pages for signing in and out, first-admin setup, and the admin pages for users and tokens.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{NewUser, Role, Scope, User, db, hash_password, verify_password};
use crate::app::AppState;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::web::chrome::{Chrome, cookie, redirect, redirect_with_flash};
use crate::web::extract::{Form, Page, PublicPage, SESSION_COOKIE};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(show_login).post(login))
        .route("/logout", post(logout))
        .route("/setup/{token}", get(show_setup).post(setup))
        .route("/admin/users", get(list_users).post(create_user))
        .route("/admin/users/{id}/role", post(change_role))
        .route("/admin/users/{id}/disable", post(disable_user))
        .route("/admin/users/{id}/enable", post(enable_user))
        .route("/admin/tokens", get(list_tokens).post(create_token))
        .route("/admin/tokens/{id}/revoke", post(revoke_token))
}

/// Counts failed logins per account and per client address in a sliding window.
#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds to wait when any of `keys` has used up its attempts.
    pub fn blocked_for(&self, keys: &[String], now: Instant) -> Option<u64> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for key in keys {
            if let Some(times) = map.get_mut(key) {
                times.retain(|t| now.duration_since(*t) < self.window);
                if times.len() >= self.max_failures as usize
                    && let Some(oldest) = times.first()
                {
                    let left = self.window.saturating_sub(now.duration_since(*oldest));
                    wait = Some(wait.unwrap_or(0).max(left.as_secs().max(1)));
                }
            }
        }
        wait
    }

    pub fn record_failure(&self, keys: &[String], now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bound memory under a flood of distinct keys: forget everything outside the window.
        if map.len() > 10_000 {
            map.retain(|_, times| {
                times.retain(|t| now.duration_since(*t) < self.window);
                !times.is_empty()
            });
        }
        for key in keys {
            map.entry(key.clone()).or_default().push(now);
        }
    }

    pub fn clear(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/login.html")]
struct LoginPage {
    chrome: Chrome,
    email: String,
    next: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only local paths: an open redirect to another site must not be possible.
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_owned()
    } else {
        "/incidents".to_owned()
    }
}

async fn show_login(page: PublicPage, Query(q): Query<NextQuery>) -> Response {
    if page.chrome.user.is_some() {
        return redirect(&safe_next(&q.next));
    }
    LoginPage {
        chrome: page.chrome,
        email: String::new(),
        next: safe_next(&q.next),
        error: None,
    }
    .into_response()
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// The client's IP address when the server knows it (not in tests that call the router
/// directly).
struct ClientAddr(Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

async fn login(
    State(state): State<AppState>,
    page: PublicPage,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> AppResult<Response> {
    let email = form.email.trim().to_lowercase();
    let mut keys = vec![format!("email:{email}")];
    keys.extend(client.map(|ip| format!("ip:{ip}")));
    let now = Instant::now();
    if let Some(retry_after_secs) = state.login_limiter.blocked_for(&keys, now) {
        return Err(AppError::RateLimited { retry_after_secs });
    }

    let found = db::find_login(&state.db.reader, &email).await?;
    let password = form.password.clone();
    // Verify even for unknown emails, so response time does not reveal which accounts exist.
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, DUMMY_HASH.clone()),
    };
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await?;
    let Some(user) = user.filter(|_| ok) else {
        state.login_limiter.record_failure(&keys, now);
        tracing::info!("login failed");
        let page = LoginPage {
            chrome: page.chrome,
            email: form.email,
            next: safe_next(&form.next),
            error: Some("Email or password is not right.".into()),
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    state.login_limiter.clear(&format!("email:{email}"));

    let mut tx = state.db.begin_write().await?;
    // Rotate: whatever session id the browser had before is ended, a new one is issued.
    if let Some(old) = cookie(&headers, SESSION_COOKIE) {
        db::delete_session(&mut tx, old).await?;
        state.sessions.remove(old);
    }
    let secret = db::create_session(&mut tx, &user.id, state.config.session_ttl).await?;
    db::audit(&mut tx, Some(&user.id), "login", &user.email, "").await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "login succeeded");

    let mut response = redirect(&safe_next(&form.next));
    set_session_cookie(&mut response, &state, &secret);
    Ok(response)
}

/// A real Argon2id hash, verified against when the email is unknown.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("no account has this password"));

fn set_session_cookie(response: &mut Response, state: &AppState, secret: &str) {
    let secure = if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        state.config.session_ttl.as_secs()
    );
    if let Ok(v) = cookie.parse() {
        response.headers_mut().append(SET_COOKIE, v);
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> AppResult<Response> {
    if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
        let mut tx = state.db.begin_write().await?;
        db::delete_session(&mut tx, secret).await?;
        tx.commit().await?;
        state.sessions.remove(secret);
    }
    let mut response = redirect_with_flash("/login", "ok", "You are signed out.");
    let secure = if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    if let Ok(v) =
        format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}").parse()
    {
        response.headers_mut().append(SET_COOKIE, v);
    }
    Ok(response)
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/setup.html")]
struct SetupPage {
    chrome: Chrome,
    token: String,
    email: String,
    name: String,
    errors: FieldErrors,
}

async fn setup_allowed(state: &AppState, token: &str) -> AppResult<()> {
    if db::count_users(&state.db.reader).await? > 0 {
        return Err(AppError::not_found(
            "this setup link",
            ": Hindsight is already set up. Sign in instead",
        ));
    }
    if !db::setup_token_valid(&state.db.reader, token).await? {
        return Err(AppError::not_found(
            "this setup link",
            ": it is invalid, expired or already used. Restart Hindsight for a new one or run `hindsight user create`",
        ));
    }
    Ok(())
}

async fn show_setup(
    State(state): State<AppState>,
    page: PublicPage,
    Path(token): Path<String>,
) -> AppResult<Response> {
    setup_allowed(&state, &token).await?;
    Ok(SetupPage {
        chrome: page.chrome,
        token,
        email: String::new(),
        name: String::new(),
        errors: FieldErrors::new(),
    }
    .into_response())
}

#[derive(Debug, Deserialize)]
struct SetupForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

async fn setup(
    State(state): State<AppState>,
    page: PublicPage,
    Path(token): Path<String>,
    Form(form): Form<SetupForm>,
) -> AppResult<Response> {
    setup_allowed(&state, &token).await?;
    let parsed = NewUser::parse(&form.email, &form.name, "admin", &form.password);
    let mut errors = match &parsed {
        Ok(_) => FieldErrors::new(),
        Err(AppError::Validation { fields, .. }) => fields.clone(),
        Err(_) => FieldErrors::new(),
    };
    if form.password != form.confirm {
        errors.insert("confirm".into(), "does not match the password".into());
    }
    let new_user = match parsed {
        Ok(u) if errors.is_empty() => u,
        _ => {
            let page = SetupPage {
                chrome: page.chrome,
                token,
                email: form.email,
                name: form.name,
                errors,
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let password = new_user.password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await?;
    let mut tx = state.db.begin_write().await?;
    if !db::consume_setup_token(&mut tx, &token).await? {
        return Err(AppError::missing("this setup link"));
    }
    let user =
        db::insert_user(&mut tx, &new_user.email, &new_user.name, Role::Admin, &hash).await?;
    db::audit(&mut tx, Some(&user.id), "setup", &user.email, "first admin").await?;
    let secret = db::create_session(&mut tx, &user.id, state.config.session_ttl).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "first admin created");
    let mut response = redirect_with_flash(
        "/incidents",
        "ok",
        "Welcome to Hindsight. Add services under Admin, then declare incidents.",
    );
    set_session_cookie(&mut response, &state, &secret);
    Ok(response)
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/users.html")]
struct UsersPage {
    chrome: Chrome,
    accounts: Vec<db::Account>,
    roles: Vec<Role>,
    form_email: String,
    form_name: String,
    form_role: String,
    errors: FieldErrors,
}

async fn users_page(
    state: &AppState,
    chrome: Chrome,
    form: Option<&NewUserForm>,
    errors: FieldErrors,
) -> AppResult<UsersPage> {
    Ok(UsersPage {
        chrome,
        accounts: db::list_accounts(&state.db.reader).await?,
        roles: Role::ALL.to_vec(),
        form_email: form.map(|f| f.email.clone()).unwrap_or_default(),
        form_name: form.map(|f| f.name.clone()).unwrap_or_default(),
        form_role: form.map_or_else(|| "responder".to_owned(), |f| f.role.clone()),
        errors,
    })
}

async fn list_users(State(state): State<AppState>, page: Page) -> AppResult<Response> {
    page.require(Role::Admin)?;
    Ok(users_page(&state, page.chrome, None, FieldErrors::new())
        .await?
        .into_response())
}

#[derive(Debug, Deserialize)]
struct NewUserForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

async fn create_user(
    State(state): State<AppState>,
    page: Page,
    Form(form): Form<NewUserForm>,
) -> AppResult<Response> {
    page.require(Role::Admin)?;
    let new_user = match NewUser::parse(&form.email, &form.name, &form.role, &form.password) {
        Ok(u) => u,
        Err(AppError::Validation { fields, .. }) => {
            let html = users_page(&state, page.chrome, Some(&form), fields).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response());
        }
        Err(e) => return Err(e),
    };
    let password = new_user.password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await?;
    let mut tx = state.db.begin_write().await?;
    let created = match db::insert_user(
        &mut tx,
        &new_user.email,
        &new_user.name,
        new_user.role,
        &hash,
    )
    .await
    {
        Ok(u) => u,
        Err(AppError::Validation { fields, .. }) => {
            drop(tx);
            let html = users_page(&state, page.chrome, Some(&form), fields).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response());
        }
        Err(e) => return Err(e),
    };
    db::audit(
        &mut tx,
        Some(&page.user.id),
        "user.create",
        &created.email,
        created.role.as_str(),
    )
    .await?;
    tx.commit().await?;
    Ok(redirect_with_flash(
        "/admin/users",
        "ok",
        &format!("Added {} as {}.", created.email, created.role),
    ))
}

#[derive(Debug, Deserialize)]
struct RoleForm {
    #[serde(default)]
    role: String,
}

/// Refuses changes that would leave no enabled admin.
async fn keep_an_admin(
    tx: &mut crate::db::WriteTx,
    target: &User,
    losing_admin: bool,
) -> AppResult<()> {
    if losing_admin && target.role == Role::Admin && db::count_active_admins(tx).await? <= 1 {
        return Err(AppError::field(
            "role",
            "the last admin cannot be demoted or disabled; make someone else admin first",
        ));
    }
    Ok(())
}

async fn change_role(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    Form(form): Form<RoleForm>,
) -> AppResult<Response> {
    page.require(Role::Admin)?;
    let role = Role::parse_or_refuse(&form.role)?;
    let target = db::find_user(&state.db.reader, &id)
        .await?
        .ok_or_else(|| AppError::missing("user"))?;
    let mut tx = state.db.begin_write().await?;
    keep_an_admin(&mut tx, &target, role != Role::Admin).await?;
    db::set_role(&mut tx, &id, role).await?;
    db::audit(
        &mut tx,
        Some(&page.user.id),
        "user.role",
        &target.email,
        role.as_str(),
    )
    .await?;
    tx.commit().await?;
    state.sessions.remove_user(&id);
    Ok(redirect_with_flash(
        "/admin/users",
        "ok",
        &format!("{} is now {role}.", target.email),
    ))
}

async fn disable_user(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
) -> AppResult<Response> {
    page.require(Role::Admin)?;
    if id == page.user.id {
        return Err(AppError::Forbidden(
            "You cannot disable your own account.".into(),
        ));
    }
    let target = db::find_user(&state.db.reader, &id)
        .await?
        .ok_or_else(|| AppError::missing("user"))?;
    let mut tx = state.db.begin_write().await?;
    keep_an_admin(&mut tx, &target, true).await?;
    db::set_disabled(&mut tx, &id, true).await?;
    db::audit(
        &mut tx,
        Some(&page.user.id),
        "user.disable",
        &target.email,
        "",
    )
    .await?;
    tx.commit().await?;
    state.sessions.remove_user(&id);
    Ok(redirect_with_flash(
        "/admin/users",
        "ok",
        &format!("{} is disabled and signed out everywhere.", target.email),
    ))
}

async fn enable_user(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
) -> AppResult<Response> {
    page.require(Role::Admin)?;
    let target = db::find_user(&state.db.reader, &id)
        .await?
        .ok_or_else(|| AppError::missing("user"))?;
    let mut tx = state.db.begin_write().await?;
    db::set_disabled(&mut tx, &id, false).await?;
    db::audit(
        &mut tx,
        Some(&page.user.id),
        "user.enable",
        &target.email,
        "",
    )
    .await?;
    tx.commit().await?;
    Ok(redirect_with_flash(
        "/admin/users",
        "ok",
        &format!("{} can sign in again.", target.email),
    ))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<db::TokenInfo>,
    users: Vec<User>,
    scopes: Vec<Scope>,
    /// The secret of a token just created: shown on this one response only.
    created: Option<String>,
    form_name: String,
    form_user: String,
    form_scope: String,
    errors: FieldErrors,
}

async fn tokens_page(
    state: &AppState,
    chrome: Chrome,
    created: Option<String>,
    form: Option<&TokenForm>,
    errors: FieldErrors,
) -> AppResult<TokensPage> {
    let default_user = chrome
        .user
        .as_ref()
        .map(|u| u.id.clone())
        .unwrap_or_default();
    Ok(TokensPage {
        chrome,
        tokens: db::list_tokens(&state.db.reader).await?,
        users: db::list_active_users(&state.db.reader).await?,
        scopes: Scope::ALL.to_vec(),
        created,
        form_name: form.map(|f| f.name.clone()).unwrap_or_default(),
        form_user: form.map_or(default_user, |f| f.user_id.clone()),
        form_scope: form.map_or_else(|| "read".to_owned(), |f| f.scope.clone()),
        errors,
    })
}

async fn list_tokens(State(state): State<AppState>, page: Page) -> AppResult<Response> {
    page.require(Role::Admin)?;
    Ok(
        tokens_page(&state, page.chrome, None, None, FieldErrors::new())
            .await?
            .into_response(),
    )
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    scope: String,
}

async fn create_token(
    State(state): State<AppState>,
    page: Page,
    Form(form): Form<TokenForm>,
) -> AppResult<Response> {
    page.require(Role::Admin)?;
    let mut errors = FieldErrors::new();
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.insert("name".into(), "must be 1 to 100 characters".into());
    }
    let scope = Scope::parse_field(&form.scope, &mut errors);
    let owner = db::find_user(&state.db.reader, &form.user_id).await?;
    if owner.is_none() {
        errors.insert("user_id".into(), "choose an existing user".into());
    }
    let (Some(scope), Some(owner)) = (scope, owner) else {
        let html = tokens_page(&state, page.chrome, None, Some(&form), errors).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response());
    };
    if !errors.is_empty() {
        let html = tokens_page(&state, page.chrome, None, Some(&form), errors).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response());
    }
    let mut tx = state.db.begin_write().await?;
    let secret = db::insert_token(&mut tx, &owner.id, name, scope).await?;
    db::audit(
        &mut tx,
        Some(&page.user.id),
        "token.create",
        name,
        scope.as_str(),
    )
    .await?;
    tx.commit().await?;
    let html = tokens_page(&state, page.chrome, Some(secret), None, FieldErrors::new()).await?;
    // The secret is in this body only; keep it out of caches.
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        html,
    )
        .into_response())
}

async fn revoke_token(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
) -> AppResult<Response> {
    page.require(Role::Admin)?;
    let mut tx = state.db.begin_write().await?;
    if !db::revoke_token(&mut tx, &id).await? {
        return Err(AppError::missing("active token"));
    }
    db::audit(&mut tx, Some(&page.user.id), "token.revoke", &id, "").await?;
    tx.commit().await?;
    Ok(redirect_with_flash(
        "/admin/tokens",
        "ok",
        "Token revoked; it stops working now.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_blocks_after_max_failures_and_forgets_after_the_window() {
        let limiter = LoginLimiter::new(3, Duration::from_secs(60));
        let keys = vec!["email:a@example.com".to_owned()];
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.blocked_for(&keys, t0), None);
            limiter.record_failure(&keys, t0);
        }
        assert!(limiter.blocked_for(&keys, t0).is_some());
        assert_eq!(
            limiter.blocked_for(&keys, t0 + Duration::from_secs(61)),
            None
        );
    }

    #[test]
    fn next_only_allows_local_paths() {
        assert_eq!(safe_next("/incidents/INC-3"), "/incidents/INC-3");
        assert_eq!(safe_next("//evil.example.com"), "/incidents");
        assert_eq!(safe_next("https://evil.example.com"), "/incidents");
        assert_eq!(safe_next("/\\evil.example.com"), "/incidents");
    }

    #[test]
    fn dummy_hash_is_a_valid_hash() {
        // If it were unparsable, unknown emails would skip the slow verification.
        assert!(password_auth::is_hash_obsolete(&DUMMY_HASH).is_ok());
    }
}
