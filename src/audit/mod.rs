//! The audit log, readable: who did what and when (sign-ins and their failures, single
//! sign-on, account and role changes, tokens, templates, alert rules, …), filtered by actor,
//! action and dates, paged and exported as CSV. Entries are written by `auth::db::audit` in
//! the transaction of the change they record; the database refuses to change or delete them
//! (migration 0023).

pub mod api;
pub mod db;
pub mod web;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::db::Db;
use crate::error::{AppError, AppResult, FieldErrors};

/// What Admin › Audit and `GET /api/v1/audit` need, taken from the app state by `app.rs`.
#[derive(Clone)]
pub struct AuditState {
    pub db: Db,
    /// Dates in the filter are days in this zone.
    pub tz: Tz,
}

/// Entries per page.
pub const PER_PAGE: u32 = 50;
/// Most rows one CSV export holds: a year of a busy team's log; narrow the dates beyond it.
pub const MAX_EXPORT_ROWS: i64 = 100_000;
/// The actor filter's value for entries with no user (command line, system, failed sign-ins).
pub const NO_USER: &str = "none";

/// The filter as typed (query string of the page, the CSV link and the API): every field may
/// be empty.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditQuery {
    /// An actor's e-mail address, or `none` for entries without one.
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub action: String,
    /// First day (inclusive), `2026-11-01`, in the configured zone.
    #[serde(default)]
    pub from: String,
    /// Last day (inclusive).
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub page: Option<String>,
}

impl AuditQuery {
    /// The query string of the filter alone (no page), for page links and the CSV link.
    pub fn filter_query(&self) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("actor", self.actor.trim()),
            ("action", self.action.trim()),
            ("from", self.from.trim()),
            ("to", self.to.trim()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    pub fn is_filtered(&self) -> bool {
        !self.filter_query().is_empty()
    }
}

/// One page of the log and what the page needs around it.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub entries: Vec<db::Entry>,
    pub total: i64,
    pub page: u32,
    pub pages: u32,
}

fn day_start(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    // Midnight that a DST change skips takes its earliest meaning (as form times do).
    day.and_hms_opt(0, 0, 0)
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map_or_else(
            || day.and_time(chrono::NaiveTime::MIN).and_utc(),
            |t| t.with_timezone(&Utc),
        )
}

/// Checks the filter, naming each bad field, and resolves the actor's e-mail to an account.
pub async fn parse_filter(state: &AuditState, q: &AuditQuery) -> AppResult<db::Filter> {
    let mut errors = FieldErrors::new();
    let from = crate::time::parse_date(&q.from).unwrap_or_else(|e| {
        errors.insert("from".into(), e);
        None
    });
    let to = crate::time::parse_date(&q.to).unwrap_or_else(|e| {
        errors.insert("to".into(), e);
        None
    });
    if let (Some(f), Some(t)) = (from, to)
        && t < f
    {
        errors.insert("to".into(), "must not be before from".into());
    }
    let action = q.action.trim();
    if action.chars().count() > 100 {
        errors.insert("action".into(), "must be at most 100 characters".into());
    }
    let actor = q.actor.trim();
    if actor.chars().count() > 254 {
        errors.insert("actor".into(), "must be at most 254 characters".into());
    }
    if !errors.is_empty() {
        return Err(AppError::fields(errors));
    }
    let actor = if actor.is_empty() {
        db::ActorFilter::Anyone
    } else if actor.eq_ignore_ascii_case(NO_USER) {
        db::ActorFilter::NoUser
    } else {
        // An address nobody has matches nothing (an empty page), like any other filter.
        let user = crate::auth::db::find_user_by_email(&state.db.reader, actor).await?;
        db::ActorFilter::User(user.map(|u| u.id).unwrap_or_default())
    };
    Ok(db::Filter {
        actor,
        action: (!action.is_empty()).then(|| action.to_owned()),
        from: from.map(|d| crate::db::ts(day_start(state.tz, d))),
        until: to
            .and_then(|d| d.checked_add_days(Days::new(1)))
            .map(|d| crate::db::ts(day_start(state.tz, d))),
    })
}

/// The page of the log the query asks for (page numbers past the end show the last page).
pub async fn page(state: &AuditState, q: &AuditQuery) -> AppResult<AuditPage> {
    let filter = parse_filter(state, q).await?;
    let page_no = match q.page.as_deref().map(str::trim) {
        None | Some("") => 1,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|p| (1..=1_000_000).contains(p))
            .ok_or_else(|| AppError::field("page", "must be a whole number from 1"))?,
    };
    let total = db::count(&state.db.reader, &filter).await?;
    let pages = u32::try_from((total + i64::from(PER_PAGE) - 1) / i64::from(PER_PAGE))
        .unwrap_or(u32::MAX)
        .max(1);
    let page_no = page_no.min(pages);
    let entries = db::list(
        &state.db.reader,
        &filter,
        i64::from(PER_PAGE),
        i64::from(page_no - 1) * i64::from(PER_PAGE),
    )
    .await?;
    Ok(AuditPage {
        entries,
        total,
        page: page_no,
        pages,
    })
}

/// Every entry the filter matches (up to [`MAX_EXPORT_ROWS`]), newest first, for the export.
pub async fn all(state: &AuditState, q: &AuditQuery) -> AppResult<Vec<db::Entry>> {
    let filter = parse_filter(state, q).await?;
    db::list(&state.db.reader, &filter, MAX_EXPORT_ROWS, 0).await
}

/// The export: one row per entry, times in UTC (RFC 3339), every field formula-safe.
pub fn to_csv(entries: &[db::Entry]) -> String {
    let mut out = String::from("at,actor_email,actor_name,action,target,detail\n");
    for e in entries {
        let row = [
            crate::db::ts(e.at),
            e.actor_email.clone().unwrap_or_default(),
            e.actor_name.clone().unwrap_or_default(),
            e.action.clone(),
            e.target.clone(),
            e.detail.clone(),
        ];
        out.push_str(
            &row.iter()
                .map(|f| crate::csv::csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}

/// The actions and actors the filter offers.
pub async fn choices(state: &AuditState) -> AppResult<(Vec<String>, Vec<(String, String)>)> {
    Ok((
        db::actions(&state.db.reader).await?,
        db::actors(&state.db.reader).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_defuses_formulas_a_target_could_carry() {
        let entry = db::Entry {
            id: "1".into(),
            at: Utc
                .with_ymd_and_hms(2026, 11, 30, 12, 0, 0)
                .single()
                .expect("valid"),
            actor_email: None,
            actor_name: None,
            action: "login.failed".into(),
            target: "=HYPERLINK(\"http://evil\")@x".into(),
            detail: "from 127.0.0.1".into(),
        };
        let csv = to_csv(&[entry]);
        let line = csv.lines().nth(1).expect("one row");
        assert!(line.starts_with("2026-11-30T12:00:00.000Z,,,login.failed,\"'=HYPERLINK"));
    }

    #[test]
    fn filter_query_keeps_only_what_was_typed() {
        let q = AuditQuery {
            actor: " a@example.com ".into(),
            action: String::new(),
            from: "2026-11-01".into(),
            to: String::new(),
            page: Some("3".into()),
        };
        assert_eq!(q.filter_query(), "actor=a%40example.com&from=2026-11-01");
        assert!(!AuditQuery::default().is_filtered());
    }
}
