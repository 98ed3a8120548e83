//! End to end with a real Prometheus Alertmanager: configured with Hindsight as its webhook
//! receiver, it opens an incident when an alert fires and puts the incident under monitoring
//! when the alert resolves. Needs the Debian package prometheus-alertmanager; every wait is
//! bounded and a timeout says what was last seen, with the tail of Alertmanager's log.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use chrono::{DateTime, SecondsFormat, Utc};
use hindsight::auth::{Role, Scope};
use serde_json::{Value, json};

use crate::common::TestApp;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const MISSING: &str = "this test runs the real Alertmanager: install the Debian package \
    prometheus-alertmanager (apt-get install prometheus-alertmanager)";
/// How long Alertmanager may take to answer `/-/ready`.
const READY_WAIT: Duration = Duration::from_secs(15);
/// How long a notification may take to show in Hindsight (group_wait and group_interval are 1 s).
const DELIVERY_WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

/// What Prometheus links to: its graph of the alerting expression, percent-encoded.
const GENERATOR_URL: &str = "http://127.0.0.1:9090/graph?g0.expr=histogram_quantile%280.99%2C+\
    rate%28http_request_duration_seconds_bucket%7Bservice%3D%22checkout%22%7D%5B5m%5D%29%29+%3E+2\
    &g0.tab=1";

#[tokio::test]
async fn a_real_alertmanager_opens_and_resolves_an_incident() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let ingest = app.token(&admin, Scope::Ingest).await;
    let read = app.token(&admin, Scope::Read).await;
    let hindsight = serve(&app).await;
    let webhook = format!("{hindsight}/api/v1/integrations/alertmanager");
    let alertmanager = blocking(move || Alertmanager::start(&webhook, &ingest)).await;

    // Prometheus says checkout has been slow for a minute (the rule's `for:` has passed).
    let started = Utc::now() - chrono::Duration::minutes(1);
    alertmanager
        .post_alert(checkout_latency(started, None))
        .await;

    let incident = wait_for_incident(&app, &read, &alertmanager, "the firing alert", |i| {
        !alert_entries(i, "Firing").is_empty()
    })
    .await;
    assert_eq!(incident["title"], "Checkout p99 above 2 s");
    assert_eq!(incident["severity"], "sev1");
    assert_eq!(incident["service"], "checkout");
    assert_eq!(incident["category"], "unknown");
    let firing = alert_entries(&incident, "Firing");
    assert!(
        firing[0].contains("CheckoutLatencyHigh"),
        "the firing entry names the alert: {firing:?}"
    );
    assert!(
        firing[0].contains(GENERATOR_URL),
        "the firing entry links Prometheus' graph {GENERATOR_URL}: {firing:?}"
    );

    // Checkout recovers: Prometheus sends the alert again, ended a second ago.
    let ended = Utc::now() - chrono::Duration::seconds(1);
    alertmanager
        .post_alert(checkout_latency(started, Some(ended)))
        .await;

    let incident = wait_for_incident(&app, &read, &alertmanager, "the resolved alert", |i| {
        i["status"] == "monitoring"
            && !alert_entries(i, "Resolved").is_empty()
            && bodies(i).any(|b| b.contains("All alerts of this group are resolved"))
    })
    .await;
    assert_eq!(
        alert_entries(&incident, "Firing").len(),
        1,
        "one firing entry for one firing alert: {incident:#}"
    );
    let resolved = alert_entries(&incident, "Resolved");
    assert!(
        resolved[0].contains("CheckoutLatencyHigh"),
        "the resolved entry names the alert: {resolved:?}"
    );
    let list = app
        .api(Method::GET, "/api/v1/incidents", Some(&read), None)
        .await;
    list.assert_status(StatusCode::OK);
    let list = list.json();
    assert_eq!(list["total"], 1, "one alert group, one incident: {list:#}");
    assert_eq!(list["items"][0]["number"], incident["number"]);
    let services = app
        .api(Method::GET, "/api/v1/services", Some(&read), None)
        .await;
    let joined = services.json()["items"]
        .as_array()
        .is_some_and(|items| items.iter().any(|s| s["name"] == "checkout"));
    assert!(
        joined,
        "checkout joined the service list: {}",
        services.body
    );
    // Alertmanager saw every delivery accepted at the first attempt: nothing to retry.
    let failed = alertmanager.failed_webhook_requests().await;
    assert_eq!(
        failed,
        0.0,
        "Alertmanager had {failed} failed webhook requests; its log:\n{}",
        alertmanager.log_tail()
    );
}

/// The alert as Prometheus would send it to Alertmanager's API v2; resolved when `ends_at` is set.
fn checkout_latency(starts_at: DateTime<Utc>, ends_at: Option<DateTime<Utc>>) -> Value {
    let mut alert = json!({
        "labels": {
            "alertname": "CheckoutLatencyHigh",
            "service": "checkout",
            "severity": "critical",
        },
        "annotations": {"summary": "Checkout p99 above 2 s"},
        "generatorURL": GENERATOR_URL,
        "startsAt": starts_at.to_rfc3339_opts(SecondsFormat::Millis, true),
    });
    if let Some(ends_at) = ends_at {
        alert["endsAt"] = json!(ends_at.to_rfc3339_opts(SecondsFormat::Millis, true));
    }
    alert
}

/// The bodies of the timeline entries.
fn bodies(incident: &Value) -> impl Iterator<Item = &str> {
    incident["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["body"].as_str())
}

/// The bodies of the `alert` timeline entries that contain `word`.
fn alert_entries<'a>(incident: &'a Value, word: &str) -> Vec<&'a str> {
    incident["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "alert")
        .filter_map(|e| e["body"].as_str())
        .filter(|b| b.contains(word))
        .collect()
}

/// Polls Hindsight until its first incident satisfies `done`; fails with what was last seen.
async fn wait_for_incident(
    app: &TestApp,
    read: &str,
    alertmanager: &Alertmanager,
    awaited: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + DELIVERY_WAIT;
    loop {
        let list = app
            .api(Method::GET, "/api/v1/incidents", Some(read), None)
            .await;
        let number = list.json()["items"][0]["number"]
            .as_str()
            .map(str::to_owned);
        let last_seen = match number {
            Some(number) => {
                let path = format!("/api/v1/incidents/{number}");
                let incident = app.api(Method::GET, &path, Some(read), None).await.json();
                if done(&incident) {
                    return incident;
                }
                format!("{incident:#}")
            }
            None => format!("no incident yet: {}", list.body),
        };
        assert!(
            Instant::now() < deadline,
            "Hindsight did not show {awaited} within {DELIVERY_WAIT:?}; last seen:\n{last_seen}\n\
             Alertmanager's log:\n{}",
            alertmanager.log_tail()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Serves the app on a loopback socket, as Alertmanager needs; returns `http://127.0.0.1:PORT`.
async fn serve(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("local address");
    let service = app
        .router
        .clone()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(axum::serve(listener, service).into_future());
    format!("http://{address}")
}

/// Runs blocking work (ureq, process waits) off the runtime; a panic in it fails the test as is.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// An Alertmanager process on a loopback port with its own configuration and storage; killed
/// when dropped.
struct Alertmanager {
    child: Child,
    url: String,
    agent: ureq::Agent,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager with one route, grouping by alert name, to Hindsight's `webhook`
    /// with `token`, and waits until it is ready.
    fn start(webhook: &str, token: &str) -> Self {
        assert!(
            std::path::Path::new(ALERTMANAGER).is_file(),
            "{ALERTMANAGER} was not found; {MISSING}"
        );
        let config = format!(
            "global:
  resolve_timeout: 5m
route:
  receiver: hindsight
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hindsight
    webhook_configs:
      - url: '{webhook}'
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: '{token}'
"
        );
        // The port is free when chosen but may be taken before Alertmanager binds it; then
        // Alertmanager exits and we try another.
        let mut exits = Vec::new();
        for _ in 0..3 {
            match Self::launch(&config) {
                Ok(alertmanager) => return alertmanager,
                Err(exit) => exits.push(exit),
            }
        }
        panic!("Alertmanager exited at start three times: {exits:#?}");
    }

    /// One try at starting Alertmanager on a free port; `Err` with its exit and log if it ended.
    fn launch(config: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_file = dir.path().join("alertmanager.yml");
        std::fs::write(&config_file, config).expect("write alertmanager.yml");
        let log = dir.path().join("alertmanager.log");
        let stderr = std::fs::File::create(&log).expect("create the log file");
        let port = free_port();
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Otherwise the links it sends back to itself name this machine's host name.
            .arg(format!("--web.external-url=http://127.0.0.1:{port}"))
            // Empty: no cluster, so no gossip port and no wait for peers to settle.
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {ALERTMANAGER}: {e}; {MISSING}"));
        let mut alertmanager = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            agent: ureq::Agent::config_builder()
                .proxy(None)
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .into(),
            log,
            _dir: dir,
        };
        match alertmanager.wait_ready() {
            Ok(()) => Ok(alertmanager),
            Err(status) => Err(format!("{status}; its log:\n{}", alertmanager.log_tail())),
        }
    }

    /// Waits for `/-/ready` to answer 200; `Err` with the exit status if the process ended.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(status.to_string());
            }
            let ready = self
                .agent
                .get(format!("{}/-/ready", self.url))
                .call()
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "Alertmanager did not become ready on {} within {READY_WAIT:?}; its log:\n{}",
                self.url,
                self.log_tail()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Posts one alert to Alertmanager's API v2, as Prometheus does.
    async fn post_alert(&self, alert: Value) {
        let (agent, url) = (self.agent.clone(), format!("{}/api/v2/alerts", self.url));
        let answer = blocking(move || {
            agent
                .post(url)
                .send_json(json!([alert]))
                .map(|r| r.status().as_u16())
        })
        .await;
        assert!(
            answer.as_ref().is_ok_and(|s| *s == 200),
            "Alertmanager refused the alert: {answer:?}; its log:\n{}",
            self.log_tail()
        );
    }

    /// Webhook requests that failed (any attempt, retried or not), from Alertmanager's metrics.
    async fn failed_webhook_requests(&self) -> f64 {
        let (agent, url) = (self.agent.clone(), format!("{}/metrics", self.url));
        let metrics = blocking(move || {
            agent
                .get(url)
                .call()
                .and_then(|mut r| r.body_mut().read_to_string())
        })
        .await
        .expect("Alertmanager's /metrics");
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("alertmanager_notification_requests_failed_total{")
                    && l.contains("integration=\"webhook\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The last lines Alertmanager logged.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (Alertmanager takes an address, not a socket).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
