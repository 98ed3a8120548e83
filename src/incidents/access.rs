//! Who may see a restricted incident: its participants, who may change that (its commander or
//! an admin), and how a change is recorded (audit log and timeline).

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::{Actor, Incident, db};
use crate::auth::User;
use crate::db::Db;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::timeline::{self, EntryKind};

/// At most this many people are added to one incident by name.
pub const MAX_PARTICIPANTS: usize = 100;

/// Whether an incident is restricted and who was added to it by name.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub restricted: bool,
    /// Participants (not the commander, who always may see it), sorted by id.
    pub participants: Vec<User>,
}

/// Equal when restricted alike and the same people are added (by id).
impl PartialEq for Access {
    fn eq(&self, other: &Self) -> bool {
        self.restricted == other.restricted && self.ids() == other.ids()
    }
}

impl Access {
    pub async fn load(conn: impl sqlx::SqliteExecutor<'_>, incident: &Incident) -> AppResult<Self> {
        let mut participants: Vec<User> = db::participants(conn, &incident.id)
            .await?
            .into_iter()
            .map(|p| User {
                id: p.user_id,
                email: p.email,
                name: p.name,
                role: crate::auth::Role::Viewer,
            })
            .collect();
        participants.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Self {
            restricted: incident.restricted,
            participants,
        })
    }

    fn ids(&self) -> Vec<&str> {
        self.participants.iter().map(|u| u.id.as_str()).collect()
    }
}

/// Trims, drops empties and duplicates; refuses more than [`MAX_PARTICIPANTS`].
pub fn parse_participants(list: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for raw in list.iter().flat_map(|s| s.split([',', '\n'])) {
        let email = raw.trim();
        if email.is_empty() || out.iter().any(|e| e.eq_ignore_ascii_case(email)) {
            continue;
        }
        if email.chars().count() > 254 {
            return Err("each e-mail address must be at most 254 characters".into());
        }
        out.push(email.to_owned());
    }
    if out.len() > MAX_PARTICIPANTS {
        return Err(format!("at most {MAX_PARTICIPANTS} participants"));
    }
    Ok(out)
}

/// The users the e-mail addresses (or user ids) name, sorted by id; an unknown one is a field
/// error naming it.
pub async fn resolve_participants(
    db: &Db,
    emails: &[String],
    errors: &mut FieldErrors,
) -> AppResult<Vec<User>> {
    let mut users = Vec::new();
    let mut unknown = Vec::new();
    for email in emails {
        // People type e-mail addresses; scripts may send user ids (API.md: `email|id`).
        match crate::auth::db::find_user_by_email_or_id(&db.reader, email).await? {
            Some(user) => {
                if !users.iter().any(|u: &User| u.id == user.id) {
                    users.push(user);
                }
            }
            None => unknown.push(email.as_str()),
        }
    }
    if !unknown.is_empty() {
        errors.insert(
            "participants".into(),
            format!("no user has the e-mail {}", unknown.join(", ")),
        );
    }
    users.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(users)
}

/// Only the incident's commander or an admin may change whether it is restricted and who is
/// added to it: anyone else who can see it gets 403 saying so.
pub fn may_change(by: Actor<'_>, incident: &Incident) -> AppResult<()> {
    match by {
        Actor::Person(user)
            if user.is_admin() || incident.commander_id.as_deref() == Some(user.id.as_str()) =>
        {
            Ok(())
        }
        Actor::Person(_) => Err(AppError::Forbidden(
            "only the incident's commander or an admin can change whether it is restricted \
             and who is added to it"
                .into(),
        )),
        // Alert rules set it when they open an incident; nothing automatic changes it later.
        Actor::System(_) => Err(AppError::Forbidden(
            "who may see an incident is changed by a person".into(),
        )),
    }
}

/// Writes the change from `before` to `after` in the caller's write transaction: the
/// participant rows, one audit entry (`incident.access`, naming everyone added and removed,
/// for admins), and one timeline entry. The timeline names the people added (they are on the
/// incident from now on and see it themselves) but only counts the people removed: a timeline
/// outlives the restriction, and "who was once let in and taken out again" is not something
/// the people who stay, or everyone after it is unrestricted, need to read.
pub async fn record(
    tx: &mut SqliteConnection,
    incident_id: &str,
    number: i64,
    by: Option<&str>,
    before: &Access,
    after: &Access,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let (old, new) = (before.ids(), after.ids());
    let added: Vec<&User> = after
        .participants
        .iter()
        .filter(|u| !old.contains(&u.id.as_str()))
        .collect();
    let removed: Vec<&User> = before
        .participants
        .iter()
        .filter(|u| !new.contains(&u.id.as_str()))
        .collect();
    for u in &added {
        db::add_participant(tx, incident_id, &u.id, by, now).await?;
    }
    for u in &removed {
        db::remove_participant(tx, incident_id, &u.id).await?;
    }
    let mut lines = Vec::new();
    let mut audit = Vec::new();
    if before.restricted != after.restricted {
        lines.push(if after.restricted {
            "Restricted: only admins, the commander and the participants can see this incident."
                .to_owned()
        } else {
            "No longer restricted: everyone signed in can see this incident.".to_owned()
        });
        audit.push(format!(
            "restricted: {} → {}",
            before.restricted, after.restricted
        ));
    }
    if !added.is_empty() {
        let names: Vec<String> = added
            .iter()
            .map(|u| crate::markdown::escape(&u.name))
            .collect();
        lines.push(format!("Participants added: {}.", names.join(", ")));
        let emails: Vec<&str> = added.iter().map(|u| u.email.as_str()).collect();
        audit.push(format!("added: {}", emails.join(", ")));
    }
    if !removed.is_empty() {
        lines.push(match removed.len() {
            1 => "One participant removed.".to_owned(),
            n => format!("{n} participants removed."),
        });
        let emails: Vec<&str> = removed.iter().map(|u| u.email.as_str()).collect();
        audit.push(format!("removed: {}", emails.join(", ")));
    }
    if lines.is_empty() {
        return Ok(());
    }
    crate::auth::db::audit(
        tx,
        by,
        "incident.access",
        &format!("INC-{number}"),
        &audit.join("; "),
    )
    .await?;
    timeline::db::insert(
        tx,
        incident_id,
        now,
        EntryKind::Note,
        &lines.join("  \n"),
        by,
    )
    .await?;
    Ok(())
}

/// Records in the audit log that `user` exported `what` of a restricted incident (a download
/// leaves Hindsight, so who took one is kept); nothing for an unrestricted one.
pub async fn record_export(db: &Db, user: &User, incident: &Incident, what: &str) -> AppResult<()> {
    if !incident.restricted {
        return Ok(());
    }
    let mut tx = db.begin_write().await?;
    crate::auth::db::audit(
        &mut tx,
        Some(&user.id),
        "incident.export",
        &incident.key(),
        what,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
