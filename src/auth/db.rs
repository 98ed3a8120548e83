//! SQL for users, sessions, API tokens, setup links and the audit log.

use chrono::{DateTime, Duration, Utc};
use sqlx::{SqliteConnection, SqlitePool};

use super::{Role, Scope, User, random_secret, secret_hash};
use crate::db::{new_id, ts};
use crate::error::AppError;

#[derive(Debug, sqlx::FromRow)]
struct UserRow {
    id: String,
    email: String,
    name: String,
    role: String,
}

impl UserRow {
    fn into_user(self) -> Result<User, AppError> {
        let role = Role::parse(&self.role)
            .ok_or_else(|| AppError::Internal(format!("unknown role {:?}", self.role)))?;
        Ok(User {
            id: self.id,
            email: self.email,
            name: self.name,
            role,
        })
    }
}

/// A user as the admin page lists them.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: User,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

pub async fn count_users(pool: &SqlitePool) -> Result<i64, AppError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await?)
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
    let result = sqlx::query(
        "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(email)
    .bind(name)
    .bind(role.as_str())
    .bind(password_hash)
    .bind(&now)
    .bind(&now)
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
    let row: Option<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT id, email, name, role, password_hash FROM users
         WHERE email = ? AND disabled_at IS NULL",
    )
    .bind(email.trim())
    .fetch_optional(pool)
    .await?;
    row.map(|(id, email, name, role, hash)| {
        UserRow {
            id,
            email,
            name,
            role,
        }
        .into_user()
        .map(|u| (u, hash))
    })
    .transpose()
}

pub async fn find_user(pool: &SqlitePool, id: &str) -> Result<Option<User>, AppError> {
    let row: Option<UserRow> =
        sqlx::query_as("SELECT id, email, name, role FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    row.map(UserRow::into_user).transpose()
}

pub async fn find_user_by_email(pool: &SqlitePool, email: &str) -> Result<Option<User>, AppError> {
    let row: Option<UserRow> =
        sqlx::query_as("SELECT id, email, name, role FROM users WHERE email = ?")
            .bind(email.trim())
            .fetch_optional(pool)
            .await?;
    row.map(UserRow::into_user).transpose()
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
    let rows: Vec<UserRow> = sqlx::query_as(
        "SELECT id, email, name, role FROM users WHERE disabled_at IS NULL ORDER BY name",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(UserRow::into_user).collect()
}

pub async fn list_accounts(pool: &SqlitePool) -> Result<Vec<Account>, AppError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: UserRow,
        disabled_at: Option<DateTime<Utc>>,
        created_at: DateTime<Utc>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, email, name, role, disabled_at, created_at FROM users ORDER BY name",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Account {
                user: row.user.into_user()?,
                disabled_at: row.disabled_at,
                created_at: row.created_at,
            })
        })
        .collect()
}

pub async fn set_role(conn: &mut SqliteConnection, id: &str, role: Role) -> Result<bool, AppError> {
    let done = sqlx::query("UPDATE users SET role = ?, updated_at = ? WHERE id = ?")
        .bind(role.as_str())
        .bind(ts(Utc::now()))
        .bind(id)
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
    let done = sqlx::query("UPDATE users SET disabled_at = ?, updated_at = ? WHERE id = ?")
        .bind(disabled.then_some(&now))
        .bind(&now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if disabled {
        sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(done.rows_affected() == 1)
}

/// Admins that are not disabled; the last one may not be demoted or disabled.
pub async fn count_active_admins(conn: &mut SqliteConnection) -> Result<i64, AppError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL",
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
    let secret = random_secret("", 32)?;
    let now = Utc::now();
    let ttl = Duration::from_std(ttl).unwrap_or(Duration::days(7));
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
    )
    .bind(secret_hash(&secret))
    .bind(user_id)
    .bind(ts(now))
    .bind(ts(now + ttl))
    .execute(&mut *conn)
    .await?;
    // Opportunistic clean-up keeps the table small without a background job.
    sqlx::query("DELETE FROM sessions WHERE expires_at < ?")
        .bind(ts(now))
        .execute(conn)
        .await?;
    Ok(secret)
}

pub async fn delete_session(conn: &mut SqliteConnection, secret: &str) -> Result<(), AppError> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
        .bind(secret_hash(secret))
        .execute(conn)
        .await?;
    Ok(())
}

/// The enabled user behind a live session secret.
pub async fn session_user(pool: &SqlitePool, secret: &str) -> Result<Option<User>, AppError> {
    let row: Option<UserRow> = sqlx::query_as(
        "SELECT u.id, u.email, u.name, u.role FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = ? AND s.expires_at > ? AND u.disabled_at IS NULL",
    )
    .bind(secret_hash(secret))
    .bind(ts(Utc::now()))
    .fetch_optional(pool)
    .await?;
    row.map(UserRow::into_user).transpose()
}

/// An API token as listed (never its secret).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scope: String,
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
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, name, scope, token_hash, prefix, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(new_id())
    .bind(user_id)
    .bind(name)
    .bind(scope.as_str())
    .bind(secret_hash(&secret))
    .bind(secret.chars().take(10).collect::<String>())
    .bind(ts(Utc::now()))
    .execute(conn)
    .await?;
    Ok(secret)
}

pub async fn list_tokens(pool: &SqlitePool) -> Result<Vec<TokenInfo>, AppError> {
    Ok(sqlx::query_as(
        "SELECT t.id, t.name, t.scope, t.prefix, u.email AS owner_email, t.created_at,
                t.last_used_at, t.revoked_at
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         ORDER BY t.revoked_at IS NOT NULL, t.created_at DESC",
    )
    .fetch_all(pool)
    .await?)
}

pub async fn revoke_token(conn: &mut SqliteConnection, id: &str) -> Result<bool, AppError> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(ts(Utc::now()))
            .bind(id)
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
    #[derive(sqlx::FromRow)]
    struct Row {
        token_id: String,
        scope: String,
        last_used_at: Option<DateTime<Utc>>,
        #[sqlx(flatten)]
        user: UserRow,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT t.id AS token_id, t.scope, t.last_used_at, u.id, u.email, u.name, u.role
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
    )
    .bind(secret_hash(secret))
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let scope = Scope::parse(&row.scope)
        .ok_or_else(|| AppError::Internal(format!("unknown token scope {:?}", row.scope)))?;
    Ok(Some(TokenUse {
        token_id: row.token_id,
        scope,
        user: row.user.into_user()?,
        last_used_at: row.last_used_at,
    }))
}

pub async fn touch_token(conn: &mut SqliteConnection, token_id: &str) -> Result<(), AppError> {
    sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
        .bind(ts(Utc::now()))
        .bind(token_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A fresh one-time setup link secret, valid for 24 hours.
pub async fn create_setup_token(conn: &mut SqliteConnection) -> Result<String, AppError> {
    let secret = random_secret("", 24)?;
    let now = Utc::now();
    sqlx::query("INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES (?, ?, ?)")
        .bind(secret_hash(&secret))
        .bind(ts(now))
        .bind(ts(now + Duration::hours(24)))
        .execute(conn)
        .await?;
    Ok(secret)
}

/// True when the setup secret is unused and unexpired.
pub async fn setup_token_valid(pool: &SqlitePool, secret: &str) -> Result<bool, AppError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM setup_tokens WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
    )
    .bind(secret_hash(secret))
    .bind(ts(Utc::now()))
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}

/// Marks the setup secret used; false when it was not valid (already used, expired, unknown).
pub async fn consume_setup_token(
    conn: &mut SqliteConnection,
    secret: &str,
) -> Result<bool, AppError> {
    let done = sqlx::query(
        "UPDATE setup_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
    )
    .bind(ts(Utc::now()))
    .bind(secret_hash(secret))
    .bind(ts(Utc::now()))
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
    sqlx::query("INSERT INTO audit_log (id, at, actor_id, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(new_id())
        .bind(ts(Utc::now()))
        .bind(actor_id)
        .bind(action)
        .bind(target)
        .bind(detail)
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
