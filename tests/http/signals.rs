//! The collector over HTTP: pushing events, reading a service's live window, and `/metrics`.

use axum::http::{Method, StatusCode};
use hindsight::auth::{Role, Scope};
use serde_json::{Value, json};

use crate::common::TestApp;

async fn tokens(app: &TestApp) -> (String, String) {
    let admin = app.user(Role::Admin).await;
    (
        app.token(&admin, Scope::Ingest).await,
        app.token(&admin, Scope::Read).await,
    )
}

async fn push(app: &TestApp, token: &str, body: Value) -> crate::common::TestResponse {
    app.api(
        Method::POST,
        "/api/v1/metrics/events",
        Some(token),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_known_latency_distribution_reads_back_with_exact_percentiles() {
    let app = TestApp::spawn().await;
    let (ingest, read) = tokens(&app).await;
    // 1..=1000 ms in a scrambled order; every 100th is a 503.
    let events: Vec<Value> = (0..1000u32)
        .map(|i| (i * 7919) % 1000 + 1)
        .map(|ms| json!({"latency_ms": f64::from(ms), "status_code": if ms % 100 == 0 { 503 } else { 200 }}))
        .collect();
    for chunk in events.chunks(250) {
        let response = push(
            &app,
            &ingest,
            json!({"service": "checkout", "events": chunk, "saturation": 3.0}),
        )
        .await;
        response.assert_status(StatusCode::ACCEPTED);
        assert_eq!(response.json()["accepted"], 250);
    }
    let window = app
        .api(
            Method::GET,
            "/api/v1/metrics/services/checkout",
            Some(&read),
            None,
        )
        .await;
    window.assert_status(StatusCode::OK);
    let body = window.json();
    assert_eq!(body["count"], 1000);
    assert_eq!(body["errors"], 10);
    assert_eq!(body["error_rate"], 0.01);
    assert_eq!(body["window"], json!({"events": 10_000, "seconds": 300}));
    // Nearest rank: the ⌈q·n⌉-th smallest of 1..=1000 is ⌈q·1000⌉.
    let latency = &body["latency_ms"];
    assert_eq!(latency["min"], 1.0);
    assert_eq!(latency["p50"], 500.0);
    assert_eq!(latency["p90"], 900.0);
    assert_eq!(latency["p95"], 950.0);
    assert_eq!(latency["p99"], 990.0);
    assert_eq!(latency["p999"], 999.0);
    assert_eq!(latency["max"], 1000.0);
    assert_eq!(latency["mean"], 500.5);
    assert_eq!(body["saturation"]["current"], 3.0);
    assert_eq!(body["last_seconds"]["count"], 1000);
}

#[tokio::test]
async fn bad_batches_are_refused_whole_with_the_problem_named() {
    let app = TestApp::spawn_with(&[("HINDSIGHT_METRICS_MAX_BATCH", "5")]).await;
    let (ingest, read) = tokens(&app).await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"service": "api", "events": [{"latency_ms": 5, "ok": true}, {"latency_ms": -1, "ok": true}]}),
            "events[1].latency_ms",
        ),
        (
            json!({"service": "api", "events": [{"latency_ms": 5}]}),
            "events[0].ok",
        ),
        (
            json!({"service": "api", "events": [{"latency_ms": "fast", "ok": true}]}),
            "events[0].latency_ms",
        ),
        (
            json!({"service": "api", "events": [{"latency_ms": 5, "ok": true, "colour": "red"}]}),
            "events[0]",
        ),
        (
            json!({"service": "api", "events": [{"latency_ms": 5, "ok": true, "at": "2001-01-01T00:00:00Z"}]}),
            "events[0].at",
        ),
        (
            json!({"service": "no spaces allowed", "events": [{"latency_ms": 5, "ok": true}]}),
            "service",
        ),
        (
            json!({"service": "hindsight", "events": [{"latency_ms": 5, "ok": true}]}),
            "service",
        ),
        (
            json!({"service": "api", "events": vec![json!({"latency_ms": 1, "ok": true}); 6]}),
            "events",
        ),
        (json!({"service": "api", "events": []}), "events"),
    ];
    for (body, field) in cases {
        let response = push(&app, &ingest, body.clone()).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let error = response.json()["error"].clone();
        let named = error["fields"]
            .as_object()
            .is_some_and(|f| f.keys().any(|k| k.starts_with(field)));
        assert!(named, "{field} named in {error}");
    }
    // A NaN cannot even be written in JSON; a number too large for f64 is malformed JSON.
    let response = app
        .send(
            axum::http::Request::post("/api/v1/metrics/events")
                .header("host", crate::common::HOST)
                .header("authorization", format!("Bearer {ingest}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    r#"{"service":"api","events":[{"latency_ms":1e999,"ok":true}]}"#,
                ))
                .expect("request"),
        )
        .await;
    assert!(response.status.is_client_error(), "{}", response.status);
    // Nothing of any refused batch was recorded.
    app.api(
        Method::GET,
        "/api/v1/metrics/services/api",
        Some(&read),
        None,
    )
    .await
    .assert_status(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pushing_needs_an_ingest_token() {
    let app = TestApp::spawn().await;
    let (_, read) = tokens(&app).await;
    let body = json!({"service": "api", "events": [{"latency_ms": 1, "ok": true}]});
    push(&app, &read, body.clone())
        .await
        .assert_status(StatusCode::FORBIDDEN);
    app.api(Method::POST, "/api/v1/metrics/events", None, Some(body))
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn unknown_services_and_services_beyond_the_cap_are_refused() {
    let app = TestApp::spawn_with(&[("HINDSIGHT_METRICS_AUTO_CREATE", "false")]).await;
    app.service("checkout", "").await;
    let (ingest, _) = tokens(&app).await;
    let event = json!([{"latency_ms": 1, "ok": true}]);
    push(
        &app,
        &ingest,
        json!({"service": "checkout", "events": event}),
    )
    .await
    .assert_status(StatusCode::ACCEPTED);
    let unknown = push(
        &app,
        &ingest,
        json!({"service": "mystery", "events": event}),
    )
    .await;
    unknown.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown.json()["error"]["fields"]["service"]
            .as_str()
            .is_some_and(|m| m.contains("not a known service"))
    );

    // The cap counts Hindsight's own windows too: its requests (`hindsight`) and its writes
    // (`hindsight-writes`, from the token created below).
    let capped = TestApp::spawn_with(&[("HINDSIGHT_METRICS_MAX_SERVICES", "4")]).await;
    let (ingest, _) = tokens(&capped).await;
    for name in ["one", "two"] {
        push(&capped, &ingest, json!({"service": name, "events": event}))
            .await
            .assert_status(StatusCode::ACCEPTED);
    }
    let third = push(
        &capped,
        &ingest,
        json!({"service": "three", "events": event}),
    )
    .await;
    third.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(third.body.contains("cap of 4"), "{}", third.body);
}

#[tokio::test]
async fn hindsight_records_its_own_requests_and_exposes_them_for_prometheus() {
    let app = TestApp::spawn().await;
    let (_, read) = tokens(&app).await;
    for _ in 0..5 {
        app.get("/healthz", None)
            .await
            .assert_status(StatusCode::OK);
    }
    app.get("/no/such/page", None).await;
    let own = app
        .api(
            Method::GET,
            "/api/v1/metrics/services/hindsight",
            Some(&read),
            None,
        )
        .await
        .json();
    assert!(own["count"].as_u64().is_some_and(|n| n >= 6), "{own}");
    assert!(own["saturation"]["max"].as_f64().is_some_and(|m| m >= 1.0));

    let metrics = app.get("/metrics", None).await;
    metrics.assert_status(StatusCode::OK);
    assert!(
        metrics
            .header("content-type")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.body;
    let total: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("hindsight_http_requests_total "))
        .and_then(|v| v.parse().ok())
        .expect("request counter");
    assert!(total >= 7, "{text}");
    assert!(text.contains("# TYPE hindsight_http_request_duration_seconds summary"));
    assert!(text.contains("hindsight_http_request_duration_seconds{quantile=\"0.99\"} "));
    assert!(
        !text.contains("quantile=\"0.99\"} NaN"),
        "quantiles exist once requests were made"
    );

    // promtool (Debian package prometheus) checks the exposition format and naming rules.
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &text).expect("write");
    let output = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).expect("open"))
        .output()
        .expect("promtool is installed (apt-get install prometheus)");
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn metrics_can_require_a_read_token() {
    let app = TestApp::spawn_with(&[("HINDSIGHT_METRICS_REQUIRE_TOKEN", "true")]).await;
    let (ingest, read) = tokens(&app).await;
    app.get("/metrics", None)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    app.api(Method::GET, "/metrics", Some(&ingest), None)
        .await
        .assert_status(StatusCode::FORBIDDEN);
    app.api(Method::GET, "/metrics", Some(&read), None)
        .await
        .assert_status(StatusCode::OK);
}

#[tokio::test]
async fn batches_with_their_own_times_land_in_their_own_intervals() {
    let app = TestApp::spawn().await;
    let (ingest, read) = tokens(&app).await;
    let now = chrono::Utc::now();
    for seconds_ago in [200, 100] {
        let at = (now - chrono::Duration::seconds(seconds_ago)).to_rfc3339();
        let events = vec![json!({"latency_ms": 5, "ok": true, "at": at}); 10];
        push(
            &app,
            &ingest,
            json!({"service": "queue", "events": events, "saturation": 7}),
        )
        .await
        .assert_status(StatusCode::ACCEPTED);
    }
    let window = app
        .api(
            Method::GET,
            "/api/v1/metrics/services/queue",
            Some(&read),
            None,
        )
        .await
        .json();
    let busy: Vec<u64> = window["series"]
        .as_array()
        .expect("series")
        .iter()
        .filter_map(|p| p["count"].as_u64())
        .filter(|c| *c > 0)
        .collect();
    assert_eq!(
        busy,
        vec![10, 10],
        "two intervals, not one clamped to the latest"
    );
}

#[tokio::test]
async fn metric_pushes_cannot_grow_the_service_list_when_told_not_to_or_past_the_cap() {
    let event = json!([{"latency_ms": 1, "ok": true}]);
    let app = TestApp::spawn_with(&[("HINDSIGHT_INGEST_CREATES_SERVICES", "false")]).await;
    app.service("checkout", "").await;
    let (ingest, read) = tokens(&app).await;
    push(
        &app,
        &ingest,
        json!({"service": "checkout", "events": event}),
    )
    .await
    .assert_status(StatusCode::ACCEPTED);
    let made_up = push(
        &app,
        &ingest,
        json!({"service": "made-up", "events": event}),
    )
    .await;
    made_up.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        made_up.json()["error"]["fields"]["service"]
            .as_str()
            .is_some_and(|m| m.contains("not a known service")),
        "{}",
        made_up.body
    );
    app.api(
        Method::GET,
        "/api/v1/metrics/services/made-up",
        Some(&read),
        None,
    )
    .await
    .assert_status(StatusCode::NOT_FOUND);

    // Allowed, but at most 5 services: checkout on the list, Hindsight's own two windows
    // (requests and `hindsight-writes`), and two made-up names; the listed service is still
    // accepted after that.
    let app = TestApp::spawn_with(&[("HINDSIGHT_MAX_SERVICES", "5")]).await;
    app.service("checkout", "").await;
    let (ingest, _) = tokens(&app).await;
    push(
        &app,
        &ingest,
        json!({"service": "checkout", "events": event}),
    )
    .await
    .assert_status(StatusCode::ACCEPTED);
    for name in ["made-up-1", "made-up-2"] {
        push(&app, &ingest, json!({"service": name, "events": event}))
            .await
            .assert_status(StatusCode::ACCEPTED);
    }
    let full = push(
        &app,
        &ingest,
        json!({"service": "made-up-3", "events": event}),
    )
    .await;
    full.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        full.body.contains("HINDSIGHT_MAX_SERVICES"),
        "{}",
        full.body
    );
    push(
        &app,
        &ingest,
        json!({"service": "checkout", "events": event}),
    )
    .await
    .assert_status(StatusCode::ACCEPTED);
    push(
        &app,
        &ingest,
        json!({"service": "made-up-1", "events": event}),
    )
    .await
    .assert_status(StatusCode::ACCEPTED);
}

/// A listed service has a page before its first event (a restarted server has no windows yet,
/// and the alerts page links to services by name); an unknown name is still a 404. Its first
/// event turns the page live.
#[tokio::test]
async fn a_listed_service_has_a_page_before_its_first_event() {
    let app = TestApp::spawn().await;
    let (ingest, _read) = tokens(&app).await;
    let viewer = app.user(Role::Viewer).await;
    app.service("payments", "platform").await;

    let list = app.get("/services", Some(&viewer)).await;
    list.assert_status(StatusCode::OK);
    let row = list
        .body
        .split("href=\"/services/payments\"")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .expect("payments is listed");
    assert!(row.contains("no events since the server started"), "{row}");

    let page = app.get("/services/payments", Some(&viewer)).await;
    page.assert_status(StatusCode::OK);
    assert!(page.body.contains("id=\"no-window\""), "{}", page.body);
    assert!(page.body.contains("with its first event"), "{}", page.body);
    assert!(!page.body.contains("id=\"live\""), "{}", page.body);

    let unknown = app.get("/services/made-up", Some(&viewer)).await;
    unknown.assert_status(StatusCode::NOT_FOUND);

    push(
        &app,
        &ingest,
        json!({"service": "payments", "events": [{"latency_ms": 12.0, "ok": true}]}),
    )
    .await
    .assert_status(StatusCode::ACCEPTED);
    let page = app.get("/services/payments", Some(&viewer)).await;
    page.assert_status(StatusCode::OK);
    assert!(page.body.contains("id=\"live\""), "{}", page.body);
    assert!(!page.body.contains("id=\"no-window\""), "{}", page.body);
}
