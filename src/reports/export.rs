//! The weekly review as Markdown (to paste into meeting notes) and as CSV (one row per incident
//! of the week, for spreadsheets). Every text that people typed is escaped for its format.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::{Measure, WeeklyReport};
use crate::csv::csv_field;
use crate::incidents::Severity;
use crate::time::human_secs;

/// Markdown-escaped, on one line (table cells and list items cannot hold line breaks).
fn md(text: &str) -> String {
    crate::markdown::escape(&text.replace(['\r', '\n'], " "))
}

fn day(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_owned(), |r| format!("{:.0}%", r * 100.0))
}

/// The whole review as Markdown. Times are shown in `tz`; links are absolute (`base_url`).
pub fn markdown(r: &WeeklyReport, tz: chrono_tz::Tz, base_url: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Weekly review {} ({} – {}){}\n",
        r.week,
        r.starts_on,
        r.ends_on,
        r.team
            .as_deref()
            .map(|t| format!(" · team {}", md(t)))
            .unwrap_or_default()
    );

    let _ = writeln!(out, "## Incidents ({})\n", r.incidents.len());
    if r.incidents.is_empty() {
        out.push_str("No incidents started this week.\n\n");
    }
    for severity in Severity::ALL {
        let rows = r.of_severity(severity);
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {} ({})\n", severity.as_str(), rows.len());
        out.push_str("| Incident | Title | Status | Service | Category | Started | Duration |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        for i in rows {
            let _ = writeln!(
                out,
                "| [{}]({base_url}/incidents/{}) | {} | {} | {} | {} | {} | {} |",
                i.key(),
                i.key(),
                md(&i.title),
                i.status.as_str(),
                md(&i.service),
                md(&i.category),
                day(i.started_at, tz),
                i.duration()
            );
        }
        out.push('\n');
    }

    out.push_str("## Time to detect, acknowledge, mitigate, resolve\n\n");
    out.push_str("| | Median | p90 | n | Previous 4 weeks: median | p90 | n |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for row in &r.mttx {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.measure.label(),
            human_secs(row.this_week.median_secs),
            human_secs(row.this_week.p90_secs),
            row.this_week.n,
            human_secs(row.previous_4_weeks.median_secs),
            human_secs(row.previous_4_weeks.p90_secs),
            row.previous_4_weeks.n
        );
    }
    let excluded = r.excluded();
    if excluded > 0 {
        let _ = writeln!(
            out,
            "\n{excluded} incident(s) excluded from metrics are left out."
        );
    }
    out.push('\n');

    let a = &r.action_items;
    out.push_str("## Action items\n\n");
    let _ = writeln!(out, "- Opened: {}", a.opened);
    let _ = writeln!(out, "- Closed: {}", a.closed);
    let _ = writeln!(out, "- Overdue at the end of the week: {}", a.overdue);
    let _ = writeln!(
        out,
        "- Due this week and closed by its end: {} of {} ({})\n",
        a.due_closed,
        a.due,
        percent(a.completion_rate)
    );

    let _ = writeln!(
        out,
        "## Recurring (more than {} incidents in {} days)\n",
        r.recurrence.min_others, r.recurrence.window_days
    );
    if r.recurring.is_empty() {
        out.push_str("Nothing recurs.\n\n");
    }
    for g in &r.recurring {
        let _ = writeln!(
            out,
            "### {} — {} in the last 30 days, {} in {} days\n",
            md(&g.label()),
            g.count_30,
            g.count,
            r.recurrence.window_days
        );
        for i in &g.incidents {
            let _ = writeln!(
                out,
                "- [INC-{}]({base_url}/incidents/INC-{}) {} ({})",
                i.number,
                i.number,
                md(&i.title),
                day(i.started_at, tz)
            );
        }
        if g.count > g.incidents.len() {
            let _ = writeln!(out, "- … and {} more", g.count - g.incidents.len());
        }
        if g.open_action_items.is_empty() {
            out.push_str("\nNo action items of these incidents are open.\n\n");
        } else {
            out.push_str("\nStill open from earlier:\n\n");
            for item in &g.open_action_items {
                let _ = writeln!(
                    out,
                    "- [ ] INC-{}: {} ({}{}{})",
                    item.incident,
                    md(&item.title),
                    item.priority,
                    item.owner
                        .as_deref()
                        .map(|o| format!(", {}", md(o)))
                        .unwrap_or_else(|| ", no owner".to_owned()),
                    item.due_on
                        .map(|d| format!(", due {d}"))
                        .unwrap_or_default()
                );
            }
            out.push('\n');
        }
    }

    out.push_str("## Alert noise\n\n");
    if r.alerts.is_empty() {
        out.push_str("No alerts fired this week.\n");
    } else {
        out.push_str("| Alert | Service | Tier | Firings | With an incident |\n");
        out.push_str("|---|---|---|---|---|\n");
        for n in &r.alerts {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                md(&n.name),
                md(&n.service),
                n.tier,
                n.firings,
                n.with_incident
            );
        }
    }
    out
}

/// The CSV header; one row per incident of the week follows.
pub const CSV_HEADER: &str = "week,incident,title,severity,status,service,category,team,started_at,detected_at,acknowledged_at,mitigated_at,resolved_at,duration_secs,excluded_from_metrics,detect_secs,acknowledge_secs,mitigate_secs,resolve_secs";

/// The week's incidents as CSV (times in UTC RFC 3339, durations in seconds, empty when a
/// milestone is missing). Formulas are defused (`=`, `+`, `-`, `@` get a leading quote).
pub fn csv(r: &WeeklyReport) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    let opt_ts = |t: Option<DateTime<Utc>>| t.map(crate::db::ts).unwrap_or_default();
    let opt_n = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
    for i in &r.incidents {
        let m = i.milestones();
        let row = [
            r.week.clone(),
            i.key(),
            i.title.clone(),
            i.severity.as_str().to_owned(),
            i.status.as_str().to_owned(),
            i.service.clone(),
            i.category.clone(),
            i.team.clone(),
            crate::db::ts(i.started_at),
            opt_ts(i.detected_at),
            opt_ts(i.acknowledged_at),
            opt_ts(i.mitigated_at),
            opt_ts(i.resolved_at),
            opt_n(i.duration_secs),
            i.exclude_from_metrics.to_string(),
            opt_n(Measure::Detect.of(&m)),
            opt_n(Measure::Acknowledge.of(&m)),
            opt_n(Measure::Mitigate.of(&m)),
            opt_n(Measure::Resolve.of(&m)),
        ];
        out.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}
