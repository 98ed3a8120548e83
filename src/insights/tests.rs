//! Unit tests of the pure figures: periods, the default range and when a fix landed.

use chrono::{DateTime, NaiveDate, Utc};

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("time")
}

fn day(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn inc(id: &str, started: &str) -> InsightIncident {
    InsightIncident {
        id: id.into(),
        started_at: at(started),
        severity: Severity::Sev2,
        service: "checkout".into(),
        category: "deploy".into(),
        detected_at: None,
        acknowledged_at: None,
        mitigated_at: None,
        resolved_at: None,
        exclude_from_metrics: false,
        detection_method: None,
        alerted: false,
        primary_cause: None,
    }
}

fn prevent(incident: &str, status: &str, done: Option<&str>) -> PreventItem {
    PreventItem {
        incident_id: incident.into(),
        status: status.into(),
        completed_at: done.map(at),
    }
}

#[test]
fn the_default_range_is_this_quarter_and_the_three_before() {
    let f = InsightsQuery::default()
        .filter(day("2026-11-30"))
        .expect("filter");
    assert_eq!((f.since, f.until), (day("2026-01-01"), day("2026-11-30")));
    assert_eq!(
        quarters(&f),
        vec!["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    );
    let f = InsightsQuery::default()
        .filter(day("2026-02-10"))
        .expect("filter");
    assert_eq!(f.since, day("2025-04-01"));
    assert_eq!(months(&f).len(), 11);
}

#[test]
fn the_fix_is_the_last_time_every_earlier_prevent_item_was_done() {
    let a = inc("a", "2026-01-01T00:00:00Z");
    let b = inc("b", "2026-02-01T00:00:00Z");
    let c = inc("c", "2026-04-01T00:00:00Z");
    let members = [&a, &b, &c];
    // a's item done 01-10; b's done 03-01; c (after 03-01) still open → 03-01.
    let items = [
        prevent("a", "done", Some("2026-01-10T00:00:00Z")),
        prevent("b", "done", Some("2026-03-01T00:00:00Z")),
        prevent("c", "open", None),
    ];
    let refs: Vec<&PreventItem> = items.iter().collect();
    assert_eq!(fix_time(&members, &refs), Some(at("2026-03-01T00:00:00Z")));
    // b's item still open: at 01-10 only a had started, so the fix is 01-10 (and b, c came
    // after it: the fix did not hold).
    let items = [
        prevent("a", "done", Some("2026-01-10T00:00:00Z")),
        prevent("b", "open", None),
    ];
    let refs: Vec<&PreventItem> = items.iter().collect();
    assert_eq!(fix_time(&members, &refs), Some(at("2026-01-10T00:00:00Z")));
    // Won't do is not a fix; no prevent items, no fix.
    let items = [prevent("a", "wont_do", Some("2026-01-10T00:00:00Z"))];
    let refs: Vec<&PreventItem> = items.iter().collect();
    assert_eq!(fix_time(&members, &refs), None);
    assert_eq!(fix_time(&members, &[]), None);
}

#[test]
fn periods_follow_the_configured_zone() {
    // 2026-03-31 23:30 UTC is already April (and Q2) in Berlin.
    let tz: Tz = "Europe/Berlin".parse().expect("tz");
    let f = Filter {
        team: None,
        service: None,
        since: day("2026-01-01"),
        until: day("2026-06-30"),
    };
    let mut i = inc("a", "2026-03-31T23:30:00Z");
    i.detection_method = Some("customer_report".into());
    let d = detection(&f, tz, &[i]);
    assert_eq!(d.get("2026-04", "customer"), 1);
    let (start, end) = f.bounds(tz);
    assert_eq!(start, at("2025-12-31T23:00:00Z"));
    assert_eq!(end, at("2026-06-30T22:00:00Z"));
}

#[test]
fn follow_through_counts_only_items_already_due() {
    let items = vec![
        DueItem {
            team: "payments".into(),
            status: "open".into(),
            due_on: day("2026-11-30"),
            completed_at: None,
        },
        DueItem {
            team: "payments".into(),
            status: "done".into(),
            due_on: day("2026-11-29"),
            completed_at: Some(at("2026-11-29T23:59:00Z")),
        },
    ];
    let f = follow_through(&items, chrono_tz::UTC, day("2026-11-30"));
    assert_eq!(f.rows.len(), 1);
    assert_eq!((f.rows[0].due, f.rows[0].done_on_time), (1, 1));
    assert_eq!(f.rows[0].rate, Some(1.0));
}
