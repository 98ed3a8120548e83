//! Single sign-on pages: `/auth/oidc/start` (to the provider), `/auth/oidc/callback` (back
//! from it), the refusal page, and the page that forwards a signed-out browser to the
//! provider's end-session endpoint.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::AuthState;
use super::sso::{self, Callback, Refusal};
use super::web::{ClientAddr, safe_next, set_session_cookie};
use crate::error::AppResult;
use crate::web::chrome::{Chrome, cookie, redirect};
use crate::web::extract::{CallerState, PublicPage, Query};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AuthState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/auth/oidc/start", get(start))
        .route("/auth/oidc/callback", get(callback))
}

/// The cookie that ties a pending sign-in to the browser that started it.
fn state_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Secure-hindsight_oidc_state"
    } else {
        "hindsight_oidc_state"
    }
}

fn state_cookie(state: &AuthState, value: &str, max_age: i64) -> String {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    // SameSite=Lax: sent on the provider's top-level redirect back to the callback.
    format!(
        "{}={value}; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        state_cookie_name(state.secure_cookies)
    )
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/sso_refused.html")]
struct RefusedPage {
    chrome: Chrome,
    title: String,
    message: String,
    provider: String,
    retry: bool,
}

fn refused(state: &AuthState, chrome: Chrome, refusal: &Refusal) -> Response {
    let provider = state.oidc.as_ref().map_or_else(
        || "the sign-in provider".to_owned(),
        |o| o.settings.provider_name.clone(),
    );
    let (status, title, message, retry) = match refusal {
        Refusal::NotConfigured => (
            StatusCode::NOT_FOUND,
            "Single sign-on is not set up".to_owned(),
            "This Hindsight has no single sign-on provider configured. Sign in with your e-mail and password.".to_owned(),
            false,
        ),
        Refusal::Unreachable(name) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{name} cannot be reached"),
            format!("Hindsight could not reach {name} to sign you in. This is usually brief: try again in a minute. If it lasts, tell your Hindsight admin."),
            true,
        ),
        Refusal::Provider(reason) => (
            StatusCode::FORBIDDEN,
            "The sign-in did not complete".to_owned(),
            format!("{provider} did not sign you in ({reason}). If you declined, that is all: nothing was changed. Otherwise start again."),
            true,
        ),
        Refusal::BadState => (
            StatusCode::BAD_REQUEST,
            "This sign-in link has expired".to_owned(),
            "The sign-in was started in another browser or tab, took longer than 10 minutes, or was already used. Start again.".to_owned(),
            true,
        ),
        Refusal::Untrusted(_) => (
            StatusCode::FORBIDDEN,
            "The sign-in could not be verified".to_owned(),
            format!("The answer from {provider} did not pass Hindsight's checks (signature, issuer, audience, expiry), so you were not signed in. Try again; if it keeps happening, tell your Hindsight admin — the server log says which check failed."),
            true,
        ),
        Refusal::NoRole { who } => (
            StatusCode::FORBIDDEN,
            "No access to Hindsight".to_owned(),
            format!("{who}: your account is not in a group that may use Hindsight. Ask your Hindsight admin (or whoever manages groups in {provider}) to add you to one."),
            false,
        ),
        Refusal::Disabled { who } => (
            StatusCode::FORBIDDEN,
            "This account is disabled".to_owned(),
            format!("{who} is disabled in Hindsight. Ask a Hindsight admin to enable it."),
            false,
        ),
        Refusal::NoEmail => (
            StatusCode::FORBIDDEN,
            "No e-mail address from the provider".to_owned(),
            format!("{provider} did not share your e-mail address, which Hindsight needs for a new account. Ask your admin to include the email scope and claim."),
            false,
        ),
        Refusal::EmailTaken { email } => (
            StatusCode::CONFLICT,
            "An account with this e-mail already exists".to_owned(),
            format!("Hindsight already has an account for {email} that is not linked to {provider}, and {provider} does not say the address is verified (or the account is linked to someone else), so it was not linked. Ask a Hindsight admin."),
            false,
        ),
    };
    let page = RefusedPage {
        chrome,
        title,
        message,
        provider,
        retry,
    };
    let mut response = (status, page).into_response();
    // Expire the pending-state cookie: the state is used up.
    if let Ok(v) = state_cookie(state, "", 0).parse() {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

#[derive(Debug, Deserialize)]
struct StartQuery {
    #[serde(default)]
    next: String,
}

async fn start(
    State(state): State<AuthState>,
    page: PublicPage,
    Query(q): Query<StartQuery>,
) -> AppResult<Response> {
    let next = safe_next(&q.next);
    match sso::start(&state, &next).await? {
        Ok((url, pending_state)) => {
            let mut response = redirect(&url);
            if let Ok(v) =
                state_cookie(&state, &pending_state, sso::PENDING_TTL_MINUTES * 60).parse()
            {
                response.headers_mut().append(SET_COOKIE, v);
            }
            Ok(response)
        }
        Err(refusal) => Ok(refused(&state, page.chrome, &refusal)),
    }
}

#[derive(Debug, Default, Deserialize)]
struct CallbackQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

async fn callback(
    State(state): State<AuthState>,
    page: PublicPage,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> AppResult<Response> {
    let old_session = cookie(&headers, super::session_cookie_name(state.secure_cookies));
    let cb = Callback {
        state: q.state,
        code: q.code,
        error: q.error.chars().take(100).collect(),
        error_description: q.error_description.chars().take(200).collect(),
        cookie_state: cookie(&headers, state_cookie_name(state.secure_cookies)).map(str::to_owned),
        user_agent: super::web::user_agent(&headers),
    };
    match sso::finish(&state, cb, client, old_session).await? {
        Ok(done) => {
            let mut response = redirect(&safe_next(&done.next));
            set_session_cookie(&mut response, &state, &done.signed_in.secret);
            if let Ok(v) = state_cookie(&state, "", 0).parse() {
                response.headers_mut().append(SET_COOKIE, v);
            }
            Ok(response)
        }
        Err(refusal) => Ok(refused(&state, page.chrome, &refusal)),
    }
}
