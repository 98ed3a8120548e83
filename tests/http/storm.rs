//! Pages and writes during an incident storm: long timelines are paged, and writes do not
//! queue behind page reads.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use hindsight::auth::{Role, Scope};
use serde_json::json;

use crate::common::{TestApp, TestUser};

async fn app_with_incident() -> (TestApp, TestUser, String) {
    let app = TestApp::spawn().await;
    app.service("checkout", "").await;
    let responder = app.user(Role::Responder).await;
    let token = app.token(&responder, Scope::Write).await;
    app.declare(&token, json!({"title": "Checkout down", "severity": "sev1", "service": "checkout", "category": "deploy", "started_at": "2026-11-20T10:00:00Z"})).await;
    (app, responder, token)
}

/// Adds `n` notes, one a minute from 10:01, numbered from 1.
async fn add_notes(app: &TestApp, token: &str, n: u32) {
    for k in 1..=n {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z").expect("valid")
            + chrono::Duration::minutes(i64::from(k));
        app.api(
            Method::POST,
            "/api/v1/incidents/INC-1/timeline",
            Some(token),
            Some(json!({"kind": "note", "body": format!("Storm note number {k:04}."), "occurred_at": at.to_rfc3339()})),
        )
        .await
        .assert_status(StatusCode::CREATED);
    }
}

fn shows(body: &str, k: u32) -> bool {
    body.contains(&format!("Storm note number {k:04}."))
}

#[tokio::test]
async fn a_long_timeline_shows_its_start_and_newest_entries_with_links_that_show_more() {
    let (app, responder, token) = app_with_incident().await;
    // The declaration wrote one entry (stamped now, so last); with 130 notes before it the
    // timeline holds 131.
    add_notes(&app, &token, 130).await;

    let page = app.get("/incidents/INC-1", Some(&responder)).await;
    page.assert_status(StatusCode::OK);
    // The first ten entries (notes 1–10) and the newest hundred (notes 32–130 and the
    // declaration's).
    assert!(
        shows(&page.body, 1) && shows(&page.body, 10),
        "the start is shown"
    );
    assert!(
        !shows(&page.body, 11) && !shows(&page.body, 31),
        "the middle is not"
    );
    assert!(
        shows(&page.body, 32) && shows(&page.body, 130),
        "the newest are shown"
    );
    let start = page.body.find("Storm note number 0010.").unwrap_or(0);
    let gap = page.body.find("entries not shown").unwrap_or(0);
    let newest = page.body.find("Storm note number 0032.").unwrap_or(0);
    assert!(
        start < gap && gap < newest,
        "the gap sits between the start and the newest"
    );
    assert!(
        page.body.contains("21 entries not shown"),
        "the gap says how many"
    );
    let more = "/incidents/INC-1?entries=121#timeline-gap";
    assert!(
        page.body.contains(&format!("href=\"{more}\"")),
        "a link shows 21 more"
    );
    assert!(
        page.body
            .contains("href=\"/incidents/INC-1?entries=all#timeline\"")
    );

    // Following the link (no JavaScript involved) shows every entry, without a gap.
    let all = app
        .get("/incidents/INC-1?entries=121", Some(&responder))
        .await;
    assert!(
        (1..=130).all(|k| shows(&all.body, k)),
        "every entry is shown"
    );
    assert!(!all.body.contains("not shown"));
    let all = app
        .get("/incidents/INC-1?entries=all", Some(&responder))
        .await;
    assert!((1..=130).all(|k| shows(&all.body, k)));

    // Nonsense asks for the default view rather than an error.
    let odd = app
        .get("/incidents/INC-1?entries=-5", Some(&responder))
        .await;
    odd.assert_status(StatusCode::OK);
    assert!(odd.body.contains("21 entries not shown"));
}

#[tokio::test]
async fn an_entry_in_the_hidden_middle_can_still_be_edited() {
    let (app, responder, token) = app_with_incident().await;
    add_notes(&app, &token, 130).await;
    let entries = app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&token), None)
        .await
        .json()["timeline"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let middle = entries
        .iter()
        .find(|e| e["body"] == "Storm note number 0020.")
        .expect("note 20 exists");
    let id = middle["id"].as_str().expect("id");
    let page = app
        .get(&format!("/incidents/INC-1?edit={id}"), Some(&responder))
        .await;
    page.assert_status(StatusCode::OK);
    assert!(
        page.body
            .contains(&format!("action=\"/incidents/INC-1/timeline/{id}\"")),
        "the edit form of a hidden entry is on the page"
    );
}

#[tokio::test]
async fn a_detection_entry_in_the_hidden_middle_is_still_offered_as_the_milestone() {
    let (app, responder, token) = app_with_incident().await;
    add_notes(&app, &token, 130).await;
    // Detected is set at declaration (now); a detection entry earlier than that, between notes
    // 20 and 21, sits in the part of the timeline the page does not show (notes 11–31), and
    // is still offered.
    let incident = app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&token), None)
        .await
        .json();
    let detected = incident["detected_at"].as_str().unwrap_or("").to_owned();
    assert!(!detected.is_empty(), "declaring sets Detected");
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/timeline",
        Some(&token),
        Some(json!({"kind": "detection", "body": "Support saw it first.", "occurred_at": "2026-11-20T10:20:30Z"})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let page = app.get("/incidents/INC-1", Some(&responder)).await;
    assert!(
        page.body.contains("22 entries not shown"),
        "the entry is in the hidden part"
    );
    assert!(!page.body.contains("Support saw it first."));
    assert!(
        page.body.contains("action=\"/incidents/INC-1/detected\""),
        "the earlier detection is offered as the milestone"
    );
}

#[tokio::test]
async fn a_write_is_answered_while_page_reads_hold_every_reader_connection() {
    let (app, _responder, token) = app_with_incident().await;
    // A storm of page loads keeps every reader connection busy; hold them all.
    let readers = app.db.reader.options().get_max_connections();
    let mut held = Vec::new();
    for _ in 0..readers {
        held.push(app.db.reader.acquire().await.expect("a reader connection"));
    }
    let write = app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/timeline",
        Some(&token),
        Some(json!({"kind": "note", "body": "Still recording what we do."})),
    );
    // Before the fix the write's own reads (its token, the incident) queued for a reader
    // connection until one was free (here: never, until the 30 s acquire timeout).
    let response = tokio::time::timeout(Duration::from_secs(10), write)
        .await
        .expect("the write is answered while every reader connection is busy");
    response.assert_status(StatusCode::CREATED);
    drop(held);
}
