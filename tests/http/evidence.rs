//! Evidence from chat: importing a Slack export (per-day files, the zip), pasted text and
//! CSV; masking; malformed and hostile files refused whole; promoting messages to the
//! timeline with markers the post-mortem shows.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use hindsight::auth::{Role, Scope};
use serde_json::{Value, json};

use crate::common::{HOST, ORIGIN, TestApp, TestResponse, TestUser, markup_only};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/http/fixtures/slack");

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{path}")).expect("fixture")
}

async fn setup() -> (TestApp, TestUser, String) {
    let app = TestApp::spawn().await;
    app.service("checkout", "").await;
    let responder = app.user(Role::Responder).await;
    let token = app.token(&responder, Scope::Write).await;
    app.declare(
        &token,
        json!({"title": "Checkout down", "severity": "sev1", "service": "checkout", "category": "unknown"}),
    )
    .await;
    (app, responder, token)
}

/// The import form as a browser posts it: fields, then files.
async fn upload(
    app: &TestApp,
    user: &TestUser,
    fields: &[(&str, &str)],
    files: &[(&str, Vec<u8>)],
) -> TestResponse {
    let boundary = "----hindsight-test-boundary";
    let mut body: Vec<u8> = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let req = Request::post("/incidents/INC-1/evidence")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, ORIGIN)
        .header("sec-fetch-site", "same-origin")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header(header::COOKIE, &user.cookie)
        .body(Body::from(body))
        .expect("request");
    app.send(req).await
}

async fn messages(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app
        .api(
            Method::GET,
            "/api/v1/incidents/INC-1/evidence",
            Some(token),
            None,
        )
        .await;
    r.assert_status(StatusCode::OK);
    r.json()["items"].as_array().cloned().expect("items")
}

fn by_text<'a>(list: &'a [Value], needle: &str) -> &'a Value {
    list.iter()
        .find(|m| m["text"].as_str().is_some_and(|t| t.contains(needle)))
        .unwrap_or_else(|| panic!("no message with {needle:?} in {list:?}"))
}

#[tokio::test]
async fn a_slack_channel_export_is_imported_for_a_date_range_with_threads_edits_bots_and_files() {
    let (app, responder, token) = setup().await;
    let r = upload(
        &app,
        &responder,
        &[
            ("source", "slack"),
            ("day", "2026-11-20"),
            ("until", "2026-11-20"),
        ],
        &[
            ("users.json", fixture("users.json")),
            (
                "2026-11-20.json",
                fixture("incident-checkout/2026-11-20.json"),
            ),
            (
                "2026-11-21.json",
                fixture("incident-checkout/2026-11-21.json"),
            ),
        ],
    )
    .await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/incidents/INC-1/evidence");
    let list = messages(&app, &token).await;
    // The join is left out, the edit replaced its message, the next day is outside the range.
    assert_eq!(list.len(), 6, "{list:#?}");
    assert!(
        !list
            .iter()
            .any(|m| m["text"].as_str().unwrap_or("").contains("joined"))
    );
    assert!(
        !list
            .iter()
            .any(|m| m["text"].as_str().unwrap_or("").contains("Next day"))
    );
    let bot = by_text(&list, "FIRING");
    assert_eq!(bot["author"], "PagerBot");
    let start = by_text(&list, "throwing 502s");
    assert_eq!(start["author"], "ana");
    assert_eq!(
        start["thread_ts"],
        Value::Null,
        "a thread's first message is not a reply"
    );
    assert!(
        start["text"]
            .as_str()
            .expect("text")
            .starts_with("@Bo Chen checkout"),
        "{start}"
    );
    let reply = by_text(&list, "pool is at 2");
    assert_eq!(reply["author"], "Bo Chen", "named from users.json");
    assert_eq!(reply["thread_ts"], "1795167660.000300");
    let link = by_text(&list, "db pool dashboard");
    assert_eq!(link["edited"], true);
    assert!(
        link["text"]
            .as_str()
            .expect("t")
            .contains("(https://grafana.example.test/d/db)")
    );
    let decision = by_text(&list, "roll back release 42");
    assert!(
        decision["text"]
            .as_str()
            .expect("t")
            .contains("approved by"),
        "the edit wins"
    );
    assert_eq!(decision["files"], "pool-graph.png");
    // Masked before saving: the Slack token, the e-mail address and the phone number.
    let all = serde_json::to_string(&list).expect("json");
    for secret in ["xoxb-123456789012", "ana@example.com", "555 0100"] {
        assert!(!all.contains(secret), "{secret} was stored");
    }
    assert!(all.contains("[Slack token masked]") && all.contains("[e-mail masked]"));
    // The page warned with the counts (the flash rides on the redirect).
    let flash = r.header("set-cookie");
    assert!(
        flash.contains("Masked") || flash.contains("masked"),
        "{flash}"
    );
    let page = app.get("/incidents/INC-1/evidence", Some(&responder)).await;
    page.assert_status(StatusCode::OK);
    assert!(page.body.contains("pool is at 2 connections"));
    // Searchable: full text over author and text.
    let found = app
        .api(
            Method::GET,
            "/api/v1/incidents/INC-1/evidence?q=rollback+OR",
            Some(&token),
            None,
        )
        .await;
    found.assert_status(StatusCode::OK);
    let found = app
        .api(
            Method::GET,
            "/api/v1/incidents/INC-1/evidence?q=dashb",
            Some(&token),
            None,
        )
        .await
        .json();
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1), "{found}");
    // A second import of the same files adds nothing.
    upload(
        &app,
        &responder,
        &[("source", "slack")],
        &[(
            "2026-11-20.json",
            fixture("incident-checkout/2026-11-20.json"),
        )],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    assert_eq!(messages(&app, &token).await.len(), 6);
}

#[tokio::test]
async fn the_export_zip_is_read_whole() {
    let (app, responder, token) = setup().await;
    let r = upload(
        &app,
        &responder,
        &[("source", "slack")],
        &[("export.zip", fixture("export.zip"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let list = messages(&app, &token).await;
    assert_eq!(list.len(), 7);
    assert_eq!(by_text(&list, "pool is at 2")["author"], "Bo Chen");
    // A damaged zip is refused by name.
    let mut broken = fixture("export.zip");
    broken.truncate(broken.len() / 2);
    let r = upload(
        &app,
        &responder,
        &[("source", "slack")],
        &[("export.zip", broken)],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("export.zip: not a readable zip archive"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn malformed_and_hostile_files_are_refused_by_file_and_line_with_nothing_half_imported() {
    let (app, responder, token) = setup().await;
    for (dir, says) in [
        ("bad-json", "2026-11-20.json: line 3, column"),
        (
            "wrong-types",
            "2026-11-20.json: entry 2: `ts` must be a string",
        ),
        (
            "huge-text",
            "2026-11-20.json: entry 1: `text` is longer than 20000 characters",
        ),
    ] {
        let r = upload(
            &app,
            &responder,
            &[("source", "slack")],
            &[(
                "2026-11-20.json",
                fixture(&format!("malformed/{dir}/2026-11-20.json")),
            )],
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{dir}: {}",
            r.body
        );
        assert!(
            r.body.contains(&says.replace('`', "&#96;")) || r.body.contains(says),
            "{dir}: {}",
            r.body
        );
        assert!(r.body.contains("Nothing was imported"));
    }
    // `wrong-types` has a valid first entry: it was not kept either.
    assert_eq!(app.count("chat_messages").await, 0);
    // A file that is not an export at all.
    let r = upload(
        &app,
        &responder,
        &[("source", "slack")],
        &[("notes.txt", b"hello".to_vec())],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Script tags and javascript: links are kept as text, never as markup.
    upload(
        &app,
        &responder,
        &[("source", "slack")],
        &[(
            "2026-11-20.json",
            fixture("malformed/hostile/2026-11-20.json"),
        )],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    for path in ["/incidents/INC-1/evidence", "/incidents/INC-1"] {
        let page = app.get(path, Some(&responder)).await;
        let markup = markup_only(&page.body);
        assert!(!markup.contains("<script>alert"), "{path}");
        assert!(!markup.contains("onerror"), "{path}");
        assert!(!markup.contains("javascript:"), "{path}");
    }
    assert_eq!(messages(&app, &token).await.len(), 1);
}

#[tokio::test]
async fn pasted_text_and_csv_are_imported_in_the_incident_zone() {
    let (app, responder, token) = setup().await;
    let r = upload(
        &app,
        &responder,
        &[
            ("source", "text"),
            ("day", "2026-11-20"),
            ("text", "14:02 ana: checkout 502s\nstill failing for EU\n14:05 bo: rolling back, ping bo@example.com"),
        ],
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let list = messages(&app, &token).await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["text"], "checkout 502s\nstill failing for EU");
    assert_eq!(list[0]["posted_at"], "2026-11-20T14:02:00Z");
    assert!(
        !list[1]["text"]
            .as_str()
            .expect("t")
            .contains("bo@example.com")
    );
    // Without a day, pasted text is refused and what was typed kept.
    let r = upload(
        &app,
        &responder,
        &[("source", "text"), ("text", "14:02 ana: kept text")],
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("kept text"));
    // CSV through the API; a bad line is named.
    let r = app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/evidence",
            Some(&token),
            Some(json!({"source": "csv", "text": "time,author,text\n2026-11-20 14:10,cy,\"status page updated, customers told\"\n"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["added"], 1);
    let r = app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/evidence",
            Some(&token),
            Some(json!({"source": "csv", "text": "time,author,text\nlater,cy,x\n"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("line 2"), "{}", r.body);
    // Slack per-day files through the API, with the masking counts in the answer.
    let r = app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/evidence",
            Some(&token),
            Some(json!({"source": "slack", "files": [
                {"name": "2026-11-20.json", "content": String::from_utf8(fixture("incident-checkout/2026-11-20.json")).expect("utf8")}
            ]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["masked"]["Slack token"], 1);
    assert_eq!(r.json()["masked"]["e-mail address"], 1);
}

#[tokio::test]
async fn promoted_messages_reach_the_timeline_and_the_postmortem_with_their_markers() {
    let (app, responder, token) = setup().await;
    upload(
        &app,
        &responder,
        &[("source", "slack")],
        &[
            ("users.json", fixture("users.json")),
            (
                "2026-11-20.json",
                fixture("incident-checkout/2026-11-20.json"),
            ),
        ],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    let list = messages(&app, &token).await;
    let promote = |id: String, marker: &'static str| {
        let app = &app;
        let token = &token;
        async move {
            app.api(
                Method::POST,
                &format!("/api/v1/incidents/INC-1/evidence/{id}/promote"),
                Some(token),
                Some(json!({ "marker": marker })),
            )
            .await
        }
    };
    let id = |needle: &str| {
        by_text(&list, needle)["id"]
            .as_str()
            .expect("id")
            .to_owned()
    };
    promote(id("FIRING"), "detection")
        .await
        .assert_status(StatusCode::CREATED);
    promote(id("pool is at 2"), "diagnosis")
        .await
        .assert_status(StatusCode::CREATED);
    // The page form too.
    let r = app
        .post_form(
            &format!(
                "/incidents/INC-1/evidence/{}/promote",
                id("roll back release 42")
            ),
            Some(&responder),
            &[("marker", "decision")],
        )
        .await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/incidents/INC-1#entry-"));
    // Twice is refused; an unknown marker is a 422.
    assert_eq!(
        promote(id("FIRING"), "detection").await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        promote(id("status page"), "lunch").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        promote("nope".into(), "repair").await.status,
        StatusCode::NOT_FOUND
    );
    // On the timeline at the message's time, with its author and a link back.
    let incident = app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&token), None)
        .await
        .json();
    let timeline = incident["timeline"].as_array().expect("timeline");
    let diag = timeline
        .iter()
        .find(|e| e["body"].as_str().unwrap_or("").contains("pool is at 2"))
        .expect("promoted entry");
    assert!(
        diag["occurred_at"]
            .as_str()
            .expect("t")
            .starts_with("2026-11-20T09:42:00"),
        "{diag}"
    );
    assert!(
        diag["body"]
            .as_str()
            .expect("b")
            .starts_with("**Bo Chen** in chat:")
    );
    assert!(
        diag["body"]
            .as_str()
            .expect("b")
            .contains("/incidents/INC-1/evidence#msg-")
    );
    // The post-mortem page and its Markdown export show the markers.
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/postmortem",
        Some(&token),
        Some(json!({})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let page = app
        .get("/incidents/INC-1/postmortem", Some(&responder))
        .await;
    for marker in ["detection", "diagnosis", "decision"] {
        assert!(
            page.body
                .contains(&format!(r#"<span class="badge marker">{marker}</span>"#)),
            "{marker}"
        );
    }
    let md = app
        .api(
            Method::GET,
            "/api/v1/incidents/INC-1/postmortem.md",
            Some(&token),
            None,
        )
        .await
        .body;
    assert!(md.contains("| note · **diagnosis** |"), "{md}");
    assert!(md.contains("| detection · **detection** |"), "{md}");
    assert!(md.contains("| action · **decision** |"), "{md}");
    // The evidence pane on the incident page says which are on the timeline.
    let page = app.get("/incidents/INC-1", Some(&responder)).await;
    assert!(page.body.contains("Evidence from chat"));
    assert_eq!(page.body.matches("On the timeline</a>").count(), 3);
}
