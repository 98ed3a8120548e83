//! The managed lists incidents are filed under: services (with an owning team) and categories
//! (the failure taxonomy shared with root causes).

pub mod api;
pub mod db;
pub mod web;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::SqlitePool;

use crate::auth::User;
use crate::db::Db;
use crate::error::{AppError, AppResult};

/// What the catalog pages and API need, taken from the app state by `app.rs`.
#[derive(Clone)]
pub struct CatalogState {
    pub db: Db,
    pub cache: Arc<CatalogCache>,
}

/// Which of the two managed lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Service,
    Category,
}

impl ListKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Category => "category",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub name: String,
    pub team: String,
    /// Incidents filed under it (a service in use cannot be deleted).
    #[serde(skip)]
    pub incidents: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Category {
    pub name: String,
    #[serde(skip)]
    pub incidents: i64,
}

/// The lists every incident form and filter shows.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    pub services: Vec<Service>,
    pub categories: Vec<Category>,
    /// Teams owning services.
    pub teams: Vec<String>,
}

/// Keeps `Lists` in memory for a few seconds: they change rarely (admin edits, which clear the
/// cache at once) but every list page and form needs them.
#[derive(Debug)]
pub struct CatalogCache {
    ttl: Duration,
    current: RwLock<Option<(Instant, Arc<Lists>)>>,
}

impl CatalogCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            current: RwLock::new(None),
        }
    }

    /// The lists, from memory when fresh, otherwise read again.
    pub async fn get(&self, pool: &SqlitePool) -> Result<Arc<Lists>, AppError> {
        let now = Instant::now();
        if let Some((at, lists)) = &*self.current.read().unwrap_or_else(|p| p.into_inner())
            && now.duration_since(*at) < self.ttl
        {
            return Ok(Arc::clone(lists));
        }
        let lists = Arc::new(Lists {
            services: db::list_services(pool).await?,
            categories: db::list_categories(pool).await?,
            teams: db::teams(pool).await?,
        });
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some((now, Arc::clone(&lists)));
        Ok(lists)
    }

    /// Forgets the lists after a change, so the next page shows it.
    pub fn clear(&self) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// How far ingest tokens may grow the service list: alert labels and metric pushes name
/// services, and without a bound anyone holding an ingest token could fill the list (and every
/// picker and filter that shows it) with made-up names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Growth {
    /// Whether ingest may add services at all (`HINDSIGHT_INGEST_CREATES_SERVICES`); when not,
    /// only services an admin added are accepted.
    pub creates: bool,
    /// The list never grows past this many services through ingest (`HINDSIGHT_MAX_SERVICES`);
    /// admins can still add more.
    pub max_services: usize,
}

impl Default for Growth {
    fn default() -> Self {
        Self {
            creates: true,
            max_services: 500,
        }
    }
}

impl Growth {
    /// Whether ingest may add one more service to a list that holds `current`.
    pub fn allows(&self, current: usize) -> bool {
        self.creates && current < self.max_services
    }

    /// Why a new service was refused, for the field error of a refused push.
    pub fn refusal(&self, name: &str) -> String {
        if self.creates {
            format!(
                "{name} is not a known service and the service list is full ({} services, \
                 HINDSIGHT_MAX_SERVICES); an admin can add it under Admin › Services",
                self.max_services
            )
        } else {
            format!("{name} is not a known service; an admin can add it under Admin › Services")
        }
    }
}

/// A service or category name: 1–60 characters, no control characters, trimmed.
pub fn parse_name(field: &str, raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::field(field, "must not be empty"));
    }
    if name.chars().count() > 60 {
        return Err(AppError::field(field, "must be at most 60 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::field(
            field,
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A team name: optional, at most 60 characters.
pub fn parse_team(raw: &str) -> Result<String, AppError> {
    let team = raw.trim();
    if team.chars().count() > 60 || team.chars().any(char::is_control) {
        return Err(AppError::field(
            "team",
            "must be at most 60 characters without control characters",
        ));
    }
    Ok(team.to_owned())
}

/// Adds an entry (`old_name` empty) or renames one and sets its team; returns the stored
/// name and team. A taken name is `AlreadyExists`, bad input a field error.
pub async fn save(
    state: &CatalogState,
    admin: &User,
    kind: ListKind,
    old_name: Option<&str>,
    name: &str,
    team: &str,
) -> AppResult<(String, String)> {
    let name = parse_name("name", name)?;
    let team = parse_team(team)?;
    let mut tx = state.db.begin_write().await?;
    match (old_name, kind) {
        (None, ListKind::Service) => db::insert_service(&mut tx, &name, &team).await?,
        (None, ListKind::Category) => db::insert_category(&mut tx, &name).await?,
        (Some(old), ListKind::Service) => {
            if !db::update_service(&mut tx, old, &name, &team).await? {
                return Err(AppError::not_found("service", old));
            }
        }
        (Some(old), ListKind::Category) => {
            if !db::rename_category(&mut tx, old, &name).await? {
                return Err(AppError::not_found("category", old));
            }
        }
    }
    let action = if old_name.is_some() {
        "update"
    } else {
        "create"
    };
    crate::auth::db::audit(
        &mut tx,
        Some(&admin.id),
        &format!("{}.{action}", kind.label()),
        &name,
        old_name.unwrap_or(""),
    )
    .await?;
    tx.commit().await?;
    state.cache.clear();
    Ok((name, team))
}

/// Deletes an entry no incident uses; one in use is refused with a field error saying why.
pub async fn delete(
    state: &CatalogState,
    admin: &User,
    kind: ListKind,
    name: &str,
) -> AppResult<()> {
    let mut tx = state.db.begin_write().await?;
    db::delete_unused(&mut tx, kind, name).await?;
    crate::auth::db::audit(
        &mut tx,
        Some(&admin.id),
        &format!("{}.delete", kind.label()),
        name,
        "",
    )
    .await?;
    tx.commit().await?;
    state.cache.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            parse_name("name", "  checkout  ").ok().as_deref(),
            Some("checkout")
        );
        assert!(parse_name("name", "   ").is_err());
        assert!(parse_name("name", &"x".repeat(61)).is_err());
        assert!(parse_name("name", "a\u{0}b").is_err());
    }
}
