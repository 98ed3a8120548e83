//! Report pages: the weekly review (with its Markdown and CSV exports) and the home dashboard.

use std::sync::Arc;

use crate::web::extract::Query;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{Duration, NaiveDate};

use super::{
    IsoWeek, Measure, RecurringGroup, ReportIncident, ReportsState, WeekQuery, WeeklyReport,
    cached_weekly, today,
};
use crate::error::AppResult;
use crate::incidents::Severity;
use crate::recurrence::OpenItem;
use crate::time::human_secs;
use crate::web::chrome::Chrome;
use crate::web::extract::{CallerState, Page};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ReportsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/", get(home))
        .route("/reports/weekly", get(weekly_page))
        .route("/reports/weekly.md", get(weekly_markdown))
        .route("/reports/weekly.csv", get(weekly_csv))
}

/// Incidents listed per severity on the page; the exports have them all.
const PAGE_ROWS_PER_SEVERITY: usize = 50;
/// Open action items listed per recurring group on the page, most pressing first; the Markdown
/// export has them all. (At scale a group's incidents hold dozens, which made the page 200 KB.)
const GROUP_ITEMS_SHOWN: usize = 8;

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

/// The open action items a recurring group shows, and how many more it has.
struct GroupItems<'a> {
    shown: Vec<&'a OpenItem>,
    more: usize,
}

impl WeeklyPage {
    /// A recurring group's open action items as listed: overdue first, then by priority, then
    /// soonest due (undated last), at most `GROUP_ITEMS_SHOWN`.
    fn pressing<'a>(&self, group: &'a RecurringGroup) -> GroupItems<'a> {
        // Keys borrow: a group at scale has dozens of open items, and a key that cloned the
        // priority allocated twice per comparison (a fifth of the page's CPU).
        let today = self.today;
        fn key(a: &OpenItem, today: NaiveDate) -> (bool, &str, bool, Option<NaiveDate>) {
            (
                !a.overdue(today),
                a.priority.as_str(),
                a.due_on.is_none(),
                a.due_on,
            )
        }
        let mut items: Vec<&OpenItem> = group.open_action_items.iter().collect();
        items.sort_by(|a, b| key(a, today).cmp(&key(b, today)));
        let more = items.len().saturating_sub(GROUP_ITEMS_SHOWN);
        items.truncate(GROUP_ITEMS_SHOWN);
        GroupItems { shown: items, more }
    }

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
    State(state): State<ReportsState>,
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

async fn weekly_markdown(
    State(state): State<ReportsState>,
    _page: Page,
    Query(q): Query<WeekQuery>,
) -> AppResult<Response> {
    let report = super::review_for(&state, &q).await?;
    Ok(crate::web::download::attachment(
        "text/markdown; charset=utf-8",
        &format!("weekly-review-{}.md", report.week),
        super::export::markdown(&report, state.tz, &state.base_url),
    ))
}

async fn weekly_csv(
    State(state): State<ReportsState>,
    _page: Page,
    Query(q): Query<WeekQuery>,
) -> AppResult<Response> {
    let report = super::review_for(&state, &q).await?;
    Ok(crate::web::download::attachment(
        "text/csv; charset=utf-8",
        &format!("weekly-review-{}.csv", report.week),
        super::export::csv(&report),
    ))
}

// ---------------------------------------------------------------------------------------------
// Home

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    /// Open incidents, the viewer's action items and reviews waiting.
    mine: Arc<super::Dashboard>,
    recurring: Arc<Vec<RecurringGroup>>,
    last_week: Arc<WeeklyReport>,
    today: NaiveDate,
}

impl HomePage {
    fn open_total(&self) -> i64 {
        self.mine.open.iter().map(|(_, n)| n).sum()
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

async fn home(State(state): State<ReportsState>, page: Page) -> AppResult<Response> {
    let today = today(&state);
    Ok(HomePage {
        mine: super::dashboard(&state, &page.user.id).await?,
        recurring: super::recurring_this_month(&state, today).await?,
        last_week: cached_weekly(&state, IsoWeek::last_complete(today), None).await?,
        today,
        chrome: page.chrome,
    }
    .into_response())
}
