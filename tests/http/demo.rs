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
