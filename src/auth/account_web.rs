//! Pages for your account (change your password, your sessions), the password reset link an
//! admin hands out, and the admin's "Reset password" and "End all sessions" on Admin › Users.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::web::{ClientAddr, set_session_cookie, user_agent};
use super::{AuthState, User, account};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::web::chrome::{Chrome, cookie, redirect_with_flash};
use crate::web::extract::{Admin, CallerState, Form, Page, Path, PublicPage};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AuthState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/account", get(show_account))
        .route("/account/password", post(change_password))
        .route("/account/sessions", get(list_sessions))
        .route("/account/sessions/end-others", post(end_other_sessions))
        .route("/account/sessions/{id}/end", post(end_session))
        .route("/reset/{token}", get(show_reset).post(reset))
        .route("/admin/users/{id}/reset-password", post(issue_reset_link))
        .route("/admin/users/{id}/end-sessions", post(end_all_sessions))
}

/// The secret of the session this request came with (to keep it, or mark it on the list).
fn current_session<'a>(state: &AuthState, headers: &'a HeaderMap) -> Option<&'a str> {
    cookie(headers, super::session_cookie_name(state.secure_cookies)).filter(|s| !s.is_empty())
}

#[derive(Template, WebTemplate)]
#[template(path = "account/show.html")]
struct AccountPage {
    chrome: Chrome,
    user: User,
    has_password: bool,
    sessions: usize,
    min_len: usize,
    errors: FieldErrors,
}

async fn account_page(
    state: &AuthState,
    page: Page,
    headers: &HeaderMap,
    errors: FieldErrors,
) -> AppResult<AccountPage> {
    let has_password = account::has_local_password(&state.db, &page.user.id).await?;
    let sessions = account::my_sessions(state, &page.user, current_session(state, headers))
        .await?
        .len();
    Ok(AccountPage {
        chrome: page.chrome,
        user: page.user,
        has_password,
        sessions,
        min_len: super::MIN_PASSWORD_LEN,
        errors,
    })
}

async fn show_account(
    State(state): State<AuthState>,
    page: Page,
    headers: HeaderMap,
) -> AppResult<Response> {
    Ok(account_page(&state, page, &headers, FieldErrors::new())
        .await?
        .into_response())
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

async fn change_password(
    State(state): State<AuthState>,
    page: Page,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> AppResult<Response> {
    let changed = account::change_password(
        &state,
        &page.user,
        current_session(&state, &headers),
        client,
        (&form.current, &form.new, &form.confirm),
    )
    .await;
    match changed {
        Ok(changed) => {
            let others = match changed.ended_sessions {
                0 => "You had no other sessions.".to_owned(),
                1 => "Your 1 other session was signed out.".to_owned(),
                n => format!("Your {n} other sessions were signed out."),
            };
            Ok(redirect_with_flash(
                "/account",
                "ok",
                &format!("Your password is changed. {others} This session stays signed in."),
            ))
        }
        // The form holds only passwords, which are never sent back: the page names each rule.
        Err(AppError::Validation { fields, .. }) => {
            let html = account_page(&state, page, &headers, fields).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e),
    }
}

/// A session as listed: what its owner needs to recognise it.
struct SessionRow {
    public_id: String,
    created_at: chrono::DateTime<chrono::Utc>,
    last_seen_at: chrono::DateTime<chrono::Utc>,
    client_addr: String,
    browser: String,
    user_agent: String,
    current: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "account/sessions.html")]
struct SessionsPage {
    chrome: Chrome,
    sessions: Vec<SessionRow>,
}

async fn list_sessions(
    State(state): State<AuthState>,
    page: Page,
    headers: HeaderMap,
) -> AppResult<Response> {
    let sessions = account::my_sessions(&state, &page.user, current_session(&state, &headers))
        .await?
        .into_iter()
        .map(|s| SessionRow {
            browser: account::describe_agent(&s.user_agent),
            public_id: s.public_id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            client_addr: s.client_addr,
            user_agent: s.user_agent,
            current: s.current,
        })
        .collect();
    Ok(SessionsPage {
        chrome: page.chrome,
        sessions,
    }
    .into_response())
}

async fn end_session(
    State(state): State<AuthState>,
    page: Page,
    Path(id): Path<String>,
) -> AppResult<Response> {
    account::end_my_session(&state, &page.user, &id).await?;
    Ok(redirect_with_flash(
        "/account/sessions",
        "ok",
        "That session is signed out.",
    ))
}

async fn end_other_sessions(
    State(state): State<AuthState>,
    page: Page,
    headers: HeaderMap,
) -> AppResult<Response> {
    let ended =
        account::end_my_other_sessions(&state, &page.user, current_session(&state, &headers))
            .await?;
    let message = match ended {
        0 => "You had no other sessions.".to_owned(),
        1 => "Signed out 1 other session; this one stays.".to_owned(),
        n => format!("Signed out {n} other sessions; this one stays."),
    };
    Ok(redirect_with_flash("/account/sessions", "ok", &message))
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/reset.html")]
struct ResetPage {
    chrome: Chrome,
    token: String,
    email: String,
    min_len: usize,
    errors: FieldErrors,
}

async fn show_reset(
    State(state): State<AuthState>,
    page: PublicPage,
    Path(token): Path<String>,
) -> AppResult<Response> {
    let user = account::check_reset_link(&state.db, &token).await?;
    Ok(ResetPage {
        chrome: page.chrome,
        token,
        email: user.email,
        min_len: super::MIN_PASSWORD_LEN,
        errors: FieldErrors::new(),
    }
    .into_response())
}

#[derive(Debug, Deserialize)]
struct ResetForm {
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

async fn reset(
    State(state): State<AuthState>,
    page: PublicPage,
    Path(token): Path<String>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> AppResult<Response> {
    let origin = account::origin(client, &user_agent(&headers));
    let old_session = current_session(&state, &headers);
    let reset = account::reset_password(
        &state,
        &token,
        (&form.new, &form.confirm),
        &origin,
        old_session,
    );
    match reset.await {
        Ok(signed_in) => {
            let mut response = redirect_with_flash(
                "/",
                "ok",
                "Your new password is set. Every other session of yours was signed out.",
            );
            set_session_cookie(&mut response, &state, &signed_in.secret);
            Ok(response)
        }
        Err(AppError::Validation { fields, .. }) => {
            let user = account::check_reset_link(&state.db, &token).await?;
            let html = ResetPage {
                chrome: page.chrome,
                token,
                email: user.email,
                min_len: super::MIN_PASSWORD_LEN,
                errors: fields,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/reset_link.html")]
struct ResetLinkPage {
    chrome: Chrome,
    user: User,
    link: String,
    hours: i64,
}

async fn issue_reset_link(
    State(state): State<AuthState>,
    Admin(page): Admin,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let (user, secret) = account::issue_reset_link(&state.db, &page.user, &id).await?;
    let html = ResetLinkPage {
        chrome: page.chrome,
        user,
        link: format!("{}/reset/{secret}", state.base_url.trim_end_matches('/')),
        hours: account::RESET_LINK_HOURS,
    };
    // The link is in this body only; keep it out of caches.
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        html,
    )
        .into_response())
}

async fn end_all_sessions(
    State(state): State<AuthState>,
    Admin(page): Admin,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let (user, ended) = account::end_all_sessions(&state, &page.user, &id).await?;
    let sessions = if ended == 1 { "session" } else { "sessions" };
    Ok(redirect_with_flash(
        "/admin/users",
        "ok",
        &format!(
            "Signed {} out of {ended} {sessions}; their API tokens keep working.",
            user.email
        ),
    ))
}
