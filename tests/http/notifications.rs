//! Outgoing webhooks, tested against a small HTTP receiver on loopback (which the delivery
//! worker refuses unless loopback is on the allowed list, as these tests put it).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use hindsight::auth::{Role, Scope};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use hindsight::notifications::egress::{Egress, parse_ranges};

use crate::common::{TestApp, TestUser};

/// A loopback HTTP server that records each request body and answers with the next status in
/// `answers` (the last one repeats).
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    /// Each request's header block and raw body, as received.
    raw: Arc<Mutex<Vec<RawRequest>>>,
}

/// A request's header block and body bytes, exactly as received.
type RawRequest = (String, Vec<u8>);

async fn receiver(answers: Vec<u16>) -> Receiver {
    receiver_answering(answers, "").await
}

/// A receiver whose answers also carry `extra_headers` (e.g. a `location` for redirects).
async fn receiver_answering(answers: Vec<u16>, extra_headers: &str) -> Receiver {
    let extra_headers = extra_headers.to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&bodies);
    let raw = Arc::new(Mutex::new(Vec::new()));
    let seen_raw = Arc::clone(&raw);
    tokio::spawn(async move {
        let mut n = 0usize;
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read headers, then as many body bytes as Content-Length says.
            let body = loop {
                let Ok(read) = stream.read(&mut chunk).await else {
                    break None;
                };
                if read == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..read]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        seen_raw.lock().expect("lock").push((
                            text[..end].to_owned(),
                            buf[end + 4..end + 4 + length].to_vec(),
                        ));
                        break Some(buf[end + 4..end + 4 + length].to_vec());
                    }
                }
            };
            if let Some(body) = body {
                seen.lock()
                    .expect("lock")
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            }
            let status = answers.get(n).or(answers.last()).copied().unwrap_or(200);
            n += 1;
            let reply = format!(
                "HTTP/1.1 {status} X\r\n{extra_headers}content-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = stream.write_all(reply.as_bytes()).await;
        }
    });
    Receiver { url, bodies, raw }
}

/// The delivery worker as these tests run it: loopback allowed, like an on-premises chat
/// server listed in `HINDSIGHT_WEBHOOK_ALLOW_PRIVATE`.
fn loopback_allowed() -> Egress {
    Egress {
        allow_private: parse_ranges("127.0.0.0/8, ::1").expect("ranges"),
    }
}

/// Adds a destination through the admin form; returns the signing secret shown once.
async fn add_destination(
    app: &TestApp,
    admin: &TestUser,
    url: &str,
    format: &str,
    events: &[&str],
    tiers: &[&str],
) -> String {
    let mut fields: Vec<(String, String)> = vec![
        ("name".into(), "ops".into()),
        ("url".into(), url.into()),
        ("format".into(), format.into()),
    ];
    fields.extend(
        events
            .iter()
            .map(|e| (format!("event_{e}"), "on".to_owned())),
    );
    fields.extend(tiers.iter().map(|t| (format!("tier_{t}"), "on".to_owned())));
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let created = app
        .post_form("/admin/integrations", Some(admin), &pairs)
        .await;
    created.assert_status(StatusCode::CREATED);
    assert_eq!(created.header("cache-control"), "no-store");
    shown_secret(&created.body)
}

/// The secret in a page that shows one.
fn shown_secret(body: &str) -> String {
    let start = body.find("id=\"new-secret\">").expect("a secret shown") + 16;
    let len = body[start..].find('<').expect("end of secret");
    body[start..start + len].to_owned()
}

async fn deliver(app: &TestApp) -> usize {
    deliver_with(app, &loopback_allowed()).await
}

async fn deliver_with(app: &TestApp, egress: &Egress) -> usize {
    hindsight::notifications::deliver_due(
        &app.db,
        "https://hindsight.test",
        Duration::from_millis(1),
        egress,
    )
    .await
    .expect("deliver")
}

#[tokio::test]
async fn an_opened_incident_is_posted_and_retried_after_a_500() {
    let app = TestApp::spawn().await;
    app.service("checkout", "").await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    let hook = receiver(vec![500, 200]).await;
    add_destination(
        &app,
        &admin,
        &hook.url,
        "json",
        &["incident_opened"],
        &["page"],
    )
    .await;

    app.declare(&token, json!({"title": "Checkout down", "severity": "sev1", "service": "checkout", "category": "deploy"})).await;
    assert_eq!(
        deliver(&app).await,
        1,
        "one delivery queued; the request did not wait for it"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(deliver(&app).await, 1, "retried after the 500");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(deliver(&app).await, 0, "delivered: nothing left");

    let bodies = hook.bodies.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 2);
    let body = &bodies[1];
    assert_eq!(body["event"], "incident_opened");
    assert_eq!(body["incident"], "INC-1");
    assert_eq!(body["severity"], "sev1");
    assert_eq!(body["service"], "checkout");
    assert_eq!(body["url"], "https://hindsight.test/incidents/INC-1");
    assert_eq!(body["text"], "INC-1 sev1 opened: Checkout down (checkout)");

    let page = app.get("/admin/integrations", Some(&admin)).await;
    page.assert_status(StatusCode::OK);
    assert!(page.body.contains("delivered") && page.body.contains("HTTP 200"));
    let attempts: i64 = sqlx::query_scalar("SELECT attempts FROM webhook_deliveries")
        .fetch_one(&app.db.reader)
        .await
        .expect("row");
    assert_eq!(attempts, 2);
}

#[tokio::test]
async fn severity_raises_and_alerts_go_only_where_their_tier_is_wanted() {
    let app = TestApp::spawn().await;
    app.service("checkout", "").await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    let ingest = app.token(&admin, Scope::Ingest).await;
    let hook = receiver(vec![200]).await;
    add_destination(
        &app,
        &admin,
        &hook.url,
        "slack",
        &["severity_raised", "alert_fired"],
        &["page"],
    )
    .await;

    app.declare(&token, json!({"title": "Slow search", "severity": "sev3", "service": "checkout", "category": "capacity"})).await;
    app.api(
        Method::PATCH,
        "/api/v1/incidents/INC-1",
        Some(&token),
        Some(json!({"version": 1, "severity": "sev4"})),
    )
    .await
    .assert_status(StatusCode::OK);
    app.api(
        Method::PATCH,
        "/api/v1/incidents/INC-1",
        Some(&token),
        Some(json!({"version": 2, "severity": "sev1"})),
    )
    .await
    .assert_status(StatusCode::OK);

    // A ticket-tier alert fires: this destination only wants pages.
    app.api(Method::POST, "/api/v1/alert-rules", Some(&token), Some(json!({"service": "checkout", "signal": "error_rate", "threshold": 0.01, "tier": "ticket", "min_samples": 5, "for_secs": 0}))).await.assert_status(StatusCode::CREATED);
    let events: Vec<Value> = (0..10)
        .map(|_| json!({"latency_ms": 5, "ok": false}))
        .collect();
    app.api(
        Method::POST,
        "/api/v1/metrics/events",
        Some(&ingest),
        Some(json!({"service": "checkout", "events": events})),
    )
    .await
    .assert_status(StatusCode::ACCEPTED);
    let state = &app.state;
    let fired = state
        .alert_evaluator
        .tick(&state.db, &state.signals, hindsight::signals::now_ms())
        .await
        .expect("tick");
    assert_eq!(fired.len(), 1);

    assert_eq!(
        deliver(&app).await,
        1,
        "only the raise to sev1: not the declaration, not the lowering, not the ticket"
    );
    let bodies = hook.bodies.lock().expect("lock").clone();
    assert_eq!(
        bodies,
        vec![
            json!({"text": ":rotating_light: INC-1 severity raised sev4 → sev1: Slow search <https://hindsight.test/incidents/INC-1|INC-1>"})
        ]
    );
}

#[tokio::test]
async fn unreachable_destinations_are_given_up_after_the_last_attempt() {
    let app = TestApp::spawn().await;
    app.service("checkout", "").await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    let hook = receiver(vec![503]).await;
    add_destination(
        &app,
        &admin,
        &hook.url,
        "json",
        &["incident_opened"],
        &["page"],
    )
    .await;
    app.declare(
        &token,
        json!({"title": "x", "severity": "sev2", "service": "checkout", "category": "data"}),
    )
    .await;
    for _ in 0..hindsight::notifications::MAX_ATTEMPTS {
        deliver(&app).await;
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    let (status, attempts): (String, i64) =
        sqlx::query_as("SELECT status, attempts FROM webhook_deliveries")
            .fetch_one(&app.db.reader)
            .await
            .expect("row");
    assert_eq!(
        (status.as_str(), attempts),
        ("failed", hindsight::notifications::MAX_ATTEMPTS)
    );
    let page = app.get("/admin/integrations", Some(&admin)).await;
    assert!(page.body.contains("failed") && page.body.contains("answered 503"));

    // A port where nothing listens: the page says "no answer", not the transport's error
    // (which told a refused port from a filtered one).
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/hook", listener.local_addr().expect("addr"))
    };
    sqlx::query("UPDATE webhook_destinations SET url = ?")
        .bind(&closed)
        .execute(&app.db.writer)
        .await
        .expect("point at a closed port");
    app.declare(
        &token,
        json!({"title": "y", "severity": "sev2", "service": "checkout", "category": "data"}),
    )
    .await;
    deliver(&app).await;
    let page = app.get("/admin/integrations", Some(&admin)).await;
    assert!(page.body.contains("no answer"), "{}", page.body);
    for detail in ["refused", "os error", "Connection", "io:"] {
        assert!(!page.body.contains(detail), "{detail} shown");
    }
}

#[tokio::test]
async fn destination_forms_are_checked_and_admin_only() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let bad = app
        .post_form(
            "/admin/integrations",
            Some(&admin),
            &[("name", "x"), ("url", "ftp://nope"), ("format", "json")],
        )
        .await;
    bad.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("must be an http(s) URL") && bad.body.contains("choose at least one")
    );
    let responder = app.user(Role::Responder).await;
    app.get("/admin/integrations", Some(&responder))
        .await
        .assert_status(StatusCode::FORBIDDEN);
    assert_eq!(app.count("webhook_destinations").await, 0);
    let page = app.get("/admin/integrations", Some(&admin)).await;
    assert!(
        page.body
            .contains("http://hindsight.test/api/v1/integrations/alertmanager")
    );
}

#[tokio::test]
async fn publishing_a_post_mortem_is_announced_once() {
    let app = TestApp::spawn().await;
    app.service("checkout", "").await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    let hook = receiver(vec![200]).await;
    add_destination(
        &app,
        &admin,
        &hook.url,
        "json",
        &["postmortem_published"],
        &["page"],
    )
    .await;
    app.declare(&token, json!({"title": "Checkout down", "severity": "sev4", "service": "checkout", "category": "deploy"})).await;
    let pm = |body: serde_json::Value| {
        app.api(
            Method::PUT,
            "/api/v1/incidents/INC-1/postmortem",
            Some(&token),
            Some(body),
        )
    };
    pm(
        json!({"version": 1, "sections": {"summary": "s", "impact": "i", "root_cause": "r"},
        "root_causes": [{"category": "deploy", "primary": true}],
        "no_action_items_reason": "one-off"}),
    )
    .await
    .assert_status(StatusCode::OK);
    assert_eq!(deliver(&app).await, 0, "saving is not announced");
    // Publishing needs a colleague's approval.
    let reviewer = app.user(Role::Responder).await;
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/postmortem/reviewers",
        Some(&token),
        Some(json!({"reviewers": [reviewer.email]})),
    )
    .await
    .assert_status(StatusCode::OK);
    app.post_form(
        "/incidents/INC-1/postmortem/review",
        Some(&reviewer),
        &[("decision", "approve")],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/postmortem/status",
        Some(&token),
        Some(json!({ "status": "published" })),
    )
    .await
    .assert_status(StatusCode::OK);
    assert_eq!(deliver(&app).await, 1);
    let bodies = hook.bodies.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["event"], "postmortem_published");
    assert_eq!(bodies[0]["incident"], "INC-1");
    assert!(
        bodies[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("post-mortem of INC-1 is published")
    );
}

#[tokio::test]
async fn loopback_destinations_are_refused_at_delivery_unless_allowed() {
    let app = TestApp::spawn().await;
    app.service("checkout", "").await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    let hook = receiver(vec![200]).await;
    // By address and by a name that resolves to loopback.
    let by_name = hook.url.replace("127.0.0.1", "localhost");
    for url in [&hook.url, &by_name] {
        add_destination(&app, &admin, url, "json", &["incident_opened"], &["page"]).await;
    }
    let declare = |title: &'static str| {
        app.declare(
            &token,
            json!({"title": title, "severity": "sev1", "service": "checkout", "category": "deploy"}),
        )
    };
    declare("Checkout down").await;

    assert_eq!(deliver_with(&app, &Egress::default()).await, 2);
    assert!(
        hook.bodies.lock().expect("lock").is_empty(),
        "nothing was sent"
    );
    let outcomes: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT status, attempts, last_error FROM webhook_deliveries")
            .fetch_all(&app.db.reader)
            .await
            .expect("rows");
    for (status, attempts, error) in &outcomes {
        assert_eq!(
            (status.as_str(), *attempts, error.as_str()),
            ("failed", 1, "refused: not a public address"),
            "refused at once: waiting will not make the address public"
        );
    }
    let page = app.get("/admin/integrations", Some(&admin)).await;
    assert!(page.body.contains("refused: not a public address"));

    // Listed in HINDSIGHT_WEBHOOK_ALLOW_PRIVATE, the same destinations are posted to.
    let app_allowing =
        TestApp::spawn_with(&[("HINDSIGHT_WEBHOOK_ALLOW_PRIVATE", "127.0.0.0/8, ::1")]).await;
    assert_eq!(
        app_allowing.state.config.webhook_egress.allow_private,
        loopback_allowed().allow_private
    );
    declare("Checkout down again").await;
    assert_eq!(
        deliver_with(&app, &app_allowing.state.config.webhook_egress).await,
        2
    );
    assert_eq!(hook.bodies.lock().expect("lock").len(), 2);
}

#[tokio::test]
async fn deliveries_are_signed_so_a_receiver_can_verify_them() {
    use hmac::{Hmac, Mac};

    let app = TestApp::spawn().await;
    app.service("checkout", "").await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    let hook = receiver(vec![200]).await;
    let secret = add_destination(
        &app,
        &admin,
        &hook.url,
        "json",
        &["incident_opened"],
        &["page"],
    )
    .await;
    assert!(
        secret.starts_with("whsec_") && secret.len() == 6 + 64,
        "{secret}"
    );

    // After creation the page shows neither the secret nor the whole URL.
    let page = app.get("/admin/integrations", Some(&admin)).await;
    assert!(!page.body.contains(&secret));
    assert!(!page.body.contains(&hook.url), "the URL is masked");
    let host = hook.url.trim_end_matches("/hook");
    assert!(page.body.contains(&format!("{host}/…")));

    app.declare(&token, json!({"title": "Checkout down", "severity": "sev1", "service": "checkout", "category": "deploy"})).await;
    assert_eq!(deliver(&app).await, 1);
    let (head, body) = hook.raw.lock().expect("lock")[0].clone();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {name} in {head}"))
    };
    let timestamp = header("x-hindsight-timestamp");
    let ts: i64 = timestamp.parse().expect("unix seconds");
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
    // What a receiver computes: HMAC-SHA256 keyed with the secret over "<timestamp>.<body>".
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(header("x-hindsight-signature"), format!("v1={expected}"));
    assert!(!header("x-hindsight-delivery").is_empty());

    // A new secret: shown once, and the next delivery is signed with it.
    let id: String = sqlx::query_scalar("SELECT id FROM webhook_destinations")
        .fetch_one(&app.db.reader)
        .await
        .expect("id");
    let rotated = app
        .post_form(
            &format!("/admin/integrations/destinations/{id}/secret"),
            Some(&admin),
            &[],
        )
        .await;
    rotated.assert_status(StatusCode::OK);
    let new_secret = shown_secret(&rotated.body);
    assert_ne!(new_secret, secret);
    app.declare(
        &token,
        json!({"title": "Again", "severity": "sev1", "service": "checkout", "category": "deploy"}),
    )
    .await;
    deliver(&app).await;
    let (head, body) = hook.raw.lock().expect("lock")[1].clone();
    let ts = head
        .lines()
        .find_map(|l| {
            l.to_lowercase()
                .strip_prefix("x-hindsight-timestamp:")
                .map(|v| v.trim().to_owned())
        })
        .expect("timestamp");
    let sig = hindsight::notifications::signature(&new_secret, ts.parse().expect("ts"), &body);
    assert!(
        head.to_lowercase()
            .contains(&format!("x-hindsight-signature: {sig}"))
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = TestApp::spawn().await;
    app.service("checkout", "").await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    let target = receiver(vec![200]).await;
    let redirecting = receiver_answering(vec![307], &format!("location: {}\r\n", target.url)).await;
    add_destination(
        &app,
        &admin,
        &redirecting.url,
        "json",
        &["incident_opened"],
        &["page"],
    )
    .await;
    app.declare(&token, json!({"title": "Checkout down", "severity": "sev1", "service": "checkout", "category": "deploy"})).await;
    deliver(&app).await;
    assert_eq!(redirecting.bodies.lock().expect("lock").len(), 1);
    assert!(
        target.bodies.lock().expect("lock").is_empty(),
        "the redirect was not followed"
    );
    let error: String = sqlx::query_scalar("SELECT last_error FROM webhook_deliveries")
        .fetch_one(&app.db.reader)
        .await
        .expect("row");
    assert_eq!(error, "answered 307");
}
