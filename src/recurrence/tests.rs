//! Unit tests of the recurrence calculator on hand-built fixtures whose answers were worked out
//! by hand (in the comments).

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("valid time")
        .with_timezone(&Utc)
}

fn inc(number: i64, started: &str, category: &str, service: &str) -> RecurrenceFacts {
    RecurrenceFacts {
        number,
        started_at: t(started),
        category: category.into(),
        service: service.into(),
        primary_cause: None,
    }
}

fn numbers(found: &[&RecurrenceFacts]) -> Vec<i64> {
    found.iter().map(|f| f.number).collect()
}

#[test]
fn the_third_incident_in_a_category_recurs_and_the_first_two_do_not() {
    let all = vec![
        inc(1, "2026-09-01T10:00:00Z", "deploy", "checkout"),
        inc(2, "2026-10-01T10:00:00Z", "deploy", "search"),
        inc(3, "2026-11-01T10:00:00Z", "deploy", "payments"),
    ];
    let rule = Rule::default();
    assert!(related(&all[0], &all, rule).is_empty());
    // INC-2 has one earlier alike incident: K = 2 is not reached.
    assert!(related(&all[1], &all, rule).is_empty());
    assert_eq!(numbers(&related(&all[2], &all, rule)), [2, 1]);
    // Later incidents never make an earlier one recur.
    assert!(
        related(
            &all[0],
            &all,
            Rule {
                min_others: 1,
                ..rule
            }
        )
        .is_empty()
    );
}

#[test]
fn the_window_includes_exactly_w_days_and_not_a_second_more() {
    let rule = Rule {
        min_others: 1,
        window_days: 90,
    };
    let target = inc(9, "2026-11-30T12:00:00Z", "capacity", "api");
    // 2026-11-30T12:00 − 90 days = 2026-09-01T12:00 (Sep 30 + Oct 31 + Nov 29 = 90).
    let on_the_boundary = inc(1, "2026-09-01T12:00:00Z", "capacity", "api");
    let one_second_out = inc(2, "2026-09-01T11:59:59Z", "capacity", "api");
    assert_eq!(
        numbers(&related(&target, &[on_the_boundary, target.clone()], rule)),
        [1]
    );
    assert!(related(&target, &[one_second_out, target.clone()], rule).is_empty());
    // An incident started at the same instant counts; itself never does.
    let same_time = inc(3, "2026-11-30T12:00:00Z", "capacity", "web");
    assert_eq!(
        numbers(&related(&target, &[same_time, target.clone()], rule)),
        [3]
    );
    assert!(related(&target, std::slice::from_ref(&target), rule).is_empty());
}

#[test]
fn unknown_never_makes_incidents_alike() {
    let all = vec![
        inc(1, "2026-11-01T00:00:00Z", "unknown", "api"),
        inc(2, "2026-11-02T00:00:00Z", "unknown", "api"),
        inc(3, "2026-11-03T00:00:00Z", "unknown", "api"),
    ];
    assert!(related(&all[2], &all, Rule::default()).is_empty());
}

#[test]
fn service_and_primary_root_cause_recur_across_categories() {
    let mut a = inc(1, "2026-11-01T00:00:00Z", "dependency", "checkout");
    let mut b = inc(2, "2026-11-05T00:00:00Z", "capacity", "checkout");
    let mut c = inc(3, "2026-11-09T00:00:00Z", "unknown", "checkout");
    // Same cause on another service does not count.
    let mut other = inc(4, "2026-11-07T00:00:00Z", "data", "search");
    for x in [&mut a, &mut b, &mut c, &mut other] {
        x.primary_cause = Some("config change".into());
    }
    let all = vec![a, b, other, c.clone()];
    assert_eq!(numbers(&related(&c, &all, Rule::default())), [2, 1]);
    // An `unknown` primary cause is no cause.
    let mut unsure = c;
    unsure.primary_cause = Some("unknown".into());
    let mut all2 = all;
    for x in &mut all2 {
        x.primary_cause = Some("unknown".into());
    }
    assert!(related(&unsure, &all2, Rule::default()).is_empty());
}
