//! Your account: changing your password, admin reset links, `hindsight user set-password`,
//! and the sessions a person (or an admin for them) can see and end. Every operation is one
//! write transaction with its audit entry; API tokens are never touched by any of them.

use std::net::IpAddr;
use std::time::Instant;

use super::limiter::Refusal;
use super::{AuthState, SignedIn, User, db, hash_password, validate_password, verify_password};
use crate::db::Db;
use crate::error::{AppError, AppResult, FieldErrors};

/// How long an admin's password reset link works.
pub const RESET_LINK_HOURS: i64 = 24;

/// User-Agent headers are cut to this many characters before they are stored.
const MAX_USER_AGENT: usize = 300;

/// Where a session is started from, as stored: the address as text and the User-Agent cut to
/// length with control characters dropped (it is shown on a page and is the client's word).
pub fn origin(client: Option<IpAddr>, user_agent: &str) -> db::SessionOrigin {
    db::SessionOrigin {
        client_addr: client.map(|ip| ip.to_string()).unwrap_or_default(),
        user_agent: user_agent
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_USER_AGENT)
            .collect::<String>()
            .trim()
            .to_owned(),
    }
}

/// A short, readable name for a User-Agent ("Firefox on Linux"), so people recognise their
/// devices; the full header is shown beside it. Order matters: Edge and Opera also say
/// "Chrome", Chrome also says "Safari".
pub fn describe_agent(user_agent: &str) -> String {
    if user_agent.is_empty() {
        return "Unknown browser".to_owned();
    }
    let has = |needle: &str| user_agent.contains(needle);
    let browser = if has("Edg/") {
        "Edge"
    } else if has("OPR/") {
        "Opera"
    } else if has("Firefox/") {
        "Firefox"
    } else if has("Chrome/") || has("Chromium/") {
        "Chrome"
    } else if has("Safari/") {
        "Safari"
    } else if has("curl/") {
        "curl"
    } else {
        return user_agent.chars().take(40).collect();
    };
    let system = if has("Android") {
        "Android"
    } else if has("iPhone") || has("iPad") {
        "iOS"
    } else if has("Windows") {
        "Windows"
    } else if has("Mac OS X") || has("Macintosh") {
        "macOS"
    } else if has("CrOS") {
        "ChromeOS"
    } else if has("Linux") {
        "Linux"
    } else {
        return browser.to_owned();
    };
    format!("{browser} on {system}")
}

/// Whether a stored hash is a real password (accounts made by single sign-on and demo people
/// have a `!…` marker that no password matches).
pub fn is_local_password(hash: &str) -> bool {
    !hash.starts_with('!')
}

/// Whether the user has a password they could sign in with (and so change).
pub async fn has_local_password(db: &Db, user_id: &str) -> AppResult<bool> {
    Ok(db::password_hash_of(&db.reader, user_id)
        .await?
        .is_some_and(|hash| is_local_password(&hash)))
}

/// The new password and its repetition, checked against the rules; errors on `new` and
/// `confirm`.
fn check_new(new: &str, confirm: &str, errors: &mut FieldErrors) {
    if let Err(msg) = validate_password(new) {
        errors.insert("new".into(), msg);
    }
    if new != confirm {
        errors.insert("confirm".into(), "does not match the new password".into());
    }
}

async fn hash(password: &str) -> AppResult<String> {
    let password = password.to_owned();
    Ok(tokio::task::spawn_blocking(move || hash_password(&password)).await?)
}

/// What a password change did.
#[derive(Debug, Clone, Copy)]
pub struct Changed {
    /// How many of the user's other sessions ended.
    pub ended_sessions: u64,
}

/// Changes the signed-in user's password: the current one is required (checked like a sign-in,
/// so a borrowed session cannot guess it faster than the sign-in page allows), the new one
/// meets the rules and is typed twice. Every other session of the user ends; the one with
/// `current_session` stays.
pub async fn change_password(
    state: &AuthState,
    user: &User,
    current_session: Option<&str>,
    client: Option<IpAddr>,
    (current, new, confirm): (&str, &str, &str),
) -> AppResult<Changed> {
    let stored = db::password_hash_of(&state.db.reader, &user.id)
        .await?
        .ok_or_else(|| AppError::missing("user"))?;
    if !is_local_password(&stored) {
        return Err(AppError::Forbidden(
            "Your account has no Hindsight password: you sign in through single sign-on, so \
             change your password there."
                .into(),
        ));
    }
    let mut errors = FieldErrors::new();
    check_new(new, confirm, &mut errors);
    if errors.is_empty() && new == current {
        errors.insert(
            "new".into(),
            "must differ from your current password".into(),
        );
    }
    if current.len() > super::passwords::MAX_PASSWORD_BYTES {
        errors.insert("current".into(), "is not your current password".into());
        return Err(AppError::fields(errors));
    }

    let attempt = match state.limiter.begin(&user.email, client, Instant::now()) {
        Ok(attempt) => attempt,
        Err(Refusal::Busy) => {
            return Err(AppError::RateLimited {
                retry_after_secs: 1,
            });
        }
        Err(Refusal::Throttled {
            retry_after_secs, ..
        }) => {
            tracing::warn!(user_id = %user.id, "password change throttled: too many wrong current passwords");
            return Err(AppError::RateLimited { retry_after_secs });
        }
    };
    let typed = current.to_owned();
    let ok = tokio::task::spawn_blocking(move || verify_password(&typed, &stored)).await?;
    if ok {
        attempt.succeeded(Instant::now());
    } else {
        attempt.failed();
        tracing::warn!(user_id = %user.id, "password change refused: current password not right");
        errors.insert("current".into(), "is not your current password".into());
    }
    if !errors.is_empty() {
        return Err(AppError::fields(errors));
    }

    let new_hash = hash(new).await?;
    let mut tx = state.db.begin_write().await?;
    db::set_password_hash(&mut tx, &user.id, &new_hash).await?;
    let ended = db::delete_user_sessions(&mut tx, &user.id, current_session).await?;
    db::audit(
        &mut tx,
        Some(&user.id),
        "password.change",
        &user.email,
        &format!("{ended} other sessions ended"),
    )
    .await?;
    tx.commit().await?;
    // Cached sessions of the user are forgotten, so the ended ones stop at once.
    state.sessions.remove_user(&user.id);
    Ok(Changed {
        ended_sessions: ended,
    })
}

/// Makes a one-time reset link secret for a user (an admin's action; shown once). The user's
/// older unused links stop working. A disabled account gets none: enable it first.
pub async fn issue_reset_link(db: &Db, admin: &User, user_id: &str) -> AppResult<(User, String)> {
    let target = db::find_user(&db.reader, user_id)
        .await?
        .ok_or_else(|| AppError::missing("user"))?;
    let accounts = db::list_accounts(&db.reader).await?;
    if accounts
        .iter()
        .any(|a| a.user.id == target.id && a.disabled_at.is_some())
    {
        return Err(AppError::Forbidden(format!(
            "{} is disabled: enable the account before making a reset link.",
            target.email
        )));
    }
    let mut tx = db.begin_write().await?;
    let secret = db::create_password_reset(
        &mut tx,
        &target.id,
        Some(&admin.id),
        chrono::Duration::hours(RESET_LINK_HOURS),
    )
    .await?;
    db::audit(
        &mut tx,
        Some(&admin.id),
        "password.reset_link",
        &target.email,
        &format!("valid {RESET_LINK_HOURS} hours"),
    )
    .await?;
    tx.commit().await?;
    Ok((target, secret))
}

fn reset_link_gone() -> AppError {
    AppError::not_found(
        "this password reset link",
        ": it is invalid, expired or already used. Ask an admin for a new one",
    )
}

/// The user a reset link is for; 404 when it is invalid, expired or used.
pub async fn check_reset_link(db: &Db, secret: &str) -> AppResult<User> {
    db::password_reset_user(&db.reader, secret)
        .await?
        .ok_or_else(reset_link_gone)
}

/// Sets a new password through a reset link (used up at once), ends every session of the
/// user, and signs them in with a new one; a session the browser already had (`old_session`,
/// perhaps someone else's) ends too, as at sign-in.
pub async fn reset_password(
    state: &AuthState,
    secret: &str,
    (new, confirm): (&str, &str),
    origin: &db::SessionOrigin,
    old_session: Option<&str>,
) -> AppResult<SignedIn> {
    let user = check_reset_link(&state.db, secret).await?;
    let mut errors = FieldErrors::new();
    check_new(new, confirm, &mut errors);
    if !errors.is_empty() {
        return Err(AppError::fields(errors));
    }
    let new_hash = hash(new).await?;
    let mut tx = state.db.begin_write().await?;
    let Some(user_id) = db::consume_password_reset(&mut tx, secret).await? else {
        return Err(reset_link_gone());
    };
    db::set_password_hash(&mut tx, &user_id, &new_hash).await?;
    let ended = db::delete_user_sessions(&mut tx, &user_id, None).await?;
    if let Some(old) = old_session {
        db::delete_session(&mut tx, old).await?;
    }
    db::audit(
        &mut tx,
        Some(&user_id),
        "password.reset",
        &user.email,
        &format!("with a reset link; {ended} sessions ended"),
    )
    .await?;
    let session = db::create_session_from(&mut tx, &user_id, state.session_ttl, origin).await?;
    tx.commit().await?;
    state.sessions.remove_user(&user_id);
    if let Some(old) = old_session {
        state.sessions.remove(old);
    }
    tracing::info!(user_id = %user_id, "password reset with a link");
    Ok(SignedIn {
        user,
        secret: session,
    })
}

/// Sets a user's password from the command line (`hindsight user set-password`) and ends all
/// their sessions; returns the user and how many sessions ended. A running server may still
/// let an ended session through for the few seconds its session cache keeps an entry.
pub async fn set_password(db: &Db, email: &str, password: &str) -> AppResult<(User, u64)> {
    validate_password(password).map_err(|msg| AppError::field("password", msg))?;
    let user = db::find_user_by_email(&db.reader, email)
        .await?
        .ok_or_else(|| AppError::not_found("user with the email", email.trim()))?;
    let new_hash = hash(password).await?;
    let mut tx = db.begin_write().await?;
    db::set_password_hash(&mut tx, &user.id, &new_hash).await?;
    let ended = db::delete_user_sessions(&mut tx, &user.id, None).await?;
    db::audit(
        &mut tx,
        None,
        "password.set",
        &user.email,
        &format!("command line; {ended} sessions ended"),
    )
    .await?;
    tx.commit().await?;
    Ok((user, ended))
}

/// The user's live sessions, the current one marked.
pub async fn my_sessions(
    state: &AuthState,
    user: &User,
    current_session: Option<&str>,
) -> AppResult<Vec<db::SessionInfo>> {
    db::list_sessions(
        &state.db.reader,
        &user.id,
        current_session,
        state.session_idle,
    )
    .await
}

/// Ends one of the user's own sessions by its public id; 404 when the user has no session
/// with that id (someone else's id is as unknown as a made-up one).
pub async fn end_my_session(state: &AuthState, user: &User, public_id: &str) -> AppResult<()> {
    let mut tx = state.db.begin_write().await?;
    if !db::delete_session_by_public_id(&mut tx, &user.id, public_id).await? {
        return Err(AppError::missing("session"));
    }
    db::audit(&mut tx, Some(&user.id), "session.end", &user.email, "").await?;
    tx.commit().await?;
    state.sessions.remove_user(&user.id);
    Ok(())
}

/// Ends every session of the user except the current one; returns how many ended.
pub async fn end_my_other_sessions(
    state: &AuthState,
    user: &User,
    current_session: Option<&str>,
) -> AppResult<u64> {
    let mut tx = state.db.begin_write().await?;
    let ended = db::delete_user_sessions(&mut tx, &user.id, current_session).await?;
    db::audit(
        &mut tx,
        Some(&user.id),
        "session.end_others",
        &user.email,
        &format!("{ended} sessions ended"),
    )
    .await?;
    tx.commit().await?;
    state.sessions.remove_user(&user.id);
    Ok(ended)
}

/// An admin ends every session of a user (API tokens keep working); returns the user and how
/// many sessions ended.
pub async fn end_all_sessions(
    state: &AuthState,
    admin: &User,
    user_id: &str,
) -> AppResult<(User, u64)> {
    let target = db::find_user(&state.db.reader, user_id)
        .await?
        .ok_or_else(|| AppError::missing("user"))?;
    let mut tx = state.db.begin_write().await?;
    let ended = db::delete_user_sessions(&mut tx, &target.id, None).await?;
    db::audit(
        &mut tx,
        Some(&admin.id),
        "user.end_sessions",
        &target.email,
        &format!("{ended} sessions ended"),
    )
    .await?;
    tx.commit().await?;
    state.sessions.remove_user(&target.id);
    Ok((target, ended))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_origin_is_bounded_and_has_no_control_characters() {
        let ua = format!("Mozilla/5.0\r\n{}", "x".repeat(1000));
        let stored = origin(Some("203.0.113.7".parse().expect("ip")), &ua);
        assert_eq!(stored.client_addr, "203.0.113.7");
        assert!(stored.user_agent.starts_with("Mozilla/5.0xxx"));
        assert_eq!(stored.user_agent.chars().count(), MAX_USER_AGENT);
        assert_eq!(origin(None, "").client_addr, "");
    }

    #[test]
    fn agents_are_named_as_people_know_them() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_agent(firefox), "Firefox on Linux");
        assert_eq!(describe_agent(edge), "Edge on Windows");
        assert_eq!(describe_agent(iphone), "Safari on iOS");
        assert_eq!(describe_agent(""), "Unknown browser");
    }

    #[test]
    fn marker_hashes_are_not_local_passwords() {
        assert!(!is_local_password("!sso"));
        assert!(!is_local_password("!demo-no-login"));
        assert!(is_local_password(&hash_password("correct horse battery")));
    }
}
