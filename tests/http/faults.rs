//! The faults of a bad day: a full disk, a database locked by another process, a read-only
//! database. Each gets its own answer (never `500 internal`), and the writer heals itself:
//! the next write after the fault passes succeeds without a restart.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;
use sqlx::Connection;

use crate::common::TestApp;
use hindsight::auth::{Role, Scope};
use hindsight::db::DbOptions;

/// Pages in the database file, from its header (the file is closed and checkpointed).
fn page_count(path: &std::path::Path) -> u64 {
    let bytes = std::fs::read(path).expect("read the database file");
    u64::from(u32::from_be_bytes([bytes[28], bytes[29], bytes[30], bytes[31]]))
}

fn incident(i: usize) -> serde_json::Value {
    json!({
        "title": format!("Checkout down {i}"),
        "severity": "sev2",
        "service": "checkout",
        "category": "deploy",
        // Large enough that a few incidents fill the few pages left.
        "summary": "The payment pool ran dry. ".repeat(150),
    })
}

async fn metric(app: &TestApp, line_start: &str) -> Option<f64> {
    let text = app.get("/metrics", None).await.body;
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn a_full_disk_answers_507_and_the_next_write_after_space_returns_succeeds() {
    let app = TestApp::spawn_with_db(
        &[],
        Some(|path: &std::path::Path| DbOptions {
            // A handful of pages more than the empty schema: the database fills quickly, the
            // way a small disk does (SQLITE_FULL).
            max_page_count: Some(page_count(path) + 40),
            ..DbOptions::default()
        }),
    )
    .await;
    app.service("checkout", "Storefront").await;
    let responder = app.user(Role::Responder).await;
    let token = app.token(&responder, Scope::Write).await;

    let mut acknowledged = Vec::new();
    let mut full = None;
    for i in 0..500 {
        let response = app
            .api(Method::POST, "/api/v1/incidents", Some(&token), Some(incident(i)))
            .await;
        match response.status {
            StatusCode::CREATED => acknowledged.push(response.json()["id"].clone()),
            _ => {
                full = Some(response);
                break;
            }
        }
    }
    let full = full.expect("the database fills up");
    full.assert_status(StatusCode::INSUFFICIENT_STORAGE);
    let body = full.json();
    assert_eq!(body["error"]["code"], "disk_full", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Hindsight cannot save right now: the disk holding its database is full")),
        "{body}"
    );
    assert!(full.header("retry-after").parse::<u64>().is_ok());
    assert!(!acknowledged.is_empty(), "some writes fit before the disk filled");

    // Still full: the same clear answer again, not a broken connection's 500.
    for i in 0..3 {
        let again = app
            .api(Method::POST, "/api/v1/incidents", Some(&token), Some(incident(1000 + i)))
            .await;
        again.assert_status(StatusCode::INSUFFICIENT_STORAGE);
    }
    assert!(
        metric(&app, "hindsight_db_write_failures_total{cause=\"disk_full\"}")
            .await
            .is_some_and(|n| n >= 4.0),
        "the refused writes are counted by cause"
    );
    assert_eq!(metric(&app, "hindsight_db_writes_failing").await, Some(1.0));

    // Space returns (the cap is raised on the writer): the very next write succeeds.
    sqlx::query("PRAGMA max_page_count = 1000000")
        .execute(&app.db.writer)
        .await
        .expect("raise the cap");
    let after = app
        .api(Method::POST, "/api/v1/incidents", Some(&token), Some(incident(2000)))
        .await;
    after.assert_status(StatusCode::CREATED);
    acknowledged.push(after.json()["id"].clone());
    assert_eq!(metric(&app, "hindsight_db_writes_failing").await, Some(0.0));
    app.get("/readyz", None).await.assert_status(StatusCode::OK);

    // Nothing acknowledged was lost.
    for id in &acknowledged {
        let id = id.as_str().expect("id");
        app.api(Method::GET, &format!("/api/v1/incidents/{id}"), Some(&token), None)
            .await
            .assert_status(StatusCode::OK);
    }
    assert_eq!(app.count("incidents").await, acknowledged.len() as i64);
}

/// Holds the write lock from another connection, as an operator's `sqlite3` with
/// `BEGIN IMMEDIATE` does.
async fn lock_database(app: &TestApp) -> sqlx::SqliteConnection {
    let path = app.db.path().expect("a file database").to_owned();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("second connection");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .expect("take the write lock");
    conn
}

#[tokio::test]
async fn a_database_locked_by_another_process_answers_503_with_retry_after_and_recovers() {
    let app = TestApp::spawn_with_db(
        &[],
        Some(|_: &std::path::Path| DbOptions {
            busy_timeout: Duration::from_millis(200),
            ..DbOptions::default()
        }),
    )
    .await;
    app.service("checkout", "Storefront").await;
    let responder = app.user(Role::Responder).await;
    let token = app.token(&responder, Scope::Write).await;

    let mut lock = lock_database(&app).await;
    let started = std::time::Instant::now();
    let refused = app
        .api(Method::POST, "/api/v1/incidents", Some(&token), Some(incident(1)))
        .await;
    refused.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused after the busy timeout, not left hanging"
    );
    assert_eq!(refused.header("retry-after"), "5");
    let body = refused.json();
    assert_eq!(body["error"]["code"], "database_busy", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("locked by another program")),
        "{body}"
    );

    // A page's form: the message as a banner, and everything typed kept to send again.
    let page = app
        .post_form(
            "/incidents",
            Some(&responder),
            &[
                ("title", "Checkout returns 502 & worse"),
                ("severity", "sev1"),
                ("service", "checkout"),
                ("category", "deploy"),
                ("summary", "Pool <exhausted> after the deploy"),
            ],
        )
        .await;
    page.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.body.contains("class=\"flash flash-error\""), "{}", page.body);
    assert!(page.body.contains("locked by another program"));
    assert!(page.body.contains("action=\"/incidents\""));
    assert!(
        page.body.contains("Checkout returns 502 &#38; worse")
            || page.body.contains("Checkout returns 502 &amp; worse"),
        "the typed title is kept: {}",
        page.body
    );
    assert!(
        page.body.contains("Pool &#60;exhausted&#62;") || page.body.contains("Pool &lt;exhausted&gt;"),
        "the typed summary is kept, escaped"
    );
    assert_eq!(page.header("retry-after"), "5");

    sqlx::query("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("release the lock");
    app.api(Method::POST, "/api/v1/incidents", Some(&token), Some(incident(2)))
        .await
        .assert_status(StatusCode::CREATED);
    assert_eq!(app.count("incidents").await, 1);
}

#[tokio::test]
async fn readyz_fails_while_writes_are_refused_and_recovers_by_itself_when_the_fault_passes() {
    let app = TestApp::spawn_with_db(
        &[],
        Some(|_: &std::path::Path| DbOptions {
            busy_timeout: Duration::from_millis(200),
            ..DbOptions::default()
        }),
    )
    .await;
    app.service("checkout", "Storefront").await;
    let responder = app.user(Role::Responder).await;
    let token = app.token(&responder, Scope::Write).await;
    let ready = app.get("/readyz", None).await;
    ready.assert_status(StatusCode::OK);
    assert!(ready.json()["disk_free_bytes"].as_u64().is_some_and(|b| b > 0));

    let mut lock = lock_database(&app).await;
    app.api(Method::POST, "/api/v1/incidents", Some(&token), Some(incident(1)))
        .await
        .assert_status(StatusCode::SERVICE_UNAVAILABLE);
    let ready = app.get("/readyz", None).await;
    ready.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    let body = ready.json();
    assert_eq!(body["reason"], "busy", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("locked")));

    // The lock goes away; no user writes, yet readiness comes back (its own probe write).
    sqlx::query("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("release the lock");
    let ready = app.get("/readyz", None).await;
    ready.assert_status(StatusCode::OK);
    assert_eq!(ready.json()["status"], "ready");
}

#[tokio::test]
async fn a_read_only_database_answers_503_not_500() {
    let app = TestApp::spawn().await;
    // The same database opened read-only refuses writes with SQLITE_READONLY.
    let path = app.db.path().expect("a file database").to_owned();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("read-only connection");
    let err = sqlx::query("INSERT INTO write_probe (id, at) VALUES (1, 'x')")
        .execute(&mut conn)
        .await
        .expect_err("a read-only connection cannot write");
    let err = hindsight::error::AppError::from(err);
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(err.code(), "database_read_only");
    assert!(err.public_message().contains("cannot be written"));
}

#[tokio::test]
async fn request_logs_name_the_caller_by_id_only() {
    // The span fields are declared where the request span is made and filled by the
    // extractors; here: the source declares them and records only ids.
    let middleware =
        std::fs::read_to_string("src/web/middleware.rs").expect("read the middleware");
    assert!(middleware.contains("user_id = tracing::field::Empty"));
    assert!(middleware.contains("token_id = tracing::field::Empty"));
    let extract = std::fs::read_to_string("src/web/extract.rs").expect("read the extractors");
    let recorded: Vec<&str> = extract
        .lines()
        .filter(|l| l.contains("log_caller("))
        .collect();
    assert!(recorded.len() >= 3, "{recorded:?}");
    for line in recorded {
        assert!(
            !line.contains("email") && !line.contains("name") && !line.contains("secret"),
            "only ids are logged: {line}"
        );
    }
}

#[tokio::test]
async fn the_self_alert_on_write_failures_ships_enabled() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let page = app.get("/alerts/rules", Some(&admin)).await;
    page.assert_status(StatusCode::OK);
    assert!(page.body.contains("Hindsight cannot save: writes are failing"));
    assert!(page.body.contains("hindsight-writes"));
    let rules = hindsight::alerts::db::list_rules(&app.db.reader)
        .await
        .expect("rules");
    let rule = rules
        .iter()
        .find(|r| r.service == "hindsight-writes")
        .expect("the default rule");
    assert!(rule.enabled);
}

#[tokio::test]
async fn a_failed_write_fires_the_self_alert() {
    let app = TestApp::spawn_with_db(
        &[],
        Some(|_: &std::path::Path| DbOptions {
            busy_timeout: Duration::from_millis(100),
            ..DbOptions::default()
        }),
    )
    .await;
    app.service("checkout", "Storefront").await;
    let responder = app.user(Role::Responder).await;
    let token = app.token(&responder, Scope::Write).await;
    let mut lock = lock_database(&app).await;
    app.api(Method::POST, "/api/v1/incidents", Some(&token), Some(incident(1)))
        .await
        .assert_status(StatusCode::SERVICE_UNAVAILABLE);
    sqlx::query("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("release");
    let outcomes = app
        .state
        .alert_evaluator
        .tick(&app.db, &app.state.signals, hindsight::signals::now_ms())
        .await
        .expect("tick");
    assert!(
        outcomes
            .iter()
            .any(|o| o.rule_id == "hindsight-write-failures"),
        "{outcomes:?}"
    );
    let alerts = app.get("/alerts", Some(&responder)).await;
    assert!(alerts.body.contains("Hindsight cannot save: writes are failing"));
}
