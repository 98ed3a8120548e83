//! Recurrence: whether an incident is the K-th alike one within W days (same known category,
//! or same service and primary root-cause category), and which earlier incidents make it so.
//! Incident pages, the incident list and the weekly review all ask this one area.
//!
//! The boundary is inclusive: an incident that started exactly `window_days` × 24 h earlier
//! counts. Each criterion reaches K on its own. `unknown` means "not known yet" and never makes
//! two incidents alike.

pub mod db;

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use crate::db::{Db, ReadCache};
use crate::error::AppResult;

/// How many related incidents an incident's recurrence lists (the count covers them all).
pub const LIST_MAX: usize = 20;

/// The category that means "not known yet": never counts towards recurrence.
pub const UNKNOWN: &str = "unknown";

/// When an incident counts as recurring (`HINDSIGHT_RECURRENCE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// K: how many other incidents must be alike.
    pub min_others: u32,
    /// W: how many days back to look.
    pub window_days: u32,
}

impl Default for Rule {
    fn default() -> Self {
        Self {
            min_others: 2,
            window_days: 90,
        }
    }
}

impl Rule {
    /// The earliest start that still counts for an incident started at `at` (inclusive).
    pub fn window_start(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        at - Duration::days(i64::from(self.window_days))
    }
}

/// What recurrence needs to know of an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecurrenceFacts {
    pub number: i64,
    pub started_at: DateTime<Utc>,
    pub category: String,
    pub service: String,
    /// Category of the post-mortem's primary root cause, once one is set.
    pub primary_cause: Option<String>,
}

fn known(category: &str) -> bool {
    !category.eq_ignore_ascii_case(UNKNOWN)
}

/// Same (known) category.
fn same_category(target: &RecurrenceFacts, other: &RecurrenceFacts) -> bool {
    known(&target.category) && other.category == target.category
}

/// Same service and same (known) primary root-cause category.
fn same_service_and_cause(target: &RecurrenceFacts, other: &RecurrenceFacts) -> bool {
    match (&target.primary_cause, &other.primary_cause) {
        (Some(a), Some(b)) => known(a) && a == b && target.service == other.service,
        _ => false,
    }
}

/// The earlier incidents that make `target` recur (most recent first): those sharing its
/// category when at least `min_others` do, plus those sharing its service and primary root
/// cause when at least `min_others` do. Each criterion must reach K on its own. Empty when
/// it does not recur.
pub fn related<'a>(
    target: &RecurrenceFacts,
    candidates: &'a [RecurrenceFacts],
    rule: Rule,
) -> Vec<&'a RecurrenceFacts> {
    let from = rule.window_start(target.started_at);
    let window: Vec<&RecurrenceFacts> = candidates
        .iter()
        .filter(|c| c.number != target.number)
        .filter(|c| c.started_at >= from && c.started_at <= target.started_at)
        .collect();
    let k = rule.min_others as usize;
    let mut found: Vec<&RecurrenceFacts> = Vec::new();
    for alike in [same_category, same_service_and_cause] {
        let matches: Vec<&RecurrenceFacts> = window
            .iter()
            .copied()
            .filter(|c| alike(target, c))
            .collect();
        if matches.len() >= k {
            found.extend(matches);
        }
    }
    found.sort_by(|a, b| {
        b.started_at
            .cmp(&a.started_at)
            .then(b.number.cmp(&a.number))
    });
    found.dedup_by_key(|c| c.number);
    found
}

/// An action item not done yet, as reports list it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OpenItem {
    pub id: String,
    #[serde(serialize_with = "inc_number")]
    pub incident: i64,
    #[serde(skip)]
    pub incident_id: String,
    pub title: String,
    pub status: String,
    pub priority: String,
    pub owner: Option<String>,
    pub due_on: Option<NaiveDate>,
}

impl OpenItem {
    pub fn overdue<D: std::borrow::Borrow<NaiveDate>>(&self, today: D) -> bool {
        let today = *today.borrow();
        self.due_on.is_some_and(|d| d < today)
    }
}

/// Serializes an incident number as its key (`INC-42`).
pub fn inc_number<S: serde::Serializer>(n: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("INC-{n}"))
}

/// How an incident recurs: the earlier alike incidents (most recent first, at most
/// `LIST_MAX`) and their action items still open.
#[derive(Debug, Clone, Serialize)]
pub struct Recurrence {
    pub recurring: bool,
    pub window_days: u32,
    pub min_others: u32,
    /// How many earlier incidents are alike (all of them, even beyond those listed).
    pub related_total: usize,
    pub related: Vec<RelatedIncident>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RelatedIncident {
    #[serde(serialize_with = "inc_number")]
    pub number: i64,
    pub title: String,
    pub started_at: DateTime<Utc>,
    pub category: String,
    pub service: String,
    pub open_action_items: Vec<OpenItem>,
}

/// Whether the incident `incident_id` recurs, and with which earlier incidents.
pub async fn recurrence(
    db: &crate::db::Db,
    incident_id: &str,
    rule: Rule,
) -> AppResult<Recurrence> {
    let pool = &db.reader;
    let target = db::facts(pool, incident_id).await?;
    let candidates = db::candidates(pool, &target, rule).await?;
    let found = related(&target, &candidates, rule);
    let related_total = found.len();
    let shown: Vec<&RecurrenceFacts> = found.into_iter().take(LIST_MAX).collect();
    let numbers: Vec<i64> = shown.iter().map(|f| f.number).collect();
    // Only incidents everyone may see are named (restricted ones still count in the total).
    let titles = db::titles(pool, &numbers).await?;
    let shown: Vec<&RecurrenceFacts> = shown
        .into_iter()
        .filter(|f| titles.iter().any(|(n, _)| *n == f.number))
        .collect();
    let numbers: Vec<i64> = shown.iter().map(|f| f.number).collect();
    let items = db::open_items(pool, &numbers).await?;
    Ok(Recurrence {
        recurring: related_total > 0,
        window_days: rule.window_days,
        min_others: rule.min_others,
        related_total,
        related: shown
            .into_iter()
            .map(|f| RelatedIncident {
                number: f.number,
                title: titles
                    .iter()
                    .find(|(n, _)| *n == f.number)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_default(),
                started_at: f.started_at,
                category: f.category.clone(),
                service: f.service.clone(),
                open_action_items: items
                    .iter()
                    .filter(|i| i.incident == f.number)
                    .cloned()
                    .collect(),
            })
            .collect(),
    })
}

/// Recurrence of recently viewed incidents, reused until the next committed write.
#[derive(Debug)]
pub struct RecurrenceState {
    pub rule: Rule,
    cache: ReadCache<Arc<Recurrence>>,
}

impl RecurrenceState {
    pub fn new(rule: Rule, max_age: std::time::Duration) -> Self {
        Self {
            rule,
            cache: ReadCache::new(max_age),
        }
    }

    /// How the incident `incident_id` (started at `started_at`) recurs, from the cache when
    /// nothing about incidents that started by then was written since.
    pub async fn of(
        &self,
        db: &Db,
        incident_id: &str,
        started_at: chrono::DateTime<chrono::Utc>,
    ) -> AppResult<Arc<Recurrence>> {
        self.cache
            .get_or_load_until(db, incident_id.to_owned(), started_at, || async {
                recurrence(db, incident_id, self.rule).await.map(Arc::new)
            })
            .await
    }
}

#[cfg(test)]
mod tests;
