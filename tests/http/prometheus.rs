//! Prometheus as a snapshot source: admins set a service's PromQL, snapshots freeze the series
//! Prometheus returns (a real Debian `prometheus` scraping a loopback target), and a
//! Prometheus that is down only leaves a note.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use hindsight::auth::{Role, Scope};
use serde_json::{Value, json};

use crate::common::TestApp;

const P99: &str =
    "histogram_quantile(0.99, sum by (le) (rate(shop_request_duration_seconds_bucket[5s])))";
const TRAFFIC: &str = "sum(rate(shop_requests_total[5s]))";

#[tokio::test]
async fn admins_set_and_clear_queries_others_are_refused_and_bad_input_is_named() {
    let app = TestApp::spawn_with(&[
        ("HINDSIGHT_PROMETHEUS_URL", "http://127.0.0.1:9"),
        ("HINDSIGHT_PROMETHEUS_BEARER_TOKEN", "prom-secret-token"),
    ])
    .await;
    let admin = app.user(Role::Admin).await;
    let responder = app.user(Role::Responder).await;
    let viewer = app.user(Role::Viewer).await;
    let admin_write = app.token(&admin, Scope::Write).await;
    let responder_write = app.token(&responder, Scope::Write).await;
    let path = "/api/v1/services/checkout/prometheus";

    // Responders and viewers cannot set them, through the API or the form.
    app.api(
        Method::PUT,
        path,
        Some(&responder_write),
        Some(json!({"latency_p99": P99})),
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    for user in [&responder, &viewer] {
        let r = app
            .post_form(
                "/services/checkout/prometheus",
                Some(user),
                &[("latency_p99", P99)],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    }
    assert_eq!(app.count("prometheus_queries").await, 0);

    // Bad input: 422 naming the field, nothing saved; the form keeps what was typed.
    let r = app
        .api(
            Method::PUT,
            path,
            Some(&admin_write),
            Some(json!({"latency_p99": "rate(x[5m]", "traffic": TRAFFIC})),
        )
        .await;
    r.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("latency_p99"), "{}", r.body);
    app.api(
        Method::PUT,
        path,
        Some(&admin_write),
        Some(json!({"latency_p99x": P99})),
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post_form(
            "/services/checkout/prometheus",
            Some(&admin),
            &[("error_rate", "sum(x{a=\"1\"}"), ("traffic", TRAFFIC)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("brackets are not balanced"), "{}", r.body);
    assert!(
        r.body.contains("sum(rate(shop_requests_total[5s]))"),
        "typed input kept"
    );
    assert_eq!(app.count("prometheus_queries").await, 0);

    // The admin saves them; the page says figures come from Prometheus and shows the URL,
    // never the token.
    let r = app
        .post_form(
            "/services/checkout/prometheus",
            Some(&admin),
            &[("latency_p99", P99), ("traffic", TRAFFIC)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let got = app.api(Method::GET, path, Some(&admin_write), None).await;
    got.assert_status(StatusCode::OK);
    let body = got.json();
    assert_eq!(body["queries"]["latency_p99"], P99);
    assert_eq!(body["queries"]["traffic"], TRAFFIC);
    assert_eq!(body["queries"]["error_rate"], Value::Null);
    assert_eq!(body["prometheus_url"], "http://127.0.0.1:9");
    assert!(!got.body.contains("prom-secret-token"));
    let page = app.get("/services/checkout", Some(&viewer)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("Figures come from: <strong>Prometheus</strong>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("http://127.0.0.1:9"));
    assert!(!page.body.contains("prom-secret-token"));
    assert!(
        page.body.contains("shop_requests_total"),
        "viewers see the queries"
    );

    // Clearing: DELETE (or all blank) removes them.
    app.api(Method::DELETE, path, Some(&admin_write), None)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(app.count("prometheus_queries").await, 0);
    let audits: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'service.prometheus_%'",
    )
    .fetch_one(&app.db.reader)
    .await
    .expect("audit");
    assert_eq!(audits, 2, "set and clear are audited");
    app.get("/services/checkout", Some(&viewer))
        .await
        .assert_status(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_unreachable_prometheus_leaves_a_note_and_the_declaration_stands() {
    // Port 9 on loopback: nothing listens there, so the connection is refused at once.
    let app = TestApp::spawn_with(&[
        ("HINDSIGHT_PROMETHEUS_URL", "http://127.0.0.1:9"),
        ("HINDSIGHT_PROMETHEUS_USER", "hs"),
        ("HINDSIGHT_PROMETHEUS_PASSWORD", "prom-secret-pw"),
    ])
    .await;
    let admin = app.user(Role::Admin).await;
    let write = app.token(&admin, Scope::Write).await;
    app.service("checkout", "payments").await;
    app.api(
        Method::PUT,
        "/api/v1/services/checkout/prometheus",
        Some(&write),
        Some(json!({"latency_p99": P99, "traffic": TRAFFIC})),
    )
    .await
    .assert_status(StatusCode::OK);
    app
        .declare(&write, json!({"title": "Checkout slow", "severity": "sev2", "service": "checkout", "category": "dependency"}))
        .await;
    let frozen: Option<String> = sqlx::query_scalar(
        "SELECT prometheus FROM metric_snapshots WHERE trigger = 'incident_open'",
    )
    .fetch_one(&app.db.reader)
    .await
    .expect("a snapshot was taken at declaration");
    let frozen: Value = serde_json::from_str(&frozen.expect("prometheus part")).expect("json");
    assert!(
        frozen["note"]
            .as_str()
            .expect("note")
            .contains("did not answer any of the 2 queries"),
        "{frozen}"
    );
    assert_eq!(frozen["results"][0]["query"], P99);
    assert!(
        frozen["results"][0]["error"]
            .as_str()
            .expect("error")
            .contains("could not be reached")
    );
    assert!(!frozen.to_string().contains("prom-secret-pw"));

    let page = app.get("/incidents/INC-1", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("did not answer any of the 2 queries"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("prom-secret-pw"));

    // A service whose figures come only from Prometheus is on the Services list, marked so.
    let services = app.get("/services", Some(&admin)).await;
    services.assert_status(StatusCode::OK);
    let row = services
        .body
        .split("href=\"/services/checkout\"")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .expect("checkout is listed");
    assert!(row.contains("Prometheus"), "{row}");
    assert!(row.contains("no window here"), "{row}");

    // The post-mortem's snapshot section shows the Prometheus part too.
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/postmortem",
        Some(&write),
        Some(json!({})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let pm = app.get("/incidents/INC-1/postmortem", Some(&admin)).await;
    pm.assert_status(StatusCode::OK);
    assert!(pm.body.contains("From Prometheus"), "{}", pm.body);
    assert!(pm.body.contains("did not answer any of the 2 queries"));
}

/// A loopback scrape target serving a Prometheus histogram whose counts grow by 10 per
/// scrape (9 fast requests, 1 slow), so rates and quantiles are non-trivial.
fn serve_histogram() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind target");
    let port = listener.local_addr().expect("addr").port();
    let scrapes = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let n = scrapes.fetch_add(1, Ordering::SeqCst) + 1;
            let (fast, total) = (9 * n, 10 * n);
            let body = format!(
                "# TYPE shop_request_duration_seconds histogram\n\
                 shop_request_duration_seconds_bucket{{le=\"0.05\"}} {fast}\n\
                 shop_request_duration_seconds_bucket{{le=\"0.5\"}} {fast}\n\
                 shop_request_duration_seconds_bucket{{le=\"1\"}} {total}\n\
                 shop_request_duration_seconds_bucket{{le=\"+Inf\"}} {total}\n\
                 shop_request_duration_seconds_sum {}\n\
                 shop_request_duration_seconds_count {total}\n\
                 # TYPE shop_requests_total counter\n\
                 shop_requests_total {total}\n",
                0.02 * fast as f64 + 0.8 * n as f64
            );
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

struct Prometheus {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn start_prometheus(target_port: u16) -> (Prometheus, String) {
    let binary = which("prometheus").unwrap_or_else(|| {
        panic!(
            "Debian's `prometheus` binary is not installed (apt-get install prometheus; .ci/run \
             installs it). This test needs it and does not skip."
        )
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: shop\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
        ),
    )
    .expect("config");
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    (
        Prometheus { child, _dir: dir },
        format!("http://127.0.0.1:{port}"),
    )
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

fn get_json(url: &str, query: &[(&str, String)]) -> Option<Value> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let mut req = agent.get(url);
    for (k, v) in query {
        req = req.query(*k, v);
    }
    let mut response = req.call().ok()?;
    serde_json::from_str(&response.body_mut().read_to_string().ok()?).ok()
}

/// Series as (labels, [(time, value)]) with times as numbers: Prometheus writes whole seconds
/// as integers, a stored snapshot as floats; the instants are the same.
fn normalized(series: &Value) -> Vec<(Value, Vec<(f64, String)>)> {
    series
        .as_array()
        .expect("series array")
        .iter()
        .map(|s| {
            let values = s["values"]
                .as_array()
                .expect("values")
                .iter()
                .map(|p| {
                    (
                        p[0].as_f64().expect("time"),
                        p[1].as_str().expect("value").to_owned(),
                    )
                })
                .collect();
            (s["metric"].clone(), values)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_holds_the_series_a_real_prometheus_returns() {
    let target = serve_histogram();
    let (_prometheus, url) = start_prometheus(target);

    // Wait until Prometheus has scraped the target a few times (rate over 5s needs two).
    let deadline = Instant::now() + Duration::from_secs(25);
    let probe = url.clone();
    tokio::task::spawn_blocking(move || {
        loop {
            let answer = get_json(
                &format!("{probe}/api/v1/query"),
                &[(
                    "query",
                    "count_over_time(shop_requests_total[1m])".to_owned(),
                )],
            );
            let samples = answer
                .as_ref()
                .and_then(|a| a["data"]["result"][0]["value"][1].as_str())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            if samples >= 4.0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus did not scrape the target in time: {answer:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    })
    .await
    .expect("waited");

    let app = TestApp::spawn_with(&[
        ("HINDSIGHT_PROMETHEUS_URL", url.as_str()),
        ("HINDSIGHT_PROMETHEUS_RANGE_MINUTES", "1"),
    ])
    .await;
    let admin = app.user(Role::Admin).await;
    let write = app.token(&admin, Scope::Write).await;
    app.service("checkout", "payments").await;
    app.api(
        Method::PUT,
        "/api/v1/services/checkout/prometheus",
        Some(&write),
        Some(json!({"latency_p99": P99, "traffic": TRAFFIC})),
    )
    .await
    .assert_status(StatusCode::OK);
    app.declare(&write, json!({"title": "Checkout slow", "severity": "sev2", "service": "checkout", "category": "dependency"}))
        .await;
    let r = app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/snapshots",
            Some(&write),
            Some(json!({})),
        )
        .await;
    r.assert_status(StatusCode::CREATED);
    let snapshot = r.json();
    let frozen = &snapshot["prometheus"];
    assert_eq!(frozen["url"], url.as_str());
    assert_eq!(frozen["note"], Value::Null, "{frozen}");
    let (start, end, step) = (
        frozen["start"].as_i64().expect("start"),
        frozen["end"].as_i64().expect("end"),
        frozen["step_secs"].as_i64().expect("step"),
    );
    assert_eq!(end - start, 60);
    assert_eq!(step, 1);

    // Ask Prometheus the same queries over the same range and compare, series by series.
    let results = frozen["results"].as_array().expect("results").clone();
    assert_eq!(results.len(), 2);
    let base = url.clone();
    let direct: Vec<Value> = tokio::task::spawn_blocking(move || {
        [P99, TRAFFIC]
            .iter()
            .map(|q| {
                get_json(
                    &format!("{base}/api/v1/query_range"),
                    &[
                        ("query", (*q).to_owned()),
                        ("start", start.to_string()),
                        ("end", end.to_string()),
                        ("step", step.to_string()),
                    ],
                )
                .expect("direct query")["data"]["result"]
                    .clone()
            })
            .collect()
    })
    .await
    .expect("direct");
    for (frozen, direct) in results.iter().zip(&direct) {
        assert_eq!(frozen["error"], Value::Null, "{frozen}");
        let series = frozen["series"].as_array().expect("series");
        assert!(!series.is_empty(), "{frozen}");
        assert_eq!(
            normalized(&frozen["series"]),
            normalized(direct),
            "query {}",
            frozen["query"]
        );
        let points = series[0]["values"].as_array().expect("values");
        assert!(points.len() >= 2, "{frozen}");
    }
    // The p99 of 9 fast + 1 slow per scrape lies in the (0.5, 1] bucket.
    let p99: f64 = results[0]["series"][0]["values"]
        .as_array()
        .and_then(|v| v.last())
        .and_then(|p| p[1].as_str())
        .and_then(|v| v.parse().ok())
        .expect("p99 value");
    assert!((0.5..=1.0).contains(&p99), "{p99}");

    // The incident page charts the frozen series with the query and URL.
    let page = app.get("/incidents/INC-1", Some(&admin)).await;
    assert!(page.body.contains("From Prometheus"), "{}", page.body);
    assert!(page.body.contains("checkout latency_p99 from Prometheus"));
    assert!(page.body.contains(&url));
    // The service page lists it among its recent snapshots, saying it holds the series.
    let service = app.get("/services/checkout", Some(&admin)).await;
    service.assert_status(StatusCode::OK);
    let recent = &service.body[service.body.find("Recent snapshots").expect("the list")..];
    assert!(
        recent.contains("<a href=\"/incidents/INC-1#snapshots\">INC-1</a>")
            && recent.contains("· with Prometheus series</li>"),
        "{recent}"
    );
}

#[tokio::test]
async fn queries_must_be_a_json_object() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let write = app.token(&admin, Scope::Write).await;
    app.service("checkout", "payments").await;
    let array = app
        .api(
            Method::PUT,
            "/api/v1/services/checkout/prometheus",
            Some(&write),
            Some(json!([null, null])),
        )
        .await;
    array.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        array.body.contains("must be a JSON object"),
        "{}",
        array.body
    );
}
