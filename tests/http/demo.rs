//! The sample data of `hindsight demo`: alert rules with history, snapshots on incidents,
//! post-mortems that match their incidents, and content in last week's review.

use axum::http::{Method, StatusCode};
use hindsight::auth::{Role, Scope};

use crate::common::TestApp;

#[tokio::test]
async fn the_demo_has_snapshots_alert_history_matching_postmortems_and_last_week() {
    let app = TestApp::spawn().await;
    hindsight::demo::load_sample(&app.db).await.expect("loads");
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Read).await;

    // Every sample incident carries the window its service's collector held when it was
    // detected, and the figures agree with the frozen report.
    assert_eq!(app.count("metric_snapshots").await, 40);
    let (count, errors, p50, p99): (i64, i64, f64, f64) = sqlx::query_as(
        "SELECT s.count, s.errors, s.latency_p50, s.latency_p99 FROM metric_snapshots s
         JOIN incidents i ON i.id = s.incident_id WHERE i.number = 1",
    )
    .fetch_one(&app.db.reader)
    .await
    .expect("snapshot of INC-1");
    assert_eq!(count, 6_000);
    // Checkout's bad deploy: 30% errors over the last two of five minutes.
    assert!((600..1_000).contains(&errors), "{errors} errors");
    assert!(p50 > 40.0 && p99 > p50, "p50 {p50} p99 {p99}");
    let page = app.get("/incidents/INC-1", Some(&admin)).await;
    page.assert_status(StatusCode::OK);
    assert!(page.body.contains("Metrics snapshot of"), "snapshot noted");

    // Rules exist, page-tier firings opened incidents, ticket and log rules made noise.
    // (Besides the self-alert on write failures that every installation has.)
    let rules: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM alert_rules WHERE id <> 'hindsight-write-failures'",
    )
    .fetch_one(&app.db.reader)
    .await
    .expect("count");
    assert_eq!(rules, 10);
    let linked: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM alert_events WHERE incident_id IS NOT NULL")
            .fetch_one(&app.db.reader)
            .await
            .expect("count");
    assert!(linked >= 20, "{linked} page firings linked to incidents");
    let unlinked: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM alert_events WHERE incident_id IS NULL")
            .fetch_one(&app.db.reader)
            .await
            .expect("count");
    assert!(unlinked >= 24, "{unlinked} ticket and log firings");
    let alerts = app.get("/alerts", Some(&admin)).await;
    alerts.assert_status(StatusCode::OK);
    assert!(alerts.body.contains("Checkout errors"));
    assert!(alerts.body.contains("Notifications slow"));

    // The post-mortem of the checkout story explains that story and its items follow from it.
    let cause: String = sqlx::query_scalar(
        "SELECT s.body FROM postmortem_sections s JOIN postmortems p ON p.id = s.postmortem_id
         JOIN incidents i ON i.id = p.incident_id WHERE i.number = 1 AND s.key = 'root_cause'",
    )
    .fetch_one(&app.db.reader)
    .await
    .expect("post-mortem of INC-1");
    assert!(cause.contains("pool size"), "{cause}");
    // The stale search index was noticed by a colleague, not an alert, and its post-mortem
    // says so.
    let (method, detection): (String, String) = sqlx::query_as(
        "SELECT p.detection_method, s.body FROM postmortems p
         JOIN postmortem_sections s ON s.postmortem_id = p.id AND s.key = 'detection'
         JOIN incidents i ON i.id = p.incident_id WHERE i.number = 3",
    )
    .fetch_one(&app.db.reader)
    .await
    .expect("post-mortem of INC-3");
    assert_eq!(method, "employee");
    assert!(detection.contains("merchandiser"), "{detection}");
    let items: Vec<String> = sqlx::query_scalar(
        "SELECT a.title FROM action_items a JOIN incidents i ON i.id = a.incident_id
         WHERE i.number = 1 ORDER BY a.title",
    )
    .fetch_all(&app.db.reader)
    .await
    .expect("items");
    assert_eq!(
        items,
        [
            "Alert on connection pool saturation",
            "Give the checkout canary real traffic before promotion"
        ]
    );

    // Last week's review (the default week) has incidents, whatever today is.
    let review = app
        .api(Method::GET, "/api/v1/reports/weekly", Some(&token), None)
        .await;
    review.assert_status(StatusCode::OK);
    let incidents = review.json()["incidents"].as_array().map_or(0, Vec::len);
    assert!(incidents >= 1, "last week's review is empty");

    // A second load changes nothing.
    hindsight::demo::load_sample(&app.db)
        .await
        .expect("loads again");
    assert_eq!(app.count("metric_snapshots").await, 40);
    assert_eq!(app.count("alert_rules").await, rules + 1);
}

#[tokio::test]
async fn demo_traffic_pages_on_the_checkout_spike_with_a_snapshot_and_stops_when_told() {
    use hindsight::alerts::Transition;
    use hindsight::demo_traffic::{Plan, record};

    let app = TestApp::spawn().await;
    hindsight::demo::load_sample(&app.db).await.expect("loads");
    let state = &app.state;
    let plan = Plan::default();
    let spike_from = plan.spike_after.as_secs();
    let spike_to = spike_from + plan.spike_for.as_secs();
    // A fast clock: the spike's seconds are recorded at once, stamped as if they had passed
    // and ending now, with the alert loop's tick every 5 simulated seconds.
    let start_ms = hindsight::signals::now_ms() - spike_to * 1000;
    let checkout_slow: String =
        sqlx::query_scalar("SELECT id FROM alert_rules WHERE name = 'Checkout slow'")
            .fetch_one(&app.db.reader)
            .await
            .expect("demo rule");
    let mut fired = None;
    for s in 0..spike_to {
        record(&state.signals, &plan, s, start_ms);
        if s % 5 != 4 {
            continue;
        }
        let outcomes = state
            .alert_evaluator
            .tick(&state.db, &state.signals, start_ms + (s + 1) * 1000)
            .await
            .expect("tick");
        let fires: Vec<_> = outcomes
            .iter()
            .filter(|o| o.transition == Transition::Fire)
            .collect();
        if let Some(fire) = fires.first() {
            assert_eq!(fires.len(), 1, "only the spike pages: {fires:?}");
            assert_eq!(fire.rule_id, checkout_slow);
            fired = Some((s, fire.incident.expect("a page opens an incident")));
            break;
        }
    }
    let (at, number) = fired.expect("the spike fired the page rule");
    // Breaching from the spike's start, it fires once it has held for the rule's minute.
    assert!(
        (spike_from + 60..spike_from + 80).contains(&at),
        "fired {at} s after start"
    );
    let (trigger, p99): (String, f64) = sqlx::query_as(
        "SELECT s.trigger, s.latency_p99 FROM metric_snapshots s
         JOIN incidents i ON i.id = s.incident_id WHERE i.number = ? AND s.service = 'checkout'",
    )
    .bind(number)
    .fetch_one(&app.db.reader)
    .await
    .expect("snapshot on the paged incident");
    assert_eq!(trigger, "alert");
    assert!(p99 > 1_500.0, "the snapshot shows the spike: p99 {p99}");
    // The live figures read as figures: saturation to two decimals, not 0.43599999999999994.
    let admin = app.user(Role::Admin).await;
    let live = app.get("/services/checkout/live", Some(&admin)).await;
    live.assert_status(StatusCode::OK);
    let now = live
        .body
        .split("Saturation now ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .expect("saturation shown");
    assert_eq!(now.len(), 4, "two decimals: {now}");

    // The task itself feeds the collector every second and stops on the shutdown signal.
    let fresh = TestApp::spawn().await;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(hindsight::demo_traffic::run(
        fresh.state.signals.clone(),
        plan,
        stop,
    ));
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    assert!(
        fresh
            .state
            .signals
            .registry
            .services()
            .contains(&"checkout".to_owned())
    );
    stop_tx.send(true).expect("send");
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("stops promptly")
        .expect("no panic");
}
