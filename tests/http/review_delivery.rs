//! The weekly review delivered: subscriptions through the API and the settings page, e-mail to
//! a real SMTP server (PyPI aiosmtpd on loopback, from the venv `.ci/run` installs), a refused
//! connection retried and logged, a missed schedule sent once, and the Slack summary through
//! the webhook outbox.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use axum::extract::FromRef;
use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use hindsight::auth::{Role, Scope};
use hindsight::review_delivery::{ReviewDeliveryState, deliver_due, schedule_due};
use serde_json::{Value, json};

use crate::common::TestApp;

/// aiosmtpd with a handler that appends every message, parsed by Python's `email` package
/// (so the test reads decoded parts whatever transfer encoding the mailer chose), as a JSON
/// line to a file.
const HANDLER: &str = r#"
import email, json, sys, time
from email import policy
from aiosmtpd.controller import Controller

out = sys.argv[2]

class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        parts = {}
        for part in msg.walk():
            if not part.is_multipart():
                parts[part.get_content_type()] = part.get_content()
        record = {"from": envelope.mail_from, "to": envelope.rcpt_tos,
                  "subject": str(msg["subject"]), "content_type": msg.get_content_type(),
                  "parts": parts}
        with open(out, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"

controller = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

/// A real SMTP server (aiosmtpd) on loopback; stopped when dropped.
struct Smtp {
    child: Child,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Smtp {
    fn python() -> PathBuf {
        let venv = std::env::var("HINDSIGHT_SMTP_VENV")
            .unwrap_or_else(|_| "/var/tmp/hindsight-smtp-venv".to_owned());
        let python = PathBuf::from(venv).join("bin/python");
        assert!(
            python.exists(),
            "{} is missing: .ci/run installs PyPI aiosmtpd there (or set HINDSIGHT_SMTP_VENV)",
            python.display()
        );
        python
    }

    fn start(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("received.jsonl");
        let mut child = Command::new(Self::python())
            .arg("-c")
            .arg(HANDLER)
            .arg(port.to_string())
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start aiosmtpd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("aiosmtpd says ready");
        assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
        Self {
            child,
            out,
            _dir: dir,
        }
    }

    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("record"))
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn state(app: &TestApp) -> ReviewDeliveryState {
    ReviewDeliveryState::from_ref(&app.state)
}

/// Two incidents in the last complete week (one sev1 resolved in 2 h, one sev3 open), with a
/// title that must never leave the server in a webhook summary.
async fn last_week(app: &TestApp) -> String {
    app.service("checkout", "payments").await;
    let week = hindsight::reports::IsoWeek::last_complete(Utc::now().date_naive());
    let tuesday = week.monday() + Duration::days(1);
    for (n, sev, resolved) in [(1, "sev1", true), (2, "sev3", false)] {
        let started = format!("{tuesday}T10:00:00Z");
        let resolved = resolved.then(|| format!("{tuesday}T12:00:00Z"));
        sqlx::query(
            "INSERT INTO incidents (id, number, title, severity, status, service, category, team,
                started_at, detected_at, resolved_at, created_at, updated_at)
             VALUES (?, ?, 'Secret merger checkout outage', ?, 'investigating', 'checkout',
                     'deploy', 'payments', ?, ?, ?, ?, ?)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(n)
        .bind(sev)
        .bind(&started)
        .bind(&started)
        .bind(&resolved)
        .bind(&started)
        .bind(&started)
        .execute(&app.db.writer)
        .await
        .expect("incident");
    }
    week.label()
}

async fn subscribe(app: &TestApp, token: &str, body: Value) -> Value {
    let res = app
        .api(
            Method::POST,
            "/api/v1/review-subscriptions",
            Some(token),
            Some(body),
        )
        .await;
    res.assert_status(StatusCode::CREATED);
    res.json()
}

async fn send(app: &TestApp, token: &str, id: &str) -> Value {
    let res = app
        .api(
            Method::POST,
            &format!("/api/v1/review-subscriptions/{id}/send"),
            Some(token),
            None,
        )
        .await;
    res.assert_status(StatusCode::ACCEPTED);
    res.json()
}

async fn deliveries(app: &TestApp, token: &str) -> Vec<Value> {
    let res = app
        .api(
            Method::GET,
            "/api/v1/review-subscriptions",
            Some(token),
            None,
        )
        .await;
    res.assert_status(StatusCode::OK);
    res.json()["deliveries"]
        .as_array()
        .expect("deliveries")
        .clone()
}

#[tokio::test]
async fn subscriptions_are_validated_listed_and_deleted() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    for (body, fields) in [
        (
            json!({"weekday": "someday", "hour": 24, "timezone": "Mars/Olympus",
                   "emails": ["not an address"]}),
            vec!["weekday", "hour", "timezone", "emails"],
        ),
        (
            json!({"weekday": 8, "hour": -1, "timezone": "UTC", "emails": ["a@example.com"]}),
            vec!["weekday", "hour"],
        ),
        (
            json!({"weekday": "monday", "hour": 9, "timezone": "UTC"}),
            vec!["emails"],
        ),
        (
            json!({"weekday": "monday", "hour": 9, "timezone": "UTC", "emails": "a@example.com",
                   "colour": "red"}),
            vec!["emails", "colour"],
        ),
        (
            json!({"weekday": 1, "hour": 9, "timezone": "UTC", "webhook_destination": "nope"}),
            vec!["webhook_destination"],
        ),
    ] {
        let res = app
            .api(
                Method::POST,
                "/api/v1/review-subscriptions",
                Some(&token),
                Some(body.clone()),
            )
            .await;
        res.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
        let named = &res.json()["error"]["fields"];
        for f in fields {
            assert!(named.get(f).is_some(), "{body}: {named}");
        }
    }
    assert_eq!(
        app.count("review_subscriptions").await,
        0,
        "nothing half-saved"
    );

    let sub = subscribe(
        &app,
        &token,
        json!({"team": "payments", "weekday": "Friday", "hour": 16,
               "timezone": "Europe/Berlin", "emails": ["lead@example.com", "ops@example.com"]}),
    )
    .await;
    assert_eq!(sub["weekday"], 5);
    assert_eq!(sub["hour"], 16);
    assert_eq!(sub["team"], "payments");
    assert_eq!(
        sub["emails"],
        json!(["lead@example.com", "ops@example.com"])
    );
    // Friday 16:00 in Berlin is 14:00 or 15:00 UTC, within a week from now.
    let next: chrono::DateTime<Utc> = sub["next_due_at"]
        .as_str()
        .expect("next")
        .parse()
        .expect("time");
    assert!(next > Utc::now() && next <= Utc::now() + Duration::weeks(1));
    assert!(matches!(
        next.format("%H:%M").to_string().as_str(),
        "14:00" | "15:00"
    ));

    let res = app
        .api(
            Method::GET,
            "/api/v1/review-subscriptions",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(res.json()["total"], 1);
    let id = sub["id"].as_str().expect("id");
    app.api(
        Method::DELETE,
        &format!("/api/v1/review-subscriptions/{id}"),
        Some(&token),
        None,
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    app.api(
        Method::DELETE,
        &format!("/api/v1/review-subscriptions/{id}"),
        Some(&token),
        None,
    )
    .await
    .assert_status(StatusCode::NOT_FOUND);
    assert_eq!(app.count("review_subscriptions").await, 0);
}

#[tokio::test]
async fn responders_subscribe_themselves_and_only_admins_others_or_webhooks() {
    let app = TestApp::spawn().await;
    let responder = app.user(Role::Responder).await;
    let viewer = app.user(Role::Viewer).await;
    let admin = app.user(Role::Admin).await;
    let rt = app.token(&responder, Scope::Write).await;
    let body = |email: &str| json!({"weekday": 1, "hour": 9, "timezone": "UTC", "emails": [email]});
    let res = app
        .api(
            Method::POST,
            "/api/v1/review-subscriptions",
            Some(&rt),
            Some(body("someone.else@example.com")),
        )
        .await;
    res.assert_status(StatusCode::FORBIDDEN);
    let own = subscribe(&app, &rt, body(&responder.email)).await;
    let vt = app.token(&viewer, Scope::Write).await;
    app.api(
        Method::POST,
        "/api/v1/review-subscriptions",
        Some(&vt),
        Some(body(&viewer.email)),
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    // The admin sees every subscription; another responder's id is not found for the viewer.
    let at = app.token(&admin, Scope::Write).await;
    subscribe(&app, &at, body("team-list@example.com")).await;
    let all = app
        .api(Method::GET, "/api/v1/review-subscriptions", Some(&at), None)
        .await;
    assert_eq!(all.json()["total"], 2);
    let mine = app
        .api(Method::GET, "/api/v1/review-subscriptions", Some(&rt), None)
        .await;
    assert_eq!(mine.json()["total"], 1);
    let id = own["id"].as_str().expect("id");
    let other = app.user(Role::Responder).await;
    let ot = app.token(&other, Scope::Write).await;
    app.api(
        Method::POST,
        &format!("/api/v1/review-subscriptions/{id}/send"),
        Some(&ot),
        None,
    )
    .await
    .assert_status(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_review_arrives_by_email_with_both_parts_the_recipients_and_the_figures() {
    let port = free_port();
    let smtp = Smtp::start(port);
    let url = format!("smtp://127.0.0.1:{port}");
    let app = TestApp::spawn_with(&[
        ("HINDSIGHT_SMTP_URL", url.as_str()),
        ("HINDSIGHT_MAIL_FROM", "Hindsight <hindsight@example.com>"),
    ])
    .await;
    let week = last_week(&app).await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    let sub = subscribe(
        &app,
        &token,
        json!({"weekday": "mon", "hour": 9, "timezone": "UTC",
               "emails": ["lead@example.com", "ops@example.com"]}),
    )
    .await;
    let queued = send(&app, &token, sub["id"].as_str().expect("id")).await;
    assert_eq!(queued["deliveries"].as_array().map(Vec::len), Some(1));
    let log = deliveries(&app, &token).await;
    assert_eq!(
        (&log[0]["status"], &log[0]["trigger"], &log[0]["week"]),
        (&json!("pending"), &json!("test"), &json!(week))
    );

    assert_eq!(
        deliver_due(&state(&app), Utc::now()).await.expect("round"),
        1
    );
    let got = smtp.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let mail = &got[0];
    assert_eq!(mail["from"], "hindsight@example.com");
    assert_eq!(mail["to"], json!(["lead@example.com", "ops@example.com"]));
    assert_eq!(mail["content_type"], "multipart/alternative");
    assert_eq!(
        mail["subject"],
        format!("[Hindsight] Weekly review {week} · all teams")
    );
    let text = mail["parts"]["text/plain"].as_str().expect("text part");
    let html = mail["parts"]["text/html"].as_str().expect("html part");
    // The figures: 2 incidents, one sev1 and one sev3, median time to resolve 2h.
    assert!(
        text.contains("2 incidents (sev1 1, sev2 0, sev3 1, sev4 0)"),
        "{text}"
    );
    assert!(text.contains("Time to resolve (median): 2h"), "{text}");
    assert!(
        text.contains(&format!("http://localhost:3000/reports/weekly?week={week}"))
            || text.contains(&format!("/reports/weekly?week={week}"))
    );
    assert!(
        html.contains("<th align=\"left\">sev1</th><td>1</td>"),
        "{html}"
    );
    assert!(
        html.contains(&format!("/reports/weekly?week={week}")),
        "{html}"
    );
    assert!(!text.contains("Secret merger"), "no incident titles");

    let log = deliveries(&app, &token).await;
    assert_eq!(
        (&log[0]["status"], &log[0]["attempts"]),
        (&json!("delivered"), &json!(1))
    );
    // Delivered once: another round sends nothing.
    assert_eq!(
        deliver_due(&state(&app), Utc::now()).await.expect("round"),
        0
    );
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_logged_and_retried_with_backoff() {
    let port = free_port();
    let url = format!("smtp://127.0.0.1:{port}");
    let app = TestApp::spawn_with(&[
        ("HINDSIGHT_SMTP_URL", url.as_str()),
        ("HINDSIGHT_WEBHOOK_RETRY_BASE_MS", "60000"),
    ])
    .await;
    last_week(&app).await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    let sub = subscribe(
        &app,
        &token,
        json!({"weekday": 3, "hour": 7, "timezone": "UTC", "emails": ["lead@example.com"]}),
    )
    .await;
    send(&app, &token, sub["id"].as_str().expect("id")).await;
    // Nothing listens: the attempt fails, is logged, and waits (60 s) before the next.
    let now = Utc::now();
    assert_eq!(deliver_due(&state(&app), now).await.expect("round"), 1);
    let log = deliveries(&app, &token).await;
    assert_eq!(
        (&log[0]["status"], &log[0]["attempts"]),
        (&json!("pending"), &json!(1))
    );
    let error = log[0]["last_error"].as_str().expect("error");
    assert!(error.contains("refused or did not answer"), "{error}");
    assert_eq!(
        deliver_due(&state(&app), now).await.expect("round"),
        0,
        "backing off"
    );

    // The server comes up; the retry (after the backoff) gets through.
    let smtp = Smtp::start(port);
    assert_eq!(
        deliver_due(&state(&app), now + Duration::seconds(61))
            .await
            .expect("round"),
        1
    );
    assert_eq!(smtp.received().len(), 1);
    let log = deliveries(&app, &token).await;
    assert_eq!(
        (&log[0]["status"], &log[0]["attempts"]),
        (&json!("delivered"), &json!(2))
    );
}

#[tokio::test]
async fn a_missed_schedule_is_sent_once_when_the_server_is_back() {
    let app = TestApp::spawn().await;
    last_week(&app).await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    let sub = subscribe(
        &app,
        &token,
        json!({"weekday": 1, "hour": 9, "timezone": "Europe/Berlin",
               "emails": ["lead@example.com"]}),
    )
    .await;
    let id = sub["id"].as_str().expect("id");
    let now = Utc::now();
    // Not due yet: nothing queued.
    assert_eq!(schedule_due(&state(&app), now).await.expect("round"), 0);
    // The server was down for three weekly hours.
    let missed = hindsight::db::ts(now - Duration::weeks(3));
    sqlx::query("UPDATE review_subscriptions SET next_due_at = ? WHERE id = ?")
        .bind(&missed)
        .bind(id)
        .execute(&app.db.writer)
        .await
        .expect("rewind");
    assert_eq!(schedule_due(&state(&app), now).await.expect("round"), 1);
    assert_eq!(
        schedule_due(&state(&app), now).await.expect("round"),
        0,
        "once"
    );
    let log = deliveries(&app, &token).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["trigger"], "schedule");
    let res = app
        .api(
            Method::GET,
            "/api/v1/review-subscriptions",
            Some(&token),
            None,
        )
        .await;
    let next: chrono::DateTime<Utc> = res.json()["items"][0]["next_due_at"]
        .as_str()
        .expect("next")
        .parse()
        .expect("time");
    assert!(next > now && next <= now + Duration::weeks(1), "{next}");
}

#[tokio::test]
async fn the_webhook_gets_a_slack_summary_with_a_link_and_no_titles() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let week = last_week(&app).await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    // A loopback receiver that answers 200 and hands over the request.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let received = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.expect("accept");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock.read(&mut chunk).await.expect("read");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .expect("answer");
                    return text;
                }
            }
            if n == 0 {
                return text;
            }
        }
    });
    let form = app
        .post_form(
            "/admin/integrations",
            Some(&admin),
            &[
                ("name", "ops channel"),
                ("url", &hook),
                ("format", "slack"),
                ("event_incident_opened", "on"),
                ("tier_page", "on"),
            ],
        )
        .await;
    form.assert_status(StatusCode::CREATED);
    let dest: String = sqlx::query_scalar("SELECT id FROM webhook_destinations")
        .fetch_one(&app.db.reader)
        .await
        .expect("destination");
    let sub = subscribe(
        &app,
        &token,
        json!({"weekday": 1, "hour": 9, "timezone": "UTC", "webhook_destination": dest}),
    )
    .await;
    assert_eq!(sub["webhook_destination_name"], "ops channel");
    send(&app, &token, sub["id"].as_str().expect("id")).await;
    let egress = hindsight::notifications::egress::Egress {
        allow_private: hindsight::notifications::egress::parse_ranges("127.0.0.0/8")
            .expect("ranges"),
    };
    let sent = hindsight::notifications::deliver_due(
        &app.db,
        "https://hindsight.example.com",
        std::time::Duration::from_secs(60),
        &egress,
    )
    .await
    .expect("round");
    assert_eq!(sent, 1);
    let request = received.await.expect("request");
    let body = request.split_once("\r\n\r\n").expect("body").1;
    let v: Value = serde_json::from_str(body).expect("json");
    let text = v["text"].as_str().expect("slack text");
    assert!(
        text.contains(&format!("Weekly review {week} (all teams): 2 incidents")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "<https://hindsight.example.com/reports/weekly?week={week}|open in Hindsight>"
        )),
        "{text}"
    );
    assert!(!request.contains("Secret merger"), "no incident titles");
    assert!(
        request
            .to_ascii_lowercase()
            .contains("x-hindsight-signature")
    );
    let log = deliveries(&app, &token).await;
    assert_eq!(
        (&log[0]["channel"], &log[0]["status"], &log[0]["target"]),
        (
            &json!("webhook"),
            &json!("delivered"),
            &json!("ops channel")
        )
    );

    // Deleting the destination leaves the subscription with nowhere to go: the log says so.
    let deleted = app
        .post_form(
            &format!("/admin/integrations/destinations/{dest}/delete"),
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    send(&app, &token, sub["id"].as_str().expect("id")).await;
    let log = deliveries(&app, &token).await;
    assert_eq!(log[0]["status"], "failed");
    assert!(
        log[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("webhook destination was deleted")),
        "{log:?}"
    );
}

#[tokio::test]
async fn the_settings_page_subscribes_sends_a_test_and_shows_the_log() {
    let app = TestApp::spawn().await;
    let responder = app.user(Role::Responder).await;
    let page = app
        .get("/reports/weekly/subscriptions", Some(&responder))
        .await;
    page.assert_status(StatusCode::OK);
    assert!(page.body.contains("Weekly review subscriptions"));
    assert!(
        page.body.contains(&responder.email),
        "own address prefilled"
    );
    assert!(!page.body.contains("Webhook destination"), "admins only");
    let bad = app
        .post_form(
            "/reports/weekly/subscriptions",
            Some(&responder),
            &[
                ("team", ""),
                ("weekday", "1"),
                ("hour", "9"),
                ("timezone", "Nowhere/Special"),
                ("emails", &responder.email),
            ],
        )
        .await;
    bad.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("must be an IANA time zone"));
    assert!(
        bad.body.contains("Nowhere/Special"),
        "what was typed is kept"
    );
    let ok = app
        .post_form(
            "/reports/weekly/subscriptions",
            Some(&responder),
            &[
                ("team", ""),
                ("weekday", "2"),
                ("hour", "8"),
                ("timezone", "America/New_York"),
                ("emails", &responder.email),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let id: String = sqlx::query_scalar("SELECT id FROM review_subscriptions")
        .fetch_one(&app.db.reader)
        .await
        .expect("subscription");
    let sent = app
        .post_form(
            &format!("/reports/weekly/subscriptions/{id}/send"),
            Some(&responder),
            &[],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    let page = app
        .get("/reports/weekly/subscriptions", Some(&responder))
        .await;
    assert!(
        page.body.contains("Tuesday 08:00 America/New_York"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Delivery log"));
    assert!(page.body.contains(&format!("email: {}", responder.email)));
    assert!(page.body.contains(">pending<"));
    // Linked from the weekly review.
    let review = app.get("/reports/weekly", Some(&responder)).await;
    assert!(
        review
            .body
            .contains("href=\"/reports/weekly/subscriptions\"")
    );
}
