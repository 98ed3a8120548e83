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
    u64::from(u32::from_be_bytes([
        bytes[28], bytes[29], bytes[30], bytes[31],
    ]))
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
            .api(
                Method::POST,
                "/api/v1/incidents",
                Some(&token),
                Some(incident(i)),
            )
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
        body["error"]["message"].as_str().is_some_and(|m| m
            .contains("Hindsight cannot save right now: the disk holding its database is full")),
        "{body}"
    );
    assert!(full.header("retry-after").parse::<u64>().is_ok());
    assert!(
        !acknowledged.is_empty(),
        "some writes fit before the disk filled"
    );

    // Still full: the same clear answer again, not a broken connection's 500.
    for i in 0..3 {
        let again = app
            .api(
                Method::POST,
                "/api/v1/incidents",
                Some(&token),
                Some(incident(1000 + i)),
            )
            .await;
        again.assert_status(StatusCode::INSUFFICIENT_STORAGE);
    }
    assert!(
        metric(
            &app,
            "hindsight_db_write_failures_total{cause=\"disk_full\"}"
        )
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
        .api(
            Method::POST,
            "/api/v1/incidents",
            Some(&token),
            Some(incident(2000)),
        )
        .await;
    after.assert_status(StatusCode::CREATED);
    acknowledged.push(after.json()["id"].clone());
    assert_eq!(metric(&app, "hindsight_db_writes_failing").await, Some(0.0));
    app.get("/readyz", None).await.assert_status(StatusCode::OK);

    // Nothing acknowledged was lost.
    for id in &acknowledged {
        let id = id.as_str().expect("id");
        app.api(
            Method::GET,
            &format!("/api/v1/incidents/{id}"),
            Some(&token),
            None,
        )
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
        .api(
            Method::POST,
            "/api/v1/incidents",
            Some(&token),
            Some(incident(1)),
        )
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
    assert!(
        page.body.contains("class=\"flash flash-error\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("locked by another program"));
    assert!(page.body.contains("action=\"/incidents\""));
    assert!(
        page.body.contains("Checkout returns 502 &#38; worse")
            || page.body.contains("Checkout returns 502 &amp; worse"),
        "the typed title is kept: {}",
        page.body
    );
    assert!(
        page.body.contains("Pool &#60;exhausted&#62;")
            || page.body.contains("Pool &lt;exhausted&gt;"),
        "the typed summary is kept, escaped"
    );
    assert_eq!(page.header("retry-after"), "5");

    sqlx::query("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("release the lock");
    app.api(
        Method::POST,
        "/api/v1/incidents",
        Some(&token),
        Some(incident(2)),
    )
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
    assert!(
        ready.json()["disk_free_bytes"]
            .as_u64()
            .is_some_and(|b| b > 0)
    );

    let mut lock = lock_database(&app).await;
    app.api(
        Method::POST,
        "/api/v1/incidents",
        Some(&token),
        Some(incident(1)),
    )
    .await
    .assert_status(StatusCode::SERVICE_UNAVAILABLE);
    let ready = app.get("/readyz", None).await;
    ready.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    let body = ready.json();
    assert_eq!(body["reason"], "busy", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("locked"))
    );

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

/// Collects what the logger writes, for the test that reads the request log.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn request_log_lines_name_the_caller_by_user_and_token_id_only() {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    let responder = app.user(Role::Responder).await;
    let token = app.token(&responder, Scope::Write).await;
    let token_id: String = sqlx::query_scalar("SELECT id FROM api_tokens")
        .fetch_one(&app.db.reader)
        .await
        .expect("token id");
    let logs = LogBuffer::default();
    // A second registered dispatcher, alive for the whole test, so tracing caches each log
    // call's interest as "ask every time" rather than as "never": with only one registered
    // dispatcher, the first thread to reach a log call decides for all threads, and another
    // test's thread (which has no subscriber) would switch off this test's "request done".
    let _others = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    // The same JSON format the server logs in (`cli::init_tracing`), on this test's thread.
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    app.api(
        Method::POST,
        "/api/v1/incidents",
        Some(&token),
        Some(incident(1)),
    )
    .await
    .assert_status(StatusCode::CREATED);
    app.get("/incidents", Some(&responder))
        .await
        .assert_status(StatusCode::OK);

    let text = String::from_utf8(logs.0.lock().expect("log lock").clone()).expect("utf8");
    let done: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|l: &serde_json::Value| l["fields"]["message"] == "request done")
        .collect();
    assert_eq!(done.len(), 2, "{text}");
    let api = &done[0]["span"];
    assert_eq!(api["user_id"], responder.id.as_str(), "{text}");
    assert_eq!(api["token_id"], token_id.as_str(), "{text}");
    let page = &done[1]["span"];
    assert_eq!(page["user_id"], responder.id.as_str(), "{text}");
    assert!(page.get("token_id").is_none(), "{text}");
    for secret in [
        token.as_str(),
        responder.email.as_str(),
        responder.name.as_str(),
        responder.cookie.as_str(),
    ] {
        assert!(
            !text.contains(secret),
            "{secret:?} must never be logged: {text}"
        );
    }
}

#[tokio::test]
async fn the_self_alert_on_write_failures_ships_enabled() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let page = app.get("/alerts/rules", Some(&admin)).await;
    page.assert_status(StatusCode::OK);
    assert!(
        page.body
            .contains("Hindsight cannot save: writes are failing")
    );
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
    app.api(
        Method::POST,
        "/api/v1/incidents",
        Some(&token),
        Some(incident(1)),
    )
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
    assert!(
        alerts
            .body
            .contains("Hindsight cannot save: writes are failing")
    );
}

/// Runs the real binary against `db` with `args`; returns (success, stderr).
fn run_binary(db: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hindsight"))
        .args(args)
        .env(
            "HINDSIGHT_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        )
        .env("HINDSIGHT_LOG_FORMAT", "pretty")
        .env("HINDSIGHT_BIND", "127.0.0.1:0")
        .output()
        .expect("hindsight runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_damaged_database_stops_startup_naming_the_file_and_how_to_restore_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("hindsight.db");
    let (ok, err) = run_binary(&db, &["migrate"]);
    assert!(ok, "{err}");
    let bytes = std::fs::read(&db).expect("read");

    // Truncated: the header promises more pages than the file holds.
    std::fs::write(&db, &bytes[..bytes.len() / 2]).expect("truncate");
    let (ok, err) = run_binary(&db, &["migrate"]);
    assert!(!ok);
    for needle in [
        db.display().to_string().as_str(),
        "damaged",
        "truncated",
        "hindsight backup",
        "litestream restore",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from: {err}");
    }

    // A bad header.
    let mut bad = bytes;
    bad[..16].copy_from_slice(b"not a database!!");
    std::fs::write(&db, &bad).expect("write");
    let (ok, err) = run_binary(&db, &["serve"]);
    assert!(!ok);
    assert!(
        err.contains(&db.display().to_string()) && err.contains("SQLite header"),
        "{err}"
    );
    assert!(
        !err.contains("file is not a database"),
        "no raw SQLite error: {err}"
    );
}

#[test]
fn a_read_only_database_directory_stops_startup_naming_the_path_and_the_permission() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).expect("mkdir");
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        // Permission bits do not stop root: a read-only mount does.
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
            .arg(&ro)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("skipped: running as root without permission to mount a read-only tmpfs");
            return;
        }
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    }
    let db = ro.join("hindsight.db");
    let (ok, err) = run_binary(&db, &["serve"]);
    if root {
        let _ = std::process::Command::new("umount").arg(&ro).status();
    }
    assert!(!ok, "must not start");
    assert!(
        err.contains(&ro.display().to_string()),
        "names the directory: {err}"
    );
    assert!(
        err.contains("read-only file system") || err.contains("permission denied"),
        "names the permission: {err}"
    );
    assert!(err.contains("write permission"), "{err}");
}

#[test]
fn sigterm_under_write_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("hindsight.db");
    let bin = env!("CARGO_BIN_EXE_hindsight");
    let url = format!("sqlite://{}", db.display());
    let cmd = |args: &[&str]| {
        let mut c = std::process::Command::new(bin);
        c.args(args)
            .env("HINDSIGHT_DATABASE_URL", &url)
            .env("HINDSIGHT_LOG_FORMAT", "pretty");
        c
    };
    let mut create = cmd(&[
        "user",
        "create",
        "--email",
        "a@example.com",
        "--name",
        "A",
        "--role",
        "admin",
        "--password-stdin",
    ]);
    create
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = create.spawn().expect("user create");
    std::io::Write::write_all(
        &mut child.stdin.take().expect("stdin"),
        b"a long enough password\n",
    )
    .expect("password");
    assert!(child.wait().expect("wait").success());
    let token = String::from_utf8(
        cmd(&[
            "token",
            "create",
            "--user",
            "a@example.com",
            "--name",
            "t",
            "--scope",
            "write",
        ])
        .output()
        .expect("token")
        .stdout,
    )
    .expect("utf8")
    .trim()
    .to_owned();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    // The log goes to a file: a pipe nobody reads while the test runs would fill and stall
    // the server.
    let log_path = dir.path().join("server.log");
    let serve = || {
        let log = std::fs::File::create(&log_path).expect("log file");
        cmd(&["serve"])
            .env("HINDSIGHT_BIND", format!("127.0.0.1:{port}"))
            .env("HINDSIGHT_DRAIN_SECONDS", "10")
            .stderr(log)
            .spawn()
            .expect("serve")
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let wait_up = |agent: &ureq::Agent| {
        for _ in 0..200 {
            if agent.get(format!("{base}/healthz")).call().is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not start");
    };
    let mut server = serve();
    wait_up(&agent);
    agent
        .post(format!("{base}/api/v1/services"))
        .header("Authorization", format!("Bearer {token}"))
        .send_json(json!({"name": "checkout", "team": "Storefront"}))
        .expect("service");

    // Four writers until the server is gone; each keeps the ids it was told were saved.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let statuses = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u16>::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (agent, base, token) = (agent.clone(), base.clone(), token.clone());
            let (acked, statuses) = (acked.clone(), statuses.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    let Ok(mut r) = agent
                        .post(format!("{base}/api/v1/incidents"))
                        .header("Authorization", format!("Bearer {token}"))
                        .send_json(incident(w * 100_000 + i))
                    else {
                        break; // connection refused: the server has stopped
                    };
                    let status = r.status().as_u16();
                    statuses.lock().expect("lock").push(status);
                    if status == 201 {
                        let body: serde_json::Value = r.body_mut().read_json().expect("json");
                        acked
                            .lock()
                            .expect("lock")
                            .push(body["id"].as_str().expect("id").to_owned());
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = server.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let exit = server.wait().expect("server exits");
    for w in writers {
        w.join().expect("writer");
    }
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(exit.success(), "clean exit: {log}");
    assert!(log.contains("WAL checkpointed"), "{log}");
    let wal = std::fs::metadata(db.with_extension("db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "the WAL was checkpointed into the database");
    let statuses = statuses.lock().expect("lock").clone();
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 503),
        "only saved or 503: {statuses:?}"
    );
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() > 10, "writes went through before SIGTERM");

    // Restart: every acknowledged write is there.
    let mut server = serve();
    wait_up(&agent);
    for id in &acked {
        let status = agent
            .get(format!("{base}/api/v1/incidents/{id}"))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .expect("get")
            .status()
            .as_u16();
        assert_eq!(status, 200, "acknowledged incident {id} is present");
    }
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test]
async fn low_disk_space_warns_admins_on_their_pages_and_clears_when_space_returns() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let responder = app.user(Role::Responder).await;
    let mut last_logged = None;
    // A threshold above any real free space: the warning must be up.
    hindsight::cli::check_disk(&app.db, u64::MAX, &mut last_logged);
    assert!(last_logged.is_some(), "the warning was logged");
    let page = app.get("/incidents", Some(&admin)).await;
    assert!(page.body.contains("Low disk space"), "{}", page.body);
    assert!(page.body.contains("HINDSIGHT_DISK_WARN_MB"));
    let page = app.get("/incidents", Some(&responder)).await;
    assert!(!page.body.contains("Low disk space"), "only admins see it");
    // Space is back (a threshold of one byte): the banner goes.
    hindsight::cli::check_disk(&app.db, 1, &mut last_logged);
    let page = app.get("/incidents", Some(&admin)).await;
    assert!(!page.body.contains("Low disk space"));
}
