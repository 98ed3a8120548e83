//! SQL for users, sessions, API tokens, setup links and the audit log.

use chrono::{DateTime, Duration, Utc};
use sqlx::{SqliteConnection, SqlitePool};

use super::{Role, Scope, User, random_secret, secret_hash};
use crate::db::{new_id, ts};
use crate::error::AppError;

/// A user as the admin page lists them.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: User,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

pub async fn count_users(pool: &SqlitePool) -> Result<i64, AppError> {
    Ok(
        sqlx::query_scalar!(r#"SELECT COUNT(*) AS "n!: i64" FROM users"#)
            .fetch_one(pool)
            .await?,
    )
}

/// Inserts a user whose password is already hashed. A taken email is a field error.
pub async fn insert_user(
    conn: &mut SqliteConnection,
    email: &str,
    name: &str,
    role: Role,
    password_hash: &str,
) -> Result<User, AppError> {
    let id = new_id();
    let now = ts(Utc::now());
    let result = sqlx::query!(
        "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        id,
        email,
        name,
        role,
        password_hash,
        now,
        now,
    )
    .execute(conn)
    .await;
    match result {
        Ok(_) => Ok(User {
            id,
            email: email.to_owned(),
            name: name.to_owned(),
            role,
        }),
        Err(e) if crate::db::is_unique_violation(&e) => Err(AppError::field(
            "email",
            "is already used by another account",
        )),
        Err(e) => Err(e.into()),
    }
}

/// The user with this email and their password hash, if the account is enabled.
pub async fn find_login(
    pool: &SqlitePool,
    email: &str,
) -> Result<Option<(User, String)>, AppError> {
    let email = email.trim();
    let row = sqlx::query!(
        r#"SELECT id AS "id!", email, name, role AS "role: Role", password_hash FROM users
         WHERE email = ? AND disabled_at IS NULL"#,
        email
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| {
        (
            User {
                id: r.id,
                email: r.email,
                name: r.name,
                role: r.role,
            },
            r.password_hash,
        )
    }))
}

pub async fn find_user(pool: &SqlitePool, id: &str) -> Result<Option<User>, AppError> {
    Ok(sqlx::query_as!(
        User,
        r#"SELECT id AS "id!", email, name, role AS "role: Role" FROM users WHERE id = ?"#,
        id
    )
    .fetch_optional(pool)
    .await?)
}

pub async fn find_user_by_email(pool: &SqlitePool, email: &str) -> Result<Option<User>, AppError> {
    let email = email.trim();
    Ok(sqlx::query_as!(
        User,
        r#"SELECT id AS "id!", email, name, role AS "role: Role" FROM users WHERE email = ?"#,
        email
    )
    .fetch_optional(pool)
    .await?)
}

/// A person named by email (what people type) or by id (what scripts send).
pub async fn find_user_by_email_or_id(
    pool: &SqlitePool,
    who: &str,
) -> Result<Option<User>, AppError> {
    match find_user_by_email(pool, who).await? {
        Some(user) => Ok(Some(user)),
        None => find_user(pool, who.trim()).await,
    }
}

/// Enabled users, for owner and commander pickers.
pub async fn list_active_users(pool: &SqlitePool) -> Result<Vec<User>, AppError> {
    Ok(sqlx::query_as!(
        User,
        r#"SELECT id AS "id!", email, name, role AS "role: Role" FROM users
         WHERE disabled_at IS NULL ORDER BY name"#
    )
    .fetch_all(pool)
    .await?)
}

pub async fn list_accounts(pool: &SqlitePool) -> Result<Vec<Account>, AppError> {
    let rows = sqlx::query!(
        r#"SELECT id AS "id!", email, name, role AS "role: Role",
                disabled_at AS "disabled_at: DateTime<Utc>",
                created_at AS "created_at: DateTime<Utc>"
         FROM users ORDER BY name"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Account {
            user: User {
                id: row.id,
                email: row.email,
                name: row.name,
                role: row.role,
            },
            disabled_at: row.disabled_at,
            created_at: row.created_at,
        })
        .collect())
}

pub async fn set_role(conn: &mut SqliteConnection, id: &str, role: Role) -> Result<bool, AppError> {
    let now = ts(Utc::now());
    let done = sqlx::query!(
        "UPDATE users SET role = ?, updated_at = ? WHERE id = ?",
        role,
        now,
        id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Disables (ending every session at once) or re-enables an account.
pub async fn set_disabled(
    conn: &mut SqliteConnection,
    id: &str,
    disabled: bool,
) -> Result<bool, AppError> {
    let now = ts(Utc::now());
    let disabled_at = disabled.then_some(&now);
    let done = sqlx::query!(
        "UPDATE users SET disabled_at = ?, updated_at = ? WHERE id = ?",
        disabled_at,
        now,
        id
    )
    .execute(&mut *conn)
    .await?;
    if disabled {
        sqlx::query!("DELETE FROM sessions WHERE user_id = ?", id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(done.rows_affected() == 1)
}

/// Admins that are not disabled; the last one may not be demoted or disabled.
pub async fn count_active_admins(conn: &mut SqliteConnection) -> Result<i64, AppError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM users WHERE role = 'admin' AND disabled_at IS NULL"#
    )
    .fetch_one(conn)
    .await?)
}

/// Starts a session and returns the secret for the cookie (only its hash is stored).
pub async fn create_session(
    conn: &mut SqliteConnection,
    user_id: &str,
    ttl: std::time::Duration,
) -> Result<String, AppError> {
    create_session_from(conn, user_id, ttl, &SessionOrigin::default()).await
}

/// Starts a session, remembering where it was started from (shown on "Your sessions"), and
/// returns the secret for the cookie (only its hash is stored).
pub async fn create_session_from(
    conn: &mut SqliteConnection,
    user_id: &str,
    ttl: std::time::Duration,
    origin: &SessionOrigin,
) -> Result<String, AppError> {
    let secret = random_secret("", 32)?;
    // A separate random id names the session on pages and in forms: neither the secret nor
    // its hash (the table's key) is ever shown.
    let public_id = random_secret("", 12)?;
    let now = Utc::now();
    let ttl = Duration::from_std(ttl).unwrap_or(Duration::days(7));
    let id_hash = secret_hash(&secret);
    let (created_at, expires_at) = (ts(now), ts(now + ttl));
    sqlx::query!(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at, last_seen_at,
                               public_id, client_addr, user_agent)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        id_hash,
        user_id,
        created_at,
        expires_at,
        created_at,
        public_id,
        origin.client_addr,
        origin.user_agent,
    )
    .execute(&mut *conn)
    .await?;
    // Opportunistic clean-up keeps the table small without a background job.
    sqlx::query!("DELETE FROM sessions WHERE expires_at < ?", created_at)
        .execute(conn)
        .await?;
    Ok(secret)
}

pub async fn delete_session(conn: &mut SqliteConnection, secret: &str) -> Result<(), AppError> {
    let id_hash = secret_hash(secret);
    sqlx::query!("DELETE FROM sessions WHERE id_hash = ?", id_hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// A live session: whose, and when it last made a request.
#[derive(Debug, Clone)]
pub struct SessionUse {
    pub user: User,
    pub last_seen_at: DateTime<Utc>,
}

/// The enabled user behind a session secret that has neither expired nor been idle for
/// `idle` or longer.
pub async fn session_user(
    pool: &SqlitePool,
    secret: &str,
    idle: std::time::Duration,
) -> Result<Option<SessionUse>, AppError> {
    let id_hash = secret_hash(secret);
    let now = Utc::now();
    let idle = Duration::from_std(idle).unwrap_or(Duration::hours(4));
    let (now_ts, seen_after) = (ts(now), ts(now - idle));
    let row = sqlx::query!(
        r#"SELECT u.id AS "id!", u.email, u.name, u.role AS "role: Role",
                s.last_seen_at AS "last_seen_at: DateTime<Utc>"
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = ? AND s.expires_at > ? AND s.last_seen_at > ?
           AND u.disabled_at IS NULL"#,
        id_hash,
        now_ts,
        seen_after
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| SessionUse {
        user: User {
            id: r.id,
            email: r.email,
            name: r.name,
            role: r.role,
        },
        last_seen_at: r.last_seen_at,
    }))
}

/// Records that the session made a request now (it stays alive for another idle period).
pub async fn touch_session(conn: &mut SqliteConnection, secret: &str) -> Result<(), AppError> {
    let id_hash = secret_hash(secret);
    let now = ts(Utc::now());
    sqlx::query!(
        "UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?",
        now,
        id_hash
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An API token as listed (never its secret).
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub prefix: String,
    pub owner_email: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Creates a token for `user_id` and returns its secret, which is shown once and never again.
pub async fn insert_token(
    conn: &mut SqliteConnection,
    user_id: &str,
    name: &str,
    scope: Scope,
) -> Result<String, AppError> {
    let secret = random_secret("hs_", 32)?;
    let id = new_id();
    let token_hash = secret_hash(&secret);
    let prefix: String = secret.chars().take(10).collect();
    let now = ts(Utc::now());
    sqlx::query!(
        "INSERT INTO api_tokens (id, user_id, name, scope, token_hash, prefix, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        id,
        user_id,
        name,
        scope,
        token_hash,
        prefix,
        now,
    )
    .execute(conn)
    .await?;
    Ok(secret)
}

pub async fn list_tokens(pool: &SqlitePool) -> Result<Vec<TokenInfo>, AppError> {
    Ok(sqlx::query_as!(
        TokenInfo,
        r#"SELECT t.id AS "id!", t.name, t.scope AS "scope: Scope", t.prefix, u.email AS owner_email,
                t.created_at AS "created_at: DateTime<Utc>",
                t.last_used_at AS "last_used_at: DateTime<Utc>",
                t.revoked_at AS "revoked_at: DateTime<Utc>"
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         ORDER BY t.revoked_at IS NOT NULL, t.created_at DESC"#
    )
    .fetch_all(pool)
    .await?)
}

pub async fn revoke_token(conn: &mut SqliteConnection, id: &str) -> Result<bool, AppError> {
    let now = ts(Utc::now());
    let done = sqlx::query!(
        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        now,
        id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A token that authenticated a request.
#[derive(Debug, Clone)]
pub struct TokenUse {
    pub token_id: String,
    pub scope: Scope,
    pub user: User,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The owner and scope of a live token whose owner is enabled.
pub async fn token_user(pool: &SqlitePool, secret: &str) -> Result<Option<TokenUse>, AppError> {
    let token_hash = secret_hash(secret);
    let row = sqlx::query!(
        r#"SELECT t.id AS "token_id!", t.scope AS "scope: Scope",
                t.last_used_at AS "last_used_at: DateTime<Utc>",
                u.id AS "user_id!", u.email, u.name, u.role AS "role: Role"
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.disabled_at IS NULL"#,
        token_hash
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| TokenUse {
        token_id: row.token_id,
        scope: row.scope,
        user: User {
            id: row.user_id,
            email: row.email,
            name: row.name,
            role: row.role,
        },
        last_used_at: row.last_used_at,
    }))
}

pub async fn touch_token(conn: &mut SqliteConnection, token_id: &str) -> Result<(), AppError> {
    let now = ts(Utc::now());
    sqlx::query!(
        "UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
        now,
        token_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A fresh one-time setup link secret, valid for 24 hours.
pub async fn create_setup_token(conn: &mut SqliteConnection) -> Result<String, AppError> {
    let secret = random_secret("", 24)?;
    let now = Utc::now();
    let token_hash = secret_hash(&secret);
    let (created_at, expires_at) = (ts(now), ts(now + Duration::hours(24)));
    sqlx::query!(
        "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES (?, ?, ?)",
        token_hash,
        created_at,
        expires_at
    )
    .execute(conn)
    .await?;
    Ok(secret)
}

/// True when the setup secret is unused and unexpired.
pub async fn setup_token_valid(pool: &SqlitePool, secret: &str) -> Result<bool, AppError> {
    let token_hash = secret_hash(secret);
    let now = ts(Utc::now());
    let n = sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM setup_tokens
         WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?"#,
        token_hash,
        now
    )
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}

/// Marks the setup secret used; false when it was not valid (already used, expired, unknown).
pub async fn consume_setup_token(
    conn: &mut SqliteConnection,
    secret: &str,
) -> Result<bool, AppError> {
    let token_hash = secret_hash(secret);
    let now = ts(Utc::now());
    let done = sqlx::query!(
        "UPDATE setup_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
        now,
        token_hash,
        now
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Appends to the audit log (admin actions, logins).
pub async fn audit(
    conn: &mut SqliteConnection,
    actor_id: Option<&str>,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), AppError> {
    let id = new_id();
    let now = ts(Utc::now());
    sqlx::query!(
        "INSERT INTO audit_log (id, at, actor_id, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
        id,
        now,
        actor_id,
        action,
        target,
        detail
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// How many audit entries record `action` (the demo loader runs once: `demo.load`).
pub async fn count_audit(pool: &SqlitePool, action: &str) -> Result<i64, AppError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM audit_log WHERE action = ?"#,
        action
    )
    .fetch_one(pool)
    .await?)
}

/// Adds an account with this email unless one exists (then it is left as it is); returns the
/// id of the account with the email.
pub async fn ensure_user(
    conn: &mut SqliteConnection,
    id: &str,
    email: &str,
    name: &str,
    role: Role,
    password_hash: &str,
) -> Result<String, AppError> {
    let now = ts(Utc::now());
    let role = role.as_str();
    sqlx::query!(
        "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING",
        id,
        email,
        name,
        role,
        password_hash,
        now,
        now,
    )
    .execute(&mut *conn)
    .await?;
    Ok(
        sqlx::query_scalar!(r#"SELECT id AS "id!" FROM users WHERE email = ?"#, email)
            .fetch_one(conn)
            .await?,
    )
}

/// Where a session was started from: the client address (as `auth::proxies` resolves it
/// behind trusted proxies) and the browser's User-Agent, both as text ('' when unknown).
#[derive(Debug, Clone, Default)]
pub struct SessionOrigin {
    pub client_addr: String,
    pub user_agent: String,
}

/// A live session as its owner sees it: never its secret or the secret's hash.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub public_id: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub client_addr: String,
    pub user_agent: String,
    /// The session this request came with.
    pub current: bool,
}

/// The user's sessions that are still alive (neither expired nor idle for `idle`), the one
/// with `current_secret` marked, most recently used first.
pub async fn list_sessions(
    pool: &SqlitePool,
    user_id: &str,
    current_secret: Option<&str>,
    idle: std::time::Duration,
) -> Result<Vec<SessionInfo>, AppError> {
    let current_hash = current_secret.map(secret_hash).unwrap_or_default();
    let now = Utc::now();
    let idle = Duration::from_std(idle).unwrap_or(Duration::hours(4));
    let (now_ts, seen_after) = (ts(now), ts(now - idle));
    Ok(sqlx::query_as!(
        SessionInfo,
        r#"SELECT public_id, created_at AS "created_at: DateTime<Utc>",
                last_seen_at AS "last_seen_at: DateTime<Utc>", client_addr, user_agent,
                id_hash = ? AS "current!: bool"
         FROM sessions
         WHERE user_id = ? AND expires_at > ? AND last_seen_at > ?
         ORDER BY id_hash = ? DESC, last_seen_at DESC, created_at DESC"#,
        current_hash,
        user_id,
        now_ts,
        seen_after,
        current_hash,
    )
    .fetch_all(pool)
    .await?)
}

/// Ends the user's session with this public id; false when the user has no such session (so
/// nobody can end someone else's session by guessing or copying an id).
pub async fn delete_session_by_public_id(
    conn: &mut SqliteConnection,
    user_id: &str,
    public_id: &str,
) -> Result<bool, AppError> {
    let done = sqlx::query!(
        "DELETE FROM sessions WHERE user_id = ? AND public_id = ?",
        user_id,
        public_id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends every session of the user except the one with `keep_secret` (all when `None`);
/// returns how many ended.
pub async fn delete_user_sessions(
    conn: &mut SqliteConnection,
    user_id: &str,
    keep_secret: Option<&str>,
) -> Result<u64, AppError> {
    let keep_hash = keep_secret.map(secret_hash).unwrap_or_default();
    let done = sqlx::query!(
        "DELETE FROM sessions WHERE user_id = ? AND id_hash <> ?",
        user_id,
        keep_hash
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The stored password hash of a user (`!…` when the account has no usable local password:
/// demo people, accounts made by single sign-on).
pub async fn password_hash_of(
    pool: &SqlitePool,
    user_id: &str,
) -> Result<Option<String>, AppError> {
    Ok(
        sqlx::query_scalar!("SELECT password_hash FROM users WHERE id = ?", user_id)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn set_password_hash(
    conn: &mut SqliteConnection,
    user_id: &str,
    password_hash: &str,
) -> Result<bool, AppError> {
    let now = ts(Utc::now());
    let done = sqlx::query!(
        "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
        password_hash,
        now,
        user_id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A fresh one-time password reset link secret for the user, valid for `valid_for`; the
/// user's older unused links stop working.
pub async fn create_password_reset(
    conn: &mut SqliteConnection,
    user_id: &str,
    created_by: Option<&str>,
    valid_for: Duration,
) -> Result<String, AppError> {
    let secret = random_secret("", 24)?;
    let now = Utc::now();
    let token_hash = secret_hash(&secret);
    let (created_at, expires_at) = (ts(now), ts(now + valid_for));
    sqlx::query!(
        "DELETE FROM password_resets WHERE user_id = ? AND used_at IS NULL",
        user_id
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO password_resets (token_hash, user_id, created_by, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?)",
        token_hash,
        user_id,
        created_by,
        created_at,
        expires_at
    )
    .execute(conn)
    .await?;
    Ok(secret)
}

/// The enabled user a reset secret is for, when the link is unused and unexpired.
pub async fn password_reset_user(
    pool: &SqlitePool,
    secret: &str,
) -> Result<Option<User>, AppError> {
    let token_hash = secret_hash(secret);
    let now = ts(Utc::now());
    Ok(sqlx::query_as!(
        User,
        r#"SELECT u.id AS "id!", u.email, u.name, u.role AS "role: Role"
         FROM password_resets r JOIN users u ON u.id = r.user_id
         WHERE r.token_hash = ? AND r.used_at IS NULL AND r.expires_at > ?
           AND u.disabled_at IS NULL"#,
        token_hash,
        now
    )
    .fetch_optional(pool)
    .await?)
}

/// Marks the reset secret used and returns whose it was; `None` when it was not valid
/// (already used, expired, unknown, or the account is disabled).
pub async fn consume_password_reset(
    conn: &mut SqliteConnection,
    secret: &str,
) -> Result<Option<String>, AppError> {
    let token_hash = secret_hash(secret);
    let now = ts(Utc::now());
    Ok(sqlx::query_scalar!(
        r#"UPDATE password_resets SET used_at = ?
         WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?
           AND user_id IN (SELECT id FROM users WHERE disabled_at IS NULL)
         RETURNING user_id AS "user_id!""#,
        now,
        token_hash,
        now
    )
    .fetch_optional(conn)
    .await?)
}

/// Keeps a sign-in on its way to the provider (state hashed; nonce, PKCE verifier, `next`)
/// for `ttl`; clears expired ones.
pub async fn insert_oidc_login(
    conn: &mut SqliteConnection,
    state: &str,
    nonce: &str,
    pkce_verifier: &str,
    next: &str,
    ttl: Duration,
) -> Result<(), AppError> {
    let state_hash = secret_hash(state);
    let now = Utc::now();
    let (created_at, expires_at) = (ts(now), ts(now + ttl));
    sqlx::query!("DELETE FROM oidc_logins WHERE expires_at < ?", created_at)
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        "INSERT INTO oidc_logins (state_hash, nonce, pkce_verifier, next, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?)",
        state_hash,
        nonce,
        pkce_verifier,
        next,
        created_at,
        expires_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A pending sign-in as it comes back from the provider.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    pub nonce: String,
    pub pkce_verifier: String,
    pub next: String,
}

/// Takes the pending sign-in with this state: deleted in the same statement, so a state is
/// used once; `None` when unknown, already used or expired.
pub async fn take_oidc_login(
    conn: &mut SqliteConnection,
    state: &str,
) -> Result<Option<PendingLogin>, AppError> {
    let state_hash = secret_hash(state);
    let now = ts(Utc::now());
    let row = sqlx::query!(
        r#"DELETE FROM oidc_logins WHERE state_hash = ?
         RETURNING nonce AS "nonce!", pkce_verifier AS "pkce_verifier!", next AS "next!",
                   expires_at AS "expires_at!""#,
        state_hash
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.filter(|r| r.expires_at > now).map(|r| PendingLogin {
        nonce: r.nonce,
        pkce_verifier: r.pkce_verifier,
        next: r.next,
    }))
}

/// An account as single sign-on sees it.
#[derive(Debug, Clone)]
pub struct SsoAccount {
    pub user: User,
    pub disabled: bool,
    pub oidc_subject: Option<String>,
}

/// The account linked to this provider identity.
pub async fn find_oidc_account(
    pool: &SqlitePool,
    issuer: &str,
    subject: &str,
) -> Result<Option<SsoAccount>, AppError> {
    let row = sqlx::query!(
        r#"SELECT id AS "id!", email, name, role AS "role: Role",
                disabled_at IS NOT NULL AS "disabled!: bool", oidc_subject
         FROM users WHERE oidc_issuer = ? AND oidc_subject = ?"#,
        issuer,
        subject
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| SsoAccount {
        user: User {
            id: r.id,
            email: r.email,
            name: r.name,
            role: r.role,
        },
        disabled: r.disabled,
        oidc_subject: r.oidc_subject,
    }))
}

/// The account with this e-mail address, with whether it is disabled or linked already.
pub async fn find_account_by_email(
    pool: &SqlitePool,
    email: &str,
) -> Result<Option<SsoAccount>, AppError> {
    let email = email.trim();
    let row = sqlx::query!(
        r#"SELECT id AS "id!", email, name, role AS "role: Role",
                disabled_at IS NOT NULL AS "disabled!: bool", oidc_subject
         FROM users WHERE email = ?"#,
        email
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| SsoAccount {
        user: User {
            id: r.id,
            email: r.email,
            name: r.name,
            role: r.role,
        },
        disabled: r.disabled,
        oidc_subject: r.oidc_subject,
    }))
}

/// Links an account to a provider identity.
pub async fn link_oidc(
    conn: &mut SqliteConnection,
    id: &str,
    issuer: &str,
    subject: &str,
) -> Result<(), AppError> {
    let now = ts(Utc::now());
    sqlx::query!(
        "UPDATE users SET oidc_issuer = ?, oidc_subject = ?, updated_at = ? WHERE id = ?",
        issuer,
        subject,
        now,
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Name and role as the provider's claims say at this sign-in.
pub async fn update_from_claims(
    conn: &mut SqliteConnection,
    id: &str,
    name: &str,
    role: Role,
) -> Result<(), AppError> {
    let now = ts(Utc::now());
    sqlx::query!(
        "UPDATE users SET name = ?, role = ?, updated_at = ? WHERE id = ?",
        name,
        role,
        now,
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Creates an account on its first single sign-on (no password: `!sso` matches none).
pub async fn insert_sso_user(
    conn: &mut SqliteConnection,
    email: &str,
    name: &str,
    role: Role,
    issuer: &str,
    subject: &str,
) -> Result<User, AppError> {
    let user = insert_user(&mut *conn, email, name, role, "!sso").await?;
    link_oidc(conn, &user.id, issuer, subject).await?;
    Ok(user)
}

/// Keeps the ID token a session started with (for `id_token_hint` at sign-out).
pub async fn set_session_id_token(
    conn: &mut SqliteConnection,
    secret: &str,
    id_token: &str,
) -> Result<(), AppError> {
    let id_hash = secret_hash(secret);
    sqlx::query!(
        "UPDATE sessions SET id_token = ? WHERE id_hash = ?",
        id_token,
        id_hash
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The ID token of the session with this secret, if it was started by single sign-on.
pub async fn session_id_token(pool: &SqlitePool, secret: &str) -> Result<Option<String>, AppError> {
    let id_hash = secret_hash(secret);
    Ok(sqlx::query_scalar!(
        r#"SELECT id_token AS "id_token?" FROM sessions WHERE id_hash = ?"#,
        id_hash
    )
    .fetch_optional(pool)
    .await?
    .flatten())
}

/// Whether the account with this e-mail may sign in with a password while local sign-in is
/// off (an enabled admin marked break-glass).
pub async fn is_break_glass(pool: &SqlitePool, email: &str) -> Result<bool, AppError> {
    let email = email.trim();
    Ok(sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM users
         WHERE email = ? AND break_glass = 1 AND role = 'admin' AND disabled_at IS NULL"#,
        email
    )
    .fetch_one(pool)
    .await?
        > 0)
}

/// Marks (or unmarks) an account break-glass; false when no account has the address.
pub async fn set_break_glass(
    conn: &mut SqliteConnection,
    email: &str,
    on: bool,
) -> Result<bool, AppError> {
    let now = ts(Utc::now());
    let email = email.trim();
    let flag = i64::from(on);
    let done = sqlx::query!(
        "UPDATE users SET break_glass = ?, updated_at = ? WHERE email = ?",
        flag,
        now,
        email
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
