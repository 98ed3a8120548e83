//! Action items through the API: every field checked, transitions recorded, filters exact.

use axum::http::{Method, StatusCode};
use hindsight::auth::{Role, Scope};
use serde_json::{Value, json};

use crate::common::{TestApp, TestUser};

struct Setup {
    app: TestApp,
    responder: TestUser,
    token: String,
}

async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    let responder = app.user(Role::Responder).await;
    let token = app.token(&responder, Scope::Write).await;
    app.declare(&token, json!({"title": "Checkout down", "severity": "sev1", "service": "checkout", "category": "deploy"})).await;
    Setup {
        app,
        responder,
        token,
    }
}

async fn create(s: &Setup, body: Value) -> crate::common::TestResponse {
    s.app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/action-items",
            Some(&s.token),
            Some(body),
        )
        .await
}

async fn patch(s: &Setup, id: &str, body: Value) -> crate::common::TestResponse {
    s.app
        .api(
            Method::PATCH,
            &format!("/api/v1/action-items/{id}"),
            Some(&s.token),
            Some(body),
        )
        .await
}

#[tokio::test]
async fn items_are_created_with_every_field_checked() {
    let s = setup().await;
    let created = create(&s, json!({"title": "Add a canary stage", "owner": s.responder.email, "team": "Storefront", "kind": "prevent", "priority": "p1", "due_on": "2020-01-31", "external_url": "https://jira.example.com/browse/OPS-12", "description": "Roll out to 5% first"})).await;
    created.assert_status(StatusCode::CREATED);
    let item = created.json();
    assert_eq!(item["incident"], "INC-1");
    assert_eq!(item["owner_name"], s.responder.name);
    assert_eq!(item["status"], "open");
    assert_eq!(item["due_on"], "2020-01-31");
    assert_eq!(
        item["overdue"], true,
        "a past due date is allowed and marked overdue"
    );
    assert_eq!(item["version"], 1);

    let bad = create(&s, json!({"title": " ", "owner": "ghost@example.com", "kind": "wish", "priority": "p0", "due_on": "next week", "external_url": "ftp://x", "status": "finished"})).await;
    bad.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let fields = bad.json()["error"]["fields"].clone();
    for field in [
        "title",
        "owner",
        "kind",
        "priority",
        "due_on",
        "external_url",
        "status",
    ] {
        assert!(fields[field].is_string(), "{field} named: {fields}");
    }
    let missing = create(&s, json!({"owner": s.responder.email})).await;
    missing.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.json()["error"]["fields"]["title"], "is required");
    let typed = create(&s, json!({"title": 5})).await;
    typed.assert_status(StatusCode::UNPROCESSABLE_ENTITY);

    let incident = s
        .app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&s.token), None)
        .await
        .json();
    assert_eq!(incident["action_items"].as_array().map(Vec::len), Some(1));
    assert!(
        incident["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .any(|e| e["body"]
                .as_str()
                .is_some_and(|b| b.contains("Action item added")))
    );
}

#[tokio::test]
async fn transitions_record_who_and_when_and_wont_do_needs_a_reason() {
    let s = setup().await;
    let id = create(
        &s,
        json!({"title": "Alert on pool exhaustion", "kind": "detect"}),
    )
    .await
    .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let started = patch(&s, &id, json!({"version": 1, "status": "in_progress"})).await;
    started.assert_status(StatusCode::OK);
    assert_eq!(started.json()["completed_at"], Value::Null);
    let done = patch(&s, &id, json!({"version": 2, "status": "done"})).await;
    done.assert_status(StatusCode::OK);
    let done = done.json();
    assert!(done["completed_at"].is_string());
    assert_eq!(done["completed_by_name"], s.responder.name);
    let reopened = patch(&s, &id, json!({"version": 3, "status": "open"}))
        .await
        .json();
    assert_eq!(
        reopened["completed_at"],
        Value::Null,
        "reopening clears completion"
    );

    let refused = patch(&s, &id, json!({"version": 4, "status": "wont_do"})).await;
    refused.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.json()["error"]["fields"]["wont_do_reason"].is_string());
    let wont = patch(&s, &id, json!({"version": 4, "status": "wont_do", "wont_do_reason": "Covered by the new pool autoscaler"})).await;
    wont.assert_status(StatusCode::OK);
    assert_eq!(
        wont.json()["wont_do_reason"],
        "Covered by the new pool autoscaler"
    );

    let timeline = s
        .app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&s.token), None)
        .await
        .json()["timeline"]
        .clone();
    let notes: Vec<String> = timeline
        .as_array()
        .expect("t")
        .iter()
        .filter_map(|e| e["body"].as_str())
        .filter(|b| b.starts_with("Action item"))
        .map(str::to_owned)
        .collect();
    assert_eq!(notes.len(), 5, "added + four changes: {notes:?}");
    assert!(
        notes[4].contains("status open → wont_do")
            && notes[4].contains("Covered by the new pool autoscaler")
    );
}

#[tokio::test]
async fn stale_versions_conflict_and_viewers_cannot_change_items() {
    let s = setup().await;
    let id = create(&s, json!({"title": "Runbook for failover"}))
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    patch(&s, &id, json!({"version": 1, "priority": "p1"}))
        .await
        .assert_status(StatusCode::OK);
    let stale = patch(&s, &id, json!({"version": 1, "priority": "p3"})).await;
    stale.assert_status(StatusCode::CONFLICT);
    assert_eq!(stale.json()["error"]["current"]["priority"], "p1");
    let missing_version = patch(&s, &id, json!({"priority": "p3"})).await;
    missing_version.assert_status(StatusCode::UNPROCESSABLE_ENTITY);

    let viewer = s.app.user(Role::Viewer).await;
    let viewer_token = s.app.token(&viewer, Scope::Write).await;
    s.app
        .api(
            Method::PATCH,
            &format!("/api/v1/action-items/{id}"),
            Some(&viewer_token),
            Some(json!({"version": 2, "status": "done"})),
        )
        .await
        .assert_status(StatusCode::FORBIDDEN);
    s.app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/action-items",
            Some(&viewer_token),
            Some(json!({"title": "x"})),
        )
        .await
        .assert_status(StatusCode::FORBIDDEN);
    let read = s.app.token(&viewer, Scope::Read).await;
    s.app
        .api(
            Method::GET,
            &format!("/api/v1/action-items/{id}"),
            Some(&read),
            None,
        )
        .await
        .assert_status(StatusCode::OK);
}

#[tokio::test]
async fn the_list_filters_match_a_known_fixture_exactly() {
    let s = setup().await;
    let other = s.app.user(Role::Responder).await;
    let fixture = [
        (
            "A",
            s.responder.email.as_str(),
            "Storefront",
            Some("2020-01-01"),
            "open",
        ),
        (
            "B",
            s.responder.email.as_str(),
            "Storefront",
            Some("2099-01-01"),
            "in_progress",
        ),
        (
            "C",
            other.email.as_str(),
            "Payments",
            Some("2020-06-01"),
            "done",
        ),
        ("D", other.email.as_str(), "Payments", None, "open"),
        (
            "E",
            s.responder.email.as_str(),
            "Payments",
            Some("2021-03-03"),
            "in_progress",
        ),
    ];
    for (title, owner, team, due, status) in fixture {
        let id = create(
            &s,
            json!({"title": title, "owner": owner, "team": team, "due_on": due}),
        )
        .await
        .json()["id"]
            .as_str()
            .expect("id")
            .to_owned();
        if status != "open" {
            patch(&s, &id, json!({"version": 1, "status": status}))
                .await
                .assert_status(StatusCode::OK);
        }
    }
    let titles = |query: &str| {
        let path = format!("/api/v1/action-items?{query}");
        let (app, token) = (&s.app, s.token.clone());
        async move {
            let body = app.api(Method::GET, &path, Some(&token), None).await.json();
            let titles: Vec<String> = body["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter_map(|i| i["title"].as_str().map(str::to_owned))
                .collect();
            (body["total"].as_i64().unwrap_or(-1), titles)
        }
    };
    assert_eq!(
        titles("").await,
        (
            5,
            vec!["A".into(), "C".into(), "E".into(), "B".into(), "D".into()]
        ),
        "soonest due first, undated last"
    );
    assert_eq!(titles("status=open").await.0, 2);
    assert_eq!(
        titles("overdue=true").await,
        (2, vec!["A".into(), "E".into()]),
        "done items are never overdue"
    );
    assert_eq!(titles(&format!("owner={}", other.email)).await.0, 2);
    assert_eq!(
        titles("team=Payments&status=in_progress").await,
        (1, vec!["E".into()])
    );
    assert_eq!(titles("per_page=2&page=3").await.1, vec!["D".to_owned()]);
    for bad in [
        "status=finished",
        "owner=ghost@example.com",
        "overdue=maybe",
        "per_page=0",
    ] {
        let response = s
            .app
            .api(
                Method::GET,
                &format!("/api/v1/action-items?{bad}"),
                Some(&s.token),
                None,
            )
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[tokio::test]
async fn the_timeline_says_who_an_item_now_belongs_to() {
    let s = setup().await;
    let created = create(&s, json!({"title": "Alert on 5xx"})).await;
    created.assert_status(StatusCode::CREATED);
    let id = created.json()["id"].as_str().expect("id").to_owned();
    patch(&s, &id, json!({"version": 1, "owner": s.responder.email}))
        .await
        .assert_status(StatusCode::OK);
    patch(&s, &id, json!({"version": 2, "owner": null}))
        .await
        .assert_status(StatusCode::OK);
    let incident = s
        .app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&s.token), None)
        .await
        .json();
    let bodies: Vec<&str> = incident["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["body"].as_str())
        .collect();
    assert!(
        bodies.contains(
            &format!(
                "Action item **Alert on 5xx**: owner now {}",
                s.responder.name
            )
            .as_str()
        ),
        "{bodies:#?}"
    );
    assert!(
        bodies.contains(&"Action item **Alert on 5xx**: owner removed"),
        "{bodies:#?}"
    );
}
