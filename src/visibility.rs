//! Who may see which incident: the one rule every incident list, lookup and search applies.
//!
//! An incident is visible to a viewer when it is not restricted, or when the viewer is an
//! admin, its commander or a participant added by name. The SQL view `incident_access`
//! (migration 0024) holds who may see each restricted incident, so the condition in every
//! query is the same short text, [`VISIBLE`], with the viewer's id as its only bind; dynamic
//! queries add it with [`Viewer::push_visible`]. Functions that list or load incidents take a
//! `&Viewer`, so a new query cannot be written without deciding whose view it is.

use sqlx::{QueryBuilder, Sqlite};

/// The condition on an incident aliased `i`, with one `?` bind: the viewer's user id.
/// Checked queries (`query!`) spell it out literally (a macro needs a literal); the test
/// below keeps every copy identical to this one.
pub const VISIBLE: &str = "(i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x \
                           WHERE x.incident_id = i.id AND x.user_id = ?))";

/// The same rule turned round, for rows that name their incident without joining it (action
/// items): the ids of the restricted incidents the viewer may NOT see (one bind: the viewer's
/// user id). The partial index `incidents_restricted` lists restricted incidents without
/// touching the others, so this is a handful of rows; a query then leaves those ids out, and
/// when there are none (most viewers, most of the time) it adds no condition at all, so the
/// board's counts stay answered from their indexes.
pub const HIDDEN_INCIDENTS: &str = "SELECT i.id FROM incidents i WHERE i.restricted = 1 \
                                    AND NOT EXISTS (SELECT 1 FROM incident_access x \
                                    WHERE x.incident_id = i.id AND x.user_id = ?)";

/// Whose view of the incidents a query takes: a signed-in user or the owner of an API token
/// (a token sees what its owner sees).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    user_id: String,
}

impl Viewer {
    /// The view of the user with this id (admins see every incident; the view in the database
    /// knows who is an admin).
    pub fn user(user_id: &str) -> Self {
        Self {
            user_id: user_id.to_owned(),
        }
    }

    /// What everyone signed in may see, and no more: the view of shared documents (the weekly
    /// review, which is cached, exported and mailed, and the recurrence lists, which are
    /// cached per incident). No user has the empty id, so only unrestricted incidents pass.
    pub fn anyone() -> Self {
        Self {
            user_id: String::new(),
        }
    }

    /// The id to bind to the `?` of [`VISIBLE`].
    pub fn id(&self) -> &str {
        &self.user_id
    }

    /// Appends [`VISIBLE`] for the incident aliased `i` to a dynamic query (after a `WHERE`
    /// or `AND` the caller wrote).
    pub fn push_visible(&self, qb: &mut QueryBuilder<Sqlite>) {
        qb.push(
            "(i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x \
             WHERE x.incident_id = i.id AND x.user_id = ",
        );
        qb.push_bind(self.user_id.clone());
        qb.push("))");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every checked query that applies the rule spells it exactly like [`VISIBLE`] (bar
    /// whitespace), so the rule cannot drift between copies.
    #[test]
    fn every_copy_of_the_rule_is_the_same() {
        fn squash(s: &str) -> String {
            s.split_whitespace().collect::<Vec<_>>().join(" ")
        }
        let rule = squash(VISIBLE);
        let mut stack = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        let mut copies = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("src is readable") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.ends_with("visibility.rs") {
                    continue;
                }
                let text = squash(&std::fs::read_to_string(&path).unwrap_or_default());
                let mut rest = text.as_str();
                while let Some(at) = rest.find("FROM incident_access") {
                    let start = rest[..at].rfind("(i.restricted").unwrap_or(0);
                    let piece = &rest[start..];
                    if !piece.starts_with("(i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x WHERE x.incident_id = i.id AND x.user_id = ") {
                        panic!("{}: a visibility condition differs from VISIBLE", path.display());
                    }
                    copies += 1;
                    rest = &rest[at + 1..];
                }
            }
        }
        assert!(copies > 1, "the rule is used: {rule}");
    }
}
