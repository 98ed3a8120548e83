//! Single sign-on operations: start a sign-in (pending state kept on the server), finish it
//! (state used once, claims verified by `oidc`), and the just-in-time account — created on
//! the first sign-in, name and role refreshed from the claims on every later one, refused
//! (and audited) when no group maps to a role. No axum: `oidc_web.rs` renders the outcomes.

use std::net::IpAddr;
use std::sync::Arc;

use super::oidc::{Identity, Oidc, OidcError};
use super::{AuthState, Role, SignedIn, User, db};
use crate::error::{AppError, AppResult};

/// How long a sign-in may take at the provider before its state expires.
pub const PENDING_TTL_MINUTES: i64 = 10;

/// Why a single sign-on did not sign anyone in: each is a page with a way back, never a 500.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Single sign-on is not configured.
    NotConfigured,
    /// The provider cannot be reached (discovery or token endpoint).
    Unreachable(String),
    /// The person said no at the provider, or the provider refused (`error=` on the callback
    /// or from the token endpoint: denied consent, expired or used code).
    Provider(String),
    /// Missing, unknown, expired or reused state, or it does not belong to this browser.
    BadState,
    /// The ID token failed a check (signature, issuer, audience, expiry, nonce).
    Untrusted(String),
    /// No group of theirs maps to a role and the default is `deny`.
    NoRole { who: String },
    /// The account is disabled in Hindsight.
    Disabled { who: String },
    /// The provider gave no e-mail address (needed for a new account).
    NoEmail,
    /// A local account has this address, and the provider does not say it is verified (or
    /// it is linked to another identity already): not linked automatically.
    EmailTaken { email: String },
}

impl Refusal {
    /// A short name for the audit log and the logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::Unreachable(_) => "unreachable",
            Self::Provider(_) => "provider_error",
            Self::BadState => "bad_state",
            Self::Untrusted(_) => "untrusted_token",
            Self::NoRole { .. } => "no_mapped_group",
            Self::Disabled { .. } => "disabled",
            Self::NoEmail => "no_email",
            Self::EmailTaken { .. } => "email_taken",
        }
    }
}

impl From<OidcError> for Refusal {
    fn from(e: OidcError) -> Self {
        match e {
            OidcError::Unreachable(name) => Self::Unreachable(name),
            OidcError::Refused(reason) => Self::Provider(reason),
            OidcError::BadState => Self::BadState,
            OidcError::Untrusted(reason) => Self::Untrusted(reason),
        }
    }
}

fn provider(state: &AuthState) -> Result<Arc<Oidc>, Refusal> {
    state.oidc.clone().ok_or(Refusal::NotConfigured)
}

/// Starts a sign-in: the URL to send the browser to and the state (also set in a cookie, so
/// the callback only completes in the browser that started it).
pub async fn start(state: &AuthState, next: &str) -> AppResult<Result<(String, String), Refusal>> {
    let oidc = match provider(state) {
        Ok(o) => o,
        Err(r) => return Ok(Err(r)),
    };
    let started = match tokio::task::spawn_blocking(move || oidc.start()).await? {
        Ok(s) => s,
        Err(e) => return Ok(Err(e.into())),
    };
    let mut tx = state.db.begin_write().await?;
    db::insert_oidc_login(
        &mut tx,
        &started.state,
        &started.nonce,
        &started.pkce_verifier,
        next,
        chrono::Duration::minutes(PENDING_TTL_MINUTES),
    )
    .await?;
    tx.commit().await?;
    Ok(Ok((started.url, started.state)))
}

/// What the provider sent back to `/auth/oidc/callback`.
#[derive(Debug, Clone, Default)]
pub struct Callback {
    pub state: String,
    pub code: String,
    /// `error` (and `error_description`) when the provider refused.
    pub error: String,
    pub error_description: String,
    /// The state this browser's cookie holds.
    pub cookie_state: Option<String>,
    /// The browser's User-Agent, kept with the session for "Your sessions".
    pub user_agent: String,
}

/// A finished single sign-on: the session, where to go, and whether the account is new.
#[derive(Debug, Clone)]
pub struct SsoSignedIn {
    pub signed_in: SignedIn,
    pub next: String,
    pub created: bool,
}

/// Finishes a sign-in. Every refusal is audited (`sso.refused`, with its reason; never a
/// token) and logged; the state is used up whatever happens.
pub async fn finish(
    state: &AuthState,
    cb: Callback,
    client: Option<IpAddr>,
    old_session: Option<&str>,
) -> AppResult<Result<SsoSignedIn, Refusal>> {
    let client_text = client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let outcome = attempt(state, cb, client, old_session).await?;
    if let Err(refusal) = &outcome {
        let (target, detail) = match refusal {
            Refusal::NoRole { who } | Refusal::Disabled { who } => (who.clone(), String::new()),
            Refusal::EmailTaken { email } => (email.clone(), String::new()),
            Refusal::Provider(r) | Refusal::Untrusted(r) | Refusal::Unreachable(r) => {
                (String::new(), r.chars().take(200).collect())
            }
            _ => (String::new(), String::new()),
        };
        tracing::warn!(reason = refusal.code(), who = %target, detail = %detail, client = %client_text, "single sign-on refused");
        let mut tx = state.db.begin_write().await?;
        db::audit(
            &mut tx,
            None,
            "sso.refused",
            &target,
            &format!(
                "{}{}{detail}, from {client_text}",
                refusal.code(),
                if detail.is_empty() { "" } else { ": " }
            ),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(outcome)
}

async fn attempt(
    state: &AuthState,
    cb: Callback,
    client: Option<IpAddr>,
    old_session: Option<&str>,
) -> AppResult<Result<SsoSignedIn, Refusal>> {
    let oidc = match provider(state) {
        Ok(o) => o,
        Err(r) => return Ok(Err(r)),
    };
    let provider_error = (!cb.error.is_empty()).then(|| {
        let text = if cb.error_description.is_empty() {
            cb.error.clone()
        } else {
            format!("{} ({})", cb.error, cb.error_description)
        };
        Refusal::Provider(text.chars().take(300).collect())
    });
    // Some providers leave the state out of an error answer (consent denied); such an answer
    // signs nobody in, so it is shown as what it is rather than as a bad state.
    if cb.state.is_empty()
        && let Some(refusal) = provider_error
    {
        return Ok(Err(refusal));
    }
    // The state is taken (deleted) first, whatever follows: it can never be used twice.
    let pending = if cb.state.is_empty() || cb.state.len() > 200 {
        None
    } else {
        let mut tx = state.db.begin_write().await?;
        let pending = db::take_oidc_login(&mut tx, &cb.state).await?;
        tx.commit().await?;
        pending
    };
    let Some(pending) = pending else {
        return Ok(Err(Refusal::BadState));
    };
    if cb.cookie_state.as_deref() != Some(cb.state.as_str()) {
        return Ok(Err(Refusal::BadState));
    }
    if let Some(refusal) = provider_error {
        return Ok(Err(refusal));
    }
    if cb.code.is_empty() {
        return Ok(Err(Refusal::Provider("no authorization code".into())));
    }
    let cb_user_agent = cb.user_agent;
    let (code, nonce, verifier) = (cb.code, pending.nonce, pending.pkce_verifier);
    let identity =
        match tokio::task::spawn_blocking(move || oidc.finish(&code, &nonce, &verifier)).await? {
            Ok(identity) => identity,
            Err(e) => return Ok(Err(e.into())),
        };
    let settings = &provider(state)
        .map_err(|_| AppError::Internal("provider vanished".into()))?
        .settings;
    let who = identity
        .email
        .clone()
        .unwrap_or_else(|| identity.subject.clone());
    let Some(role) = settings.role_for(&identity.groups) else {
        return Ok(Err(Refusal::NoRole { who }));
    };
    let (user, created) = match account_for(state, &identity, role).await? {
        Ok(found) => found,
        Err(refusal) => return Ok(Err(refusal)),
    };

    let mut tx = state.db.begin_write().await?;
    if let Some(old) = old_session {
        db::delete_session(&mut tx, old).await?;
        state.sessions.remove(old);
    }
    // Like a password sign-in, the session keeps where it came from for "Your sessions".
    let origin = super::account::origin(client, &cb_user_agent);
    let secret = db::create_session_from(&mut tx, &user.id, state.session_ttl, &origin).await?;
    db::set_session_id_token(&mut tx, &secret, &identity.id_token).await?;
    db::audit(
        &mut tx,
        Some(&user.id),
        "sso.login",
        &user.email,
        &format!(
            "{} via {}, role {}{}",
            if created {
                "first sign-in"
            } else {
                "signed in"
            },
            settings.provider_name,
            user.role,
            if identity.groups.is_empty() {
                String::new()
            } else {
                format!(
                    " from groups {}",
                    identity
                        .groups
                        .join(", ")
                        .chars()
                        .take(300)
                        .collect::<String>()
                )
            }
        ),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, created, "single sign-on succeeded");
    Ok(Ok(SsoSignedIn {
        signed_in: SignedIn { user, secret },
        next: pending.next,
        created,
    }))
}

/// The account for this identity: linked by issuer + subject; else a local account with
/// the same e-mail, linked only when the provider says the address is verified; else a new
/// one. Name and role follow the claims (never demoting the last enabled admin).
async fn account_for(
    state: &AuthState,
    identity: &Identity,
    role: Role,
) -> AppResult<Result<(User, bool), Refusal>> {
    let who = identity
        .email
        .clone()
        .unwrap_or_else(|| identity.subject.clone());
    let linked =
        db::find_oidc_account(&state.db.reader, &identity.issuer, &identity.subject).await?;
    let existing = match linked {
        Some(account) => Some(account),
        None => match &identity.email {
            Some(email) => match db::find_account_by_email(&state.db.reader, email).await? {
                Some(account) if account.oidc_subject.is_none() && identity.email_verified => {
                    Some(account)
                }
                Some(_) => {
                    return Ok(Err(Refusal::EmailTaken {
                        email: email.clone(),
                    }));
                }
                None => None,
            },
            None => None,
        },
    };
    let name = identity
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| who.split('@').next().unwrap_or(&who).to_owned());
    let name: String = name.trim().chars().take(100).collect();

    let mut tx = state.db.begin_write().await?;
    let result = match existing {
        Some(account) => {
            if account.disabled {
                return Ok(Err(Refusal::Disabled { who }));
            }
            if account.oidc_subject.is_none() {
                db::link_oidc(
                    &mut tx,
                    &account.user.id,
                    &identity.issuer,
                    &identity.subject,
                )
                .await?;
                db::audit(
                    &mut tx,
                    Some(&account.user.id),
                    "sso.link",
                    &account.user.email,
                    "existing account linked on its first single sign-on (verified e-mail)",
                )
                .await?;
            }
            let mut new_role = role;
            if account.user.role == Role::Admin
                && role != Role::Admin
                && db::count_active_admins(&mut tx).await? <= 1
            {
                tracing::warn!(user_id = %account.user.id, "single sign-on would demote the last admin; the role stays admin");
                new_role = Role::Admin;
            }
            db::update_from_claims(&mut tx, &account.user.id, &name, new_role).await?;
            if new_role != account.user.role {
                db::audit(
                    &mut tx,
                    Some(&account.user.id),
                    "user.role",
                    &account.user.email,
                    &format!(
                        "{} → {new_role} (from the provider's groups)",
                        account.user.role
                    ),
                )
                .await?;
            }
            let user = User {
                name,
                role: new_role,
                ..account.user
            };
            (user, false)
        }
        None => {
            let Some(email) = identity
                .email
                .clone()
                .filter(|e| super::validate_email(e).is_ok())
            else {
                return Ok(Err(Refusal::NoEmail));
            };
            let user = match db::insert_sso_user(
                &mut tx,
                &email,
                &name,
                role,
                &identity.issuer,
                &identity.subject,
            )
            .await
            {
                Ok(user) => user,
                // Taken between the look-up and now: the same refusal as above.
                Err(AppError::Validation { .. }) => {
                    return Ok(Err(Refusal::EmailTaken { email }));
                }
                Err(e) => return Err(e),
            };
            db::audit(
                &mut tx,
                None,
                "user.create",
                &user.email,
                &format!("single sign-on, {role}"),
            )
            .await?;
            (user, true)
        }
    };
    tx.commit().await?;
    // Open sessions learn the new name and role at once.
    state.sessions.remove_user(&result.0.id);
    Ok(Ok(result))
}

/// Ends the local session and returns the provider's end-session URL when it has one.
pub async fn logout(state: &AuthState, secret: Option<&str>) -> AppResult<Option<String>> {
    let id_token = match secret {
        Some(s) => db::session_id_token(&state.db.reader, s).await?,
        None => None,
    };
    super::logout(state, secret).await?;
    let (Some(oidc), Some(id_token)) = (state.oidc.clone(), id_token) else {
        return Ok(None);
    };
    Ok(tokio::task::spawn_blocking(move || oidc.end_session_url(Some(&id_token))).await?)
}

/// Marks or unmarks a break-glass admin (command line): they may sign in with a password
/// while `HINDSIGHT_LOCAL_LOGIN=false`.
pub async fn set_break_glass(db: &crate::db::Db, email: &str, on: bool) -> AppResult<User> {
    let user = db::find_user_by_email(&db.reader, email)
        .await?
        .ok_or_else(|| AppError::not_found("user", email))?;
    if on && user.role != Role::Admin {
        return Err(AppError::field(
            "email",
            "only an admin can be break-glass; make them admin first",
        ));
    }
    let mut tx = db.begin_write().await?;
    db::set_break_glass(&mut tx, &user.email, on).await?;
    db::audit(
        &mut tx,
        None,
        if on {
            "user.break_glass"
        } else {
            "user.break_glass_off"
        },
        &user.email,
        "command line",
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}
