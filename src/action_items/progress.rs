//! The completion calculator: per team (completion rate, median age of open items, overdue)
//! and per ISO week (opened, closed, overdue at the week's end), plus its SVG chart.

use std::fmt::Write as _;

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;

use super::ItemStatus;

/// The facts of one item the calculator needs.
#[derive(Debug, Clone)]
pub struct ItemFacts {
    pub team: String,
    pub status: ItemStatus,
    pub created_on: NaiveDate,
    /// When it was done or declared won't-do.
    pub closed_on: Option<NaiveDate>,
    pub due_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamProgress {
    pub team: String,
    pub total: usize,
    pub closed: usize,
    /// closed / total, 0..=1.
    pub completion_rate: f64,
    pub open: usize,
    /// Median age in days of the open items (the ⌈n/2⌉-th smallest), if any.
    pub median_open_age_days: Option<i64>,
    pub overdue: usize,
}

/// Per team (items without a team under "(no team)"), teams sorted by name.
pub fn per_team(items: &[ItemFacts], today: NaiveDate) -> Vec<TeamProgress> {
    let mut teams: Vec<String> = items.iter().map(|i| team_name(&i.team)).collect();
    teams.sort();
    teams.dedup();
    teams
        .into_iter()
        .map(|team| {
            let mine: Vec<&ItemFacts> = items
                .iter()
                .filter(|i| team_name(&i.team) == team)
                .collect();
            let closed = mine.iter().filter(|i| i.status.is_closed()).count();
            let mut ages: Vec<i64> = mine
                .iter()
                .filter(|i| !i.status.is_closed())
                .map(|i| (today - i.created_on).num_days().max(0))
                .collect();
            ages.sort_unstable();
            let median = (!ages.is_empty()).then(|| ages[ages.len().div_ceil(2) - 1]);
            TeamProgress {
                total: mine.len(),
                closed,
                completion_rate: if mine.is_empty() {
                    0.0
                } else {
                    closed as f64 / mine.len() as f64
                },
                open: ages.len(),
                median_open_age_days: median,
                overdue: mine
                    .iter()
                    .filter(|i| !i.status.is_closed() && i.due_on.is_some_and(|d| d < today))
                    .count(),
                team,
            }
        })
        .collect()
}

fn team_name(team: &str) -> String {
    if team.trim().is_empty() {
        "(no team)".to_owned()
    } else {
        team.to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeekPoint {
    /// ISO week, e.g. `2026-W48`.
    pub week: String,
    pub opened: usize,
    pub closed: usize,
    /// Open at the end of the week (or today, for this week: "so far") and due before its
    /// cutoff ([`super::overdue_cutoff`]).
    pub overdue: usize,
}

/// The last `weeks` ISO weeks up to the one holding `today`, oldest first.
pub fn weekly(items: &[ItemFacts], today: NaiveDate, weeks: usize) -> Vec<WeekPoint> {
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    (0..weeks)
        .rev()
        .map(|back| {
            let start = monday - Duration::weeks(i64::try_from(back).unwrap_or(0));
            let end = (start + Duration::days(6)).min(today);
            let within = |d: NaiveDate| d >= start && d <= end;
            let iso = start.iso_week();
            // Overdue as `super::overdue_cutoff` defines it: open at the end of the last
            // counted day (the week's Sunday, or today) and due before the cutoff day.
            let cutoff = super::overdue_cutoff(start, today);
            WeekPoint {
                week: format!("{}-W{:02}", iso.year(), iso.week()),
                opened: items.iter().filter(|i| within(i.created_on)).count(),
                closed: items
                    .iter()
                    .filter(|i| i.closed_on.is_some_and(within))
                    .count(),
                overdue: items
                    .iter()
                    .filter(|i| {
                        let open_then = i.created_on <= end && i.closed_on.is_none_or(|c| c > end);
                        open_then && i.due_on.is_some_and(|d| d < cutoff)
                    })
                    .count(),
            }
        })
        .collect()
}

/// Opened and closed as paired bars, overdue as a line, one group per week.
pub fn weekly_chart(points: &[WeekPoint]) -> String {
    const W: f64 = 640.0;
    const H: f64 = 200.0;
    const LEFT: f64 = 32.0;
    const BOTTOM: f64 = 34.0;
    let max = points
        .iter()
        .map(|p| p.opened.max(p.closed).max(p.overdue))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - BOTTOM - 10.0;
    let group = plot_w / points.len().max(1) as f64;
    let y = |v: usize| 10.0 + plot_h * (1.0 - v as f64 / max);
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="Action items opened, closed and overdue per week" xmlns="http://www.w3.org/2000/svg">"#
    );
    let _ = write!(
        svg,
        r#"<line x1="{LEFT}" x2="{}" y1="{:.1}" y2="{:.1}" class="grid"/><text x="{}" y="{:.1}" text-anchor="end" class="axis">{}</text>"#,
        W - 8.0,
        y(0),
        y(0),
        LEFT - 4.0,
        y(0) + 4.0,
        0
    );
    let _ = write!(
        svg,
        r#"<text x="{}" y="14" text-anchor="end" class="axis">{}</text>"#,
        LEFT - 4.0,
        max as usize
    );
    let mut line = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let x0 = LEFT + group * i as f64;
        let bar = group * 0.35;
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="{bar:.1}" height="{:.1}" class="opened"><title>{}: {} opened</title></rect>"#,
            x0 + group * 0.1,
            y(p.opened),
            y(0) - y(p.opened),
            p.week,
            p.opened
        );
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="{bar:.1}" height="{:.1}" class="closed"><title>{}: {} closed</title></rect>"#,
            x0 + group * 0.1 + bar,
            y(p.closed),
            y(0) - y(p.closed),
            p.week,
            p.closed
        );
        line.push(format!("{:.1},{:.1}", x0 + group / 2.0, y(p.overdue)));
        let short = p.week.split('-').nth(1).unwrap_or(&p.week);
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" class="axis">{short}</text>"#,
            x0 + group / 2.0,
            H - 18.0
        );
    }
    let _ = write!(
        svg,
        r#"<polyline points="{}" class="line overdue"><title>overdue</title></polyline>"#,
        line.join(" ")
    );
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn item(
        team: &str,
        status: ItemStatus,
        created: &str,
        closed: Option<&str>,
        due: Option<&str>,
    ) -> ItemFacts {
        ItemFacts {
            team: team.into(),
            status,
            created_on: d(created),
            closed_on: closed.map(d),
            due_on: due.map(d),
        }
    }

    /// Today is Wednesday 2026-11-25 (ISO week 48).
    fn fixture() -> Vec<ItemFacts> {
        vec![
            item(
                "Storefront",
                ItemStatus::Done,
                "2026-11-02",
                Some("2026-11-10"),
                Some("2026-11-15"),
            ),
            item(
                "Storefront",
                ItemStatus::Open,
                "2026-11-16",
                None,
                Some("2026-11-20"),
            ),
            item(
                "Storefront",
                ItemStatus::InProgress,
                "2026-11-23",
                None,
                None,
            ),
            item(
                "Storefront",
                ItemStatus::Open,
                "2026-11-05",
                None,
                Some("2026-12-31"),
            ),
            item(
                "",
                ItemStatus::WontDo,
                "2026-11-17",
                Some("2026-11-24"),
                None,
            ),
        ]
    }

    #[test]
    fn per_team_figures_match_a_hand_count() {
        let teams = per_team(&fixture(), d("2026-11-25"));
        assert_eq!(teams.len(), 2);
        assert_eq!(teams[0].team, "(no team)");
        assert_eq!((teams[0].total, teams[0].closed, teams[0].open), (1, 1, 0));
        assert_eq!(teams[0].median_open_age_days, None);
        let s = &teams[1];
        assert_eq!((s.total, s.closed, s.open, s.overdue), (4, 1, 3, 1));
        assert!((s.completion_rate - 0.25).abs() < 1e-9);
        // Open ages: 9 (11-16), 2 (11-23), 20 (11-05) → sorted 2, 9, 20 → median 9.
        assert_eq!(s.median_open_age_days, Some(9));
    }

    #[test]
    fn weekly_series_match_a_hand_count() {
        let weeks = weekly(&fixture(), d("2026-11-25"), 4);
        let got: Vec<(&str, usize, usize, usize)> = weeks
            .iter()
            .map(|w| (w.week.as_str(), w.opened, w.closed, w.overdue))
            .collect();
        assert_eq!(
            got,
            vec![
                // W45 (11-02..11-08): two opened; nothing due before 11-08.
                ("2026-W45", 2, 0, 0),
                // W46 (11-09..11-15): one closed (11-10, due 11-15 but closed).
                ("2026-W46", 0, 1, 0),
                // W47 (11-16..11-22): two opened; the one due 11-20 is overdue at 11-22.
                ("2026-W47", 2, 0, 1),
                // W48 (11-23..today 11-25): one opened, one won't-do; still one overdue.
                ("2026-W48", 1, 1, 1),
            ]
        );
    }

    #[test]
    fn an_item_due_on_sunday_and_still_open_is_overdue_at_that_weeks_end() {
        // W47 ends Sunday 11-22; the item is due that Sunday and closed the Tuesday after.
        let items = [item(
            "Storefront",
            ItemStatus::Done,
            "2026-11-16",
            Some("2026-11-24"),
            Some("2026-11-22"),
        )];
        let weeks = weekly(&items, d("2026-11-25"), 2);
        assert_eq!((weeks[0].week.as_str(), weeks[0].overdue), ("2026-W47", 1));
        // In the current week it was closed on 11-24, so it is not overdue today.
        assert_eq!((weeks[1].week.as_str(), weeks[1].overdue), ("2026-W48", 0));
    }

    #[test]
    fn the_current_weeks_overdue_is_what_is_overdue_today() {
        // Due today, yesterday, tomorrow and on Sunday: only yesterday's is overdue today,
        // as on the board; nothing due later this week counts yet.
        let today = d("2026-11-25");
        let items: Vec<ItemFacts> = ["2026-11-25", "2026-11-24", "2026-11-26", "2026-11-29"]
            .into_iter()
            .map(|due| {
                item(
                    "Storefront",
                    ItemStatus::Open,
                    "2026-11-20",
                    None,
                    Some(due),
                )
            })
            .collect();
        let weeks = weekly(&items, today, 1);
        assert_eq!(weeks[0].overdue, 1);
        assert_eq!(
            super::super::overdue_cutoff(d("2026-11-23"), today),
            today,
            "the current week counts up to today"
        );
        assert_eq!(
            super::super::overdue_cutoff(d("2026-11-16"), today),
            d("2026-11-23"),
            "a finished week counts up to its end"
        );
    }

    #[test]
    fn weeks_cross_the_year_boundary() {
        let weeks = weekly(&[], d("2027-01-04"), 3);
        let labels: Vec<&str> = weeks.iter().map(|w| w.week.as_str()).collect();
        assert_eq!(labels, ["2026-W52", "2026-W53", "2027-W01"]);
    }

    #[test]
    fn the_chart_has_a_bar_pair_per_week_and_an_overdue_line() {
        let svg = weekly_chart(&weekly(&fixture(), d("2026-11-25"), 4));
        assert_eq!(svg.matches("class=\"opened\"").count(), 4);
        assert_eq!(svg.matches("class=\"closed\"").count(), 4);
        assert!(svg.contains("class=\"line overdue\""));
    }
}
