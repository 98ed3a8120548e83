//! Pages for signing in and out, first-admin setup, and the admin pages for users and tokens.

use crate::web::extract::{Path, Query};
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{ConnectInfo, FromRef, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{AuthState, By, NewUser, Role, Scope, User, db};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::web::chrome::{Chrome, cookie, redirect, redirect_with_flash};
use crate::web::extract::{Admin, CallerState, Form, PublicPage};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AuthState: FromRef<S>,
    CallerState: FromRef<S>,
{
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

#[derive(Template, WebTemplate)]
#[template(path = "auth/login.html")]
struct LoginPage {
    chrome: Chrome,
    email: String,
    next: String,
    error: Option<String>,
    /// Single sign-on: the provider's name for the button, and whether it looked unreachable.
    sso: Option<String>,
    sso_unreachable: bool,
    /// The password form: shown unless local sign-in is off (then only with `?local=1`, for
    /// break-glass admins).
    password_form: bool,
}

impl LoginPage {
    fn new(state: &AuthState, chrome: Chrome, next: String, local: bool) -> Self {
        Self {
            chrome,
            email: String::new(),
            next,
            error: None,
            sso: state
                .oidc
                .as_ref()
                .map(|o| o.settings.provider_name.clone()),
            sso_unreachable: state.oidc.as_ref().is_some_and(|o| o.looks_unreachable()),
            password_form: state.local_login || local || state.oidc.is_none(),
        }
    }

    fn start_url(&self) -> String {
        format!(
            "/auth/oidc/start?{}",
            serde_urlencoded::to_string([("next", self.next.as_str())]).unwrap_or_default()
        )
    }
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: String,
    /// `1`: show the password form even when local sign-in is off (break-glass admins).
    #[serde(default)]
    local: String,
}

/// Only local paths: an open redirect to another site must not be possible. Browsers drop
/// tabs and newlines from a URL and read `\\` as `/`, so `/<TAB>/evil.example` would leave the
/// site: a path is accepted only when every character is printable ASCII (our own links are
/// percent-encoded), it is not a backslash, and the path starts with exactly one `/`.
pub(crate) fn safe_next(next: &str) -> String {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && next.chars().all(|c| c.is_ascii_graphic() && c != '\\')
        && next.parse::<axum::http::uri::PathAndQuery>().is_ok();
    if local {
        next.to_owned()
    } else {
        // Home: what is waiting for this person (reviews, their action items, open incidents).
        "/".to_owned()
    }
}

async fn show_login(
    State(state): State<AuthState>,
    page: PublicPage,
    Query(q): Query<NextQuery>,
) -> Response {
    if page.chrome.user.is_some() {
        return redirect(&safe_next(&q.next));
    }
    LoginPage::new(&state, page.chrome, safe_next(&q.next), q.local == "1").into_response()
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
/// directly): the peer, or behind a trusted proxy the right-most untrusted hop of its
/// `Forwarded` / `X-Forwarded-For` headers.
pub(crate) struct ClientAddr(pub(crate) Option<std::net::IpAddr>);

impl<S> axum::extract::FromRequestParts<S> for ClientAddr
where
    S: Send + Sync,
    AuthState: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let Some(peer) = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
        else {
            return Ok(Self(None));
        };
        let proxies = AuthState::from_ref(state).trusted_proxies;
        let values = |name: &str| -> Vec<&str> {
            parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect()
        };
        Ok(Self(Some(proxies.client(
            peer,
            &values("forwarded"),
            &values("x-forwarded-for"),
        ))))
    }
}

async fn login(
    State(state): State<AuthState>,
    page: PublicPage,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> AppResult<Response> {
    let old_session = cookie(&headers, super::session_cookie_name(state.secure_cookies));
    let user_agent = user_agent(&headers);
    let signed_in = match super::login(
        &state,
        &form.email,
        &form.password,
        client,
        &user_agent,
        old_session,
    )
    .await
    {
        Ok(signed_in) => signed_in,
        Err(AppError::Forbidden(message)) => {
            let mut page = LoginPage::new(&state, page.chrome, safe_next(&form.next), false);
            page.error = Some(message);
            return Ok((StatusCode::FORBIDDEN, page).into_response());
        }
        Err(e) => return Err(e),
    };
    let Some(signed_in) = signed_in else {
        let mut page = LoginPage::new(&state, page.chrome, safe_next(&form.next), true);
        page.email = form.email;
        page.error = Some("Email or password is not right.".into());
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let mut response = redirect(&safe_next(&form.next));
    set_session_cookie(&mut response, &state, &signed_in.secret);
    Ok(response)
}

/// The browser's User-Agent header as sent ('' when missing or not text); stored with a new
/// session for "Your sessions".
pub(super) fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn set_session_cookie(response: &mut Response, state: &AuthState, secret: &str) {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let name = super::session_cookie_name(state.secure_cookies);
    let cookie = format!(
        "{name}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        state.session_ttl.as_secs()
    );
    if let Ok(v) = cookie.parse() {
        response.headers_mut().append(SET_COOKIE, v);
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/signed_out.html")]
struct SignedOutPage {
    chrome: Chrome,
    provider: String,
    url: String,
}

/// "You are signed out of Hindsight", forwarding the browser to the provider's end-session
/// endpoint (with `id_token_hint` and `post_logout_redirect_uri`).
fn signed_out_page(state: &AuthState, mut chrome: Chrome, url: String) -> Response {
    chrome.user = None;
    let provider = state
        .oidc
        .as_ref()
        .map_or_else(String::new, |o| o.settings.provider_name.clone());
    SignedOutPage {
        chrome,
        provider,
        url,
    }
    .into_response()
}

async fn logout(
    State(state): State<AuthState>,
    page: PublicPage,
    headers: HeaderMap,
) -> AppResult<Response> {
    let name = super::session_cookie_name(state.secure_cookies);
    // A session from single sign-on also ends at the provider, when it has an end-session
    // endpoint: a page that forwards there (a redirect after a form post would be blocked by
    // the `form-action 'self'` content security policy).
    let end_session = super::sso::logout(&state, cookie(&headers, name)).await?;
    let mut response = match end_session {
        Some(url) => signed_out_page(&state, page.chrome, url),
        None => redirect_with_flash("/login", "ok", "You are signed out."),
    };
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    if let Ok(v) = format!("{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}").parse() {
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

async fn show_setup(
    State(state): State<AuthState>,
    page: PublicPage,
    Path(token): Path<String>,
) -> AppResult<Response> {
    super::check_setup_link(&state.db, &token).await?;
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
    State(state): State<AuthState>,
    page: PublicPage,
    Path(token): Path<String>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> AppResult<Response> {
    super::check_setup_link(&state.db, &token).await?;
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
    let origin = super::account::origin(client, &user_agent(&headers));
    let signed_in = super::set_up_first_admin(&state, &token, &new_user, &origin).await?;
    let mut response = redirect_with_flash(
        "/incidents",
        "ok",
        "Welcome to Hindsight. Add services under Admin, then declare incidents.",
    );
    set_session_cookie(&mut response, &state, &signed_in.secret);
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
    state: &AuthState,
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

async fn list_users(State(state): State<AuthState>, Admin(page): Admin) -> AppResult<Response> {
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
    State(state): State<AuthState>,
    Admin(page): Admin,
    Form(form): Form<NewUserForm>,
) -> AppResult<Response> {
    let created = match NewUser::parse(&form.email, &form.name, &form.role, &form.password) {
        Ok(new_user) => super::create_user(&state.db, By::Admin(&page.user), &new_user).await,
        Err(e) => Err(e),
    };
    let created = match created {
        Ok(u) => u,
        Err(AppError::Validation { fields, .. }) => {
            let html = users_page(&state, page.chrome, Some(&form), fields).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response());
        }
        Err(e) => return Err(e),
    };
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

async fn change_role(
    State(state): State<AuthState>,
    Admin(page): Admin,
    Path(id): Path<String>,
    Form(form): Form<RoleForm>,
) -> AppResult<Response> {
    let role = Role::parse_or_refuse(&form.role)?;
    let target = super::change_role(&state, &page.user, &id, role).await?;
    Ok(redirect_with_flash(
        "/admin/users",
        "ok",
        &format!("{} is now {role}.", target.email),
    ))
}

async fn disable_user(
    State(state): State<AuthState>,
    Admin(page): Admin,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let target = super::disable_user(&state, &page.user, &id).await?;
    Ok(redirect_with_flash(
        "/admin/users",
        "ok",
        &format!("{} is disabled and signed out everywhere.", target.email),
    ))
}

async fn enable_user(
    State(state): State<AuthState>,
    Admin(page): Admin,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let target = super::enable_user(&state.db, &page.user, &id).await?;
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
    state: &AuthState,
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

async fn list_tokens(State(state): State<AuthState>, Admin(page): Admin) -> AppResult<Response> {
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
    State(state): State<AuthState>,
    Admin(page): Admin,
    Form(form): Form<TokenForm>,
) -> AppResult<Response> {
    let secret = match super::create_token(
        &state.db,
        &page.user,
        &form.name,
        &form.user_id,
        &form.scope,
    )
    .await
    {
        Ok(secret) => secret,
        Err(AppError::Validation { fields, .. }) => {
            let html = tokens_page(&state, page.chrome, None, Some(&form), fields).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response());
        }
        Err(e) => return Err(e),
    };
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
    State(state): State<AuthState>,
    Admin(page): Admin,
    Path(id): Path<String>,
) -> AppResult<Response> {
    super::revoke_token(&state.db, &page.user, &id).await?;
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
    fn next_only_allows_local_paths() {
        assert_eq!(safe_next("/incidents/INC-3"), "/incidents/INC-3");
        assert_eq!(safe_next("//evil.example.com"), "/");
        assert_eq!(safe_next("https://evil.example.com"), "/");
        assert_eq!(safe_next("/\\evil.example.com"), "/");
        assert_eq!(
            safe_next("/incidents?status=open&q=a%20b"),
            "/incidents?status=open&q=a%20b"
        );
    }

    #[test]
    fn next_refuses_control_characters_and_whitespace_browsers_would_strip() {
        for evil in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/\u{0}/evil.example",
            "/\u{7f}/evil.example",
            "/ /evil.example",
            "/\u{3000}/evil.example",
            "/\t\\evil.example",
            "",
            "evil.example",
        ] {
            assert_eq!(safe_next(evil), "/", "{evil:?}");
        }
    }
}
