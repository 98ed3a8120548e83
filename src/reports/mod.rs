//! Reports: ISO weeks, the MTTx calculator and the weekly review (its model, Markdown and
//! CSV), all pure so they can be tested on hand-built fixtures; recurring groups come from the
//! rule in `recurrence`.
//!
//! Definitions (also in the README):
//! - MTTx figures are one milestone minus another: detect = detected − started, acknowledge =
//!   acknowledged − detected, mitigate = mitigated − started, resolve = resolved − started.
//!   Median and p90 use the nearest rank (the ⌈q·n⌉-th smallest). Incidents excluded from
//!   metrics are left out; one missing a milestone is left out of that figure only.

pub mod charts;
pub mod db;
pub mod export;
pub mod web;

pub mod api;

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::incidents::{Severity, Status};
use crate::recurrence::{OpenItem, Rule, inc_number};

// ---------------------------------------------------------------------------------------------
// ISO weeks

/// An ISO 8601 week (`2026-W47`): Monday to Sunday, numbered by the year its Thursday is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IsoWeek {
    monday: NaiveDate,
}

impl IsoWeek {
    /// Parses `2026-W47` (also `2026-w47`, `2026W47`). Week 53 exists only in long years.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let message = || "must be an ISO week like 2026-W47".to_owned();
        let raw = raw.trim();
        let (year, week) = raw.split_once(['W', 'w']).ok_or_else(message)?;
        let year: i32 = year.trim_end_matches('-').parse().map_err(|_| message())?;
        if week.len() != 2 {
            return Err(message());
        }
        if !(crate::time::MIN_YEAR..=crate::time::MAX_YEAR).contains(&year) {
            return Err(crate::time::out_of_range_message());
        }
        let week: u32 = week.parse().map_err(|_| message())?;
        NaiveDate::from_isoywd_opt(year, week, Weekday::Mon)
            .map(|monday| Self { monday })
            .ok_or_else(|| format!("{year} has no ISO week {week}"))
    }

    /// The week holding `day`.
    pub fn containing(day: NaiveDate) -> Self {
        Self {
            monday: day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
        }
    }

    /// The last week that has ended by `today` (the one before the week holding today).
    pub fn last_complete(today: NaiveDate) -> Self {
        Self::containing(today).prev()
    }

    pub fn prev(self) -> Self {
        self.back(1)
    }

    pub fn next(self) -> Self {
        Self {
            monday: self.monday + Duration::weeks(1),
        }
    }

    /// The week `n` weeks earlier.
    pub fn back(self, n: i64) -> Self {
        Self {
            monday: self.monday - Duration::weeks(n),
        }
    }

    pub fn monday(self) -> NaiveDate {
        self.monday
    }

    pub fn sunday(self) -> NaiveDate {
        self.monday + Duration::days(6)
    }

    /// `2026-W47`.
    pub fn label(self) -> String {
        let iso = self.monday.iso_week();
        format!("{}-W{:02}", iso.year(), iso.week())
    }

    /// Monday 00:00 in `tz`, as UTC.
    pub fn start(self, tz: Tz) -> DateTime<Utc> {
        local_midnight(self.monday, tz)
    }

    /// The next Monday 00:00 in `tz` (exclusive end), as UTC.
    pub fn end(self, tz: Tz) -> DateTime<Utc> {
        local_midnight(self.monday + Duration::weeks(1), tz)
    }
}

/// Midnight of `day` in `tz` (its earliest meaning if a clock change makes it ambiguous).
pub fn local_midnight(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let naive = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .map_or_else(|| naive.and_utc(), |t| t.with_timezone(&Utc))
}

// ---------------------------------------------------------------------------------------------
// MTTx

/// The milestones of an incident that MTTx reads.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Milestones {
    pub started_at: DateTime<Utc>,
    pub detected_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub mitigated_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub exclude_from_metrics: bool,
}

/// Which MTTx figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    Detect,
    Acknowledge,
    Mitigate,
    Resolve,
}

impl Measure {
    pub const ALL: [Measure; 4] = [
        Self::Detect,
        Self::Acknowledge,
        Self::Mitigate,
        Self::Resolve,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Detect => "Time to detect",
            Self::Acknowledge => "Time to acknowledge",
            Self::Mitigate => "Time to mitigate",
            Self::Resolve => "Time to resolve",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Detect => "detect",
            Self::Acknowledge => "acknowledge",
            Self::Mitigate => "mitigate",
            Self::Resolve => "resolve",
        }
    }

    /// The figure for one incident in seconds, when both milestones are set. A milestone
    /// before its reference (bad data) counts as zero rather than a negative time.
    pub fn of(self, m: &Milestones) -> Option<i64> {
        let (from, to) = match self {
            Self::Detect => (Some(m.started_at), m.detected_at),
            Self::Acknowledge => (m.detected_at, m.acknowledged_at),
            Self::Mitigate => (Some(m.started_at), m.mitigated_at),
            Self::Resolve => (Some(m.started_at), m.resolved_at),
        };
        Some((to? - from?).num_seconds().max(0))
    }
}

/// Median and p90 of one figure over a set of incidents, and how many had it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Figure {
    pub n: usize,
    pub median_secs: Option<i64>,
    pub p90_secs: Option<i64>,
}

/// The ⌈q·n⌉-th smallest of `sorted` (nearest rank).
pub fn nearest_rank(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// One figure over `incidents` (excluded ones and those missing a milestone left out).
pub fn figure(measure: Measure, incidents: &[Milestones]) -> Figure {
    let mut values: Vec<i64> = incidents
        .iter()
        .filter(|m| !m.exclude_from_metrics)
        .filter_map(|m| measure.of(m))
        .collect();
    values.sort_unstable();
    Figure {
        n: values.len(),
        median_secs: nearest_rank(&values, 0.5),
        p90_secs: nearest_rank(&values, 0.9),
    }
}

/// One week's milestone durations in seconds, per measure (incidents excluded from metrics and
/// those missing the milestones left out), and how many incidents started in it at all. Past
/// weeks rarely change, so the review keeps these per week and merges them, instead of
/// reading every incident of the twelve weeks it charts again for each review.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeekDurations {
    pub incidents: usize,
    pub detect: Vec<i64>,
    pub acknowledge: Vec<i64>,
    pub mitigate: Vec<i64>,
    pub resolve: Vec<i64>,
}

impl WeekDurations {
    pub fn values(&self, measure: Measure) -> &[i64] {
        match measure {
            Measure::Detect => &self.detect,
            Measure::Acknowledge => &self.acknowledge,
            Measure::Mitigate => &self.mitigate,
            Measure::Resolve => &self.resolve,
        }
    }

    /// Adds one incident: its exclusion flag and its four durations (`None` when a milestone
    /// is missing).
    pub fn add(&mut self, excluded: bool, durations: [Option<i64>; 4]) {
        self.incidents += 1;
        if excluded {
            return;
        }
        for (values, d) in [
            &mut self.detect,
            &mut self.acknowledge,
            &mut self.mitigate,
            &mut self.resolve,
        ]
        .into_iter()
        .zip(durations)
        {
            if let Some(d) = d {
                values.push(d.max(0));
            }
        }
    }
}

/// Week durations already read, by week and team, until the next write.
pub type WeekCache = crate::db::ReadCache<std::sync::Arc<WeekDurations>>;

/// One figure over the durations of several weeks together.
pub fn figure_over(weeks: &[&WeekDurations], measure: Measure) -> Figure {
    let mut values: Vec<i64> = weeks
        .iter()
        .flat_map(|w| w.values(measure).iter().copied())
        .collect();
    values.sort_unstable();
    Figure {
        n: values.len(),
        median_secs: nearest_rank(&values, 0.5),
        p90_secs: nearest_rank(&values, 0.9),
    }
}

/// A week of the chart: its incidents and median time to resolve.
pub fn week_point(label: String, week: &WeekDurations) -> WeekPoint {
    WeekPoint {
        week: label,
        incidents: week.incidents,
        mttr_median_secs: figure_over(&[week], Measure::Resolve).median_secs,
    }
}

/// All four figures, this week and the four weeks before, side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MttxRow {
    pub measure: Measure,
    pub this_week: Figure,
    pub previous_4_weeks: Figure,
}

pub fn mttx(this_week: &[Milestones], previous: &[Milestones]) -> Vec<MttxRow> {
    Measure::ALL
        .iter()
        .map(|&measure| MttxRow {
            measure,
            this_week: figure(measure, this_week),
            previous_4_weeks: figure(measure, previous),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The weekly review

/// An incident of the week as the review shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ReportIncident {
    #[serde(skip)]
    pub id: String,
    #[serde(serialize_with = "inc_number")]
    pub number: i64,
    pub title: String,
    #[sqlx(try_from = "String")]
    pub severity: Severity,
    #[sqlx(try_from = "String")]
    pub status: Status,
    pub service: String,
    pub category: String,
    pub team: String,
    pub started_at: DateTime<Utc>,
    pub detected_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub mitigated_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub exclude_from_metrics: bool,
    /// Resolved − started, once resolved.
    #[sqlx(skip)]
    pub duration_secs: Option<i64>,
}

impl ReportIncident {
    pub fn milestones(&self) -> Milestones {
        Milestones {
            started_at: self.started_at,
            detected_at: self.detected_at,
            acknowledged_at: self.acknowledged_at,
            mitigated_at: self.mitigated_at,
            resolved_at: self.resolved_at,
            exclude_from_metrics: self.exclude_from_metrics,
        }
    }

    pub fn key(&self) -> String {
        format!("INC-{}", self.number)
    }

    pub fn duration(&self) -> String {
        self.duration_secs.map_or_else(
            || "ongoing".to_owned(),
            |s| crate::time::human_secs(Some(s)),
        )
    }
}

/// Action items in the week.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct ItemCounts {
    /// Created during the week.
    pub opened: i64,
    /// Done or declared won't-do during the week.
    pub closed: i64,
    /// Still open at the week's end and due before its last day was over.
    pub overdue: i64,
    /// Due during the week.
    pub due: i64,
    /// Of those due during the week, closed by its end.
    pub due_closed: i64,
    /// `due_closed / due`, none when nothing was due.
    pub completion_rate: Option<f64>,
}

/// A category (or service + primary root cause) that keeps coming back.
#[derive(Debug, Clone, Serialize)]
pub struct RecurringGroup {
    pub category: String,
    /// Set for a service + primary root-cause group.
    pub service: Option<String>,
    /// Incidents in the last `window_days` days up to the week's end.
    pub count: usize,
    /// Of those, in the last 30 days.
    pub count_30: usize,
    pub incidents: Vec<GroupIncident>,
    /// Action items of those incidents still open.
    pub open_action_items: Vec<OpenItem>,
}

impl RecurringGroup {
    /// The incident list filtered to this group.
    pub fn list_url(&self, since: NaiveDate, until: NaiveDate) -> String {
        let mut params = vec![
            ("category", self.category.clone()),
            ("since", since.to_string()),
            ("until", until.to_string()),
        ];
        if let Some(s) = &self.service {
            params.push(("service", s.clone()));
        }
        format!(
            "/incidents?{}",
            serde_urlencoded::to_string(&params).unwrap_or_default()
        )
    }

    pub fn label(&self) -> String {
        match &self.service {
            Some(s) => format!("{s} · root cause {}", self.category),
            None => self.category.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct GroupIncident {
    #[serde(serialize_with = "inc_number")]
    pub number: i64,
    pub title: String,
    pub started_at: DateTime<Utc>,
    pub service: String,
    pub category: String,
    #[serde(skip)]
    pub primary_cause: Option<String>,
    #[serde(skip)]
    pub id: String,
}

/// Firings of one alert in the week.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AlertNoise {
    pub name: String,
    pub service: String,
    pub tier: String,
    pub firings: i64,
    /// Firings that opened or joined an incident.
    pub with_incident: i64,
}

/// One week of the 12-week charts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeekPoint {
    pub week: String,
    pub incidents: usize,
    /// Median time to resolve of the week's incidents (resolved, not excluded).
    pub mttr_median_secs: Option<i64>,
}

/// The whole weekly review.
#[derive(Debug, Clone, Serialize)]
pub struct WeeklyReport {
    pub week: String,
    pub team: Option<String>,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub incidents: Vec<ReportIncident>,
    pub mttx: Vec<MttxRow>,
    pub action_items: ItemCounts,
    pub recurrence: RecurrenceSettings,
    pub recurring: Vec<RecurringGroup>,
    pub alerts: Vec<AlertNoise>,
    pub weeks: Vec<WeekPoint>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct RecurrenceSettings {
    pub min_others: u32,
    pub window_days: u32,
}

impl WeeklyReport {
    /// The week's incidents of one severity.
    pub fn of_severity(&self, severity: Severity) -> Vec<&ReportIncident> {
        self.incidents
            .iter()
            .filter(|i| i.severity == severity)
            .collect()
    }

    pub fn excluded(&self) -> usize {
        self.incidents
            .iter()
            .filter(|i| i.exclude_from_metrics)
            .count()
    }
}

/// Orders recurring groups: most incidents in the last 30 days first, then most in the whole
/// window, then by name.
pub fn rank_groups(groups: &mut [RecurringGroup]) {
    groups.sort_by(|a, b| {
        b.count_30
            .cmp(&a.count_30)
            .then(b.count.cmp(&a.count))
            .then(a.category.cmp(&b.category))
            .then(a.service.cmp(&b.service))
    });
}

/// How many incidents (most recent first) a recurring group lists; `count` has them all.
pub const GROUP_LIST_MAX: usize = 20;
/// Weeks in the review's charts.
pub const CHART_WEEKS: i64 = 12;

/// Builds the review of `week` (for one team, or all).
pub async fn weekly(
    db: &crate::db::Db,
    week: IsoWeek,
    team: Option<&str>,
    tz: Tz,
    rule: Rule,
    weeks_cache: &WeekCache,
) -> crate::error::AppResult<WeeklyReport> {
    let pool = &db.reader;
    let (start, end) = (week.start(tz), week.end(tz));
    let window_start = end - Duration::days(i64::from(rule.window_days.max(30)));
    let mut incidents = db::week_incidents(pool, start, end, team).await?;
    // The charted weeks, oldest first; the four before this one also make its comparison.
    let mut charted = Vec::new();
    for back in (0..CHART_WEEKS).rev() {
        let w = week.back(back);
        let key = format!("{}|{}", w.label(), team.unwrap_or(""));
        // A week's figures change only with writes about incidents that started by its end.
        let durations = weeks_cache
            .get_or_load_until(db, key, w.end(tz), || async {
                db::week_durations(pool, w.start(tz), w.end(tz), team)
                    .await
                    .map(std::sync::Arc::new)
            })
            .await?;
        charted.push((w, durations));
    }
    let weeks: Vec<WeekPoint> = charted
        .iter()
        .map(|(w, d)| week_point(w.label(), d))
        .collect();
    let previous_four: Vec<&WeekDurations> = charted
        .iter()
        .filter(|(w, _)| (1..=4).any(|b| week.back(b) == *w))
        .map(|(_, d)| d.as_ref())
        .collect();
    let mut recurring =
        db::recurring_groups(pool, window_start, end, rule, team, GROUP_LIST_MAX as i64).await?;
    let action_items = db::item_counts(
        pool,
        start,
        end,
        week.monday(),
        crate::time::today(tz),
        team,
    )
    .await?;
    let alerts = db::alert_noise(pool, start, end, team).await?;
    incidents.sort_by_key(|i| (i.severity, i.started_at, i.number));
    let this_week: Vec<Milestones> = incidents.iter().map(ReportIncident::milestones).collect();
    // This week's figures come from its incidents (already read); the four weeks before from
    // their kept durations.
    let mut mttx_rows = mttx(&this_week, &[]);
    for row in &mut mttx_rows {
        row.previous_4_weeks = figure_over(&previous_four, row.measure);
    }
    let all_numbers: Vec<i64> = recurring
        .iter()
        .flat_map(|g| g.incidents.iter().map(|i| i.number))
        .collect();
    let open_items = crate::recurrence::db::open_items(pool, &all_numbers).await?;
    for group in &mut recurring {
        group.open_action_items = open_items
            .iter()
            .filter(|item| group.incidents.iter().any(|i| i.number == item.incident))
            .cloned()
            .collect();
    }

    Ok(WeeklyReport {
        week: week.label(),
        team: team.map(str::to_owned),
        starts_on: week.monday(),
        ends_on: week.sunday(),
        mttx: mttx_rows,
        action_items,
        recurrence: RecurrenceSettings {
            min_others: rule.min_others,
            window_days: rule.window_days,
        },
        recurring,
        alerts,
        weeks,
        incidents,
    })
}

// ---------------------------------------------------------------------------------------------
// State and the cached review

/// What the report pages and API need, taken from the app state by `app.rs`.
#[derive(Clone)]
pub struct ReportsState {
    pub db: Db,
    /// The zone weeks and days are counted in.
    pub tz: Tz,
    /// Where links in the Markdown export point.
    pub base_url: String,
    /// The recurrence rule the recurring groups follow.
    pub rule: Rule,
    pub reviews: Arc<ReportCache>,
    pub month: Arc<MonthCache>,
    pub weeks: Arc<WeekCache>,
    pub dashboards: Arc<DashboardCache>,
    /// The catalog's lists, for the review's team picker.
    pub catalog: Arc<crate::catalog::CatalogCache>,
}

/// Recently built reviews, reused until the next committed write.
pub type ReportCache = crate::db::ReadCache<Arc<WeeklyReport>>;

/// Recurring groups of the last 30 days, reused until the next write.
pub type MonthCache = crate::db::ReadCache<Arc<Vec<RecurringGroup>>>;

/// What the dashboard reads for one person: open incidents per severity, their action items
/// and the post-mortems waiting for review. Four short queries, but each is a round trip to a
/// database thread, and that hand-off was most of the page's cost when people keep it open.
#[derive(Debug)]
pub struct Dashboard {
    /// Every severity, with zero where none is open.
    pub open: Vec<(crate::incidents::Severity, i64)>,
    pub my_items: Vec<crate::recurrence::OpenItem>,
    pub reviews: Vec<db::ReviewWaiting>,
}

/// Dashboards by user id, reused until the next committed write (timeline entries change none
/// of it).
pub type DashboardCache = crate::db::ReadCache<Arc<Dashboard>>;

/// Items the dashboard lists as "my action items".
const MY_ITEMS_SHOWN: i64 = 10;

/// The dashboard of `user_id`, from the cache or read afresh.
pub async fn dashboard(state: &ReportsState, user_id: &str) -> AppResult<Arc<Dashboard>> {
    state
        .dashboards
        .get_or_load(&state.db, user_id.to_owned(), || async {
            let pool = &state.db.reader;
            Ok(Arc::new(Dashboard {
                open: open_by_severity(&state.db).await?,
                my_items: db::my_items(pool, user_id, MY_ITEMS_SHOWN).await?,
                reviews: db::reviews_waiting(pool, user_id).await?,
            }))
        })
        .await
}

/// How often the warm weekly review is rebuilt without writes: well inside `REPORT_MAX_AGE`.
const WARM_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a built review is reused without writes (writes by another process, such as
/// `hindsight demo`, are seen at the latest after this).
pub const REPORT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(120);

/// `?week=2026-W47&team=…` as typed.
#[derive(Debug, Default, Deserialize)]
pub struct WeekQuery {
    #[serde(default)]
    pub week: String,
    #[serde(default)]
    pub team: String,
}

impl WeekQuery {
    /// The week asked for (default: the last complete one, in the configured zone) and team.
    pub fn parse(&self, state: &ReportsState) -> AppResult<(IsoWeek, Option<String>)> {
        let week = if self.week.trim().is_empty() {
            IsoWeek::last_complete(today(state))
        } else {
            IsoWeek::parse(&self.week).map_err(|msg| AppError::field("week", msg))?
        };
        let team = Some(self.team.trim().to_owned()).filter(|t| !t.is_empty());
        if team.as_ref().is_some_and(|t| t.chars().count() > 60) {
            return Err(AppError::field("team", "must be at most 60 characters"));
        }
        Ok((week, team))
    }
}

/// Today in the configured zone.
pub fn today(state: &ReportsState) -> NaiveDate {
    crate::time::today(state.tz)
}

/// The cache key of a review.
pub fn weekly_key(week: IsoWeek, team: Option<&str>) -> String {
    format!("{}|{}", week.label(), team.unwrap_or(""))
}

async fn build_weekly(
    state: &ReportsState,
    week: IsoWeek,
    team: Option<&str>,
) -> AppResult<Arc<WeeklyReport>> {
    weekly(&state.db, week, team, state.tz, state.rule, &state.weeks)
        .await
        .map(Arc::new)
}

/// The review of `week`, from the cache when nothing was written since it was built.
pub async fn cached_weekly(
    state: &ReportsState,
    week: IsoWeek,
    team: Option<&str>,
) -> AppResult<Arc<WeeklyReport>> {
    // A review counts incidents, items and alerts up to its week's end: writes that declare
    // they change only later data (today's incident during a storm) leave it valid.
    state
        .reviews
        .get_or_load_until(
            &state.db,
            weekly_key(week, team),
            week.end(state.tz),
            || build_weekly(state, week, team),
        )
        .await
}

/// The review a week query asks for (pages, exports and API alike).
pub async fn review_for(state: &ReportsState, q: &WeekQuery) -> AppResult<Arc<WeeklyReport>> {
    let (week, team) = q.parse(state)?;
    cached_weekly(state, week, team.as_deref()).await
}

/// Keeps the default weekly review (the last complete week, all teams) built ahead of the
/// people who open it: rebuilt once writes have settled for a tick, and before the cached copy
/// would expire. On a large database a cold review reads a few thousand incidents; this way
/// the page a team opens on Monday morning is served from memory.
pub async fn keep_weekly_warm(state: ReportsState, every: std::time::Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut built_at_generation, mut built_at) = (None, std::time::Instant::now());
    let mut seen = state.db.generation();
    loop {
        interval.tick().await;
        let now_generation = state.db.generation();
        // Writes still coming in: wait for them to settle rather than rebuild on every one.
        let settled = now_generation == seen;
        seen = now_generation;
        let week = IsoWeek::last_complete(today(&state));
        // Writes about later data (today's incidents) leave last week's review valid.
        let stale = built_at_generation != Some(now_generation)
            && !state.reviews.is_fresh_until(
                &state.db,
                &weekly_key(week, None),
                week.end(state.tz),
            );
        let ageing = built_at.elapsed() > WARM_REFRESH;
        if !(settled && (stale || ageing)) {
            continue;
        }
        let result = state
            .reviews
            .reload(&state.db, weekly_key(week, None), || {
                build_weekly(&state, week, None)
            })
            .await;
        match result {
            Ok(_) => {
                built_at_generation = Some(now_generation);
                built_at = std::time::Instant::now();
            }
            Err(e) => tracing::warn!(error = %e, "building the weekly review ahead failed"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The dashboard

/// Open incidents per severity, every severity listed (sev1 first).
pub async fn open_by_severity(db: &Db) -> AppResult<Vec<(Severity, i64)>> {
    let counts = db::open_by_severity(&db.reader).await?;
    Ok(Severity::ALL
        .iter()
        .map(|s| {
            let n = counts
                .iter()
                .find(|(name, _)| name == s.as_str())
                .map_or(0, |(_, n)| *n);
            (*s, n)
        })
        .collect())
}

/// The recurring groups of the 30 days up to now (the dashboard's eight), cached for `today`.
pub async fn recurring_this_month(
    state: &ReportsState,
    today: NaiveDate,
) -> AppResult<Arc<Vec<RecurringGroup>>> {
    state
        .month
        .get_or_load(&state.db, today.to_string(), || async {
            let end = Utc::now();
            let mut groups = db::recurring_groups(
                &state.db.reader,
                end - Duration::days(30),
                end,
                state.rule,
                None,
                5,
            )
            .await?;
            groups.truncate(8);
            Ok::<_, AppError>(Arc::new(groups))
        })
        .await
}

#[cfg(test)]
mod tests;
