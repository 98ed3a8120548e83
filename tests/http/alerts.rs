//! Snapshots on incidents, alert rules firing and resolving, and the pages that show them.

use axum::http::{Method, StatusCode};
use hindsight::auth::{Role, Scope};
use serde_json::{Value, json};

use crate::common::{TestApp, TestUser};

struct Setup {
    app: TestApp,
    admin: TestUser,
    write: String,
    ingest: String,
}

async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    let admin = app.user(Role::Admin).await;
    let write = app.token(&admin, Scope::Write).await;
    let ingest = app.token(&admin, Scope::Ingest).await;
    Setup {
        app,
        admin,
        write,
        ingest,
    }
}

/// Pushes `n` events of `latency_ms` for `service`, every `error_every`-th one a 500.
async fn push(s: &Setup, service: &str, n: usize, latency_ms: f64, error_every: usize) {
    let events: Vec<Value> = (1..=n)
        .map(|i| json!({"latency_ms": latency_ms, "status_code": if error_every > 0 && i % error_every == 0 { 500 } else { 200 }}))
        .collect();
    s.app
        .api(
            Method::POST,
            "/api/v1/metrics/events",
            Some(&s.ingest),
            Some(json!({"service": service, "events": events})),
        )
        .await
        .assert_status(StatusCode::ACCEPTED);
}

async fn tick(s: &Setup) -> Vec<hindsight::alerts::Outcome> {
    let state = &s.app.state;
    state
        .alert_evaluator
        .tick(&state.db, &state.signals, hindsight::signals::now_ms())
        .await
        .expect("tick")
}

#[tokio::test]
async fn declaring_an_incident_for_an_observed_service_freezes_its_window() {
    let s = setup().await;
    push(&s, "checkout", 200, 40.0, 10).await;
    let incident = s
        .app
        .declare(&s.write, json!({"title": "Checkout slow", "severity": "sev2", "service": "checkout", "category": "capacity"}))
        .await;
    let body = s
        .app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&s.write), None)
        .await
        .json();
    let snapshots = body["snapshots"].as_array().expect("snapshots");
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0]["trigger"], "incident_open");
    assert_eq!(snapshots[0]["count"], 200);
    assert_eq!(snapshots[0]["errors"], 20);
    assert_eq!(snapshots[0]["latency_ms"]["p99"], 40.0);
    assert!(
        snapshots[0]["series"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(incident["number"], "INC-1");

    // The incident page shows the figures and a chart.
    let page = s.app.get("/incidents/INC-1", Some(&s.admin)).await;
    assert!(page.body.contains("Metrics snapshots"));
    assert!(page.body.contains("<svg class=\"chart\""));
    assert!(page.body.contains("20 (10.00%)"));

    // No data, no snapshot: declaring for an unobserved service adds none.
    s.app.service("search", "").await;
    s.app.declare(&s.write, json!({"title": "Search down", "severity": "sev3", "service": "search", "category": "data"})).await;
    let other = s
        .app
        .api(Method::GET, "/api/v1/incidents/INC-2", Some(&s.write), None)
        .await
        .json();
    assert_eq!(other["snapshots"], json!([]));
}

#[tokio::test]
async fn snapshots_are_taken_on_demand_and_never_change() {
    let s = setup().await;
    s.app.declare(&s.write, json!({"title": "Payments errors", "severity": "sev2", "service": "checkout", "category": "dependency"})).await;
    let none = s
        .app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/snapshots",
            Some(&s.write),
            Some(json!({"service": "payments"})),
        )
        .await;
    none.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        none.json()["error"]["fields"]["service"]
            .as_str()
            .is_some_and(|m| m.contains("no metrics"))
    );

    push(&s, "payments", 100, 12.0, 0).await;
    let taken = s
        .app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/snapshots",
            Some(&s.write),
            Some(json!({"service": "payments"})),
        )
        .await;
    taken.assert_status(StatusCode::CREATED);
    let snapshot = taken.json();
    let id = snapshot["id"].as_str().expect("id").to_owned();
    assert_eq!(snapshot["trigger"], "manual");
    assert_eq!(snapshot["count"], 100);

    // The window moves on; the snapshot does not.
    push(&s, "payments", 100, 900.0, 1).await;
    let again = s
        .app
        .api(
            Method::GET,
            &format!("/api/v1/snapshots/{id}"),
            Some(&s.write),
            None,
        )
        .await
        .json();
    assert_eq!(again["count"], 100);
    assert_eq!(again["latency_ms"]["max"], 12.0);
    // Not through the API (no such route) and not even directly in the database.
    let patch = s
        .app
        .api(
            Method::PATCH,
            &format!("/api/v1/snapshots/{id}"),
            Some(&s.write),
            Some(json!({"count": 1})),
        )
        .await;
    assert_eq!(patch.status, StatusCode::METHOD_NOT_ALLOWED);
    let mut tx = s.app.db.begin_write().await.expect("tx");
    let update = sqlx::query("UPDATE metric_snapshots SET count = 1 WHERE id = ?")
        .bind(&id)
        .execute(&mut *tx)
        .await;
    let message = update.expect_err("frozen").to_string();
    assert!(message.contains("frozen"), "{message}");
    drop(tx);

    // The button on the incident page does the same, and says when there is nothing to freeze.
    let button = s
        .app
        .post_form(
            "/incidents/INC-1/snapshots",
            Some(&s.admin),
            &[("service", "payments")],
        )
        .await;
    button.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(button.location(), "/incidents/INC-1#snapshots");
    let nothing = s
        .app
        .post_form(
            "/incidents/INC-1/snapshots",
            Some(&s.admin),
            &[("service", "ghost")],
        )
        .await;
    assert!(
        nothing
            .set_cookie("hindsight_flash")
            .is_some_and(|c| c.contains("error"))
    );
    let timeline = s
        .app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&s.write), None)
        .await
        .json()["timeline"]
        .clone();
    let kinds: Vec<&str> = timeline
        .as_array()
        .expect("t")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "snapshot").count(),
        2,
        "each manual snapshot is on the timeline"
    );
}

#[tokio::test]
async fn a_page_tier_rule_fires_once_opens_an_incident_with_a_snapshot_and_resolves() {
    let s = setup().await;
    let rule = s
        .app
        .api(
            Method::POST,
            "/api/v1/alert-rules",
            Some(&s.write),
            Some(json!({"service": "checkout", "signal": "p99", "threshold": 250.0, "severity": "page", "min_samples": 10, "for_secs": 0, "page_severity": "sev1"})),
        )
        .await;
    rule.assert_status(StatusCode::CREATED);
    let rule = rule.json();
    assert_eq!(rule["name"], "checkout p99 latency above 250 ms");

    push(&s, "checkout", 100, 100.0, 0).await;
    assert!(tick(&s).await.is_empty(), "p99 100 ms is under 250 ms");
    push(&s, "checkout", 50, 900.0, 0).await;
    let outcomes = tick(&s).await;
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].incident, Some(1));
    assert!(
        tick(&s).await.is_empty(),
        "still breaching: no second firing"
    );

    let incident = s
        .app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&s.write), None)
        .await
        .json();
    assert_eq!(incident["severity"], "sev1");
    assert_eq!(incident["service"], "checkout");
    assert_eq!(
        incident["acknowledged_at"],
        Value::Null,
        "nobody has acknowledged an alert yet"
    );
    assert_eq!(incident["snapshots"][0]["trigger"], "alert");
    assert_eq!(incident["snapshots"][0]["count"], 150);
    let timeline = incident["timeline"].as_array().expect("timeline");
    assert!(timeline.iter().any(|e| {
        e["kind"] == "alert"
            && e["body"]
                .as_str()
                .is_some_and(|b| b.contains("Alert fired"))
    }));

    let alerts = s
        .app
        .api(Method::GET, "/api/v1/alerts", Some(&s.write), None)
        .await
        .json();
    assert_eq!(alerts["firing"].as_array().map(Vec::len), Some(1));
    let page = s.app.get("/alerts", Some(&s.admin)).await;
    page.assert_status(StatusCode::OK);
    assert!(page.body.contains("INC-1") && page.body.contains("checkout p99 latency above 250 ms"));

    // Raising the threshold ends the breach: the alert resolves and says so on the incident.
    let id = rule["id"].as_str().expect("id");
    s.app
        .post_form(
            &format!("/alerts/rules/{id}"),
            Some(&s.admin),
            &[
                ("name", "checkout p99"),
                ("service", "checkout"),
                ("signal", "p99"),
                ("threshold", "5000"),
                ("min_samples", "10"),
                ("for_secs", "0"),
                ("tier", "page"),
                ("page_severity", "sev1"),
                ("enabled", "on"),
                ("version", "1"),
            ],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let outcomes = tick(&s).await;
    assert_eq!(outcomes.len(), 1);
    assert_eq!(
        outcomes[0].transition,
        hindsight::alerts::Transition::Resolve
    );
    let alerts = s
        .app
        .api(Method::GET, "/api/v1/alerts", Some(&s.write), None)
        .await
        .json();
    assert_eq!(alerts["firing"], json!([]));
    assert!(alerts["history"][0]["ended_at"].is_string());
    let timeline = s
        .app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&s.write), None)
        .await
        .json()["timeline"]
        .clone();
    assert!(timeline.as_array().expect("t").iter().any(|e| {
        e["body"]
            .as_str()
            .is_some_and(|b| b.contains("Alert resolved"))
    }));
}

#[tokio::test]
async fn ticket_and_log_rules_record_firings_without_incidents() {
    let s = setup().await;
    for (tier, threshold) in [("ticket", 0.05), ("log", 0.01)] {
        s.app
            .api(Method::POST, "/api/v1/alert-rules", Some(&s.write), Some(json!({"service": "checkout", "signal": "error_rate", "threshold": threshold, "tier": tier, "min_samples": 10, "for_secs": 0})))
            .await
            .assert_status(StatusCode::CREATED);
    }
    push(&s, "checkout", 100, 10.0, 10).await; // 10% errors
    let outcomes = tick(&s).await;
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes.iter().all(|o| o.incident.is_none()));
    assert_eq!(s.app.count("incidents").await, 0);
    let page = s.app.get("/alerts", Some(&s.admin)).await;
    assert!(page.body.contains("Firings per week"));
    assert!(page.body.contains("error rate above 5.00%"));
}

#[tokio::test]
async fn a_for_duration_keeps_short_blips_from_firing() {
    let s = setup().await;
    s.app
        .api(Method::POST, "/api/v1/alert-rules", Some(&s.write), Some(json!({"service": "checkout", "signal": "avg", "threshold": 50.0, "tier": "ticket", "min_samples": 5, "for_secs": 300})))
        .await
        .assert_status(StatusCode::CREATED);
    push(&s, "checkout", 20, 500.0, 0).await;
    assert!(
        tick(&s).await.is_empty(),
        "breaching, but not yet for 300 s"
    );
    assert_eq!(s.app.count("alert_events").await, 0);
}

#[tokio::test]
async fn rule_forms_and_api_refuse_bad_rules_and_non_admins() {
    let s = setup().await;
    let bad = s
        .app
        .post_form(
            "/alerts/rules",
            Some(&s.admin),
            &[
                ("service", "checkout"),
                ("signal", "p99"),
                ("threshold", "fast"),
                ("tier", "page"),
                ("for_secs", "-3"),
            ],
        )
        .await;
    bad.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("must be a number") && bad.body.contains("0 to 86400"));
    assert!(bad.body.contains("value=\"fast\""), "typed values are kept");
    let api = s
        .app
        .api(
            Method::POST,
            "/api/v1/alert-rules",
            Some(&s.write),
            Some(json!({"service": "checkout", "signal": "p42", "threshold": 1, "tier": "page"})),
        )
        .await;
    api.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(api.json()["error"]["fields"]["signal"].is_string());
    let responder = s.app.user(Role::Responder).await;
    s.app
        .post_form(
            "/alerts/rules",
            Some(&responder),
            &[
                ("service", "checkout"),
                ("signal", "p99"),
                ("threshold", "1"),
                ("tier", "log"),
            ],
        )
        .await
        .assert_status(StatusCode::FORBIDDEN);
    let responder_token = s.app.token(&responder, Scope::Write).await;
    s.app
        .api(
            Method::POST,
            "/api/v1/alert-rules",
            Some(&responder_token),
            Some(json!({"service": "checkout", "signal": "p99", "threshold": 1, "tier": "log"})),
        )
        .await
        .assert_status(StatusCode::FORBIDDEN);
    // Only the default self-alert on write failures (migration 0016).
    assert_eq!(s.app.count("alert_rules").await, 1);
    s.app
        .get("/alerts/rules", Some(&responder))
        .await
        .assert_status(StatusCode::OK);
}

/// The description says null means "the default" for every optional rule field; the API does
/// what it says (schemathesis sends nulls).
#[tokio::test]
async fn null_optional_rule_fields_take_their_defaults() {
    let s = setup().await;
    let created = s
        .app
        .api(
            Method::POST,
            "/api/v1/alert-rules",
            Some(&s.write),
            Some(json!({"service": "checkout", "signal": "avg", "threshold": 80.0, "severity": "ticket",
                        "name": null, "page_severity": null, "enabled": null, "min_samples": null, "for_secs": null})),
        )
        .await;
    created.assert_status(StatusCode::CREATED);
    let rule = created.json();
    assert_eq!(rule["page_severity"], "sev2", "{rule}");
    assert_eq!(rule["enabled"], true, "{rule}");
    assert_eq!(rule["min_samples"], 20, "{rule}");
    assert_eq!(rule["for_secs"], 60, "{rule}");
    assert!(
        rule["name"]
            .as_str()
            .is_some_and(|n| n.contains("checkout")),
        "{rule}"
    );
}

/// A storm's alert group can hold hundreds of firing alerts: the service page names the 20
/// newest, newest first, and counts them all.
#[tokio::test]
async fn a_service_page_names_the_newest_firing_alerts_and_counts_the_rest() {
    let s = setup().await;
    push(&s, "checkout", 5, 20.0, 0).await;
    let mut tx = s.app.db.begin_write().await.expect("tx");
    for n in 1..=25 {
        sqlx::query(
            "INSERT INTO alert_events (id, source, name, service, tier, started_at)
             VALUES (?, 'alertmanager', ?, 'checkout', 'page', ?)",
        )
        .bind(format!("alert-{n}"))
        .bind(format!("CheckoutErrors{n}"))
        .bind(format!("2026-11-30T10:{n:02}:00Z"))
        .execute(&mut *tx)
        .await
        .expect("alert");
    }
    // An ended one is not firing.
    sqlx::query(
        "INSERT INTO alert_events (id, source, name, service, tier, started_at, ended_at)
         VALUES ('old', 'alertmanager', 'CheckoutEnded', 'checkout', 'page',
                 '2026-11-30T09:00:00Z', '2026-11-30T09:30:00Z')",
    )
    .execute(&mut *tx)
    .await
    .expect("ended alert");
    tx.commit().await.expect("commit");

    let live = s.app.get("/services/checkout/live", Some(&s.admin)).await;
    live.assert_status(StatusCode::OK);
    let html = &live.body;
    assert!(
        html.contains("<strong>25 alerts firing.</strong> The 20 newest"),
        "{html}"
    );
    assert!(html.contains("href=\"/alerts\""));
    let at = |n: i32| html.find(&format!("CheckoutErrors{n} firing"));
    for n in 6..=24 {
        assert!(
            at(n + 1) < at(n) && at(n + 1).is_some(),
            "newest first: {n}"
        );
    }
    for n in 1..=5 {
        assert!(at(n).is_none(), "CheckoutErrors{n} is past the 20 named");
    }
    assert!(!html.contains("CheckoutEnded"));
}

#[tokio::test]
async fn service_pages_show_live_figures() {
    let s = setup().await;
    push(&s, "checkout", 50, 20.0, 0).await;
    let list = s.app.get("/services", Some(&s.admin)).await;
    list.assert_status(StatusCode::OK);
    assert!(
        list.body.contains("href=\"/services/checkout\"")
            && list.body.contains("href=\"/services/hindsight\"")
    );
    let page = s.app.get("/services/checkout", Some(&s.admin)).await;
    page.assert_status(StatusCode::OK);
    assert!(
        page.body
            .contains("data-live-url=\"/services/checkout/live\"")
    );
    assert!(page.body.contains("last N events") && page.body.contains("<svg class=\"chart\""));
    let live = s.app.get("/services/checkout/live", Some(&s.admin)).await;
    live.assert_status(StatusCode::OK);
    assert!(!live.body.contains("<html"), "just the fragment");
    assert!(live.body.contains(">50<"));
    s.app
        .get("/services/ghost", Some(&s.admin))
        .await
        .assert_status(StatusCode::NOT_FOUND);
    assert_eq!(
        s.app.get("/services", None).await.status,
        StatusCode::SEE_OTHER
    );
}
