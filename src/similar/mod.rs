//! Similar past incidents and links between incidents: the ranked suggestions the declare
//! form and `GET /api/v1/incidents/similar` show while someone types a title, and the
//! related / duplicate of / caused by links people record, shown from both sides.

pub mod api;
pub mod db;
pub mod web;

use std::collections::HashMap;

use crate::auth::User;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::visibility::Viewer;

/// What the suggestions and link forms need, taken from the app state by `app.rs`.
#[derive(Clone)]
pub struct SimilarState {
    pub db: Db,
    pub tz: chrono_tz::Tz,
}

/// Longest title the suggestions read (an incident title is at most 200 characters; a little
/// slack for someone pasting).
pub const TITLE_MAX: usize = 300;
/// Most suggestions one request may ask for.
pub const LIMIT_MAX: i64 = 20;
/// Suggestions when the caller does not say.
pub const LIMIT_DEFAULT: i64 = 5;
/// Candidates each full-text source contributes before they are merged per incident.
pub const CANDIDATES: i64 = 60;

/// Words that say nothing about what went wrong; matching on them ranks noise.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is",
    "it", "its", "of", "on", "or", "the", "to", "was", "were", "with", "after", "during", "not",
    "no", "our", "we", "this", "that", "some", "all", "into", "over", "under", "when", "while",
    "incident", "issue", "issues", "problem", "problems",
];

/// The FTS5 query for a title being typed: its words (folded, stop words and one-letter
/// words dropped, each once) OR-ed, so a title sharing most words ranks first without every
/// word being required. The last word is a prefix while the person is still typing it (no
/// space after it yet). None when no word is left.
pub fn similar_query(title: &str) -> Option<String> {
    let still_typing = !title.ends_with(|c: char| !c.is_alphanumeric());
    let words: Vec<String> = crate::search::terms(title);
    let mut seen = Vec::new();
    let n = words.len();
    let mut parts = Vec::new();
    for (i, w) in words.into_iter().enumerate() {
        let last = i + 1 == n;
        if w.chars().count() < 2 || STOP_WORDS.contains(&w.as_str()) || seen.contains(&w) {
            continue;
        }
        // A prefix of one or two letters would match half the index.
        let prefix = last && still_typing && w.chars().count() >= 3;
        parts.push(if prefix {
            format!("\"{w}\"*")
        } else {
            format!("\"{w}\"")
        });
        seen.push(w);
    }
    (!parts.is_empty()).then(|| parts.join(" OR "))
}

/// A suggestion request, checked.
#[derive(Debug, Clone)]
pub struct SimilarRequest {
    pub title: String,
    pub service: Option<String>,
    pub limit: i64,
    /// Left out of the answers (the incident whose page asks).
    pub exclude: Option<String>,
}

impl SimilarRequest {
    /// Checks what a caller sent: a title that is neither empty nor too long, a limit in range.
    pub fn parse(
        title: Option<&str>,
        service: Option<&str>,
        limit: Option<&str>,
    ) -> AppResult<Self> {
        let title = title.unwrap_or("").trim();
        if title.is_empty() {
            return Err(AppError::field("title", "is required"));
        }
        if title.chars().count() > TITLE_MAX {
            return Err(AppError::field(
                "title",
                format!("must be at most {TITLE_MAX} characters"),
            ));
        }
        let limit = match limit.map(str::trim).filter(|l| !l.is_empty()) {
            None => LIMIT_DEFAULT,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (1..=LIMIT_MAX).contains(&n) => n,
                _ => {
                    return Err(AppError::field(
                        "limit",
                        format!("must be a whole number from 1 to {LIMIT_MAX}"),
                    ));
                }
            },
        };
        let service = service
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Ok(Self {
            title: title.to_owned(),
            service,
            limit,
            exclude: None,
        })
    }
}

/// How much each source's bm25 counts towards an incident's score: its own title and summary
/// most, then root-cause descriptions, then post-mortem sections (long text that mentions
/// many things).
const WEIGHT_INCIDENT: f64 = 1.0;
const WEIGHT_ROOT_CAUSE: f64 = 0.6;
const WEIGHT_SECTION: f64 = 0.4;
/// The same service as the one picked on the form makes a suggestion a quarter stronger.
const SERVICE_BOOST: f64 = 1.25;

/// Up to `limit` incidents most like the title that the viewer may see, best first.
pub async fn suggest(
    db: &Db,
    req: &SimilarRequest,
    viewer: &Viewer,
) -> AppResult<Vec<db::Suggestion>> {
    let Some(fts) = similar_query(&req.title) else {
        return Ok(Vec::new());
    };
    let pool = &db.reader;
    let (incidents, causes, sections) = tokio::try_join!(
        db::incident_candidates(pool, &fts, CANDIDATES),
        db::root_cause_candidates(pool, &fts, CANDIDATES),
        db::section_candidates(pool, &fts, CANDIDATES),
    )?;
    let mut scores: HashMap<String, (f64, String)> = HashMap::new();
    for (weight, list) in [
        (WEIGHT_INCIDENT, incidents),
        (WEIGHT_ROOT_CAUSE, causes),
        (WEIGHT_SECTION, sections),
    ] {
        // Several sections or causes of one incident: its best one counts.
        let mut best: HashMap<String, (f64, String)> = HashMap::new();
        for c in list {
            let e = best.entry(c.incident_id).or_insert((0.0, c.service));
            e.0 = e.0.max(c.score);
        }
        for (id, (score, service)) in best {
            let e = scores.entry(id).or_insert((0.0, service));
            e.0 += weight * score;
        }
    }
    let mut ranked: Vec<(String, f64)> = scores
        .into_iter()
        .filter(|(id, _)| req.exclude.as_deref() != Some(id.as_str()))
        .map(|(id, (score, service))| {
            let boosted = match &req.service {
                Some(s) if s.eq_ignore_ascii_case(&service) => score * SERVICE_BOOST,
                _ => score,
            };
            (id, boosted)
        })
        .collect();
    // Ties: the newer incident (ids are UUIDv7, so they sort by time) first.
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    ranked.truncate(usize::try_from(req.limit).unwrap_or(LIMIT_DEFAULT as usize));
    let ids: Vec<String> = ranked.iter().map(|(id, _)| id.clone()).collect();
    let mut details = db::details(pool, &ids, viewer).await?;
    let mut out = Vec::with_capacity(ranked.len());
    for (id, score) in ranked {
        if let Some(pos) = details.iter().position(|d| d.id == id) {
            let mut d = details.swap_remove(pos);
            d.score = (score * 1000.0).round() / 1000.0;
            out.push(d);
        }
    }
    Ok(out)
}

choice! {
    /// How two incidents are linked, as stored on the incident the link was made on.
    pub enum LinkKind, "kind" {
        Related = "related",
        DuplicateOf = "duplicate_of",
        CausedBy = "caused_by",
    }
}

impl LinkKind {
    /// As read on the incident the link was made on.
    pub fn label(self) -> &'static str {
        match self {
            Self::Related => "related to",
            Self::DuplicateOf => "duplicate of",
            Self::CausedBy => "caused by",
        }
    }

    /// As read on the other incident.
    pub fn inverse_label(self) -> &'static str {
        match self {
            Self::Related => "related to",
            Self::DuplicateOf => "duplicated by",
            Self::CausedBy => "caused",
        }
    }

    /// The API's name for the inverse.
    pub fn inverse_name(self) -> &'static str {
        match self {
            Self::Related => "related",
            Self::DuplicateOf => "duplicated_by",
            Self::CausedBy => "caused",
        }
    }
}

/// Links `from` to the incident `to_key` names. Refuses a link to itself (422) and a second
/// link between the same two incidents (409, whichever side the first was made on); both
/// timelines record the change.
pub async fn link(
    db: &Db,
    user: &User,
    from: &db::IncidentRef,
    to_key: &str,
    kind: LinkKind,
) -> AppResult<db::Link> {
    let to_key = to_key.trim();
    if to_key.is_empty() {
        return Err(AppError::field("incident", "is required (INC-42)"));
    }
    let viewer = Viewer::user(&user.id);
    let Some(to) = db::find_incident(&db.reader, to_key, &viewer).await? else {
        return Err(AppError::field(
            "incident",
            format!("no incident {to_key} exists"),
        ));
    };
    if to.id == from.id {
        return Err(AppError::field(
            "incident",
            "an incident cannot be linked to itself",
        ));
    }
    let mut tx = db.begin_write().await?;
    if let Some(existing) = db::link_between(&mut tx, &from.id, &to.id).await? {
        return Err(AppError::AlreadyExists(format!(
            "INC-{} and INC-{} are already linked ({}); remove that link first",
            from.number,
            to.number,
            existing.as_str()
        )));
    }
    let id = db::insert_link(&mut tx, &from.id, &to.id, kind, &user.id).await?;
    let now = chrono::Utc::now();
    let note = crate::timeline::EntryKind::Note;
    crate::timeline::db::insert(
        &mut tx,
        &from.id,
        now,
        note,
        &format!("Linked: {} {}.", kind.label(), named(&to)),
        Some(&user.id),
    )
    .await?;
    crate::timeline::db::insert(
        &mut tx,
        &to.id,
        now,
        note,
        &format!("Linked: {} {}.", kind.inverse_label(), named(from)),
        Some(&user.id),
    )
    .await?;
    crate::auth::db::audit(
        &mut tx,
        Some(&user.id),
        "incident.link",
        &from.id,
        &format!("{} INC-{}", kind.as_str(), to.number),
    )
    .await?;
    tx.commit().await?;
    db::find_link(&db.writer, &id, &from.id, &viewer)
        .await?
        .ok_or_else(|| AppError::Internal("link vanished after insert".into()))
}

/// How another incident's timeline names this one: a restricted incident by no number, since
/// that timeline may be read by people outside it.
fn named(incident: &db::IncidentRef) -> String {
    if incident.restricted {
        "a restricted incident".to_owned()
    } else {
        format!("INC-{}", incident.number)
    }
}

/// Removes the link `id` seen from `on` (either side may remove it); both timelines record it.
pub async fn unlink(db: &Db, user: &User, on: &db::IncidentRef, id: &str) -> AppResult<()> {
    let viewer = Viewer::user(&user.id);
    let Some(link) = db::find_link(&db.reader, id, &on.id, &viewer).await? else {
        return Err(AppError::missing("link"));
    };
    let mut tx = db.begin_write().await?;
    if !db::delete_link(&mut tx, id).await? {
        return Err(AppError::missing("link"));
    }
    let now = chrono::Utc::now();
    let note = crate::timeline::EntryKind::Note;
    crate::timeline::db::insert(
        &mut tx,
        &on.id,
        now,
        note,
        &format!(
            "Link removed: {} {}.",
            link.label(),
            named(&db::IncidentRef {
                id: link.other_id.clone(),
                number: link.other_number,
                restricted: link.other_restricted,
            })
        ),
        Some(&user.id),
    )
    .await?;
    crate::timeline::db::insert(
        &mut tx,
        &link.other_id,
        now,
        note,
        &format!("Link removed: {} {}.", link.other_side_label(), named(on)),
        Some(&user.id),
    )
    .await?;
    crate::auth::db::audit(
        &mut tx,
        Some(&user.id),
        "incident.unlink",
        &on.id,
        &format!("{} INC-{}", link.kind.as_str(), link.other_number),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_become_or_queries_without_stop_words() {
        assert_eq!(
            similar_query("Checkout is down for the EU").as_deref(),
            Some("\"checkout\" OR \"down\" OR \"eu\"")
        );
        // The last word is a prefix while it is being typed.
        assert_eq!(
            similar_query("database pool exhau").as_deref(),
            Some("\"database\" OR \"pool\" OR \"exhau\"*")
        );
        assert_eq!(similar_query("the a of").as_deref(), None);
        assert_eq!(similar_query("\"*NEAR(").as_deref(), Some("\"near\""));
        assert_eq!(similar_query("db db db ").as_deref(), Some("\"db\""));
    }

    #[test]
    fn requests_name_the_bad_field() {
        let err = SimilarRequest::parse(Some("  "), None, None).expect_err("refused");
        assert!(err.to_string().starts_with("title"));
        let long = "x".repeat(TITLE_MAX + 1);
        assert!(SimilarRequest::parse(Some(&long), None, None).is_err());
        let err = SimilarRequest::parse(Some("db"), None, Some("500")).expect_err("refused");
        assert!(err.to_string().starts_with("limit"));
        let ok = SimilarRequest::parse(Some("db"), Some(" "), None).expect("valid");
        assert_eq!((ok.limit, ok.service), (LIMIT_DEFAULT, None));
    }
}
