//! SQL for services and categories.

use chrono::Utc;
use sqlx::{SqliteConnection, SqlitePool};

use super::{Category, ListKind, Service};
use crate::db::{is_unique_violation, ts};
use crate::error::AppError;

/// Services for pickers and filters (incident counts left at 0: counting costs an index scan
/// per service, too much for every list page).
pub async fn list_services(pool: &SqlitePool) -> Result<Vec<Service>, AppError> {
    Ok(sqlx::query_as!(
        Service,
        r#"SELECT name AS "name!", team, 0 AS "incidents!: i64" FROM services ORDER BY name"#
    )
    .fetch_all(pool)
    .await?)
}

/// Services with how many incidents use each, for the admin page.
pub async fn list_services_with_usage(pool: &SqlitePool) -> Result<Vec<Service>, AppError> {
    Ok(sqlx::query_as!(
        Service,
        r#"SELECT s.name AS "name!", s.team,
                (SELECT COUNT(*) FROM incidents i WHERE i.service = s.name) AS "incidents!: i64"
         FROM services s ORDER BY s.name"#
    )
    .fetch_all(pool)
    .await?)
}

/// Categories for pickers and filters (counts left at 0, as for services).
pub async fn list_categories(pool: &SqlitePool) -> Result<Vec<Category>, AppError> {
    Ok(sqlx::query_as!(
        Category,
        r#"SELECT name AS "name!", 0 AS "incidents!: i64" FROM categories ORDER BY name"#
    )
    .fetch_all(pool)
    .await?)
}

/// Categories with how many incidents use each, for the admin page.
pub async fn list_categories_with_usage(pool: &SqlitePool) -> Result<Vec<Category>, AppError> {
    Ok(sqlx::query_as!(
        Category,
        r#"SELECT c.name AS "name!",
                (SELECT COUNT(*) FROM incidents i WHERE i.category = c.name) AS "incidents!: i64"
         FROM categories c ORDER BY c.name"#
    )
    .fetch_all(pool)
    .await?)
}

/// The stored spelling of a service name matched case-insensitively, if it exists.
pub async fn canonical_service(pool: &SqlitePool, name: &str) -> Result<Option<String>, AppError> {
    let name = name.trim();
    Ok(sqlx::query_scalar!(
        r#"SELECT name AS "name!" FROM services WHERE name = ?"#,
        name
    )
    .fetch_optional(pool)
    .await?)
}

pub async fn canonical_category(pool: &SqlitePool, name: &str) -> Result<Option<String>, AppError> {
    let name = name.trim();
    Ok(sqlx::query_scalar!(
        r#"SELECT name AS "name!" FROM categories WHERE name = ?"#,
        name
    )
    .fetch_optional(pool)
    .await?)
}

pub async fn insert_service(
    conn: &mut SqliteConnection,
    name: &str,
    team: &str,
) -> Result<(), AppError> {
    let now = ts(Utc::now());
    sqlx::query!(
        "INSERT INTO services (name, team, created_at) VALUES (?, ?, ?)",
        name,
        team,
        now
    )
    .execute(conn)
    .await
    .map_err(|e| exists_or(e, "service", name))?;
    Ok(())
}

/// Puts a service on the managed list if it is not there (incidents need a known service);
/// an existing one keeps its team.
pub async fn ensure_service(
    conn: &mut SqliteConnection,
    name: &str,
    team: &str,
) -> Result<(), AppError> {
    let now = ts(Utc::now());
    sqlx::query!(
        "INSERT INTO services (name, team, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        name,
        team,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_category(conn: &mut SqliteConnection, name: &str) -> Result<(), AppError> {
    let now = ts(Utc::now());
    sqlx::query!(
        "INSERT INTO categories (name, created_at) VALUES (?, ?)",
        name,
        now
    )
    .execute(conn)
    .await
    .map_err(|e| exists_or(e, "category", name))?;
    Ok(())
}

/// Renames (incidents follow through ON UPDATE CASCADE) and sets the team.
pub async fn update_service(
    conn: &mut SqliteConnection,
    old: &str,
    new: &str,
    team: &str,
) -> Result<bool, AppError> {
    let done = sqlx::query!(
        "UPDATE services SET name = ?, team = ? WHERE name = ?",
        new,
        team,
        old
    )
    .execute(conn)
    .await
    .map_err(|e| exists_or(e, "service", new))?;
    Ok(done.rows_affected() == 1)
}

pub async fn rename_category(
    conn: &mut SqliteConnection,
    old: &str,
    new: &str,
) -> Result<bool, AppError> {
    let done = sqlx::query!("UPDATE categories SET name = ? WHERE name = ?", new, old)
        .execute(conn)
        .await
        .map_err(|e| exists_or(e, "category", new))?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a service or category no incident uses; one in use is refused with a reason.
pub async fn delete_unused(
    conn: &mut SqliteConnection,
    kind: ListKind,
    name: &str,
) -> Result<(), AppError> {
    let used = match kind {
        ListKind::Service => {
            sqlx::query_scalar!(
                r#"SELECT COUNT(*) AS "n!: i64" FROM incidents WHERE service = ?"#,
                name
            )
            .fetch_one(&mut *conn)
            .await?
        }
        ListKind::Category => {
            sqlx::query_scalar!(
                r#"SELECT COUNT(*) AS "n!: i64" FROM incidents WHERE category = ?"#,
                name
            )
            .fetch_one(&mut *conn)
            .await?
        }
    };
    if used > 0 {
        return Err(AppError::field(
            "name",
            format!("{name} is used by {used} incident(s); rename it instead of deleting it"),
        ));
    }
    let done = match kind {
        ListKind::Service => {
            sqlx::query!("DELETE FROM services WHERE name = ?", name)
                .execute(conn)
                .await?
        }
        ListKind::Category => {
            sqlx::query!("DELETE FROM categories WHERE name = ?", name)
                .execute(conn)
                .await?
        }
    };
    if done.rows_affected() == 0 {
        return Err(AppError::not_found(kind.label(), name));
    }
    Ok(())
}

fn exists_or(err: sqlx::Error, what: &str, name: &str) -> AppError {
    if is_unique_violation(&err) {
        AppError::AlreadyExists(format!("a {what} named {name} already exists"))
    } else {
        err.into()
    }
}

/// Team names owning services, for filters and the form's suggestions. (Scanning incidents for
/// free-typed teams would cost a full table scan on every list page.)
pub async fn teams(pool: &SqlitePool) -> Result<Vec<String>, AppError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT DISTINCT team AS "team!" FROM services WHERE team <> '' ORDER BY 1"#
    )
    .fetch_all(pool)
    .await?)
}
