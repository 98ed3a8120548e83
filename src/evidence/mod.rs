//! Evidence from chat: a channel's messages imported into an incident (a Slack export, pasted
//! text, CSV), masked for credentials and personal data on the way in, kept as the incident's
//! evidence, and promoted one by one to timeline entries with a marker (detection, diagnosis,
//! repair, decision, customer communication) that the post-mortem shows.

pub mod api;
pub mod db;
pub mod mask;
pub mod slack;
pub mod text;
pub mod web;

use chrono::{DateTime, NaiveDate, Utc};

use crate::auth::User;
use crate::db::Db;
use crate::error::{AppError, AppResult};

/// What the evidence pages and API need, taken from the app state by `app.rs`.
#[derive(Clone)]
pub struct EvidenceState {
    pub db: Db,
    pub tz: chrono_tz::Tz,
}

/// Most messages one import may bring (a busy incident channel has hundreds).
pub const MAX_MESSAGES: usize = 5_000;
/// Longest message kept.
pub const MAX_TEXT: usize = 20_000;

/// A file as uploaded (or unpacked from a zip), named for error messages.
#[derive(Debug, Clone)]
pub struct Upload {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A message read from an import, before it is masked and stored.
#[derive(Debug, Clone)]
pub struct ChatMessage {
    /// Its id in the source (Slack `ts`, or a hash of time, author and text).
    pub external_id: String,
    pub author: String,
    pub posted_at: DateTime<Utc>,
    pub text: String,
    /// The thread's first message (`ts`) when this is a reply.
    pub thread_ts: Option<String>,
    pub edited: bool,
    /// Names of uploaded files, comma-separated.
    pub files: String,
}

choice! {
    /// Where imported messages came from.
    pub enum Source, "source" {
        Slack = "slack",
        Text = "text",
        Csv = "csv",
    }
}

choice! {
    /// What a promoted message was in the incident's story.
    pub enum Marker, "marker" {
        Detection = "detection",
        Diagnosis = "diagnosis",
        Repair = "repair",
        Decision = "decision",
        CustomerCommunication = "customer_communication" | "communication",
    }
}

impl Marker {
    pub fn label(self) -> &'static str {
        match self {
            Self::Detection => "detection",
            Self::Diagnosis => "diagnosis",
            Self::Repair => "repair",
            Self::Decision => "decision",
            Self::CustomerCommunication => "customer communication",
        }
    }

    /// The timeline kind the promoted entry gets.
    fn entry_kind(self) -> crate::timeline::EntryKind {
        use crate::timeline::EntryKind as K;
        match self {
            Self::Detection => K::Detection,
            Self::Diagnosis => K::Note,
            Self::Repair => K::Mitigation,
            Self::Decision => K::Action,
            Self::CustomerCommunication => K::Communication,
        }
    }
}

/// What an import read and kept.
#[derive(Debug, Clone, Default)]
pub struct ImportOutcome {
    pub read: usize,
    pub added: usize,
    /// Already there from an earlier import.
    pub skipped: usize,
    pub masked: mask::Counts,
}

/// Reads the upload of a `source` import into messages (nothing stored yet). Any problem is
/// a 422 on the `file` field naming the file and line or entry.
pub fn read(
    source: Source,
    uploads: Vec<Upload>,
    day: Option<NaiveDate>,
    until: Option<NaiveDate>,
    tz: chrono_tz::Tz,
) -> AppResult<Vec<ChatMessage>> {
    let field = |e: String| AppError::field("file", e);
    let as_text = |uploads: &[Upload]| -> AppResult<String> {
        let mut out = String::new();
        for u in uploads {
            out.push_str(std::str::from_utf8(&u.bytes).map_err(|e| {
                AppError::field(
                    "file",
                    format!("{}: not UTF-8 text (byte {})", u.name, e.valid_up_to()),
                )
            })?);
        }
        Ok(out)
    };
    let messages = match source {
        Source::Slack => {
            let files = slack::unpack(uploads).map_err(field)?;
            slack::messages(&files, day, until, MAX_TEXT).map_err(field)?
        }
        Source::Text => {
            let day = day
                .ok_or_else(|| AppError::field("day", "choose the day the conversation started"))?;
            text::pasted(&as_text(&uploads)?, day, tz, MAX_TEXT).map_err(field)?
        }
        Source::Csv => text::csv(&as_text(&uploads)?, day, tz, MAX_TEXT).map_err(field)?,
    };
    if messages.is_empty() {
        return Err(AppError::field(
            "file",
            "no messages in the chosen days (joins, topic changes and empty messages are left out)",
        ));
    }
    if messages.len() > MAX_MESSAGES {
        return Err(AppError::field(
            "file",
            format!(
                "{} messages; at most {MAX_MESSAGES} are imported at once (choose fewer days)",
                messages.len()
            ),
        ));
    }
    Ok(messages)
}

/// Stores `messages` as evidence of the incident, masked, in one transaction: all of them or
/// none. Messages already imported (same source id) are skipped.
pub async fn import(
    db: &Db,
    user: &User,
    incident_id: &str,
    source: Source,
    messages: Vec<ChatMessage>,
) -> AppResult<ImportOutcome> {
    let mut outcome = ImportOutcome {
        read: messages.len(),
        ..ImportOutcome::default()
    };
    let import_id = crate::db::new_id();
    let mut tx = db.begin_write().await?;
    for mut m in messages {
        m.text = mask::mask(&m.text, &mut outcome.masked);
        m.author = mask::mask(&m.author, &mut outcome.masked);
        m.files = mask::mask(&m.files, &mut outcome.masked);
        if db::insert(&mut tx, incident_id, &import_id, source, &m, &user.id).await? {
            outcome.added += 1;
        } else {
            outcome.skipped += 1;
        }
    }
    let masked = mask::describe(&outcome.masked);
    crate::auth::db::audit(
        &mut tx,
        Some(&user.id),
        "evidence.import",
        incident_id,
        &format!(
            "{} {} messages added, {} already there{}",
            source.as_str(),
            outcome.added,
            outcome.skipped,
            if masked.is_empty() {
                String::new()
            } else {
                format!("; masked {masked}")
            }
        ),
    )
    .await?;
    crate::timeline::db::insert(
        &mut tx,
        incident_id,
        Utc::now(),
        crate::timeline::EntryKind::Note,
        &format!(
            "Imported {} chat message{} as evidence ({}).",
            outcome.added,
            if outcome.added == 1 { "" } else { "s" },
            source.as_str()
        ),
        Some(&user.id),
    )
    .await?;
    tx.commit().await?;
    Ok(outcome)
}

/// The timeline text of a promoted message: who said it, what, and a link back to it.
fn entry_body(incident_number: i64, m: &db::Message) -> String {
    let quoted: String = m.text.lines().map(|l| format!("> {l}\n")).collect();
    format!(
        "**{}** in chat:\n\n{}\n\n[Chat message](/incidents/INC-{}/evidence#msg-{})",
        crate::markdown::escape(&m.author),
        quoted.trim_end(),
        incident_number,
        m.id
    )
}

/// Promotes a message to a timeline entry at the message's time, marked. Promoting the same
/// message again is refused (409) while its entry exists.
pub async fn promote(
    db: &Db,
    user: &User,
    incident_id: &str,
    incident_number: i64,
    message_id: &str,
    marker: Marker,
) -> AppResult<String> {
    let m = db::find(&db.reader, incident_id, message_id)
        .await?
        .ok_or_else(|| AppError::not_found("chat message", message_id))?;
    let mut tx = db.begin_write().await?;
    if db::promoted_entry(&mut tx, &m.id).await?.is_some() {
        return Err(AppError::AlreadyExists(
            "this message is already on the timeline".into(),
        ));
    }
    let entry_id = crate::timeline::db::insert(
        &mut tx,
        incident_id,
        m.posted_at,
        marker.entry_kind(),
        &entry_body(incident_number, &m),
        Some(&user.id),
    )
    .await?;
    db::insert_promotion(&mut tx, &entry_id, &m.id, marker).await?;
    crate::auth::db::audit(
        &mut tx,
        Some(&user.id),
        "evidence.promote",
        incident_id,
        &format!("{} {}", marker.as_str(), m.id),
    )
    .await?;
    tx.commit().await?;
    Ok(entry_id)
}
