//! Report pages: the weekly review (with its Markdown and CSV exports) and the home dashboard.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;

use super::{IsoWeek, Measure, RecurringGroup, ReportIncident, WeeklyReport};
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::incidents::Severity;
use crate::time::human_secs;
use crate::web::chrome::Chrome;
use crate::web::extract::Page;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/reports/weekly", get(weekly_page))
        .route("/reports/weekly.md", get(weekly_markdown))
        .route("/reports/weekly.csv", get(weekly_csv))
}

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
    pub fn parse(&self, state: &AppState) -> AppResult<(IsoWeek, Option<String>)> {
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

fn today(state: &AppState) -> NaiveDate {
    Utc::now()
        .with_timezone(&state.config.timezone)
        .date_naive()
}

/// Recently built reviews, reused until the next committed write.
pub type ReportCache = crate::db::ReadCache<Arc<WeeklyReport>>;

/// The cache key of a review.
pub fn weekly_key(week: IsoWeek, team: Option<&str>) -> String {
    format!("{}|{}", week.label(), team.unwrap_or(""))
}

async fn build_weekly(
    state: &AppState,
    week: IsoWeek,
    team: Option<&str>,
) -> AppResult<Arc<WeeklyReport>> {
    super::weekly(
        &state.db,
        week,
        team,
        state.config.timezone,
        state.config.recurrence,
        &state.report_weeks,
    )
    .await
    .map(Arc::new)
}

/// The review of `week`, from the cache when nothing was written since it was built.
pub async fn cached_weekly(
    state: &AppState,
    week: IsoWeek,
    team: Option<&str>,
) -> AppResult<Arc<WeeklyReport>> {
    state
        .reports
        .get_or_load(&state.db, weekly_key(week, team), || {
            build_weekly(state, week, team)
        })
        .await
}

/// Keeps the default weekly review (the last complete week, all teams) built ahead of the
/// people who open it: rebuilt once writes have settled for a tick, and before the cached copy
/// would expire. On a large database a cold review reads a few thousand incidents; this way
/// the page a team opens on Monday morning is served from memory.
pub async fn keep_weekly_warm(state: AppState, every: std::time::Duration) {
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
        let stale = built_at_generation != Some(now_generation);
        let ageing = built_at.elapsed() > WARM_REFRESH;
        if !(settled && (stale || ageing)) {
            continue;
        }
        let today = Utc::now()
            .with_timezone(&state.config.timezone)
            .date_naive();
        let week = IsoWeek::last_complete(today);
        let result = state
            .reports
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

/// How often the warm weekly review is rebuilt without writes: well inside `REPORT_MAX_AGE`.
const WARM_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a built review is reused without writes (writes by another process, such as
/// `hindsight demo`, are seen at the latest after this).
pub const REPORT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(120);

/// Incidents listed per severity on the page; the exports have them all.
const PAGE_ROWS_PER_SEVERITY: usize = 50;

#[derive(Template, WebTemplate)]
#[template(path = "reports/weekly.html")]
struct WeeklyPage {
    chrome: Chrome,
    report: Arc<WeeklyReport>,
    week: IsoWeek,
    team: String,
    teams: Vec<String>,
    incidents_chart: String,
    mttr_chart: String,
    today: NaiveDate,
    /// The week is still running (or in the future).
    incomplete: bool,
    /// The next week has started (so its link leads somewhere).
    has_next: bool,
}

/// One severity's share of the week.
struct SeverityGroup<'a> {
    severity: Severity,
    rows: Vec<&'a ReportIncident>,
    more: usize,
}

impl WeeklyPage {
    fn groups(&self) -> Vec<SeverityGroup<'_>> {
        Severity::ALL
            .iter()
            .map(|&severity| {
                let mut rows = self.report.of_severity(severity);
                let more = rows.len().saturating_sub(PAGE_ROWS_PER_SEVERITY);
                rows.truncate(PAGE_ROWS_PER_SEVERITY);
                SeverityGroup {
                    severity,
                    rows,
                    more,
                }
            })
            .filter(|g| !g.rows.is_empty())
            .collect()
    }

    fn query(&self, week: IsoWeek) -> String {
        let mut params = vec![("week", week.label())];
        if !self.team.is_empty() {
            params.push(("team", self.team.clone()));
        }
        serde_urlencoded::to_string(&params).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("{path}?{}", self.query(self.week))
    }

    fn prev_url(&self) -> String {
        format!("/reports/weekly?{}", self.query(self.week.prev()))
    }

    fn next_url(&self) -> String {
        format!("/reports/weekly?{}", self.query(self.week.next()))
    }

    /// The incident list showing this week's incidents of one severity.
    fn list_url(&self, severity: &Severity) -> String {
        let mut params = vec![
            ("severity", severity.as_str().to_owned()),
            ("since", self.week.monday().to_string()),
            ("until", self.week.sunday().to_string()),
        ];
        if !self.team.is_empty() {
            params.push(("team", self.team.clone()));
        }
        format!(
            "/incidents?{}",
            serde_urlencoded::to_string(&params).unwrap_or_default()
        )
    }

    /// The incident list showing a recurring group over its window up to the week's end.
    fn group_url(&self, group: &RecurringGroup) -> String {
        let days = i64::from(self.report.recurrence.window_days.max(30));
        group.list_url(
            self.week.sunday() - Duration::days(days - 1),
            self.week.sunday(),
        )
    }

    fn human(&self, secs: &Option<i64>) -> String {
        human_secs(*secs)
    }

    fn percent(&self, rate: &Option<f64>) -> String {
        rate.map_or_else(|| "—".to_owned(), |r| format!("{:.0}%", r * 100.0))
    }
}

async fn weekly_page(
    State(state): State<AppState>,
    page: Page,
    Query(q): Query<WeekQuery>,
) -> AppResult<Response> {
    let (week, team) = q.parse(&state)?;
    let report = cached_weekly(&state, week, team.as_deref()).await?;
    let today = today(&state);
    let lists = state.catalog.get(&state.db.reader).await?;
    Ok(WeeklyPage {
        chrome: page.chrome,
        incidents_chart: super::charts::incidents_chart(&report.weeks),
        mttr_chart: super::charts::mttr_chart(&report.weeks),
        report,
        week,
        team: team.unwrap_or_default(),
        teams: lists.teams.clone(),
        today,
        incomplete: week.sunday() >= today,
        has_next: week.next().monday() <= today,
    }
    .into_response())
}

fn download(content_type: &'static str, filename: String, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The review as Markdown (what `weekly.md` answers, pages and API alike).
pub async fn markdown_response(state: &AppState, q: &WeekQuery) -> AppResult<Response> {
    let (week, team) = q.parse(state)?;
    let report = cached_weekly(state, week, team.as_deref()).await?;
    Ok(download(
        "text/markdown; charset=utf-8",
        format!("weekly-review-{}.md", report.week),
        super::export::markdown(&report, state.config.timezone, &state.config.base_url),
    ))
}

/// The review's incidents as CSV.
pub async fn csv_response(state: &AppState, q: &WeekQuery) -> AppResult<Response> {
    let (week, team) = q.parse(state)?;
    let report = cached_weekly(state, week, team.as_deref()).await?;
    Ok(download(
        "text/csv; charset=utf-8",
        format!("weekly-review-{}.csv", report.week),
        super::export::csv(&report),
    ))
}

async fn weekly_markdown(
    State(state): State<AppState>,
    _page: Page,
    Query(q): Query<WeekQuery>,
) -> AppResult<Response> {
    markdown_response(&state, &q).await
}

async fn weekly_csv(
    State(state): State<AppState>,
    _page: Page,
    Query(q): Query<WeekQuery>,
) -> AppResult<Response> {
    csv_response(&state, &q).await
}

// ---------------------------------------------------------------------------------------------
// Home

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    /// Open incidents per severity, every severity listed.
    open: Vec<(Severity, i64)>,
    my_items: Vec<crate::recurrence::OpenItem>,
    reviews: Vec<super::db::ReviewWaiting>,
    recurring: Arc<Vec<RecurringGroup>>,
    last_week: Arc<WeeklyReport>,
    today: NaiveDate,
}

impl HomePage {
    fn open_total(&self) -> i64 {
        self.open.iter().map(|(_, n)| n).sum()
    }

    fn last_mttr(&self) -> String {
        self.last_week
            .mttx
            .iter()
            .find(|r| r.measure == Measure::Resolve)
            .map_or_else(|| "—".to_owned(), |r| human_secs(r.this_week.median_secs))
    }

    fn last_week_url(&self) -> String {
        format!("/reports/weekly?week={}", self.last_week.week)
    }

    fn group_url(&self, group: &RecurringGroup) -> String {
        group.list_url(self.today - Duration::days(29), self.today)
    }
}

/// Recurring groups of the last 30 days, reused until the next write.
pub type MonthCache = crate::db::ReadCache<Arc<Vec<RecurringGroup>>>;

async fn home(State(state): State<AppState>, page: Page) -> AppResult<Response> {
    let pool = &state.db.reader;
    let counts = super::db::open_by_severity(pool).await?;
    let open = Severity::ALL
        .iter()
        .map(|s| {
            let n = counts
                .iter()
                .find(|(name, _)| name == s.as_str())
                .map_or(0, |(_, n)| *n);
            (*s, n)
        })
        .collect();
    let today = today(&state);
    let recurring = state
        .month
        .get_or_load(&state.db, today.to_string(), || async {
            let end = Utc::now();
            let mut groups = super::db::recurring_groups(
                pool,
                end - Duration::days(30),
                end,
                state.config.recurrence,
                None,
                5,
            )
            .await?;
            groups.truncate(8);
            Ok::<_, AppError>(Arc::new(groups))
        })
        .await?;
    Ok(HomePage {
        open,
        my_items: super::db::my_items(pool, &page.user.id, 10).await?,
        reviews: super::db::reviews_waiting(pool, &page.user.id).await?,
        recurring,
        last_week: cached_weekly(&state, IsoWeek::last_complete(today), None).await?,
        today,
        chrome: page.chrome,
    }
    .into_response())
}
