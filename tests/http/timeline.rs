//! Keeping an incident's timeline: add, edit inline, resolve conflicts, delete.

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

async fn timeline(app: &TestApp, token: &str) -> Vec<serde_json::Value> {
    app.api(Method::GET, "/api/v1/incidents/INC-1", Some(token), None)
        .await
        .json()["timeline"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn entries_added_in_the_browser_appear_in_time_order() {
    let (app, responder, token) = app_with_incident().await;
    for (time, kind, body) in [
        ("2026-11-20T10:30", "mitigation", "Rolled back release 42"),
        ("2026-11-20T10:10", "escalation", "Paged payments on-call"),
    ] {
        let response = app
            .post_form(
                "/incidents/INC-1/timeline",
                Some(&responder),
                &[("occurred_at", time), ("kind", kind), ("body", body)],
            )
            .await;
        response.assert_status(StatusCode::SEE_OTHER);
        assert!(response.location().starts_with("/incidents/INC-1#entry-"));
    }
    let page = app.get("/incidents/INC-1", Some(&responder)).await;
    let paged = page
        .body
        .find("Paged payments on-call")
        .expect("escalation shown");
    let rolled = page
        .body
        .find("Rolled back release 42")
        .expect("mitigation shown");
    assert!(paged < rolled, "10:10 comes before 10:30");
    let entries = timeline(&app, &token).await;
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[1]["author_name"], responder.name);
}

#[tokio::test]
async fn an_empty_or_unknown_entry_is_refused_and_the_typed_text_kept() {
    let (app, responder, token) = app_with_incident().await;
    let response = app
        .post_form(
            "/incidents/INC-1/timeline",
            Some(&responder),
            &[
                ("occurred_at", "2026-11-20T10:30"),
                ("kind", "gossip"),
                ("body", "keep this text"),
            ],
        )
        .await;
    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response
            .body
            .contains("<p class=\"field-error\">must be one of detection")
    );
    assert!(response.body.contains("keep this text"));
    let empty = app
        .post_form(
            "/incidents/INC-1/timeline",
            Some(&responder),
            &[("occurred_at", ""), ("kind", "note"), ("body", "   ")],
        )
        .await;
    empty.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty
            .body
            .contains("<p class=\"field-error\">must not be empty")
    );
    let api = app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/timeline",
            Some(&token),
            Some(json!({"kind": "note", "body": "", "occurred_at": "noon"})),
        )
        .await;
    api.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let fields = api.json()["error"]["fields"].clone();
    assert!(fields["body"].is_string() && fields["occurred_at"].is_string());
    assert_eq!(timeline(&app, &token).await.len(), 1);
}

#[tokio::test]
async fn an_entry_is_edited_inline_and_a_stale_edit_shows_both_texts() {
    let (app, responder, token) = app_with_incident().await;
    let created = app
        .api(Method::POST, "/api/v1/incidents/INC-1/timeline", Some(&token), Some(json!({"kind": "action", "body": "Restarted pods", "occurred_at": "2026-11-20T10:20:00Z"})))
        .await;
    created.assert_status(StatusCode::CREATED);
    let id = created.json()["id"].as_str().expect("id").to_owned();

    let form = app
        .get(&format!("/incidents/INC-1?edit={id}"), Some(&responder))
        .await;
    assert!(
        form.body
            .contains(&format!("action=\"/incidents/INC-1/timeline/{id}\""))
    );
    assert!(form.body.contains(">Restarted pods</textarea>"));

    let saved = app
        .post_form(
            &format!("/incidents/INC-1/timeline/{id}"),
            Some(&responder),
            &[
                ("version", "1"),
                ("occurred_at", "2026-11-20T10:21"),
                ("kind", "action"),
                ("body", "Restarted all checkout pods"),
            ],
        )
        .await;
    saved.assert_status(StatusCode::SEE_OTHER);

    // Someone who loaded version 1 saves later: conflict, nothing overwritten.
    let stale = app
        .post_form(
            &format!("/incidents/INC-1/timeline/{id}"),
            Some(&responder),
            &[
                ("version", "1"),
                ("occurred_at", "2026-11-20T10:20"),
                ("kind", "note"),
                ("body", "My competing text"),
            ],
        )
        .await;
    stale.assert_status(StatusCode::CONFLICT);
    assert!(
        stale.body.contains("Restarted all checkout pods"),
        "their text"
    );
    assert!(stale.body.contains("My competing text"), "my text");
    assert!(
        stale.body.contains("name=\"version\" value=\"2\""),
        "merge form is based on their version"
    );
    let api_stale = app
        .api(
            Method::PATCH,
            &format!("/api/v1/timeline/{id}"),
            Some(&token),
            Some(json!({"version": 1, "body": "x"})),
        )
        .await;
    api_stale.assert_status(StatusCode::CONFLICT);
    assert_eq!(
        api_stale.json()["error"]["current"]["body"],
        "Restarted all checkout pods"
    );

    // Saving from the conflict page applies the merged text.
    app.post_form(
        &format!("/incidents/INC-1/timeline/{id}"),
        Some(&responder),
        &[
            ("version", "2"),
            ("occurred_at", "2026-11-20T10:21"),
            ("kind", "action"),
            ("body", "Restarted all checkout pods (merged)"),
        ],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    let entry = timeline(&app, &token)
        .await
        .into_iter()
        .find(|e| e["id"] == id.as_str())
        .expect("entry");
    assert_eq!(entry["body"], "Restarted all checkout pods (merged)");
    assert_eq!(entry["version"], 3);
}

#[tokio::test]
async fn entries_are_deleted_in_the_browser_and_the_api() {
    let (app, responder, token) = app_with_incident().await;
    let mut ids = Vec::new();
    for body in ["one", "two"] {
        let created = app
            .api(
                Method::POST,
                "/api/v1/incidents/INC-1/timeline",
                Some(&token),
                Some(json!({"kind": "note", "body": body})),
            )
            .await;
        ids.push(created.json()["id"].as_str().expect("id").to_owned());
    }
    app.post_form(
        &format!("/incidents/INC-1/timeline/{}/delete", ids[0]),
        Some(&responder),
        &[],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    app.api(
        Method::DELETE,
        &format!("/api/v1/timeline/{}", ids[1]),
        Some(&token),
        None,
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    app.api(
        Method::DELETE,
        &format!("/api/v1/timeline/{}", ids[1]),
        Some(&token),
        None,
    )
    .await
    .assert_status(StatusCode::NOT_FOUND);
    assert_eq!(timeline(&app, &token).await.len(), 1);
    // An entry cannot be reached through another incident's URL.
    app.declare(
        &token,
        json!({"title": "Other", "severity": "sev4", "service": "checkout", "category": "data"}),
    )
    .await;
    let first = timeline(&app, &token).await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.post_form(
        &format!("/incidents/INC-2/timeline/{first}/delete"),
        Some(&responder),
        &[],
    )
    .await
    .assert_status(StatusCode::NOT_FOUND);
}

/// The `value` of the input with `id` on `page`.
fn input_value<'a>(page: &'a str, id: &str) -> &'a str {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("input #{id} on the page"));
    let rest = &page[at..];
    let value = rest.find("value=\"").expect("the input has a value") + "value=\"".len();
    let end = rest[value..].find('"').expect("value ends");
    &rest[value..value + end]
}

#[tokio::test]
async fn an_entry_added_with_an_empty_time_is_stamped_when_it_arrives_not_when_the_page_loaded() {
    let (app, responder, token) = app_with_incident().await;
    let page = app.get("/incidents/INC-1", Some(&responder)).await;
    assert_eq!(
        input_value(&page.body, "entry-time"),
        "",
        "the form carries no time of its own"
    );
    let loaded = chrono::Utc::now();
    // The responder reads the page for a while before adding the entry.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let sent = chrono::Utc::now();
    app.post_form(
        "/incidents/INC-1/timeline",
        Some(&responder),
        &[
            ("occurred_at", ""),
            ("kind", "action"),
            ("body", "Failed over to the replica"),
        ],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    let entries = timeline(&app, &token).await;
    let added = entries
        .iter()
        .find(|e| e["body"] == "Failed over to the replica")
        .expect("entry saved");
    let at = chrono::DateTime::parse_from_rfc3339(added["occurred_at"].as_str().expect("time"))
        .expect("RFC 3339");
    assert!(
        at >= sent - chrono::Duration::milliseconds(1),
        "stamped at {at}, sent at {sent}, page loaded at {loaded}"
    );
}

#[tokio::test]
async fn an_entry_added_right_after_a_status_change_stays_below_it() {
    let (app, responder, token) = app_with_incident().await;
    app.post_form(
        "/incidents/INC-1/status",
        Some(&responder),
        &[("status", "identified"), ("note", ""), ("version", "1")],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    // The add-entry form is sent as the page rendered it, the time field untouched.
    let page = app.get("/incidents/INC-1", Some(&responder)).await;
    let time = input_value(&page.body, "entry-time").to_owned();
    app.post_form(
        "/incidents/INC-1/timeline",
        Some(&responder),
        &[
            ("occurred_at", &time),
            ("kind", "note"),
            ("body", "Bad config push found"),
        ],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);

    let kinds: Vec<String> = timeline(&app, &token)
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(kinds, ["status_change", "status_change", "note"]);
    let page = app.get("/incidents/INC-1", Some(&responder)).await;
    let declared = page.body.find("Incident declared by").expect("declaration");
    let moved = page
        .body
        .find("investigating → identified")
        .expect("status change");
    let note = page.body.find("Bad config push found").expect("note");
    assert!(
        declared < moved && moved < note,
        "declared, then the move, then the note"
    );
}

#[tokio::test]
async fn saving_an_entry_without_touching_its_time_keeps_the_seconds() {
    let (app, responder, token) = app_with_incident().await;
    let created = app
        .api(Method::POST, "/api/v1/incidents/INC-1/timeline", Some(&token), Some(json!({"kind": "action", "body": "Restarted pods", "occurred_at": "2026-11-20T10:20:42Z"})))
        .await;
    let id = created.json()["id"].as_str().expect("id").to_owned();
    let form = app
        .get(&format!("/incidents/INC-1?edit={id}"), Some(&responder))
        .await;
    let time = input_value(&form.body, "edit-time").to_owned();
    assert_eq!(time, "2026-11-20T10:20:42");
    assert!(
        form.body
            .contains("id=\"edit-time\" name=\"occurred_at\" type=\"datetime-local\" step=\"1\"")
    );
    app.post_form(
        &format!("/incidents/INC-1/timeline/{id}"),
        Some(&responder),
        &[
            ("version", "1"),
            ("occurred_at", &time),
            ("kind", "action"),
            ("body", "Restarted all pods"),
        ],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    let entries = timeline(&app, &token).await;
    let edited = entries
        .iter()
        .find(|e| e["body"] == "Restarted all pods")
        .expect("edited");
    assert_eq!(edited["occurred_at"], "2026-11-20T10:20:42Z");
}

#[tokio::test]
async fn the_add_entry_form_sits_under_the_status_form_above_the_rest_of_the_page() {
    let (app, responder, _token) = app_with_incident().await;
    let page = app.get("/incidents/INC-1", Some(&responder)).await;
    let position = |needle: &str| {
        page.body
            .find(needle)
            .unwrap_or_else(|| panic!("the page has {needle}"))
    };
    let status = position("class=\"form status-form\"");
    let add = position("id=\"add-entry\"");
    assert!(status < add, "the status form comes first");
    for below in ["id=\"action-items\"", "id=\"snapshots\"", "id=\"timeline\""] {
        assert!(add < position(below), "the add-entry form is above {below}");
    }
    assert!(
        page.body
            .contains("<a href=\"#add-entry\">Add to the timeline</a>"),
        "the timeline points up to the form"
    );
}

#[tokio::test]
async fn a_detection_entry_earlier_than_detected_is_offered_as_the_milestone() {
    let app = TestApp::spawn().await;
    app.service("checkout", "").await;
    let responder = app.user(Role::Responder).await;
    let token = app.token(&responder, Scope::Write).await;
    app.declare(&token, json!({"title": "Checkout down", "severity": "sev2", "service": "checkout", "category": "deploy", "started_at": "2026-11-20T16:00:00Z", "detected_at": "2026-11-20T16:09:00Z"})).await;
    let page = app.get("/incidents/INC-1", Some(&responder)).await;
    assert!(
        !page.body.contains("class=\"detected-suggestion\""),
        "nothing to offer without a detection entry"
    );
    app.api(Method::POST, "/api/v1/incidents/INC-1/timeline", Some(&token), Some(json!({"kind": "detection", "body": "Checkout 5xx alert", "occurred_at": "2026-11-20T16:03:00Z"})))
        .await
        .assert_status(StatusCode::CREATED);

    let page = app.get("/incidents/INC-1", Some(&responder)).await;
    assert!(page.body.contains("class=\"detected-suggestion\""));
    assert!(
        page.body
            .contains("A detection entry at <strong>2026-11-20 16:03 UTC")
    );
    assert!(page.body.contains(">Set Detected to this time</button>"));
    let version = app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&token), None)
        .await
        .json()["version"]
        .to_string();

    // A stale form changes nothing and says so.
    let stale = app
        .post_form(
            "/incidents/INC-1/detected",
            Some(&responder),
            &[
                ("version", "0"),
                ("detected_at", "2026-11-20T16:03:00+00:00"),
            ],
        )
        .await;
    stale.assert_status(StatusCode::SEE_OTHER);
    assert!(
        stale
            .set_cookie("hindsight_flash")
            .is_some_and(|c| c.contains("error"))
    );

    app.post_form(
        "/incidents/INC-1/detected",
        Some(&responder),
        &[
            ("version", &version),
            ("detected_at", "2026-11-20T16:03:00+00:00"),
        ],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    let now = app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&token), None)
        .await
        .json();
    assert_eq!(now["detected_at"], "2026-11-20T16:03:00Z");
    let page = app.get("/incidents/INC-1", Some(&responder)).await;
    assert!(
        !page.body.contains("class=\"detected-suggestion\""),
        "offered once, then done"
    );
    assert!(page.body.contains("3m"), "time to detect is now 3 minutes");

    // A viewer is refused.
    let viewer = app.user(Role::Viewer).await;
    app.post_form(
        "/incidents/INC-1/detected",
        Some(&viewer),
        &[
            ("version", "2"),
            ("detected_at", "2026-11-20T16:01:00+00:00"),
        ],
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn people_cannot_post_or_edit_into_the_kinds_hindsight_writes() {
    let (app, responder, token) = app_with_incident().await;
    for kind in ["alert", "snapshot", "status_change"] {
        let api = app
            .api(
                Method::POST,
                "/api/v1/incidents/INC-1/timeline",
                Some(&token),
                Some(json!({"kind": kind, "body": "Forged: all clear"})),
            )
            .await;
        api.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            api.json()["error"]["fields"]["kind"]
                .as_str()
                .is_some_and(|m| m.contains("written by Hindsight")),
            "{kind}: {}",
            api.body
        );
        let page = app
            .post_form(
                "/incidents/INC-1/timeline",
                Some(&responder),
                &[
                    ("occurred_at", ""),
                    ("kind", kind),
                    ("body", "Forged: all clear"),
                ],
            )
            .await;
        page.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            page.body.contains("Forged: all clear"),
            "the typed text is kept"
        );
    }
    assert_eq!(
        timeline(&app, &token).await.len(),
        1,
        "only the declaration"
    );

    // An entry of their own cannot become one either; the declaration keeps its kind on edit.
    let note = app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/timeline",
            Some(&token),
            Some(json!({"kind": "note", "body": "Looking"})),
        )
        .await
        .json();
    let id = note["id"].as_str().expect("id");
    app.api(
        Method::PATCH,
        &format!("/api/v1/timeline/{id}"),
        Some(&token),
        Some(json!({"version": 1, "kind": "alert"})),
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let declared = &timeline(&app, &token).await[0];
    assert_eq!(declared["kind"], "status_change");
    app.api(
        Method::PATCH,
        &format!("/api/v1/timeline/{}", declared["id"].as_str().expect("id")),
        Some(&token),
        Some(json!({"version": declared["version"], "kind": "status_change", "body": "Incident declared (typo fixed)."})),
    )
    .await
    .assert_status(StatusCode::OK);
    let kinds: Vec<String> = timeline(&app, &token)
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(kinds, ["status_change", "note"]);
}

/// The incident page keeps its timeline's HTML between writes, one version for those who may
/// edit it and one for readers: whoever views first, a viewer never gets the Edit and Delete
/// controls and a responder always does; the next write shows on the next view.
#[tokio::test]
async fn readers_and_editors_each_see_their_own_timeline_whoever_looked_first() {
    let (app, responder, token) = app_with_incident().await;
    let viewer = app.user(Role::Viewer).await;
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/timeline",
        Some(&token),
        Some(json!({"kind": "note", "body": "Rolled back **v42**"})),
    )
    .await
    .assert_status(StatusCode::CREATED);

    let controls = "Delete this timeline entry?";
    for order in [[&responder, &viewer], [&viewer, &responder]] {
        for user in order {
            let page = app.get("/incidents/INC-1", Some(user)).await;
            page.assert_status(StatusCode::OK);
            assert!(
                page.body.contains("Rolled back <strong>v42</strong>"),
                "{}",
                page.body
            );
            assert_eq!(
                page.body.contains(controls),
                std::ptr::eq(user, &responder),
                "{}",
                page.body
            );
        }
        // A write empties the kept page: the next round starts with nothing rendered.
        app.api(
            Method::POST,
            "/api/v1/incidents/INC-1/timeline",
            Some(&token),
            Some(json!({"kind": "note", "body": "Watching the error rate"})),
        )
        .await
        .assert_status(StatusCode::CREATED);
        let page = app.get("/incidents/INC-1", Some(&viewer)).await;
        assert!(
            page.body.contains("Watching the error rate"),
            "{}",
            page.body
        );
    }
}
