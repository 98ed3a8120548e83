//! Timeline entries of an incident: kinds, validation, and the add/edit/delete operations
//! shared by the incident page and the API.

pub mod api;
pub mod db;
pub mod web;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{AppError, FieldErrors};

/// What the timeline forms and API need, taken from the app state by `app.rs`.
#[derive(Clone)]
pub struct TimelineState {
    pub db: crate::db::Db,
    /// Times typed without an offset on the pages are read in this zone.
    pub tz: chrono_tz::Tz,
}

choice! {
    pub enum EntryKind, "kind" {
        Detection = "detection",
        Escalation = "escalation",
        Action = "action",
        Communication = "communication",
        Mitigation = "mitigation",
        Resolution = "resolution",
        Note = "note",
        StatusChange = "status_change",
        Alert = "alert",
        Snapshot = "snapshot",
    }
}

impl EntryKind {
    /// Kinds a person picks when writing an entry (the others are written by Hindsight).
    pub const WRITABLE: [EntryKind; 7] = [
        Self::Note,
        Self::Detection,
        Self::Escalation,
        Self::Action,
        Self::Communication,
        Self::Mitigation,
        Self::Resolution,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::StatusChange => "status change",
            other => other.as_str(),
        }
    }

    /// Whether people may write entries of this kind (`alert`, `snapshot` and
    /// `status_change` entries are Hindsight's own record and must not be forgeable).
    pub fn written_by_people(self) -> bool {
        Self::WRITABLE.contains(&self)
    }

    /// The kinds an edit form offers for an entry of kind `current`: the writable ones, and a
    /// system entry's own kind so that fixing its text keeps it.
    pub fn editable_from(current: &str) -> Vec<EntryKind> {
        let mut kinds = Self::WRITABLE.to_vec();
        if let Some(own) = Self::parse(current).filter(|k| !k.written_by_people()) {
            kinds.push(own);
        }
        kinds
    }
}

/// The refusal for a kind people may not write, naming the ones they may.
fn not_writable() -> AppError {
    let kinds: Vec<&str> = EntryKind::WRITABLE.iter().map(|k| k.as_str()).collect();
    AppError::field(
        "kind",
        format!(
            "must be one of {} (alert, snapshot and status_change entries are written by Hindsight)",
            kinds.join(", ")
        ),
    )
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Entry {
    pub id: String,
    pub incident_id: String,
    pub occurred_at: DateTime<Utc>,
    pub kind: EntryKind,
    pub body: String,
    pub author_id: Option<String>,
    pub author_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

pub const BODY_MAX: usize = 20_000;

/// A checked entry body: not blank, bounded.
pub fn parse_body(raw: &str) -> Result<String, String> {
    let body = raw.trim();
    if body.is_empty() {
        Err("must not be empty".into())
    } else if body.chars().count() > BODY_MAX {
        Err(format!("must be at most {BODY_MAX} characters"))
    } else {
        Ok(body.to_owned())
    }
}

pub fn parse_kind(raw: &str) -> Result<EntryKind, String> {
    EntryKind::parse(raw).ok_or_else(EntryKind::field_error)
}

/// Checked fields of an entry being added or edited (`None` keeps the stored value).
#[derive(Debug, Clone, Default)]
pub struct EntryChanges {
    pub occurred_at: Option<DateTime<Utc>>,
    pub kind: Option<EntryKind>,
    pub body: Option<String>,
}

impl EntryChanges {
    /// Parses raw fields, collecting every problem.
    pub fn parse(
        occurred_at: Option<&str>,
        kind: Option<&str>,
        body: Option<&str>,
        tz: chrono_tz::Tz,
    ) -> Result<Self, AppError> {
        let mut errors = FieldErrors::new();
        let mut out = Self::default();
        if let Some(raw) = occurred_at {
            match crate::time::parse_form_time(raw, tz) {
                Ok(t) => out.occurred_at = t,
                Err(msg) => {
                    errors.insert("occurred_at".into(), msg);
                }
            }
        }
        if let Some(raw) = kind {
            match parse_kind(raw) {
                Ok(k) => out.kind = Some(k),
                Err(msg) => {
                    errors.insert("kind".into(), msg);
                }
            }
        }
        if let Some(raw) = body {
            match parse_body(raw) {
                Ok(b) => out.body = Some(b),
                Err(msg) => {
                    errors.insert("body".into(), msg);
                }
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(AppError::fields(errors))
        }
    }
}

/// Adds a person's entry to an incident (time defaults to now, kind to note); only the kinds
/// people write are accepted.
pub async fn add(
    db: &crate::db::Db,
    user: &crate::auth::User,
    incident_id: &str,
    changes: &EntryChanges,
) -> Result<Entry, AppError> {
    if changes.kind.is_some_and(|k| !k.written_by_people()) {
        return Err(not_writable());
    }
    let body = changes
        .body
        .as_deref()
        .ok_or_else(|| AppError::field("body", "is required"))?;
    let mut tx = db.begin_write().await?;
    let id = db::insert(
        &mut tx,
        incident_id,
        changes.occurred_at.unwrap_or_else(Utc::now),
        changes.kind.unwrap_or(EntryKind::Note),
        body,
        Some(&user.id),
    )
    .await?;
    let anchor = format!("#entry-{id}");
    crate::inbox::mention(&mut tx, user, incident_id, body, &anchor, "on the timeline").await?;
    tx.changes_only_incident(incident_id);
    tx.commit_timeline().await?;
    db::find(&db.writer, &id)
        .await?
        .ok_or_else(|| AppError::Internal("timeline entry vanished after insert".into()))
}

/// Edits an entry that was loaded at `version`; a stale version is a 409 with the entry as
/// it is now, and nothing is written. A person may keep a system entry's kind but never give
/// an entry one.
pub async fn edit(
    db: &crate::db::Db,
    current: &Entry,
    version: i64,
    changes: &EntryChanges,
) -> Result<Entry, AppError> {
    if changes
        .kind
        .is_some_and(|k| k != current.kind && !k.written_by_people())
    {
        return Err(not_writable());
    }
    let mut tx = db.begin_write().await?;
    let saved = db::update(
        &mut tx,
        &current.id,
        version,
        changes.occurred_at.unwrap_or(current.occurred_at),
        changes.kind.unwrap_or(current.kind),
        changes.body.as_deref().unwrap_or(&current.body),
    )
    .await?;
    if !saved {
        drop(tx);
        let fresh = db::find(&db.writer, &current.id)
            .await?
            .ok_or_else(|| AppError::missing("timeline entry"))?;
        return Err(conflict(&fresh));
    }
    tx.changes_only_incident(&current.incident_id);
    tx.commit_timeline().await?;
    db::find(&db.writer, &current.id)
        .await?
        .ok_or_else(|| AppError::missing("timeline entry"))
}

/// The 409 for a stale entry edit, carrying the entry as it is now.
pub fn conflict(current: &Entry) -> AppError {
    AppError::conflict("this timeline entry", current.version, current.clone())
}

pub async fn remove(
    db: &crate::db::Db,
    user: &crate::auth::User,
    entry: &Entry,
) -> Result<(), AppError> {
    let mut tx = db.begin_write().await?;
    if !db::delete(&mut tx, &entry.id).await? {
        return Err(AppError::missing("timeline entry"));
    }
    crate::auth::db::audit(
        &mut tx,
        Some(&user.id),
        "timeline.delete",
        &entry.incident_id,
        &entry.body.chars().take(200).collect::<String>(),
    )
    .await?;
    tx.changes_only_incident(&entry.incident_id);
    tx.commit_timeline().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in EntryKind::ALL {
            assert_eq!(EntryKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EntryKind::parse("gossip"), None);
    }

    #[test]
    fn people_write_only_their_kinds_and_edit_forms_keep_a_system_kind() {
        for kind in ["alert", "snapshot", "status_change"] {
            let kind = EntryKind::parse(kind).expect("a kind");
            assert!(!kind.written_by_people(), "{kind:?}");
        }
        assert!(EntryKind::Note.written_by_people());
        assert_eq!(
            EntryKind::editable_from("note"),
            EntryKind::WRITABLE.to_vec()
        );
        assert_eq!(
            EntryKind::editable_from("alert").last(),
            Some(&EntryKind::Alert)
        );
    }

    #[test]
    fn bodies_must_have_text() {
        assert!(parse_body("  \n ").is_err());
        assert_eq!(parse_body("  rolled back  ").as_deref(), Ok("rolled back"));
        assert!(parse_body(&"x".repeat(BODY_MAX + 1)).is_err());
    }
}
