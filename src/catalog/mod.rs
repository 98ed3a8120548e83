//! The managed lists incidents are filed under: services (with an owning team) and categories
//! (the failure taxonomy shared with root causes).

pub mod api;
pub mod db;
pub mod web;

use serde::Serialize;

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
