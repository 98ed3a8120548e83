//! The managed lists incidents are filed under: services (with an owning team) and categories
//! (the failure taxonomy shared with root causes).

pub mod api;
pub mod db;
pub mod web;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::SqlitePool;

use crate::error::AppError;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Service {
    pub name: String,
    pub team: String,
    /// Incidents filed under it (a service in use cannot be deleted).
    #[serde(skip)]
    pub incidents: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
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
