//! Unit tests of the MTTx calculator and ISO weeks, on hand-built fixtures
//! whose answers were worked out by hand (in the comments).

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("valid time")
        .with_timezone(&Utc)
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

#[test]
fn iso_weeks_cross_the_year_boundary() {
    // 2026 starts on a Thursday, so it has 53 ISO weeks; 2027-W01 starts Monday 2027-01-04.
    let w53 = IsoWeek::parse("2026-W53").expect("2026 has a week 53");
    assert_eq!(w53.monday(), d("2026-12-28"));
    assert_eq!(w53.sunday(), d("2027-01-03"));
    assert_eq!(w53.next().label(), "2027-W01");
    assert_eq!(w53.next().monday(), d("2027-01-04"));
    assert_eq!(IsoWeek::parse("2027-W01").expect("valid").prev(), w53);
    // 2027 starts on a Friday: only 52 weeks.
    assert_eq!(
        IsoWeek::parse("2027-W53"),
        Err("2027 has no ISO week 53".to_owned())
    );
    // 2025-12-29 (a Monday) already belongs to 2026-W01.
    assert_eq!(IsoWeek::containing(d("2025-12-31")).label(), "2026-W01");
    assert_eq!(IsoWeek::containing(d("2027-01-03")).label(), "2026-W53");
    // Last complete week: on Monday 2027-01-04 it is 2026-W53; on Sunday it is still W52.
    assert_eq!(IsoWeek::last_complete(d("2027-01-04")).label(), "2026-W53");
    assert_eq!(IsoWeek::last_complete(d("2027-01-03")).label(), "2026-W52");
    for bad in [
        "", "2026", "2026-W", "2026-W0", "2026-W00", "2026-W54", "W47", "x-W01", "2026-W4a",
    ] {
        assert!(IsoWeek::parse(bad).is_err(), "{bad:?} is refused");
    }
    assert_eq!(
        IsoWeek::parse("2026w07").expect("lenient").label(),
        "2026-W07"
    );
}

#[test]
fn weeks_start_at_local_midnight() {
    let berlin: Tz = "Europe/Berlin".parse().expect("zone");
    let w = IsoWeek::parse("2026-W48").expect("valid");
    assert_eq!(w.start(Tz::UTC), t("2026-11-23T00:00:00Z"));
    assert_eq!(w.start(berlin), t("2026-11-22T23:00:00Z"));
    assert_eq!(w.end(berlin), t("2026-11-29T23:00:00Z"));
}

fn m(
    started: &str,
    detected: Option<&str>,
    ack: Option<&str>,
    resolved: Option<&str>,
) -> Milestones {
    Milestones {
        started_at: t(started),
        detected_at: detected.map(t),
        acknowledged_at: ack.map(t),
        mitigated_at: None,
        resolved_at: resolved.map(t),
        exclude_from_metrics: false,
    }
}

#[test]
fn nearest_rank_picks_the_ceil_q_n_th_smallest() {
    let v = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
    assert_eq!(nearest_rank(&v, 0.5), Some(50)); // ⌈5⌉ = 5th
    assert_eq!(nearest_rank(&v, 0.9), Some(90)); // ⌈9⌉ = 9th
    assert_eq!(nearest_rank(&[7], 0.9), Some(7));
    assert_eq!(nearest_rank(&[1, 2, 3], 0.5), Some(2)); // ⌈1.5⌉ = 2nd
    assert_eq!(nearest_rank(&[], 0.5), None);
}

#[test]
fn mttx_leaves_out_excluded_incidents_and_missing_milestones_per_figure() {
    let base = "2026-11-23T10:00:00Z";
    let mut excluded = m(
        base,
        Some("2026-11-23T10:01:00Z"),
        None,
        Some("2026-11-24T10:00:00Z"),
    );
    excluded.exclude_from_metrics = true;
    let incidents = vec![
        // detect 5 min, ack 2 min, resolve 60 min
        m(
            base,
            Some("2026-11-23T10:05:00Z"),
            Some("2026-11-23T10:07:00Z"),
            Some("2026-11-23T11:00:00Z"),
        ),
        // detect 10 min, ack 1 min, not resolved
        m(
            base,
            Some("2026-11-23T10:10:00Z"),
            Some("2026-11-23T10:11:00Z"),
            None,
        ),
        // detect 1 min, no ack, resolve 30 min
        m(
            base,
            Some("2026-11-23T10:01:00Z"),
            None,
            Some("2026-11-23T10:30:00Z"),
        ),
        // never detected (no detect or ack figure), resolve 120 min
        m(
            base,
            None,
            Some("2026-11-23T10:20:00Z"),
            Some("2026-11-23T12:00:00Z"),
        ),
        excluded,
    ];
    let rows = mttx(&incidents, &[]);
    let get = |measure: Measure| {
        rows.iter()
            .find(|r| r.measure == measure)
            .expect("row")
            .this_week
    };
    // Detect: 60, 300, 600 s → median ⌈1.5⌉ = 2nd = 300; p90 ⌈2.7⌉ = 3rd = 600.
    assert_eq!(
        get(Measure::Detect),
        Figure {
            n: 3,
            median_secs: Some(300),
            p90_secs: Some(600)
        }
    );
    // Acknowledge: 120, 60 → sorted 60, 120 → median 1st = 60, p90 2nd = 120.
    assert_eq!(
        get(Measure::Acknowledge),
        Figure {
            n: 2,
            median_secs: Some(60),
            p90_secs: Some(120)
        }
    );
    assert_eq!(
        get(Measure::Mitigate),
        Figure {
            n: 0,
            median_secs: None,
            p90_secs: None
        }
    );
    // Resolve: 1800, 3600, 7200 → median 3600, p90 7200 (the excluded day-long one is left out).
    assert_eq!(
        get(Measure::Resolve),
        Figure {
            n: 3,
            median_secs: Some(3600),
            p90_secs: Some(7200)
        }
    );
    assert_eq!(rows[0].previous_4_weeks.n, 0);
}

fn group(category: &str, service: Option<&str>, count_30: usize, count: usize) -> RecurringGroup {
    RecurringGroup {
        category: category.into(),
        service: service.map(str::to_owned),
        count,
        count_30,
        incidents: Vec::new(),
        open_action_items: Vec::new(),
    }
}

#[test]
fn recurring_groups_rank_by_the_last_30_days_then_the_window() {
    let mut groups = vec![
        group("deploy", None, 1, 9),
        group("capacity", None, 3, 3),
        group("data", None, 1, 4),
        group("config change", Some("checkout"), 3, 3),
    ];
    rank_groups(&mut groups);
    let got: Vec<String> = groups.iter().map(RecurringGroup::label).collect();
    assert_eq!(
        got,
        [
            "capacity",
            "checkout · root cause config change",
            "deploy",
            "data"
        ]
    );
}

#[test]
fn week_durations_merge_into_the_same_figures_as_the_incidents_they_came_from() {
    // Week 1: detect 60 s and 600 s; one excluded incident (ignored), one with no milestones.
    let mut w1 = WeekDurations::default();
    w1.add(false, [Some(60), Some(30), None, Some(3600)]);
    w1.add(false, [Some(600), None, None, None]);
    w1.add(true, [Some(1), Some(1), Some(1), Some(1)]);
    w1.add(false, [None, None, None, None]);
    // Week 2: detect 120 s; a negative duration (bad data) counts as zero.
    let mut w2 = WeekDurations::default();
    w2.add(false, [Some(120), Some(-5), Some(900), Some(7200)]);
    assert_eq!((w1.incidents, w2.incidents), (4, 1));
    // Detect over both weeks: 60, 120, 600 → median (⌈1.5⌉ = 2nd) 120, p90 (⌈2.7⌉ = 3rd) 600.
    assert_eq!(
        figure_over(&[&w1, &w2], Measure::Detect),
        Figure {
            n: 3,
            median_secs: Some(120),
            p90_secs: Some(600)
        }
    );
    assert_eq!(
        figure_over(&[&w1, &w2], Measure::Acknowledge).median_secs,
        Some(0)
    );
    assert_eq!(figure_over(&[&w1], Measure::Mitigate), Figure::default());
    // The chart point: every incident counts, the median resolve is the 1st of [3600].
    let point = week_point("2026-W47".into(), &w1);
    assert_eq!((point.incidents, point.mttr_median_secs), (4, Some(3600)));
}
