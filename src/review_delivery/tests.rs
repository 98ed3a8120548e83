//! Unit tests: weekdays, and the next due time across clock changes.

use chrono::{DateTime, Utc, Weekday};
use chrono_tz::Tz;

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("time")
}

fn tz(name: &str) -> Tz {
    name.parse().expect("zone")
}

#[test]
fn weekdays_are_names_or_iso_numbers() {
    assert_eq!(parse_weekday("1"), Some(Weekday::Mon));
    assert_eq!(parse_weekday("7"), Some(Weekday::Sun));
    assert_eq!(parse_weekday("monday"), Some(Weekday::Mon));
    assert_eq!(parse_weekday("Fri"), Some(Weekday::Fri));
    assert_eq!(parse_weekday("0"), None);
    assert_eq!(parse_weekday("8"), None);
    assert_eq!(parse_weekday("someday"), None);
}

#[test]
fn the_next_due_time_is_the_next_matching_local_hour() {
    let berlin = tz("Europe/Berlin");
    // Monday 2026-11-30 08:00 UTC is 09:00 in Berlin (CET, +1): Monday 09:00 is next week.
    assert_eq!(
        next_due(Weekday::Mon, 9, berlin, at("2026-11-30T08:00:00Z")),
        at("2026-12-07T08:00:00Z")
    );
    // A minute before it: today.
    assert_eq!(
        next_due(Weekday::Mon, 9, berlin, at("2026-11-30T07:59:00Z")),
        at("2026-11-30T08:00:00Z")
    );
}

#[test]
fn summer_time_moves_the_utc_hour_not_the_local_one() {
    let berlin = tz("Europe/Berlin");
    // Clocks go forward on Sunday 2026-03-29. Monday 09:00 before is 08:00 UTC (CET), after
    // it 07:00 UTC (CEST).
    let before = next_due(Weekday::Mon, 9, berlin, at("2026-03-20T12:00:00Z"));
    assert_eq!(before, at("2026-03-23T08:00:00Z"));
    assert_eq!(
        next_due(Weekday::Mon, 9, berlin, before),
        at("2026-03-30T07:00:00Z")
    );
    // And back on Sunday 2026-10-25.
    assert_eq!(
        next_due(Weekday::Mon, 9, berlin, at("2026-10-20T00:00:00Z")),
        at("2026-10-26T08:00:00Z")
    );
}

#[test]
fn an_hour_the_clock_skips_is_sent_right_after_the_gap_and_a_repeated_one_once() {
    let berlin = tz("Europe/Berlin");
    // Sunday 2026-03-29 02:00 does not exist in Berlin (02:00 → 03:00 CEST = 01:00 UTC).
    assert_eq!(
        next_due(Weekday::Sun, 2, berlin, at("2026-03-28T00:00:00Z")),
        at("2026-03-29T01:00:00Z")
    );
    // Sunday 2026-10-25 02:00 happens twice (CEST then CET): the first, 00:00 UTC.
    let first = next_due(Weekday::Sun, 2, berlin, at("2026-10-24T00:00:00Z"));
    assert_eq!(first, at("2026-10-25T00:00:00Z"));
    // After it, the next is a week later, not the repeat an hour on.
    assert_eq!(
        next_due(Weekday::Sun, 2, berlin, first),
        at("2026-11-01T01:00:00Z")
    );
    // A zone east of UTC whose local Monday starts on Sunday in UTC.
    assert_eq!(
        next_due(
            Weekday::Mon,
            0,
            tz("Pacific/Auckland"),
            at("2026-11-28T00:00:00Z")
        ),
        at("2026-11-29T11:00:00Z")
    );
}

#[test]
fn the_email_carries_the_figures_and_the_link_in_both_parts() {
    let report = WeeklyReport {
        week: "2026-W47".into(),
        team: Some("payments".into()),
        starts_on: "2026-11-16".parse().expect("date"),
        ends_on: "2026-11-22".parse().expect("date"),
        incidents: Vec::new(),
        mttx: crate::reports::mttx(&[], &[]),
        action_items: crate::reports::ItemCounts {
            opened: 3,
            closed: 2,
            overdue: 1,
            ..Default::default()
        },
        recurrence: crate::reports::RecurrenceSettings {
            min_others: 2,
            window_days: 90,
        },
        recurring: Vec::new(),
        alerts: Vec::new(),
        weeks: Vec::new(),
    };
    let url = review_url(
        "https://h.example.com/",
        IsoWeek::parse("2026-W47").expect("week"),
        Some("payments"),
    );
    assert_eq!(
        url,
        "https://h.example.com/reports/weekly?week=2026-W47&team=payments"
    );
    let (subject, text, html) = compose(&report, &url);
    assert_eq!(subject, "[Hindsight] Weekly review 2026-W47 · payments");
    assert!(text.contains("3 opened, 2 closed, 1 overdue"), "{text}");
    assert!(text.contains(&url));
    assert!(html.contains("3 opened, 2 closed, 1 overdue"), "{html}");
    assert!(
        html.contains(
            "href=\"https://h.example.com/reports/weekly?week=2026-W47&amp;team=payments\""
        )
    );
}
