//! Alertmanager and Grafana webhook receivers, driven by recorded payloads.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use hindsight::auth::{Role, Scope};
use serde_json::{Value, json};

use crate::common::{HOST, TestApp, TestResponse};

const FIRING: &str = include_str!("fixtures/alertmanager_firing.json");
const SECOND: &str = include_str!("fixtures/alertmanager_second_firing.json");
const RESOLVED: &str = include_str!("fixtures/alertmanager_resolved.json");
const GRAFANA: &str = include_str!("fixtures/grafana_firing.json");

struct Setup {
    app: TestApp,
    ingest: String,
    read: String,
}

async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let ingest = app.token(&admin, Scope::Ingest).await;
    let read = app.token(&admin, Scope::Read).await;
    Setup { app, ingest, read }
}

async fn deliver(s: &Setup, receiver: &str, token: &str, body: &str) -> TestResponse {
    s.app
        .send(
            Request::post(format!("/api/v1/integrations/{receiver}"))
                .header(header::HOST, HOST)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_owned()))
                .expect("request"),
        )
        .await
}

async fn incident(s: &Setup, key: &str) -> Value {
    s.app
        .api(
            Method::GET,
            &format!("/api/v1/incidents/{key}"),
            Some(&s.read),
            None,
        )
        .await
        .json()
}

fn bodies(incident: &Value) -> Vec<String> {
    incident["timeline"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|e| e["body"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_firing_group_opens_an_incident_and_later_deliveries_append_to_it() {
    let s = setup().await;
    let first = deliver(&s, "alertmanager", &s.ingest, FIRING).await;
    first.assert_status(StatusCode::OK);
    assert_eq!(
        first.json(),
        json!({"incident": "INC-1", "created": true, "new_alerts": 1, "resolved": 0, "duplicates": 0})
    );
    let inc = incident(&s, "INC-1").await;
    assert_eq!(inc["title"], "Checkout p99 above 2 s");
    assert_eq!(inc["severity"], "sev1", "severity=critical maps to sev1");
    assert_eq!(inc["service"], "checkout", "added to the service list");
    assert_eq!(inc["started_at"], "2026-11-20T10:00:00Z");
    assert_eq!(
        inc["detected_at"], "2026-11-20T10:00:00Z",
        "the alert detected it"
    );
    assert_eq!(inc["acknowledged_at"], Value::Null);
    let firing: Vec<String> = bodies(&inc)
        .into_iter()
        .filter(|b| b.starts_with("**Firing**"))
        .collect();
    assert_eq!(firing.len(), 1);
    assert!(
        firing[0].contains(
            "[source](http://prometheus.internal:9090/graph?g0.expr=histogram_quantile%280.99"
        ),
        "{}",
        firing[0]
    );

    // Alertmanager retries the same delivery: nothing doubles.
    let retry = deliver(&s, "alertmanager", &s.ingest, FIRING).await;
    assert_eq!(retry.json()["duplicates"], 1);
    assert_eq!(retry.json()["created"], false);

    // The group grows: appended to the same incident, the known alert is not repeated.
    let second = deliver(&s, "alertmanager", &s.ingest, SECOND).await;
    assert_eq!(
        second.json(),
        json!({"incident": "INC-1", "created": false, "new_alerts": 1, "resolved": 0, "duplicates": 1})
    );
    assert_eq!(s.app.count("incidents").await, 1);
    let inc = incident(&s, "INC-1").await;
    assert_eq!(
        bodies(&inc)
            .iter()
            .filter(|b| b.starts_with("**Firing**"))
            .count(),
        2
    );
}

#[tokio::test]
async fn resolving_every_alert_of_the_group_moves_the_incident_to_monitoring() {
    let s = setup().await;
    deliver(&s, "alertmanager", &s.ingest, SECOND)
        .await
        .assert_status(StatusCode::OK);
    let resolved = deliver(&s, "alertmanager", &s.ingest, RESOLVED).await;
    resolved.assert_status(StatusCode::OK);
    assert_eq!(resolved.json()["resolved"], 2);
    let inc = incident(&s, "INC-1").await;
    assert_eq!(inc["status"], "monitoring");
    let texts = bodies(&inc);
    assert_eq!(
        texts
            .iter()
            .filter(|b| b.starts_with("**Resolved**"))
            .count(),
        2
    );
    assert!(
        texts
            .iter()
            .any(|b| b.contains("All alerts of this group are resolved"))
    );
    // A retried resolution changes nothing.
    let again = deliver(&s, "alertmanager", &s.ingest, RESOLVED).await;
    assert_eq!(again.json()["duplicates"], 2);
    assert_eq!(bodies(&incident(&s, "INC-1").await).len(), texts.len());

    // Firing again after the incident was resolved opens a new one.
    let mut new_start: Value = serde_json::from_str(FIRING).expect("fixture");
    new_start["alerts"][0]["startsAt"] = json!("2026-11-22T09:00:00Z");
    let mut tx = s.app.db.begin_write().await.expect("tx");
    sqlx::query("UPDATE incidents SET status = 'resolved' WHERE number = 1")
        .execute(&mut *tx)
        .await
        .expect("resolve");
    tx.commit().await.expect("commit");
    let reopened = deliver(&s, "alertmanager", &s.ingest, &new_start.to_string()).await;
    assert_eq!(reopened.json()["incident"], "INC-2");
}

#[tokio::test]
async fn grafana_payloads_open_incidents_with_their_links_and_redact_secrets() {
    let s = setup().await;
    let response = deliver(&s, "grafana", &s.ingest, GRAFANA).await;
    response.assert_status(StatusCode::OK);
    assert_eq!(response.json()["created"], true);
    let inc = incident(&s, "INC-1").await;
    assert_eq!(inc["title"], "Payments error rate above 5%");
    assert_eq!(inc["severity"], "sev3", "warning maps to sev3");
    assert_eq!(inc["service"], "payments");
    let texts = bodies(&inc).join("\n");
    assert!(texts.contains("[dashboard](http://grafana.internal:3000/d/payments)"));
    assert!(texts.contains("[panel](http://grafana.internal:3000/d/payments?viewPanel=4)"));
    let everything = serde_json::to_string(&inc).expect("json");
    assert!(
        !everything.contains("abc123supersecret"),
        "secrets never stored"
    );
    // Extra and missing optional fields are tolerated.
    let mut minimal: Value = serde_json::from_str(GRAFANA).expect("fixture");
    for field in [
        "orgId",
        "title",
        "message",
        "state",
        "externalURL",
        "commonAnnotations",
        "groupLabels",
    ] {
        minimal.as_object_mut().expect("object").remove(field);
    }
    minimal["groupKey"] = json!("another-group");
    minimal["alerts"][0]["fingerprint"] = json!("f00dfeed00000002");
    minimal["newGrafanaField"] = json!({"anything": true});
    deliver(&s, "grafana", &s.ingest, &minimal.to_string())
        .await
        .assert_status(StatusCode::OK);
    assert_eq!(s.app.count("incidents").await, 2);
}

#[tokio::test]
async fn bad_deliveries_get_4xx_naming_the_problem_and_change_nothing() {
    let s = setup().await;
    let malformed = deliver(&s, "alertmanager", &s.ingest, "{\"groupKey\": ").await;
    malformed.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(malformed.json()["error"]["code"], "bad_request");

    let wrong = deliver(&s, "alertmanager", "hs_wrong", FIRING).await;
    wrong.assert_status(StatusCode::UNAUTHORIZED);
    let read_token = deliver(&s, "alertmanager", &s.read, FIRING).await;
    read_token.assert_status(StatusCode::FORBIDDEN);

    for missing in ["groupKey", "alerts", "status"] {
        let mut body: Value = serde_json::from_str(FIRING).expect("fixture");
        body.as_object_mut().expect("object").remove(missing);
        let response = deliver(&s, "alertmanager", &s.ingest, &body.to_string()).await;
        response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            response.json()["error"]["fields"][missing].is_string(),
            "{missing}: {}",
            response.body
        );
    }
    let mut bad_time: Value = serde_json::from_str(FIRING).expect("fixture");
    bad_time["alerts"][0]["startsAt"] = json!("last tuesday");
    let response = deliver(&s, "alertmanager", &s.ingest, &bad_time.to_string()).await;
    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.json()["error"]["fields"]["alerts[0].startsAt"].is_string());

    let big = TestApp::spawn_with(&[("HINDSIGHT_MAX_BODY_BYTES", "4096")]).await;
    let admin = big.user(Role::Admin).await;
    let token = big.token(&admin, Scope::Ingest).await;
    let mut huge: Value = serde_json::from_str(FIRING).expect("fixture");
    huge["commonAnnotations"]["description"] = json!("x".repeat(10_000));
    let response = big
        .send(
            Request::post("/api/v1/integrations/alertmanager")
                .header(header::HOST, HOST)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(huge.to_string()))
                .expect("request"),
        )
        .await;
    response.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(s.app.count("incidents").await, 0);
    assert_eq!(big.count("incidents").await, 0);
}

#[tokio::test]
async fn labels_cannot_inject_markup_or_links() {
    let s = setup().await;
    let mut body: Value = serde_json::from_str(FIRING).expect("fixture");
    body["alerts"][0]["labels"]["alertname"] =
        json!("<script>alert(1)</script>[x](javascript:alert(2))");
    body["alerts"][0]["generatorURL"] = json!("javascript:alert(3)");
    body["commonAnnotations"]["summary"] = json!("<img src=x onerror=alert(4)>");
    deliver(&s, "alertmanager", &s.ingest, &body.to_string())
        .await
        .assert_status(StatusCode::OK);
    let admin = s.app.user(Role::Admin).await;
    let page = s.app.get("/incidents/INC-1", Some(&admin)).await;
    let html = page.body.to_lowercase();
    // The text may show up (escaped, as text); it must never become markup or a link.
    for needle in ["<script>alert", "href=\"javascript", "<img src=x"] {
        assert!(!html.contains(needle), "{needle} in the page");
    }
    assert!(
        page.body.contains("alert(1)"),
        "the label is still shown, as text"
    );
}

#[tokio::test]
async fn alert_fields_and_names_cannot_plant_a_link_in_the_incident() {
    let s = setup().await;
    let mut payload: Value = serde_json::from_str(FIRING).expect("fixture");
    // A group key that closes its code span with a backtick and a blank line, a service label
    // and an alert name written as links.
    payload["groupKey"] =
        json!("{}:{alertname=\"x\"}`\n\n[Reset your password](https://evil.example/a)\n\n`");
    payload["commonLabels"]["service"] = json!("[pay](https://evil.example/b)");
    payload["alerts"][0]["labels"]["service"] = json!("[pay](https://evil.example/b)");
    payload["alerts"][0]["labels"]["alertname"] = json!("<https://evil.example/c>");
    deliver(&s, "alertmanager", &s.ingest, &payload.to_string())
        .await
        .assert_status(StatusCode::OK);

    // A person whose display name is a link declares one too.
    let admin = s.app.user(Role::Admin).await;
    sqlx::query("UPDATE users SET name = '[Ada](https://evil.example/d)' WHERE id = ?")
        .bind(&admin.id)
        .execute(&s.app.db.writer)
        .await
        .expect("rename");
    let token = s.app.token(&admin, Scope::Write).await;
    s.app
        .declare(
            &token,
            json!({"title": "Checkout down", "severity": "sev2", "service": "[pay](https://evil.example/b)", "category": "deploy"}),
        )
        .await;

    for key in ["INC-1", "INC-2"] {
        let page = s.app.get(&format!("/incidents/{key}"), Some(&admin)).await;
        page.assert_status(StatusCode::OK);
        assert!(
            !page.body.contains("href=\"https://evil.example"),
            "{key}: no planted link in {}",
            page.body
        );
    }
    let page = s.app.get("/incidents/INC-1", Some(&admin)).await;
    assert!(
        page.body
            .contains("[Reset your password](https://evil.example/a)"),
        "shown as text"
    );
}

/// The FIRING fixture as a new group whose alerts name `service`.
fn firing_for(service: &str, group: &str) -> String {
    let mut payload: Value = serde_json::from_str(FIRING).expect("fixture");
    payload["groupKey"] = json!(group);
    payload["commonLabels"]["service"] = json!(service);
    payload["commonLabels"]["job"] = json!(service);
    for alert in payload["alerts"].as_array_mut().expect("alerts") {
        alert["labels"]["service"] = json!(service);
        alert["labels"]["job"] = json!(service);
        alert["fingerprint"] = json!(format!("{group}-{service}"));
    }
    payload.to_string()
}

async fn service_names(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT name FROM services ORDER BY name")
        .fetch_all(&app.db.reader)
        .await
        .expect("services")
}

#[tokio::test]
async fn alerts_cannot_grow_the_service_list_when_told_not_to_or_past_the_cap() {
    // Creating services from labels turned off: the alert still opens its incident, under the
    // fallback service, saying which service it named.
    let app = TestApp::spawn_with(&[("HINDSIGHT_INGEST_CREATES_SERVICES", "false")]).await;
    app.service("payments", "").await;
    let admin = app.user(Role::Admin).await;
    let s = Setup {
        ingest: app.token(&admin, Scope::Ingest).await,
        read: app.token(&admin, Scope::Read).await,
        app,
    };
    deliver(
        &s,
        "alertmanager",
        &s.ingest,
        &firing_for("made-up-1", "g1"),
    )
    .await
    .assert_status(StatusCode::OK);
    let inc = incident(&s, "INC-1").await;
    assert_eq!(inc["service"], "unknown-service");
    assert!(
        inc["summary"]
            .as_str()
            .is_some_and(|t| t.contains("made-up-1") && t.contains("not on the service list")),
        "{inc}"
    );
    deliver(&s, "alertmanager", &s.ingest, &firing_for("PAYMENTS", "g2"))
        .await
        .assert_status(StatusCode::OK);
    assert_eq!(
        incident(&s, "INC-2").await["service"],
        "payments",
        "a listed one is used"
    );
    assert_eq!(service_names(&s.app).await, ["payments", "unknown-service"]);

    // Allowed, but capped at 3: made-up names stop growing the list there.
    let app = TestApp::spawn_with(&[("HINDSIGHT_MAX_SERVICES", "3")]).await;
    let admin = app.user(Role::Admin).await;
    let s = Setup {
        ingest: app.token(&admin, Scope::Ingest).await,
        read: app.token(&admin, Scope::Read).await,
        app,
    };
    for n in 0..6 {
        deliver(
            &s,
            "alertmanager",
            &s.ingest,
            &firing_for(&format!("made-up-{n}"), &format!("g{n}")),
        )
        .await
        .assert_status(StatusCode::OK);
    }
    assert_eq!(
        s.app.count("incidents").await,
        6,
        "every alert still opened its incident"
    );
    assert_eq!(
        service_names(&s.app).await,
        ["made-up-0", "made-up-1", "made-up-2", "unknown-service"],
        "three from labels, then the fallback"
    );
    let inc = incident(&s, "INC-6").await;
    assert_eq!(inc["service"], "unknown-service");
    assert!(
        inc["summary"]
            .as_str()
            .is_some_and(|t| t.contains("made-up-5"))
    );
}
