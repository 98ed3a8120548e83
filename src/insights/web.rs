//! The insights page (`/insights`: a GET form, so every view is a bookmarkable link) and its
//! CSV export (`/insights.csv?figure=…`).

use crate::web::extract::Query;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{FigureName, Filter, Insights, InsightsQuery, InsightsState, charts, insights};
use crate::error::{AppError, AppResult};
use crate::incidents::Severity;
use crate::reports::Measure;
use crate::time::human_secs;
use crate::web::chrome::Chrome;
use crate::web::extract::{CallerState, Page};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    InsightsState: FromRef<S>,
    CallerState: FromRef<S>,
{
    Router::new()
        .route("/insights", get(page))
        .route("/insights.csv", get(csv))
        .route("/insights.json", get(json))
}

#[derive(Template, WebTemplate)]
#[template(path = "insights/index.html")]
struct InsightsPage {
    chrome: Chrome,
    data: Insights,
    filter: Filter,
    teams: Vec<String>,
    services: Vec<String>,
    factors_chart: String,
    detection_chart: String,
    mttx_chart: String,
    hours_chart: String,
    follow_chart: String,
    fix_chart: String,
}

impl InsightsPage {
    fn team(&self) -> &str {
        self.filter.team.as_deref().unwrap_or_default()
    }

    fn service(&self) -> &str {
        self.filter.service.as_deref().unwrap_or_default()
    }

    fn csv_url(&self, figure: &str) -> String {
        format!("/insights.csv?figure={figure}&{}", self.filter.query())
    }

    fn json_url(&self, figure: &str) -> String {
        format!("/insights.json?figure={figure}&{}", self.filter.query())
    }

    fn percent(&self, rate: &Option<f64>) -> String {
        rate.map_or_else(|| "—".to_owned(), |r| format!("{:.0}%", r * 100.0))
    }

    fn rate(&self, rate: &Option<f64>) -> String {
        rate.map_or_else(|| "—".to_owned(), |r| format!("{r:.2}"))
    }

    fn when(&self, at: &Option<chrono::DateTime<chrono::Utc>>) -> String {
        at.map_or_else(
            || "not yet".to_owned(),
            |t| t.with_timezone(&self.chrome.tz).date_naive().to_string(),
        )
    }

    fn team_name<'a>(&self, team: &'a str) -> &'a str {
        if team.is_empty() { "(no team)" } else { team }
    }

    /// The resolve rows (the table lists every measure).
    fn mttx_cell(&self, quarter: &str, severity: &Severity, measure: &Measure) -> String {
        self.data
            .mttx
            .get(quarter, *severity, *measure)
            .map_or_else(
                || "—".to_owned(),
                |r| format!("{} (n={})", human_secs(r.median_secs), r.incidents),
            )
    }

    fn severities(&self) -> [Severity; 4] {
        Severity::ALL
    }

    fn measures(&self) -> [Measure; 4] {
        Measure::ALL
    }

    fn cell(&self, c: &super::Counts, period: &str, series: &str) -> usize {
        c.get(period, series)
    }
}

fn matrix(c: &super::Counts) -> Vec<Vec<f64>> {
    c.series
        .iter()
        .map(|s| c.periods.iter().map(|p| c.get(p, s) as f64).collect())
        .collect()
}

fn count_fmt(v: f64) -> String {
    format!("{v:.0}")
}

fn render(
    data: Insights,
    teams: Vec<String>,
    services: Vec<String>,
    chrome: Chrome,
) -> InsightsPage {
    let factors_chart = charts::bars(
        "chart-factors",
        "Contributing factors per quarter",
        "Stacked bars: for each quarter, incidents per root-cause category. The table below has the same numbers.",
        &data.factors.periods,
        &data.factors.series,
        &matrix(&data.factors),
        true,
        &count_fmt,
    );
    let detection_chart = charts::bars(
        "chart-detection",
        "How incidents were detected, per month",
        "Stacked bars: for each month, incidents by how they were detected. The table below has the same numbers.",
        &data.detection.periods,
        &data.detection.series,
        &matrix(&data.detection),
        true,
        &count_fmt,
    );
    let sev_names: Vec<String> = Severity::ALL
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    let mttr: Vec<Vec<f64>> = Severity::ALL
        .iter()
        .map(|&s| {
            data.mttx
                .quarters
                .iter()
                .map(|q| {
                    data.mttx
                        .get(q, s, Measure::Resolve)
                        .and_then(|r| r.median_secs)
                        .map_or(0.0, |secs| secs as f64 / 3600.0)
                })
                .collect()
        })
        .collect();
    let mttx_chart = charts::bars(
        "chart-mttx",
        "Median time to resolve by severity, per quarter (hours)",
        "Grouped bars: for each quarter, the median hours to resolve of each severity. The table below has every time.",
        &data.mttx.quarters,
        &sev_names,
        &mttr,
        false,
        &|v| format!("{v:.1}h"),
    );
    let hours_chart = charts::hbars(
        "chart-hours",
        "Incident hours by service",
        "Horizontal bars: hours of incidents per service, most first. The table below has the same numbers.",
        &data
            .hours
            .rows
            .iter()
            .map(|r| (r.service.clone(), r.hours, format!("{:.1} h", r.hours)))
            .collect::<Vec<_>>(),
    );
    let follow_chart = charts::hbars(
        "chart-follow",
        "Action items done by their due date, per team",
        "Horizontal bars: the share of each team's action items due in the range that were done on time. The table below has the counts.",
        &data
            .follow_through
            .rows
            .iter()
            .map(|r| {
                let label = if r.team.is_empty() {
                    "(no team)".to_owned()
                } else {
                    r.team.clone()
                };
                let rate = r.rate.unwrap_or(0.0);
                (
                    label,
                    rate.max(0.001),
                    format!("{:.0}% of {}", rate * 100.0, r.due),
                )
            })
            .collect::<Vec<_>>(),
    );
    let fixed: Vec<&super::FixRow> = data
        .fix
        .rows
        .iter()
        .filter(|r| r.fixed_at.is_some())
        .collect();
    let fix_chart = charts::bars(
        "chart-fix",
        "Incidents per month before and after the fix, per recurring group",
        "Grouped bars: for each recurring group whose prevent items are done, incidents per 30 days before the fix and after it. The table below has the counts.",
        &fixed.iter().map(|r| r.group.clone()).collect::<Vec<_>>(),
        &["before the fix".to_owned(), "after the fix".to_owned()],
        &[
            fixed
                .iter()
                .map(|r| r.before_per_month.unwrap_or(0.0))
                .collect(),
            fixed
                .iter()
                .map(|r| r.after_per_month.unwrap_or(0.0))
                .collect(),
        ],
        false,
        &|v| format!("{v:.2}"),
    );
    InsightsPage {
        chrome,
        filter: data.filter.clone(),
        data,
        teams,
        services,
        factors_chart,
        detection_chart,
        mttx_chart,
        hours_chart,
        follow_chart,
        fix_chart,
    }
}

async fn page(
    State(state): State<InsightsState>,
    page: Page,
    Query(q): Query<InsightsQuery>,
) -> AppResult<Response> {
    let filter = q.filter(crate::time::today(state.tz))?;
    let data = insights(&state, &filter).await?;
    let lists = state.catalog.get(&state.db.reader).await?;
    let services = lists.services.iter().map(|s| s.name.clone()).collect();
    Ok(render(data, lists.teams.clone(), services, page.chrome).into_response())
}

async fn csv(
    State(state): State<InsightsState>,
    _page: Page,
    Query(q): Query<InsightsQuery>,
) -> AppResult<Response> {
    let filter = q.filter(crate::time::today(state.tz))?;
    let figure = FigureName::parse(q.figure.trim())
        .ok_or_else(|| AppError::field("figure", FigureName::field_error()))?;
    let data = insights(&state, &filter).await?;
    Ok(crate::web::download::attachment(
        "text/csv; charset=utf-8",
        &format!(
            "insights-{}-{}-{}.csv",
            figure.as_str(),
            filter.since,
            filter.until
        ),
        super::export::csv(&data, figure, state.tz),
    ))
}

/// The figures as JSON for a signed-in browser (the API needs a token): what
/// `GET /api/v1/insights` answers.
async fn json(
    State(state): State<InsightsState>,
    _page: Page,
    Query(q): Query<InsightsQuery>,
) -> AppResult<Response> {
    let filter = q.filter(crate::time::today(state.tz))?;
    let data = insights(&state, &filter).await?;
    Ok(axum::Json(super::api::body(&data, &q.figure)).into_response())
}
