//! Accounts and access: roles, passwords, sessions and API tokens (types and rules; no axum).

pub mod account;
pub mod account_web;
pub mod db;
pub mod limiter;
pub mod oidc;
pub mod oidc_web;
pub mod passwords;
pub mod proxies;
pub mod sessions;
pub mod sso;
pub mod web;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use limiter::LoginLimiter;
use limiter::Refusal;
use sessions::SessionCache;

use crate::db::Db;
use crate::error::{AppError, AppResult, FieldErrors};

/// What the sign-in, setup and admin pages need, taken from the app state by `app.rs`.
#[derive(Clone)]
pub struct AuthState {
    pub db: Db,
    pub sessions: Arc<SessionCache>,
    pub limiter: Arc<LoginLimiter>,
    /// How long a session lives (and its cookie).
    pub session_ttl: Duration,
    /// Cookies carry `Secure` (and the session cookie the `__Host-` prefix) when the base URL
    /// is https.
    pub secure_cookies: bool,
    /// Whose forwarding headers name the client (for the sign-in limiter and the logs).
    pub trusted_proxies: Arc<proxies::TrustedProxies>,
    /// A session idle this long is over (not listed on "Your sessions").
    pub session_idle: Duration,
    /// Where Hindsight is reached (`HINDSIGHT_BASE_URL`), for the links it hands out.
    pub base_url: String,
    /// The OpenID Connect provider, when single sign-on is configured.
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// Whether people may sign in with a password (`HINDSIGHT_LOCAL_LOGIN`); when not, only
    /// break-glass admins may.
    pub local_login: bool,
}

/// The session cookie's name: with the `__Host-` prefix on https, so the browser only accepts
/// it Secure, for the whole site and from this host alone (no sibling subdomain can plant one).
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-hindsight_session"
    } else {
        "hindsight_session"
    }
}

choice! {
    /// What a user may do. Ordered: each role can do everything the previous one can.
    pub enum Role, "role" {
        Viewer = "viewer",
        Responder = "responder",
        Admin = "admin",
    }
}

impl Role {
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Viewer => "reads everything, changes nothing",
            Self::Responder => {
                "declares and edits incidents, timelines, post-mortems, action items"
            }
            Self::Admin => "also manages users, tokens, services, categories and templates",
        }
    }
}

choice! {
    /// What an API token may be used for.
    pub enum Scope, "scope" {
        /// GET endpoints.
        Read = "read",
        /// GET and changes (bounded by the owner's role).
        Write = "write",
        /// Pushing metric events and alert webhooks only.
        Ingest = "ingest",
    }
}

/// A signed-in person (from a session) or the owner of an API token.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
}

impl User {
    /// Fails with 403 unless the user has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), AppError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "This needs the {role} role; you are a {}.",
                self.role
            )))
        }
    }

    pub fn can_write(&self) -> bool {
        self.role >= Role::Responder
    }

    /// Whether this person may be named to act on an incident: its commander, an action item's
    /// owner, a post-mortem's reviewer. A viewer cannot change anything, so naming one would
    /// leave the work stalled with someone who cannot do it.
    pub fn can_be_assigned(&self) -> bool {
        self.can_write()
    }

    /// The refusal when someone who cannot act is named (`what`: "commander", "owner", …).
    pub fn assignment_refusal(&self, what: &str) -> String {
        format!(
            "{} is a viewer and cannot act on incidents: choose a responder or admin as {what}",
            self.name
        )
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A new random secret with `bytes` bytes of entropy, hex-encoded, behind a readable prefix.
pub fn random_secret(prefix: &str, bytes: usize) -> Result<String, AppError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| AppError::Internal(format!("no randomness available: {e}")))?;
    Ok(format!("{prefix}{}", hex(&buf)))
}

/// SHA-256 of a secret, hex-encoded: what we store instead of session ids and tokens. A fast
/// hash is right here because the secrets are long random strings, not passwords.
pub fn secret_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Argon2id hash (OWASP minimum parameters); slow on purpose, so call it off the async runtime.
pub fn hash_password(password: &str) -> String {
    password_auth::generate_hash(password)
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    password_auth::verify_password(password, hash).is_ok()
}

/// Validated input for a new account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password: String,
}

pub use passwords::MIN_PASSWORD_LEN;

impl NewUser {
    pub fn parse(email: &str, name: &str, role: &str, password: &str) -> Result<Self, AppError> {
        let mut errors = FieldErrors::new();
        let email = email.trim().to_owned();
        if let Err(msg) = validate_email(&email) {
            errors.insert("email".into(), msg.into());
        }
        let name = name.trim().to_owned();
        if name.is_empty() {
            errors.insert("name".into(), "must not be empty".into());
        } else if name.chars().count() > 100 {
            errors.insert("name".into(), "must be at most 100 characters".into());
        }
        let role_parsed = Role::parse(role.trim());
        if role_parsed.is_none() {
            errors.insert("role".into(), Role::field_error());
        }
        if let Err(msg) = validate_password(password) {
            errors.insert("password".into(), msg);
        }
        match role_parsed {
            Some(role) if errors.is_empty() => Ok(Self {
                email,
                name,
                role,
                password: password.to_owned(),
            }),
            _ => Err(AppError::fields(errors)),
        }
    }
}

pub fn validate_email(email: &str) -> Result<(), &'static str> {
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(())
    } else {
        Err("must be an email address like name@example.com")
    }
}

/// The rules for every new password (length bounded both ways, not a common password).
pub fn validate_password(password: &str) -> Result<(), String> {
    passwords::check(password)
}

/// Who makes an account change: an admin on the pages, or whoever runs the command line.
#[derive(Debug, Clone, Copy)]
pub enum By<'a> {
    Admin(&'a User),
    CommandLine,
}

impl By<'_> {
    fn actor_id(&self) -> Option<&str> {
        match self {
            Self::Admin(user) => Some(&user.id),
            Self::CommandLine => None,
        }
    }
}

/// A session just started: who, and the secret for the cookie.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub secret: String,
}

/// The refusal of a password sign-in while `HINDSIGHT_LOCAL_LOGIN=false`.
pub const LOCAL_LOGIN_OFF: &str = "Password sign-in is turned off here: use single sign-on. Only break-glass admins can sign in with a password.";

/// A real Argon2id hash, verified against when the email is unknown.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("no account has this password"));

/// Signs in with email and password, ending the session the browser had (`old_session`) and
/// starting a new one. `None` when the email or password is not right. The attempt is counted
/// against the account and the client address before the password is checked, and too many
/// are refused with `RateLimited` (audited once per limit and window); so are attempts beyond
/// the number of password checks allowed to run at once. Failures and refusals are logged
/// with the account and the client address, never the password.
pub async fn login(
    state: &AuthState,
    email: &str,
    password: &str,
    client: Option<IpAddr>,
    user_agent: &str,
    old_session: Option<&str>,
) -> AppResult<Option<SignedIn>> {
    // No account has a longer email; a longer one must not grow the limiter or the logs.
    let email: String = email.trim().to_lowercase().chars().take(254).collect();
    let client_text = client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let attempt = match state.limiter.begin(&email, client, Instant::now()) {
        Ok(attempt) => attempt,
        Err(Refusal::Busy) => {
            tracing::warn!(account = %email, client = %client_text, "sign-in refused: every password check is busy");
            return Err(AppError::RateLimited {
                retry_after_secs: 1,
            });
        }
        Err(Refusal::Throttled {
            retry_after_secs,
            key,
            first,
        }) => {
            tracing::warn!(account = %email, client = %client_text, limit = key, retry_after_secs, "sign-in throttled: too many failed attempts");
            if first {
                let mut tx = state.db.begin_write().await?;
                db::audit(
                    &mut tx,
                    None,
                    "login.throttled",
                    &email,
                    &format!("too many failed sign-ins per {key}, from {client_text}"),
                )
                .await?;
                tx.commit().await?;
            }
            return Err(AppError::RateLimited { retry_after_secs });
        }
    };

    if !state.local_login && !db::is_break_glass(&state.db.reader, &email).await? {
        // The same answer for every address (no account list leaks); counted as a failure.
        attempt.failed();
        tracing::warn!(account = %email, client = %client_text, "sign-in refused: password sign-in is off");
        let mut tx = state.db.begin_write().await?;
        db::audit(
            &mut tx,
            None,
            "login.failed",
            &email,
            &format!("password sign-in is off (not a break-glass admin), from {client_text}"),
        )
        .await?;
        tx.commit().await?;
        return Err(AppError::Forbidden(LOCAL_LOGIN_OFF.into()));
    }

    let found = db::find_login(&state.db.reader, &email).await?;
    let password = password.to_owned();
    // Verify even for unknown emails, so response time does not reveal which accounts exist.
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, DUMMY_HASH.clone()),
    };
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await?;
    let Some(user) = user.filter(|_| ok) else {
        attempt.failed();
        tracing::warn!(account = %email, client = %client_text, "sign-in failed: email or password not right");
        // Audited with the address typed (never the password); the limiter above bounds how
        // many of these one client can write.
        let mut tx = state.db.begin_write().await?;
        db::audit(
            &mut tx,
            None,
            "login.failed",
            &email,
            &format!("email or password not right, from {client_text}"),
        )
        .await?;
        tx.commit().await?;
        return Ok(None);
    };
    attempt.succeeded(Instant::now());

    let mut tx = state.db.begin_write().await?;
    // Rotate: whatever session id the browser had before is ended, a new one is issued.
    if let Some(old) = old_session {
        db::delete_session(&mut tx, old).await?;
        state.sessions.remove(old);
    }
    let origin = account::origin(client, user_agent);
    let secret = db::create_session_from(&mut tx, &user.id, state.session_ttl, &origin).await?;
    db::audit(
        &mut tx,
        Some(&user.id),
        "login",
        &user.email,
        &format!("from {client_text}"),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, client = %client_text, "login succeeded");
    Ok(Some(SignedIn { user, secret }))
}

/// Ends the session with this secret, if any.
pub async fn logout(state: &AuthState, secret: Option<&str>) -> AppResult<()> {
    if let Some(secret) = secret {
        let mut tx = state.db.begin_write().await?;
        db::delete_session(&mut tx, secret).await?;
        tx.commit().await?;
        state.sessions.remove(secret);
    }
    Ok(())
}

/// A setup link for the first admin when nobody has an account yet.
pub async fn open_setup_link(db: &Db) -> AppResult<Option<String>> {
    if db::count_users(&db.reader).await? > 0 {
        return Ok(None);
    }
    let mut tx = db.begin_write().await?;
    let secret = db::create_setup_token(&mut tx).await?;
    tx.commit().await?;
    Ok(Some(secret))
}

/// Refuses a setup link once someone has an account, or when it is invalid, expired or used.
pub async fn check_setup_link(db: &Db, token: &str) -> AppResult<()> {
    if db::count_users(&db.reader).await? > 0 {
        return Err(AppError::not_found(
            "this setup link",
            ": Hindsight is already set up. Sign in instead",
        ));
    }
    if !db::setup_token_valid(&db.reader, token).await? {
        return Err(AppError::not_found(
            "this setup link",
            ": it is invalid, expired or already used. Restart Hindsight for a new one or run `hindsight user create`",
        ));
    }
    Ok(())
}

/// Creates the first admin through the setup link (used up at once) and signs them in.
pub async fn set_up_first_admin(
    state: &AuthState,
    token: &str,
    new_user: &NewUser,
    origin: &db::SessionOrigin,
) -> AppResult<SignedIn> {
    let password = new_user.password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await?;
    let mut tx = state.db.begin_write().await?;
    if !db::consume_setup_token(&mut tx, token).await? {
        return Err(AppError::missing("this setup link"));
    }
    let user =
        db::insert_user(&mut tx, &new_user.email, &new_user.name, Role::Admin, &hash).await?;
    db::audit(&mut tx, Some(&user.id), "setup", &user.email, "first admin").await?;
    let secret = db::create_session_from(&mut tx, &user.id, state.session_ttl, origin).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "first admin created");
    Ok(SignedIn { user, secret })
}

/// Adds an account; a taken email is a field error.
pub async fn create_user(db: &Db, by: By<'_>, new_user: &NewUser) -> AppResult<User> {
    let password = new_user.password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await?;
    let mut tx = db.begin_write().await?;
    let created = db::insert_user(
        &mut tx,
        &new_user.email,
        &new_user.name,
        new_user.role,
        &hash,
    )
    .await?;
    let detail = match by {
        By::Admin(_) => created.role.as_str(),
        By::CommandLine => "command line",
    };
    db::audit(
        &mut tx,
        by.actor_id(),
        "user.create",
        &created.email,
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// Refuses changes that would leave no enabled admin.
async fn keep_an_admin(
    conn: &mut sqlx::SqliteConnection,
    target: &User,
    losing_admin: bool,
) -> AppResult<()> {
    if losing_admin && target.role == Role::Admin && db::count_active_admins(conn).await? <= 1 {
        return Err(AppError::field(
            "role",
            "the last admin cannot be demoted or disabled; make someone else admin first",
        ));
    }
    Ok(())
}

async fn target_user(db: &Db, id: &str) -> AppResult<User> {
    db::find_user(&db.reader, id)
        .await?
        .ok_or_else(|| AppError::missing("user"))
}

/// Gives a user another role (never leaving no admin); their sessions learn it at once.
pub async fn change_role(state: &AuthState, admin: &User, id: &str, role: Role) -> AppResult<User> {
    let target = target_user(&state.db, id).await?;
    let mut tx = state.db.begin_write().await?;
    keep_an_admin(&mut tx, &target, role != Role::Admin).await?;
    db::set_role(&mut tx, id, role).await?;
    db::audit(
        &mut tx,
        Some(&admin.id),
        "user.role",
        &target.email,
        &format!("{} → {role}", target.role),
    )
    .await?;
    tx.commit().await?;
    state.sessions.remove_user(id);
    Ok(target)
}

/// Disables an account (not one's own, never the last admin) and signs it out everywhere.
pub async fn disable_user(state: &AuthState, admin: &User, id: &str) -> AppResult<User> {
    if id == admin.id {
        return Err(AppError::Forbidden(
            "You cannot disable your own account.".into(),
        ));
    }
    let target = target_user(&state.db, id).await?;
    let mut tx = state.db.begin_write().await?;
    keep_an_admin(&mut tx, &target, true).await?;
    db::set_disabled(&mut tx, id, true).await?;
    db::audit(&mut tx, Some(&admin.id), "user.disable", &target.email, "").await?;
    tx.commit().await?;
    state.sessions.remove_user(id);
    Ok(target)
}

/// Lets a disabled account sign in again.
pub async fn enable_user(db: &Db, admin: &User, id: &str) -> AppResult<User> {
    let target = target_user(db, id).await?;
    let mut tx = db.begin_write().await?;
    db::set_disabled(&mut tx, id, false).await?;
    db::audit(&mut tx, Some(&admin.id), "user.enable", &target.email, "").await?;
    tx.commit().await?;
    Ok(target)
}

/// Checks a token as typed into the admin form (naming each bad field) and creates it;
/// returns the secret, which is shown once.
pub async fn create_token(
    db: &Db,
    admin: &User,
    name: &str,
    owner_id: &str,
    scope: &str,
) -> AppResult<String> {
    let mut errors = FieldErrors::new();
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.insert("name".into(), "must be 1 to 100 characters".into());
    }
    let scope = Scope::parse_field(scope, &mut errors);
    let owner = db::find_user(&db.reader, owner_id).await?;
    if owner.is_none() {
        errors.insert("user_id".into(), "choose an existing user".into());
    }
    match (scope, owner) {
        (Some(scope), Some(owner)) if errors.is_empty() => {
            issue_token(db, By::Admin(admin), &owner, name, scope).await
        }
        _ => Err(AppError::fields(errors)),
    }
}

/// Creates an API token for `owner`; returns the secret, which is shown once.
pub async fn issue_token(
    db: &Db,
    by: By<'_>,
    owner: &User,
    name: &str,
    scope: Scope,
) -> AppResult<String> {
    let mut tx = db.begin_write().await?;
    let secret = db::insert_token(&mut tx, &owner.id, name, scope).await?;
    db::audit(
        &mut tx,
        by.actor_id(),
        "token.create",
        name,
        &format!("{} token owned by {}", scope.as_str(), owner.email),
    )
    .await?;
    tx.commit().await?;
    Ok(secret)
}

/// Revokes a live token; it stops working at once.
pub async fn revoke_token(db: &Db, admin: &User, id: &str) -> AppResult<()> {
    let mut tx = db.begin_write().await?;
    if !db::revoke_token(&mut tx, id).await? {
        return Err(AppError::missing("active token"));
    }
    db::audit(&mut tx, Some(&admin.id), "token.revoke", id, "").await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Viewer < Role::Responder && Role::Responder < Role::Admin);
        let viewer = User {
            id: "u".into(),
            email: "v@example.com".into(),
            name: "V".into(),
            role: Role::Viewer,
        };
        assert!(viewer.require(Role::Viewer).is_ok());
        assert!(viewer.require(Role::Responder).is_err());
    }

    #[test]
    fn secrets_are_long_random_and_hashed() {
        let a = random_secret("hs_", 32).expect("randomness");
        let b = random_secret("hs_", 32).expect("randomness");
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 64, "256 bits of entropy, hex-encoded");
        assert_eq!(secret_hash(&a).len(), 64);
        assert_ne!(secret_hash(&a), a);
    }

    #[test]
    fn new_user_input_names_every_bad_field() {
        let err = NewUser::parse("not-an-email", " ", "root", "short").expect_err("invalid");
        let AppError::Validation { fields, .. } = err else {
            panic!("expected a validation error");
        };
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(names, ["email", "name", "password", "role"]);
    }

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse battery");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong horse battery", &hash));
        assert!(!verify_password("anything", "!disabled"));
    }

    #[test]
    fn dummy_hash_is_a_valid_hash() {
        // If it were unparsable, unknown emails would skip the slow verification.
        assert!(password_auth::is_hash_obsolete(&DUMMY_HASH).is_ok());
    }
}
