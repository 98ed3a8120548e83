//! A person's inbox: what is waiting for them — a review asked of them, changes requested on
//! or approval of their post-mortem, an action item given to them, a mention on a timeline —
//! delivered inside the transaction of the change it is about, counted by the header's badge.

pub mod api;
pub mod db;
pub mod mail;
pub mod web;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::SqliteConnection;

use crate::auth::User;
use crate::db::Db;
use crate::error::{AppError, AppResult};

/// What the inbox pages and API need, taken from the app state by `app.rs`.
#[derive(Clone)]
pub struct InboxState {
    pub db: Db,
}

choice!(
    Kind,
    "kind",
    [
        ReviewRequested = "review_requested",
        ChangesRequested = "changes_requested",
        Approved = "approved",
        Published = "published",
        ItemAssigned = "item_assigned",
        Mentioned = "mentioned"
    ]
);

impl Kind {
    /// A short label for the page.
    pub fn label(self) -> &'static str {
        match self {
            Self::ReviewRequested => "review asked",
            Self::ChangesRequested => "changes requested",
            Self::Approved => "approved",
            Self::Published => "published",
            Self::ItemAssigned => "action item",
            Self::Mentioned => "mention",
        }
    }
}

/// One message as shown.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: String,
    pub kind: Kind,
    pub actor_name: Option<String>,
    pub incident_number: i64,
    pub incident_title: String,
    pub text: String,
    pub link_suffix: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

impl Message {
    /// Where the message points: the incident, or a place on it.
    pub fn link(&self) -> String {
        format!(
            "/incidents/INC-{}{}",
            self.incident_number, self.link_suffix
        )
    }

    pub fn is_unread(&self) -> bool {
        self.read_at.is_none()
    }
}

/// What to deliver: the kind, the incident, the words and where on the incident it points.
pub struct Notice<'a> {
    pub kind: Kind,
    pub incident_id: &'a str,
    pub text: String,
    pub link_suffix: String,
}

/// Puts `notice` in the inbox of `to` (a user id), inside the caller's write transaction, so
/// it exists exactly when the change it is about was committed. Nobody is told about their
/// own doing: a notice whose actor is its recipient is dropped.
pub async fn deliver(
    conn: &mut SqliteConnection,
    to: &str,
    actor: Option<&User>,
    notice: &Notice<'_>,
) -> AppResult<()> {
    if actor.is_some_and(|a| a.id == to) {
        return Ok(());
    }
    db::insert(conn, to, actor.map(|a| a.id.as_str()), notice, Utc::now()).await?;
    Ok(())
}

/// The `@handles` a text mentions: `@` then letters, digits, `.`, `_` or `-`, not preceded by
/// a word character (so `ops@corp.com` mentions nobody), lower-cased, each once, without a
/// trailing dot (end of sentence).
pub fn mentioned_handles(text: &str) -> Vec<String> {
    let mut handles: Vec<String> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let is_handle = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-');
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i] == '@' && (i == 0 || !(chars[i - 1].is_alphanumeric()));
        if !starts {
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < chars.len() && is_handle(chars[end]) {
            end += 1;
        }
        let handle: String = chars[i + 1..end].iter().collect();
        let handle = handle.trim_end_matches(['.', '-', '_']).to_lowercase();
        if !handle.is_empty() && !handles.contains(&handle) {
            handles.push(handle);
        }
        i = end.max(i + 1);
    }
    handles
}

/// Most people one text can notify by mention (a pasted list of handles is not a broadcast).
const MENTIONS_MAX: usize = 20;

/// Tells everyone `text` mentions by `@handle` (the part of their e-mail address before the
/// `@`, when exactly one active user has it), inside the caller's transaction.
pub async fn mention(
    conn: &mut SqliteConnection,
    actor: &User,
    incident_id: &str,
    text: &str,
    link_suffix: &str,
    what: &str,
) -> AppResult<()> {
    let handles = mentioned_handles(text);
    for handle in handles.iter().take(MENTIONS_MAX) {
        let Some(user_id) = db::user_with_handle(&mut *conn, handle).await? else {
            continue;
        };
        let notice = Notice {
            kind: Kind::Mentioned,
            incident_id,
            text: format!("mentioned you {what}: {}", excerpt(text)),
            link_suffix: link_suffix.to_owned(),
        };
        deliver(conn, &user_id, Some(actor), &notice).await?;
    }
    Ok(())
}

/// The start of a text for a message line (whole words, at most ~140 characters).
fn excerpt(text: &str) -> String {
    let flat = crate::markdown::plain_text(text);
    if flat.chars().count() <= 140 {
        return flat;
    }
    let mut out = String::new();
    for word in flat.split_whitespace() {
        if out.chars().count() + word.chars().count() > 138 {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.push('…');
    out
}

/// Messages shown on the inbox page.
pub const PAGE_SIZE: i64 = 100;

/// `user`'s messages, newest first, and how many are unread.
pub async fn messages(db: &Db, user: &User, unread_only: bool) -> AppResult<(Vec<Message>, i64)> {
    let list = db::list_for(&db.reader, &user.id, unread_only, PAGE_SIZE).await?;
    let unread = db::unread_count(&db.reader, &user.id).await?;
    Ok((list, unread))
}

/// Marks one of `user`'s messages read and answers where it points. Reading one's inbox
/// changes nothing any cached page shows, so the commit leaves the read caches alone.
pub async fn open(db: &Db, user: &User, id: &str) -> AppResult<String> {
    let message = db::find_for(&db.reader, &user.id, id)
        .await?
        .ok_or_else(|| AppError::not_found("inbox message", id))?;
    if message.is_unread() {
        let mut tx = db.begin_write().await?;
        db::mark_read(&mut tx, &user.id, Some(id), Utc::now()).await?;
        tx.commit_private().await?;
    }
    Ok(message.link())
}

/// Marks all of `user`'s messages read; answers how many were unread.
pub async fn read_all(db: &Db, user: &User) -> AppResult<u64> {
    let mut tx = db.begin_write().await?;
    let n = db::mark_read(&mut tx, &user.id, None, Utc::now()).await?;
    tx.commit_private().await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_found_once_lower_cased_and_never_inside_addresses() {
        assert_eq!(
            mentioned_handles("@Sam please check; cc @ada.lovelace and @sam."),
            ["sam", "ada.lovelace"]
        );
        assert!(mentioned_handles("mail ops@corp.com or a lone @ sign").is_empty());
        assert_eq!(mentioned_handles("(@grace)"), ["grace"]);
        assert_eq!(mentioned_handles("@élodie-m, done"), ["élodie-m"]);
    }

    #[test]
    fn excerpts_end_on_a_whole_word() {
        let long = "word ".repeat(60);
        let e = excerpt(&long);
        assert!(e.ends_with('…'));
        assert!(e.chars().count() <= 140);
        assert!(e.trim_end_matches('…').split(' ').all(|w| w == "word"));
        assert_eq!(excerpt("**short** one"), "short one");
    }
}
