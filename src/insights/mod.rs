//! Insights: figures across many incidents for a team, a service and a date range —
//! contributing factors per quarter, how incidents were detected, MTTx by severity, incident
//! hours by service, action-item follow-through per team, and whether the fix of a recurring
//! group worked. The figures are computed here from plain rows (pure, tested on hand-built
//! fixtures); `db.rs` reads the rows, and only ever aggregates: no title or link of an incident
//! reaches a figure, so restricted incidents may count without being revealed.

pub mod api;
pub mod charts;
pub mod db;
pub mod export;
pub mod web;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::incidents::Severity;
use crate::recurrence::Rule;
use crate::reports::{Measure, Milestones, local_midnight, nearest_rank};

/// The longest range one request may cover (longer ranges are split by the caller).
pub const MAX_RANGE_DAYS: i64 = 5 * 366;
/// Days in the "month" that the before/after rates of a fix are counted per.
pub const RATE_DAYS: f64 = 30.0;

/// What `/insights` needs: the database, the zone dates are counted in, the recurrence rule
/// and the catalog's lists (for the team and service pickers).
#[derive(Clone)]
pub struct InsightsState {
    pub db: Db,
    pub tz: Tz,
    pub rule: Rule,
    pub catalog: Arc<crate::catalog::CatalogCache>,
}

// ---------------------------------------------------------------------------------------------
// The filter

/// The query string of `/insights`, its CSV and its API (all optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InsightsQuery {
    #[serde(default)]
    pub team: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub until: String,
    #[serde(default)]
    pub figure: String,
}

/// A checked filter: both dates inclusive, in the configured zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filter {
    pub team: Option<String>,
    pub service: Option<String>,
    pub since: NaiveDate,
    pub until: NaiveDate,
}

/// The first day of the quarter holding `day`.
pub fn quarter_start(day: NaiveDate) -> NaiveDate {
    let month = (day.month0() / 3) * 3 + 1;
    NaiveDate::from_ymd_opt(day.year(), month, 1).unwrap_or(day)
}

impl InsightsQuery {
    /// The filter asked for. Without dates: the current quarter and the three before it, up to
    /// today.
    pub fn filter(&self, today: NaiveDate) -> AppResult<Filter> {
        let text = |field: &'static str, raw: &str| -> AppResult<Option<String>> {
            let t = raw.trim();
            if t.chars().count() > 60 {
                return Err(AppError::field(field, "must be at most 60 characters"));
            }
            if t.chars().any(char::is_control) {
                return Err(AppError::field(
                    field,
                    "must not contain control characters",
                ));
            }
            Ok(Some(t.to_owned()).filter(|t| !t.is_empty()))
        };
        let team = text("team", &self.team)?;
        let service = text("service", &self.service)?;
        let until = crate::time::parse_date(&self.until)
            .map_err(|m| AppError::field("until", m))?
            .unwrap_or(today);
        let since = crate::time::parse_date(&self.since)
            .map_err(|m| AppError::field("since", m))?
            .unwrap_or_else(|| {
                let q = quarter_start(until);
                q.checked_sub_months(chrono::Months::new(9)).unwrap_or(q)
            });
        if since > until {
            return Err(AppError::field("since", "must be on or before until"));
        }
        if (until - since).num_days() > MAX_RANGE_DAYS {
            return Err(AppError::field(
                "until",
                "the range may cover at most five years",
            ));
        }
        if !self.figure.trim().is_empty() && FigureName::parse(self.figure.trim()).is_none() {
            return Err(AppError::field("figure", FigureName::field_error()));
        }
        Ok(Filter {
            team,
            service,
            since,
            until,
        })
    }
}

impl Filter {
    /// The range as UTC instants: `[since 00:00, the day after until 00:00)` in `tz`.
    pub fn bounds(&self, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            local_midnight(self.since, tz),
            local_midnight(self.until + Duration::days(1), tz),
        )
    }

    /// The filter as a query string (for links, exports and the form).
    pub fn query(&self) -> String {
        let mut params = Vec::new();
        if let Some(t) = &self.team {
            params.push(("team", t.clone()));
        }
        if let Some(s) = &self.service {
            params.push(("service", s.clone()));
        }
        params.push(("since", self.since.to_string()));
        params.push(("until", self.until.to_string()));
        serde_urlencoded::to_string(&params).unwrap_or_default()
    }
}

choice!(
    FigureName,
    "figure",
    [
        Factors = "factors",
        Detection = "detection",
        Mttx = "mttx",
        Hours = "hours",
        FollowThrough = "follow_through",
        Fix = "fix",
    ]
);

// ---------------------------------------------------------------------------------------------
// Rows read from the database (no titles)

/// One incident of the range, as the figures need it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InsightIncident {
    pub id: String,
    pub started_at: DateTime<Utc>,
    pub severity: Severity,
    pub service: String,
    pub category: String,
    pub detected_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub mitigated_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub exclude_from_metrics: bool,
    /// The post-mortem's "how it was detected" (empty or none when not recorded).
    pub detection_method: Option<String>,
    /// An alert firing opened or joined this incident.
    pub alerted: bool,
    /// The category of the post-mortem's primary root cause.
    pub primary_cause: Option<String>,
}

impl InsightIncident {
    fn milestones(&self) -> Milestones {
        Milestones {
            started_at: self.started_at,
            detected_at: self.detected_at,
            acknowledged_at: self.acknowledged_at,
            mitigated_at: self.mitigated_at,
            resolved_at: self.resolved_at,
            exclude_from_metrics: self.exclude_from_metrics,
        }
    }
}

/// A root cause or contributing factor of an incident of the range.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CauseRow {
    pub incident_id: String,
    pub started_at: DateTime<Utc>,
    pub category: String,
}

/// An action item due in the range.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueItem {
    pub team: String,
    pub status: String,
    pub due_on: NaiveDate,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A `prevent` action item of an incident of the range.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PreventItem {
    pub incident_id: String,
    pub status: String,
    pub completed_at: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------------------------------------
// Periods

/// `2026-Q3`.
pub fn quarter_label(day: NaiveDate) -> String {
    format!("{}-Q{}", day.year(), day.month0() / 3 + 1)
}

/// `2026-11`.
pub fn month_label(day: NaiveDate) -> String {
    format!("{}-{:02}", day.year(), day.month())
}

/// Every quarter the filter touches, oldest first.
pub fn quarters(filter: &Filter) -> Vec<String> {
    let mut out = Vec::new();
    let mut q = quarter_start(filter.since);
    while q <= filter.until {
        out.push(quarter_label(q));
        q = next_month(next_month(next_month(q)));
    }
    out
}

/// Every month the filter touches, oldest first.
pub fn months(filter: &Filter) -> Vec<String> {
    let mut out = Vec::new();
    let mut m = filter.since.with_day(1).unwrap_or(filter.since);
    while m <= filter.until {
        out.push(month_label(m));
        m = next_month(m);
    }
    out
}

fn next_month(first: NaiveDate) -> NaiveDate {
    let (y, m) = if first.month() == 12 {
        (first.year() + 1, 1)
    } else {
        (first.year(), first.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(first + Duration::days(31))
}

fn local_day(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

// ---------------------------------------------------------------------------------------------
// Figures

/// A count per period and series (contributing factors, detection).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountRow {
    pub period: String,
    pub series: String,
    pub incidents: usize,
}

/// Counts per period: every period and series listed, and the non-zero cells.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counts {
    pub definition: &'static str,
    pub periods: Vec<String>,
    pub series: Vec<String>,
    pub rows: Vec<CountRow>,
}

impl Counts {
    pub fn get(&self, period: &str, series: &str) -> usize {
        self.rows
            .iter()
            .find(|r| r.period == period && r.series == series)
            .map_or(0, |r| r.incidents)
    }

    pub fn period_total(&self, period: &str) -> usize {
        self.rows
            .iter()
            .filter(|r| r.period == period)
            .map(|r| r.incidents)
            .sum()
    }
}

fn counts(
    definition: &'static str,
    periods: Vec<String>,
    series_order: &[&str],
    cells: BTreeMap<(String, String), usize>,
) -> Counts {
    let present: BTreeSet<&String> = cells.keys().map(|(_, s)| s).collect();
    let mut series: Vec<String> = series_order
        .iter()
        .filter(|s| present.iter().any(|p| p.as_str() == **s))
        .map(|s| (*s).to_owned())
        .collect();
    for p in present {
        if !series.contains(p) {
            series.push(p.clone());
        }
    }
    let mut rows: Vec<CountRow> = cells
        .into_iter()
        .map(|((period, series), incidents)| CountRow {
            period,
            series,
            incidents,
        })
        .collect();
    let order = |s: &str| series.iter().position(|x| x == s).unwrap_or(usize::MAX);
    rows.sort_by(|a, b| {
        a.period
            .cmp(&b.period)
            .then(order(&a.series).cmp(&order(&b.series)))
    });
    Counts {
        definition,
        periods,
        series,
        rows,
    }
}

pub const FACTORS_DEFINITION: &str = "Incidents whose post-mortem names the category as the primary root cause or a contributing factor, by the quarter the incident started (an incident counts once per category; incidents without a post-mortem are not counted).";

/// Contributing-factor categories per quarter.
pub fn factors(filter: &Filter, tz: Tz, causes: &[CauseRow]) -> Counts {
    let mut seen: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut cells: BTreeMap<(String, String), usize> = BTreeMap::new();
    for c in causes {
        if !seen.insert((c.incident_id.as_str(), c.category.as_str())) {
            continue;
        }
        let q = quarter_label(local_day(c.started_at, tz));
        *cells.entry((q, c.category.clone())).or_default() += 1;
    }
    counts(FACTORS_DEFINITION, quarters(filter), &[], cells)
}

pub const DETECTION_DEFINITION: &str = "Incidents by the month they started and how they were detected: the post-mortem's detection method when recorded, otherwise \u{201c}alert\u{201d} when an alert opened or joined the incident, otherwise \u{201c}not recorded\u{201d}.";

/// How an incident was detected, as the figure names it.
pub fn detection_of(i: &InsightIncident) -> &'static str {
    match i.detection_method.as_deref().unwrap_or_default() {
        "alert" => "alert",
        "customer_report" => "customer",
        "employee" => "employee",
        "automated_test" => "automated test",
        "other" => "other",
        _ if i.alerted => "alert",
        _ => "not recorded",
    }
}

/// The order detection series are listed in.
pub const DETECTION_SERIES: [&str; 6] = [
    "alert",
    "customer",
    "employee",
    "automated test",
    "other",
    "not recorded",
];

/// How incidents were detected, per month.
pub fn detection(filter: &Filter, tz: Tz, incidents: &[InsightIncident]) -> Counts {
    let mut cells: BTreeMap<(String, String), usize> = BTreeMap::new();
    for i in incidents {
        let m = month_label(local_day(i.started_at, tz));
        *cells.entry((m, detection_of(i).to_owned())).or_default() += 1;
    }
    counts(
        DETECTION_DEFINITION,
        months(filter),
        &DETECTION_SERIES,
        cells,
    )
}

pub const MTTX_DEFINITION: &str = "Median (and 90th percentile, nearest rank) of each time per severity and the quarter the incident started: acknowledge = acknowledged − detected, mitigate = mitigated − started, resolve = resolved − started, detect = detected − started; incidents excluded from metrics are left out, and one missing a milestone is left out of that time only.";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MttxRow {
    pub quarter: String,
    pub severity: Severity,
    pub measure: Measure,
    pub incidents: usize,
    pub median_secs: Option<i64>,
    pub p90_secs: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MttxFigure {
    pub definition: &'static str,
    pub quarters: Vec<String>,
    pub rows: Vec<MttxRow>,
}

impl MttxFigure {
    pub fn get(&self, quarter: &str, severity: Severity, measure: Measure) -> Option<&MttxRow> {
        self.rows
            .iter()
            .find(|r| r.quarter == quarter && r.severity == severity && r.measure == measure)
    }
}

/// MTTx by severity per quarter (rows only where at least one incident had the time).
pub fn mttx(filter: &Filter, tz: Tz, incidents: &[InsightIncident]) -> MttxFigure {
    let quarters = quarters(filter);
    // Keyed by quarter and the severity's and measure's positions in their lists.
    let mut values: HashMap<(String, usize, usize), Vec<i64>> = HashMap::new();
    for i in incidents.iter().filter(|i| !i.exclude_from_metrics) {
        let q = quarter_label(local_day(i.started_at, tz));
        let m = i.milestones();
        let s = Severity::ALL
            .iter()
            .position(|x| *x == i.severity)
            .unwrap_or_default();
        for (mi, measure) in Measure::ALL.iter().enumerate() {
            if let Some(secs) = measure.of(&m) {
                values.entry((q.clone(), s, mi)).or_default().push(secs);
            }
        }
    }
    let mut rows = Vec::new();
    for q in &quarters {
        for (s, &severity) in Severity::ALL.iter().enumerate() {
            for (mi, &measure) in Measure::ALL.iter().enumerate() {
                if let Some(v) = values.get_mut(&(q.clone(), s, mi)) {
                    v.sort_unstable();
                    rows.push(MttxRow {
                        quarter: q.clone(),
                        severity,
                        measure,
                        incidents: v.len(),
                        median_secs: nearest_rank(v, 0.5),
                        p90_secs: nearest_rank(v, 0.9),
                    });
                }
            }
        }
    }
    MttxFigure {
        definition: MTTX_DEFINITION,
        quarters,
        rows,
    }
}

pub const HOURS_DEFINITION: &str = "Hours from start to resolution of the incidents that started in the range, per service; an incident not resolved yet counts up to the end of the range or now, whichever is earlier; incidents excluded from metrics are left out.";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoursRow {
    pub service: String,
    pub incidents: usize,
    /// Rounded to two decimals.
    pub hours: f64,
    /// Incidents still unresolved, counted up to the cut-off.
    pub unresolved: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoursFigure {
    pub definition: &'static str,
    pub rows: Vec<HoursRow>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Incident hours by service, most hours first.
pub fn hours(incidents: &[InsightIncident], end: DateTime<Utc>, now: DateTime<Utc>) -> HoursFigure {
    let cutoff = end.min(now);
    let mut by: BTreeMap<&str, (usize, i64, usize)> = BTreeMap::new();
    for i in incidents.iter().filter(|i| !i.exclude_from_metrics) {
        let stop = i.resolved_at.unwrap_or(cutoff);
        let secs = (stop - i.started_at).num_seconds().max(0);
        let e = by.entry(i.service.as_str()).or_default();
        e.0 += 1;
        e.1 += secs;
        e.2 += usize::from(i.resolved_at.is_none());
    }
    let mut rows: Vec<HoursRow> = by
        .into_iter()
        .map(|(service, (incidents, secs, unresolved))| HoursRow {
            service: service.to_owned(),
            incidents,
            hours: round2(secs as f64 / 3600.0),
            unresolved,
        })
        .collect();
    rows.sort_by(|a, b| b.hours.total_cmp(&a.hours).then(a.service.cmp(&b.service)));
    HoursFigure {
        definition: HOURS_DEFINITION,
        rows,
    }
}

pub const FOLLOW_THROUGH_DEFINITION: &str = "Action items whose due date falls in the range and has passed, per owning team: the share done on or before the due date (a day in the configured zone); done late, won't do and still open are listed beside it.";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowRow {
    /// The owning team (empty: no team).
    pub team: String,
    pub due: usize,
    pub done_on_time: usize,
    pub done_late: usize,
    pub wont_do: usize,
    pub open: usize,
    /// `done_on_time / due`.
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowFigure {
    pub definition: &'static str,
    pub rows: Vec<FollowRow>,
}

/// Action-item follow-through per team: items due before `today` only (one due today may
/// still be done in time).
pub fn follow_through(items: &[DueItem], tz: Tz, today: NaiveDate) -> FollowFigure {
    let mut by: BTreeMap<&str, FollowRow> = BTreeMap::new();
    for item in items.iter().filter(|i| i.due_on < today) {
        let row = by.entry(item.team.as_str()).or_insert_with(|| FollowRow {
            team: item.team.clone(),
            due: 0,
            done_on_time: 0,
            done_late: 0,
            wont_do: 0,
            open: 0,
            rate: None,
        });
        row.due += 1;
        match (item.status.as_str(), item.completed_at) {
            ("done", Some(at)) if local_day(at, tz) <= item.due_on => row.done_on_time += 1,
            ("done", _) => row.done_late += 1,
            ("wont_do", _) => row.wont_do += 1,
            _ => row.open += 1,
        }
    }
    let rows = by
        .into_values()
        .map(|mut r| {
            r.rate = (r.due > 0).then(|| round2(r.done_on_time as f64 / r.due as f64));
            r
        })
        .collect();
    FollowFigure {
        definition: FOLLOW_THROUGH_DEFINITION,
        rows,
    }
}

pub const FIX_DEFINITION: &str = "For each recurring group of the range (more than K incidents sharing a known category, or a service and primary root-cause category): the fix is the last time a \u{201c}prevent\u{201d} action item of the group was done while every prevent item of its incidents started before then was done; the group's incidents in the range before and after it are counted per 30 days.";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FixRow {
    /// `deploy`, or `checkout · root cause capacity`.
    pub group: String,
    pub category: String,
    pub service: Option<String>,
    pub incidents: usize,
    pub prevent_items: usize,
    pub prevent_done: usize,
    /// When the fix landed; none while prevent items are open (or there are none).
    pub fixed_at: Option<DateTime<Utc>>,
    pub before_incidents: usize,
    pub before_days: i64,
    pub before_per_month: Option<f64>,
    pub after_incidents: usize,
    pub after_days: i64,
    pub after_per_month: Option<f64>,
    /// Incidents per month (every month of the range, oldest first).
    pub per_month: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FixFigure {
    pub definition: &'static str,
    pub min_others: u32,
    pub months: Vec<String>,
    pub rows: Vec<FixRow>,
}

/// The fix of a group: the latest completion of a done prevent item at which every prevent
/// item of the incidents started before it was done by then.
pub fn fix_time(members: &[&InsightIncident], items: &[&PreventItem]) -> Option<DateTime<Utc>> {
    let started: HashMap<&str, DateTime<Utc>> = members
        .iter()
        .map(|i| (i.id.as_str(), i.started_at))
        .collect();
    let mut candidates: Vec<DateTime<Utc>> = items
        .iter()
        .filter(|i| i.status == "done")
        .filter_map(|i| i.completed_at)
        .collect();
    candidates.sort_unstable();
    candidates.into_iter().rev().find(|&t| {
        items.iter().all(|item| {
            let before = started
                .get(item.incident_id.as_str())
                .is_some_and(|s| *s < t);
            !before || (item.status == "done" && item.completed_at.is_some_and(|c| c <= t))
        })
    })
}

fn per_month(n: usize, days: i64) -> Option<f64> {
    (days > 0).then(|| round2(n as f64 * RATE_DAYS / days as f64))
}

/// Did the fix work: recurring groups of the range with incidents before and after the fix.
pub fn fix(
    filter: &Filter,
    tz: Tz,
    rule: Rule,
    incidents: &[InsightIncident],
    prevent: &[PreventItem],
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> FixFigure {
    let (start, _) = filter.bounds(tz);
    let cutoff = end.min(now);
    let months = months(filter);
    let k = rule.min_others as usize;
    let known = |c: &str| !c.eq_ignore_ascii_case(crate::recurrence::UNKNOWN);
    let mut groups: BTreeMap<(String, Option<String>), Vec<&InsightIncident>> = BTreeMap::new();
    for i in incidents {
        if known(&i.category) {
            groups
                .entry((i.category.clone(), None))
                .or_default()
                .push(i);
        }
        if let Some(cause) = i.primary_cause.as_deref().filter(|c| known(c)) {
            groups
                .entry((cause.to_owned(), Some(i.service.clone())))
                .or_default()
                .push(i);
        }
    }
    let mut rows = Vec::new();
    for ((category, service), members) in groups {
        if members.len() <= k {
            continue;
        }
        // A service + cause group whose incidents all share that category says nothing the
        // category group does not (the weekly review leaves it out the same way).
        if service.is_some() && members.iter().all(|i| i.category == category) {
            continue;
        }
        let ids: BTreeSet<&str> = members.iter().map(|i| i.id.as_str()).collect();
        let items: Vec<&PreventItem> = prevent
            .iter()
            .filter(|p| ids.contains(p.incident_id.as_str()))
            .collect();
        let fixed_at = fix_time(&members, &items);
        let mut counts = vec![0usize; months.len()];
        for i in &members {
            let m = month_label(local_day(i.started_at, tz));
            if let Some(pos) = months.iter().position(|x| *x == m) {
                counts[pos] += 1;
            }
        }
        let (before, after) = match fixed_at {
            Some(t) => (
                members.iter().filter(|i| i.started_at < t).count(),
                members.iter().filter(|i| i.started_at >= t).count(),
            ),
            None => (members.len(), 0),
        };
        let (before_days, after_days) = match fixed_at {
            Some(t) => (
                (t.min(cutoff) - start).num_days().max(0),
                (cutoff - t.max(start)).num_days().max(0),
            ),
            None => ((cutoff - start).num_days().max(0), 0),
        };
        rows.push(FixRow {
            group: match &service {
                Some(s) => format!("{s} · root cause {category}"),
                None => category.clone(),
            },
            category,
            service,
            incidents: members.len(),
            prevent_items: items.len(),
            prevent_done: items.iter().filter(|i| i.status == "done").count(),
            fixed_at,
            before_incidents: before,
            before_days,
            before_per_month: per_month(before, before_days),
            after_incidents: after,
            after_days,
            after_per_month: fixed_at.and_then(|_| per_month(after, after_days)),
            per_month: counts,
        });
    }
    rows.sort_by(|a, b| b.incidents.cmp(&a.incidents).then(a.group.cmp(&b.group)));
    FixFigure {
        definition: FIX_DEFINITION,
        min_others: rule.min_others,
        months,
        rows,
    }
}

// ---------------------------------------------------------------------------------------------
// All of it

#[derive(Debug, Clone, Serialize)]
pub struct Insights {
    pub filter: Filter,
    pub incidents: usize,
    pub factors: Counts,
    pub detection: Counts,
    pub mttx: MttxFigure,
    pub hours: HoursFigure,
    pub follow_through: FollowFigure,
    pub fix: FixFigure,
}

/// Every figure for `filter`, as of `now`.
pub async fn insights(state: &InsightsState, filter: &Filter) -> AppResult<Insights> {
    let now = Utc::now();
    let tz = state.tz;
    let (start, end) = filter.bounds(tz);
    let pool = &state.db.reader;
    let incidents = db::incidents(pool, filter, start, end).await?;
    let causes = db::causes(pool, filter, start, end).await?;
    let due = db::due_items(pool, filter).await?;
    let prevent = db::prevent_items(pool, filter, start, end).await?;
    let today = crate::time::today(tz);
    Ok(Insights {
        incidents: incidents.len(),
        factors: factors(filter, tz, &causes),
        detection: detection(filter, tz, &incidents),
        mttx: mttx(filter, tz, &incidents),
        hours: hours(&incidents, end, now),
        follow_through: follow_through(&due, tz, today),
        fix: fix(filter, tz, state.rule, &incidents, &prevent, end, now),
        filter: filter.clone(),
    })
}

#[cfg(test)]
mod tests;
