//! Declaring, listing, editing and moving incidents, in the browser and through the API.

use axum::http::{Method, StatusCode};
use hindsight::auth::{Role, Scope};
use serde_json::{Value, json};

use crate::common::{TestApp, TestUser};

async fn app_with_services() -> (TestApp, TestUser, String) {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    app.service("payments", "Payments").await;
    let responder = app.user(Role::Responder).await;
    let token = app.token(&responder, Scope::Write).await;
    (app, responder, token)
}

fn incident(title: &str, severity: &str, service: &str, category: &str) -> Value {
    json!({"title": title, "severity": severity, "service": service, "category": category})
}

#[tokio::test]
async fn a_responder_declares_an_incident_through_the_form() {
    let (app, responder, _) = app_with_services().await;
    let form = app.get("/incidents/new", Some(&responder)).await;
    form.assert_status(StatusCode::OK);
    assert!(
        form.body
            .contains("Critical: users cannot use a core feature"),
        "severities are explained"
    );

    let response = app
        .post_form(
            "/incidents",
            Some(&responder),
            &[
                ("title", "Checkout returns 502"),
                ("severity", "sev1"),
                ("service", "checkout"),
                ("category", "deploy"),
                ("summary", "Pool **exhausted**"),
                ("customer_impact", "Orders failed"),
                ("started_at", "2026-11-20T10:00"),
                ("detected_at", "2026-11-20T10:07"),
            ],
        )
        .await;
    response.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(response.location(), "/incidents/INC-1");

    let page = app.get("/incidents/INC-1", Some(&responder)).await;
    page.assert_status(StatusCode::OK);
    for text in [
        "Checkout returns 502",
        "<strong>exhausted</strong>",
        "Orders failed",
        "2026-11-20 10:00 UTC (+00:00)",
        "2026-11-20 10:07 UTC (+00:00)",
        "Time to detect</dt><dd>7m",
        "Storefront",
        "Incident declared by",
    ] {
        assert!(page.body.contains(text), "page shows {text}");
    }
    let flash = page.set_cookie("hindsight_flash");
    assert_eq!(flash, None, "no flash cookie set without a flash");
}

#[tokio::test]
async fn invalid_incident_forms_come_back_with_messages_and_the_typed_values() {
    let (app, responder, _) = app_with_services().await;
    let response = app
        .post_form(
            "/incidents",
            Some(&responder),
            &[
                ("title", "   "),
                ("severity", "sev9"),
                ("service", "warp-drive"),
                ("category", "deploy"),
                ("summary", "I typed this carefully"),
                ("started_at", "yesterday-ish"),
            ],
        )
        .await;
    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    for text in [
        "must not be empty",
        "must be one of sev1, sev2, sev3, sev4",
        "warp-drive is not a known service",
        "must be a date and time like",
        "I typed this carefully",
        "yesterday-ish",
    ] {
        assert!(response.body.contains(text), "form shows {text}");
    }
    assert_eq!(app.count("incidents").await, 0);
}

#[tokio::test]
async fn the_api_creates_incidents_and_names_every_bad_field() {
    let (app, _, token) = app_with_services().await;
    let created = app
        .api(
            Method::POST,
            "/api/v1/incidents",
            Some(&token),
            Some(incident(
                "Card payments failing",
                "sev2",
                "Payments",
                "dependency",
            )),
        )
        .await;
    created.assert_status(StatusCode::CREATED);
    assert_eq!(created.location(), "/api/v1/incidents/INC-1");
    let body = created.json();
    assert_eq!(body["number"], "INC-1");
    assert_eq!(
        body["service"], "payments",
        "names are matched case-insensitively"
    );
    assert_eq!(
        body["team"], "Payments",
        "the service's team is the default"
    );
    assert_eq!(body["status"], "investigating");
    assert_eq!(body["version"], 1);
    assert!(body["detected_at"].is_string() && body["acknowledged_at"].is_string());

    // Missing fields.
    let missing = app
        .api(
            Method::POST,
            "/api/v1/incidents",
            Some(&token),
            Some(json!({"summary": "no title"})),
        )
        .await;
    missing.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let fields = &missing.json()["error"]["fields"];
    for field in ["title", "severity", "service", "category"] {
        assert_eq!(fields[field], "is required", "{field}");
    }
    // Unknown enumeration values and references.
    let bad = app
        .api(
            Method::POST,
            "/api/v1/incidents",
            Some(&token),
            Some(incident("x", "critical", "nope", "weather")),
        )
        .await;
    bad.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let error = bad.json()["error"].clone();
    assert_eq!(error["code"], "validation_failed");
    assert_eq!(
        error["fields"]["severity"],
        "must be one of sev1, sev2, sev3, sev4"
    );
    assert!(
        error["fields"]["service"]
            .as_str()
            .is_some_and(|m| m.contains("nope"))
    );
    assert!(
        error["fields"]["category"]
            .as_str()
            .is_some_and(|m| m.contains("weather"))
    );
    // Wrong JSON types name the field.
    let typed = app
        .api(Method::POST, "/api/v1/incidents", Some(&token), Some(json!({"title": 42, "severity": "sev1", "service": "checkout", "category": "deploy"})))
        .await;
    typed.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        typed.json()["error"]["fields"]["title"].is_string(),
        "{}",
        typed.body
    );
    // Malformed times.
    let time = app
        .api(Method::POST, "/api/v1/incidents", Some(&token), Some(json!({"title": "t", "severity": "sev1", "service": "checkout", "category": "deploy", "started_at": "2026-02-30T25:00:00Z"})))
        .await;
    time.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(time.json()["error"]["fields"]["started_at"].is_string());
    // Unknown fields are refused rather than ignored.
    let unknown = app
        .api(Method::POST, "/api/v1/incidents", Some(&token), Some(json!({"title": "t", "severity": "sev1", "service": "checkout", "category": "deploy", "colour": "red"})))
        .await;
    unknown.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unknown.body.contains("colour"));
    assert_eq!(app.count("incidents").await, 1);
}

#[tokio::test]
async fn malformed_json_and_wrong_content_types_are_4xx_never_500() {
    let (app, _, token) = app_with_services().await;
    use axum::body::Body;
    use axum::http::{Request, header};
    let send = |content_type: &'static str, body: &'static str| {
        Request::post("/api/v1/incidents")
            .header(header::HOST, crate::common::HOST)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .expect("request")
    };
    let malformed = app.send(send("application/json", "{\"title\": ")).await;
    malformed.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(malformed.json()["error"]["code"], "bad_request");
    let not_object = app.send(send("application/json", "[1, 2]")).await;
    not_object.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let wrong_type = app.send(send("text/plain", "{}")).await;
    wrong_type.assert_status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(wrong_type.json()["error"]["code"], "unsupported_media_type");
}

#[tokio::test]
async fn incidents_are_found_by_number_or_id_with_their_timeline() {
    let (app, _, token) = app_with_services().await;
    let created = app
        .declare(&token, incident("Search stale", "sev3", "checkout", "data"))
        .await;
    let id = created["id"].as_str().expect("id");
    for key in ["INC-1", "1", id] {
        let got = app
            .api(
                Method::GET,
                &format!("/api/v1/incidents/{key}"),
                Some(&token),
                None,
            )
            .await;
        got.assert_status(StatusCode::OK);
        let body = got.json();
        assert_eq!(body["title"], "Search stale");
        assert_eq!(
            body["timeline"].as_array().map(Vec::len),
            Some(1),
            "the declaration entry"
        );
        assert_eq!(body["timeline"][0]["kind"], "status_change");
    }
}

#[tokio::test]
async fn a_stale_version_is_a_409_with_the_current_incident_and_nothing_overwritten() {
    let (app, responder, token) = app_with_services().await;
    app.declare(
        &token,
        incident("Login slow", "sev2", "checkout", "capacity"),
    )
    .await;
    let first = app
        .api(
            Method::PATCH,
            "/api/v1/incidents/INC-1",
            Some(&token),
            Some(json!({"version": 1, "title": "Login slow for EU"})),
        )
        .await;
    first.assert_status(StatusCode::OK);
    assert_eq!(first.json()["version"], 2);
    let stale = app
        .api(
            Method::PATCH,
            "/api/v1/incidents/INC-1",
            Some(&token),
            Some(json!({"version": 1, "title": "Overwrite attempt"})),
        )
        .await;
    stale.assert_status(StatusCode::CONFLICT);
    let error = stale.json()["error"].clone();
    assert_eq!(error["code"], "version_conflict");
    assert_eq!(error["current"]["title"], "Login slow for EU");
    assert_eq!(error["current"]["version"], 2);

    // The same in the browser: the conflict page shows both values and keeps what was typed.
    let page = app
        .post_form(
            "/incidents/INC-1/edit",
            Some(&responder),
            &[
                ("version", "1"),
                ("title", "My browser edit"),
                ("severity", "sev2"),
                ("service", "checkout"),
                ("category", "capacity"),
                ("summary", "typed in the form"),
                ("started_at", "2026-11-20T10:00"),
            ],
        )
        .await;
    page.assert_status(StatusCode::CONFLICT);
    for text in [
        "Someone else saved INC-1 first",
        "Login slow for EU",
        "My browser edit",
        "typed in the form",
        "name=\"version\" value=\"2\"",
    ] {
        assert!(page.body.contains(text), "conflict page shows {text}");
    }
    let now = app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&token), None)
        .await
        .json();
    assert_eq!(now["title"], "Login slow for EU");
    assert_eq!(now["version"], 2);
}

#[tokio::test]
async fn editing_through_the_form_saves_every_field_and_clears_emptied_milestones() {
    let (app, responder, token) = app_with_services().await;
    app.declare(&token, json!({"title": "Gateway 431s", "severity": "sev3", "service": "checkout", "category": "config change", "started_at": "2026-11-20T09:00:00Z", "status": "resolved"})).await;
    let edit = app.get("/incidents/INC-1/edit", Some(&responder)).await;
    edit.assert_status(StatusCode::OK);
    assert!(edit.body.contains("value=\"Gateway 431s\""));
    let response = app
        .post_form(
            "/incidents/INC-1/edit",
            Some(&responder),
            &[
                ("version", "1"),
                ("title", "Gateway rejects large headers"),
                ("severity", "sev2"),
                ("service", "payments"),
                ("category", "config change"),
                ("team", "Edge"),
                ("commander", &responder.email),
                ("summary", ""),
                ("customer_impact", "431 errors"),
                ("started_at", "2026-11-20T09:00"),
                ("detected_at", "2026-11-20T09:05"),
                ("acknowledged_at", "2026-11-20T09:06"),
                ("mitigated_at", "2026-11-20T09:30"),
                ("resolved_at", ""),
                ("closed_at", ""),
                ("exclude_from_metrics", "on"),
            ],
        )
        .await;
    response.assert_status(StatusCode::SEE_OTHER);
    let now = app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&token), None)
        .await
        .json();
    assert_eq!(now["title"], "Gateway rejects large headers");
    assert_eq!(now["severity"], "sev2");
    assert_eq!(now["service"], "payments");
    assert_eq!(now["team"], "Edge");
    assert_eq!(now["commander"]["name"], responder.name);
    assert_eq!(now["mitigated_at"], "2026-11-20T09:30:00Z");
    assert_eq!(
        now["resolved_at"],
        Value::Null,
        "emptied milestone is cleared"
    );
    assert_eq!(now["exclude_from_metrics"], true);
    let timeline = now["timeline"].as_array().expect("timeline");
    assert!(
        timeline.iter().any(|e| e["body"]
            .as_str()
            .is_some_and(|b| b.contains("Severity: sev3 → sev2"))),
        "severity change is on the timeline"
    );
}

#[tokio::test]
async fn milestones_before_the_start_are_refused() {
    let (app, _, token) = app_with_services().await;
    let response = app
        .api(Method::POST, "/api/v1/incidents", Some(&token), Some(json!({"title": "t", "severity": "sev4", "service": "checkout", "category": "data", "started_at": "2026-11-20T10:00:00Z", "detected_at": "2026-11-20T09:00:00Z"})))
        .await;
    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.json()["error"]["fields"]["detected_at"],
        "must not be before the start of the incident"
    );
}

#[tokio::test]
async fn status_changes_stamp_milestones_and_land_on_the_timeline() {
    let (app, responder, token) = app_with_services().await;
    app.declare(
        &token,
        incident("Queue disk full", "sev3", "checkout", "infrastructure"),
    )
    .await;
    let response = app
        .post_form(
            "/incidents/INC-1/status",
            Some(&responder),
            &[
                ("status", "monitoring"),
                ("version", "1"),
                ("note", "Freed 40 GB"),
            ],
        )
        .await;
    response.assert_status(StatusCode::SEE_OTHER);
    let now = app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&token), None)
        .await
        .json();
    assert_eq!(now["status"], "monitoring");
    assert!(
        now["mitigated_at"].is_string(),
        "monitoring stamps mitigation"
    );
    assert_eq!(now["resolved_at"], Value::Null);
    let last = now["timeline"]
        .as_array()
        .and_then(|t| t.last())
        .expect("entry")
        .clone();
    assert_eq!(last["kind"], "status_change");
    assert_eq!(
        last["body"],
        "Status: investigating → monitoring\n\nFreed 40 GB"
    );

    // Through the API, with a note; reopening clears resolution again.
    let resolved = app
        .api(
            Method::PATCH,
            "/api/v1/incidents/INC-1",
            Some(&token),
            Some(json!({"version": 2, "status": "resolved"})),
        )
        .await;
    resolved.assert_status(StatusCode::OK);
    assert!(resolved.json()["resolved_at"].is_string());
    let reopened = app
        .api(
            Method::PATCH,
            "/api/v1/incidents/INC-1",
            Some(&token),
            Some(json!({"version": 3, "status": "investigating", "note": "It is back"})),
        )
        .await;
    reopened.assert_status(StatusCode::OK);
    let body = reopened.json();
    assert_eq!(body["resolved_at"], Value::Null);
    assert_eq!(body["mitigated_at"], Value::Null);

    // A stale status form re-renders the page with the note kept.
    let stale = app
        .post_form(
            "/incidents/INC-1/status",
            Some(&responder),
            &[("status", "closed"), ("version", "1"), ("note", "keep me")],
        )
        .await;
    stale.assert_status(StatusCode::CONFLICT);
    assert!(stale.body.contains("Someone else changed INC-1"));
    assert!(stale.body.contains("value=\"keep me\""));
}

#[tokio::test]
async fn the_list_filters_sorts_and_counts_exactly() {
    let (app, admin_like, token) = app_with_services().await;
    let fixtures = [
        (
            "Checkout 502",
            "sev1",
            "checkout",
            "deploy",
            "2026-10-01T10:00:00Z",
            "resolved",
        ),
        (
            "Checkout slow",
            "sev2",
            "checkout",
            "capacity",
            "2026-10-15T10:00:00Z",
            "investigating",
        ),
        (
            "Payments declined",
            "sev1",
            "payments",
            "dependency",
            "2026-11-01T10:00:00Z",
            "monitoring",
        ),
        (
            "Payments 100% off",
            "sev4",
            "payments",
            "data",
            "2026-11-10T10:00:00Z",
            "closed",
        ),
        (
            "Refunds_stuck",
            "sev3",
            "payments",
            "data",
            "2026-11-20T10:00:00Z",
            "identified",
        ),
    ];
    for (title, severity, service, category, started, status) in fixtures {
        app.declare(&token, json!({"title": title, "severity": severity, "service": service, "category": category, "started_at": started, "status": status})).await;
    }
    let total = |query: &str| {
        let path = format!("/api/v1/incidents?{query}");
        let app = &app;
        let token = token.clone();
        async move {
            let response = app.api(Method::GET, &path, Some(&token), None).await;
            response.assert_status(StatusCode::OK);
            let body = response.json();
            let titles: Vec<String> = body["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| i["title"].as_str().unwrap_or("").to_owned())
                .collect();
            (body["total"].as_i64().unwrap_or(-1), titles)
        }
    };
    assert_eq!(total("").await.0, 5);
    assert_eq!(total("status=open").await.0, 3);
    assert_eq!(
        total("status=closed").await,
        (1, vec!["Payments 100% off".to_owned()])
    );
    assert_eq!(total("severity=sev1").await.0, 2);
    assert_eq!(total("service=payments").await.0, 3);
    assert_eq!(total("service=payments&category=data").await.0, 2);
    assert_eq!(total("team=Storefront").await.0, 2);
    assert_eq!(
        total("since=2026-11-01&until=2026-11-10").await.0,
        2,
        "until includes its day"
    );
    assert_eq!(
        total("q=checkout").await.0,
        2,
        "text matches case-insensitively"
    );
    assert_eq!(
        total("q=100%25").await,
        (1, vec!["Payments 100% off".to_owned()]),
        "punctuation is ignored"
    );
    assert_eq!(
        total("q=stuck").await,
        (1, vec!["Refunds_stuck".to_owned()]),
        "words inside identifiers"
    );
    assert_eq!(
        total("q=pay%20decl").await,
        (1, vec!["Payments declined".to_owned()]),
        "every word, as a prefix"
    );
    assert_eq!(
        total("q=%25%22*").await.0,
        0,
        "text without words matches nothing"
    );
    for hostile in [
        "%22",
        "NEAR(",
        "*",
        "a%20OR%20b",
        "%3Cscript%3E",
        "%22unbalanced",
        "-checkout",
        "checkout:*",
    ] {
        let response = app
            .api(
                Method::GET,
                &format!("/api/v1/incidents?q={hostile}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "q={hostile} never breaks the query"
        );
    }
    assert_eq!(
        total("status=open&severity=sev1").await,
        (1, vec!["Payments declined".to_owned()])
    );
    assert_eq!(
        total("sort=oldest&per_page=2").await.1,
        vec!["Checkout 502".to_owned(), "Checkout slow".to_owned()]
    );
    assert_eq!(
        total("sort=oldest&per_page=2&page=3").await.1,
        vec!["Refunds_stuck".to_owned()]
    );
    assert_eq!(
        total("sort=severity&per_page=1").await.1,
        vec!["Payments declined".to_owned()]
    );
    for bad in [
        "status=asleep",
        "severity=sev0",
        "since=soon",
        "per_page=500",
        "page=0",
        "sort=random",
    ] {
        let response = app
            .api(
                Method::GET,
                &format!("/api/v1/incidents?{bad}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }

    // The page shows the same numbers.
    let page = app
        .get("/incidents?service=payments&status=open", Some(&admin_like))
        .await;
    page.assert_status(StatusCode::OK);
    assert!(page.body.contains("2 incidents"));
    assert!(page.body.contains("Payments declined") && page.body.contains("Refunds_stuck"));
    assert!(!page.body.contains("Checkout slow"));
    let bad = app.get("/incidents?severity=sev9", Some(&admin_like)).await;
    bad.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("severity: must be one of"));
}

#[tokio::test]
async fn the_list_pages_through_many_incidents() {
    let (app, responder, token) = app_with_services().await;
    for n in 0..55 {
        app.declare(
            &token,
            incident(
                &format!("Incident number {n}"),
                "sev4",
                "checkout",
                "unknown",
            ),
        )
        .await;
    }
    let first = app.get("/incidents", Some(&responder)).await;
    assert!(first.body.contains("55 incidents · page 1 of 2"));
    assert!(
        first.body.contains("Incident number 54") && !first.body.contains("Incident number 4<")
    );
    let second = app.get("/incidents?page=2", Some(&responder)).await;
    assert!(
        second.body.contains("Incident number 0") && !second.body.contains("Incident number 54")
    );
}

#[tokio::test]
async fn admins_manage_services_and_categories_in_the_browser_and_the_api() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let responder = app.user(Role::Responder).await;
    let admin_token = app.token(&admin, Scope::Write).await;
    let responder_token = app.token(&responder, Scope::Write).await;

    app.post_form(
        "/admin/services",
        Some(&admin),
        &[("name", "search"), ("team", "Discovery")],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    let duplicate = app
        .post_form(
            "/admin/services",
            Some(&admin),
            &[("name", "SEARCH"), ("team", "")],
        )
        .await;
    duplicate.assert_status(StatusCode::CONFLICT);
    assert!(duplicate.body.contains("already exists"));
    let empty = app
        .post_form(
            "/admin/services",
            Some(&admin),
            &[("name", " "), ("team", "")],
        )
        .await;
    empty.assert_status(StatusCode::UNPROCESSABLE_ENTITY);

    // Rename cascades to incidents.
    app.declare(
        &admin_token,
        incident("Index stalled", "sev3", "search", "data"),
    )
    .await;
    app.post_form(
        "/admin/services/search",
        Some(&admin),
        &[("name", "search-api"), ("team", "Discovery")],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    let now = app
        .api(
            Method::GET,
            "/api/v1/incidents/INC-1",
            Some(&admin_token),
            None,
        )
        .await
        .json();
    assert_eq!(now["service"], "search-api");
    // A used service is not deleted.
    let refused = app
        .post_form("/admin/services/search-api/delete", Some(&admin), &[])
        .await;
    refused.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(app.count("services").await, 1);

    // Categories: the defaults exist from the first start.
    let categories = app
        .api(Method::GET, "/api/v1/categories", Some(&admin_token), None)
        .await
        .json();
    let names: Vec<&str> = categories["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for name in [
        "deploy",
        "config change",
        "capacity",
        "dependency",
        "infrastructure",
        "code defect",
        "data",
        "security",
        "process",
        "unknown",
    ] {
        assert!(names.contains(&name), "{name}");
    }
    app.api(
        Method::POST,
        "/api/v1/categories",
        Some(&admin_token),
        Some(json!({"name": "third party"})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    app.api(
        Method::POST,
        "/api/v1/categories",
        Some(&admin_token),
        Some(json!({"name": "Third Party"})),
    )
    .await
    .assert_status(StatusCode::CONFLICT);
    app.api(
        Method::POST,
        "/api/v1/services",
        Some(&admin_token),
        Some(json!({"name": "ledger", "team": "Payments"})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    app.api(
        Method::POST,
        "/api/v1/services",
        Some(&responder_token),
        Some(json!({"name": "mine"})),
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    app.post_form("/admin/categories/third%20party/delete", Some(&admin), &[])
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let page = app.get("/admin/categories", Some(&admin)).await;
    assert!(!page.body.contains("third party"));
}

#[tokio::test]
async fn the_list_shows_a_change_right_after_it_is_saved() {
    let (app, responder, token) = app_with_services().await;
    app.declare(
        &token,
        incident("Before the edit", "sev3", "checkout", "data"),
    )
    .await;
    // Read twice so the page is served from the list cache.
    for _ in 0..2 {
        assert!(
            app.get("/incidents", Some(&responder))
                .await
                .body
                .contains("Before the edit")
        );
    }
    app.api(
        Method::PATCH,
        "/api/v1/incidents/INC-1",
        Some(&token),
        Some(json!({"version": 1, "title": "After the edit"})),
    )
    .await
    .assert_status(StatusCode::OK);
    let page = app.get("/incidents", Some(&responder)).await;
    assert!(page.body.contains("After the edit") && !page.body.contains("Before the edit"));
    let api = app
        .api(Method::GET, "/api/v1/incidents", Some(&token), None)
        .await
        .json();
    assert_eq!(api["items"][0]["title"], "After the edit");
}

#[tokio::test]
async fn an_edit_form_without_the_version_it_was_loaded_at_changes_nothing_and_says_to_reload() {
    let (app, responder, token) = app_with_services().await;
    app.declare(&token, json!({"title": "Gateway 431s", "severity": "sev3", "service": "checkout", "category": "config change"})).await;
    for version in [None, Some("two")] {
        let mut fields = vec![
            ("title", "Renamed without a version"),
            ("severity", "sev1"),
            ("service", "checkout"),
            ("category", "config change"),
        ];
        if let Some(v) = version {
            fields.push(("version", v));
        }
        let response = app
            .post_form("/incidents/INC-1/edit", Some(&responder), &fields)
            .await;
        response.assert_status(StatusCode::BAD_REQUEST);
        assert!(
            response.body.contains("reload the page"),
            "{}",
            response.body
        );
    }
    let now = app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&token), None)
        .await
        .json();
    assert_eq!(now["title"], "Gateway 431s");
    assert_eq!(now["version"], 1);
}

#[tokio::test]
async fn declaring_with_started_and_detected_left_empty_says_time_to_detect_is_zero() {
    let (app, responder, _token) = app_with_services().await;
    let fields = |started: &'static str| {
        vec![
            ("title", "Login slow"),
            ("severity", "sev3"),
            ("service", "checkout"),
            ("category", "config change"),
            ("started_at", started),
            ("detected_at", ""),
        ]
    };
    let empty = app
        .post_form("/incidents", Some(&responder), &fields(""))
        .await;
    empty.assert_status(StatusCode::SEE_OTHER);
    let flash = empty.set_cookie("hindsight_flash").expect("a message");
    assert!(flash.contains("warn"), "{flash}");
    assert!(flash.contains("time+to+detect+is+0+s"), "{flash}");

    let typed = app
        .post_form("/incidents", Some(&responder), &fields("2026-11-20T09:00"))
        .await;
    typed.assert_status(StatusCode::SEE_OTHER);
    let flash = typed.set_cookie("hindsight_flash").expect("a message");
    assert!(flash.starts_with("hindsight_flash=ok"), "{flash}");
}

#[tokio::test]
async fn viewers_are_neither_offered_nor_accepted_as_commander_owner_or_reviewer() {
    let (app, responder, token) = app_with_services().await;
    let viewer = app.user(Role::Viewer).await;
    let admin = app.user(Role::Admin).await;

    // Not offered: the declare form's commanders.
    let form = app.get("/incidents/new", Some(&responder)).await;
    // The commander choices (the participants field further down suggests everyone).
    let commanders = form
        .body
        .split("<select id=\"commander\"")
        .nth(1)
        .and_then(|rest| rest.split("</select>").next())
        .expect("the commander select");
    assert!(commanders.contains(&format!("value=\"{}\"", responder.email)));
    assert!(!commanders.contains(&format!("value=\"{}\"", viewer.email)));

    // Not accepted: commander (form), owner and reviewer (API), each with a message naming why.
    let declared = app
        .post_form(
            "/incidents",
            Some(&responder),
            &[
                ("title", "Login slow"),
                ("severity", "sev3"),
                ("service", "checkout"),
                ("category", "config change"),
                ("commander", &viewer.email),
            ],
        )
        .await;
    declared.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        declared
            .body
            .contains("is a viewer and cannot act on incidents")
    );
    assert_eq!(app.count("incidents").await, 0, "nothing declared");

    app.declare(&token, json!({"title": "Login slow", "severity": "sev3", "service": "checkout", "category": "config change"})).await;
    let item = app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/action-items",
            Some(&token),
            Some(json!({"title": "Add a login latency alert", "owner": viewer.email})),
        )
        .await;
    item.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        item.json()["error"]["fields"]["owner"]
            .as_str()
            .unwrap_or_default()
            .contains("choose a responder or admin as owner")
    );

    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/postmortem",
        Some(&token),
        Some(json!({})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let asked = app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/postmortem/reviewers",
            Some(&token),
            Some(json!({"reviewers": [viewer.email]})),
        )
        .await;
    asked.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        asked.json()["error"]["fields"]["reviewers"]
            .as_str()
            .unwrap_or_default()
            .contains("as reviewer")
    );
    let page = app
        .get("/incidents/INC-1/postmortem", Some(&responder))
        .await;
    assert!(
        page.body.contains(&admin.name),
        "an admin is offered as reviewer"
    );
    assert!(
        !page.body.contains(&viewer.email),
        "the viewer is not offered"
    );

    // A commander named while they could act stays when the incident is edited later.
    app.api(
        Method::PATCH,
        "/api/v1/incidents/INC-1",
        Some(&token),
        Some(json!({"version": 1, "commander": admin.email})),
    )
    .await
    .assert_status(StatusCode::OK);
    // Another admin makes them a viewer (nobody can demote themselves).
    let other_admin = app.user(Role::Admin).await;
    let demoted = app
        .post_form(
            &format!("/admin/users/{}/role", admin.id),
            Some(&other_admin),
            &[("role", "viewer")],
        )
        .await;
    assert!(demoted.status.is_redirection(), "{}", demoted.status);
    let kept = app
        .api(
            Method::PATCH,
            "/api/v1/incidents/INC-1",
            Some(&token),
            Some(json!({"version": 2, "title": "Login slow for EU", "commander": admin.email})),
        )
        .await;
    kept.assert_status(StatusCode::OK);
    assert_eq!(kept.json()["commander"]["name"], admin.name);
}
