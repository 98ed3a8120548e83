//! The security baseline on every route: sign-in required, roles enforced, cross-site forms
//! refused, headers set, bodies bounded, Markdown made inert.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use hindsight::auth::{Role, Scope};
use serde_json::json;

use crate::common::{HOST, ORIGIN, TestApp};

/// Every page a signed-in person can open.
const PAGES: &[&str] = &[
    "/incidents",
    "/incidents/new",
    "/incidents/INC-1",
    "/incidents/INC-1/edit",
    "/admin/users",
    "/admin/tokens",
    "/admin/services",
    "/admin/categories",
    "/services",
    "/services/hindsight",
    "/services/hindsight/live",
    "/alerts",
    "/alerts/rules",
    "/admin/integrations",
    "/action-items",
    "/action-items.csv",
    "/action-items/progress",
    "/incidents/INC-1/action-items/new",
    "/postmortems",
    "/incidents/INC-1/postmortem",
    "/incidents/INC-1/postmortem/edit",
    "/incidents/INC-1/postmortem/history",
    "/incidents/INC-1/postmortem/revisions/1",
    "/incidents/INC-1/postmortem/print",
    "/incidents/INC-1/postmortem.md",
    "/admin/templates",
    "/admin/templates/new",
    "/admin/templates/0190a000-0000-7000-8000-000000000001",
    "/",
    "/reports/weekly",
    "/reports/weekly.md",
    "/reports/weekly.csv",
    "/search",
];

/// Every state-changing form action (paths valid once INC-1 and its first entry exist).
fn form_posts(entry: &str, user_id: &str) -> Vec<String> {
    vec![
        "/incidents".into(),
        "/incidents/INC-1/edit".into(),
        "/incidents/INC-1/status".into(),
        "/incidents/INC-1/timeline".into(),
        format!("/incidents/INC-1/timeline/{entry}"),
        format!("/incidents/INC-1/timeline/{entry}/delete"),
        "/admin/users".into(),
        format!("/admin/users/{user_id}/role"),
        format!("/admin/users/{user_id}/disable"),
        format!("/admin/users/{user_id}/enable"),
        "/admin/tokens".into(),
        "/admin/tokens/some-id/revoke".into(),
        "/admin/services".into(),
        "/admin/services/checkout".into(),
        "/admin/services/checkout/delete".into(),
        "/admin/categories".into(),
        "/admin/categories/deploy".into(),
        "/admin/categories/deploy/delete".into(),
        "/incidents/INC-1/snapshots".into(),
        "/alerts/rules".into(),
        "/alerts/rules/some-rule".into(),
        "/alerts/rules/some-rule/delete".into(),
        "/admin/integrations".into(),
        "/admin/integrations/destinations/some-id/delete".into(),
        "/incidents/INC-1/action-items".into(),
        "/action-items/bulk".into(),
        "/action-items/some-id/edit".into(),
        "/action-items/some-id/status".into(),
        "/incidents/INC-1/postmortem".into(),
        "/incidents/INC-1/postmortem/edit".into(),
        "/incidents/INC-1/postmortem/preview".into(),
        "/incidents/INC-1/postmortem/status".into(),
        "/incidents/INC-1/postmortem/reviewers".into(),
        "/incidents/INC-1/postmortem/review".into(),
        "/admin/templates".into(),
        "/admin/templates/0190a000-0000-7000-8000-000000000001".into(),
        "/admin/templates/0190a000-0000-7000-8000-000000000002/delete".into(),
    ]
}

/// Every API call that changes data.
fn api_writes(entry: &str) -> Vec<(Method, String)> {
    vec![
        (Method::POST, "/api/v1/incidents".into()),
        (Method::PATCH, "/api/v1/incidents/INC-1".into()),
        (Method::POST, "/api/v1/incidents/INC-1/timeline".into()),
        (Method::PATCH, format!("/api/v1/timeline/{entry}")),
        (Method::DELETE, format!("/api/v1/timeline/{entry}")),
        (Method::POST, "/api/v1/services".into()),
        (Method::POST, "/api/v1/categories".into()),
        (Method::POST, "/api/v1/incidents/INC-1/snapshots".into()),
        (Method::POST, "/api/v1/alert-rules".into()),
        (Method::POST, "/api/v1/incidents/INC-1/action-items".into()),
        (Method::PATCH, "/api/v1/action-items/some-id".into()),
        (Method::POST, "/api/v1/incidents/INC-1/postmortem".into()),
        (Method::PUT, "/api/v1/incidents/INC-1/postmortem".into()),
        (
            Method::POST,
            "/api/v1/incidents/INC-1/postmortem/status".into(),
        ),
        (
            Method::POST,
            "/api/v1/incidents/INC-1/postmortem/reviewers".into(),
        ),
        (
            Method::POST,
            "/api/v1/incidents/INC-1/postmortem/review".into(),
        ),
    ]
}

const API_READS: &[&str] = &[
    "/api/v1/incidents",
    "/api/v1/incidents/INC-1",
    "/api/v1/services",
    "/api/v1/categories",
    "/api/v1/alerts",
    "/api/v1/alert-rules",
    "/api/v1/metrics/services/hindsight",
    "/api/v1/action-items",
    "/api/v1/incidents/INC-1/postmortem",
    "/api/v1/incidents/INC-1/postmortem/revisions",
    "/api/v1/incidents/INC-1/postmortem.md",
    "/api/v1/postmortem-templates",
    "/api/v1/reports/weekly",
    "/api/v1/reports/weekly.md",
    "/api/v1/reports/weekly.csv",
];

/// An app with one incident (INC-1) and a timeline entry; returns the entry id.
async fn app_with_incident() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    let incident = app
        .declare(
            &token,
            json!({"title": "Checkout down", "severity": "sev2", "service": "checkout", "category": "deploy"}),
        )
        .await;
    let entries = app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&token), None)
        .await
        .json()["timeline"]
        .clone();
    let entry = entries[0]["id"].as_str().expect("entry id").to_owned();
    assert_eq!(incident["number"], "INC-1");
    (app, entry)
}

#[tokio::test]
async fn anonymous_page_requests_are_sent_to_the_login_page() {
    let (app, _) = app_with_incident().await;
    for path in PAGES {
        let response = app.get(path, None).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            response.location(),
            format!("/login?next={}", path.replace('/', "%2F")),
            "{path}"
        );
    }
}

#[tokio::test]
async fn anonymous_form_posts_are_refused_and_write_nothing() {
    let (app, entry) = app_with_incident().await;
    let before = (
        app.count("incidents").await,
        app.count("timeline_entries").await,
    );
    for path in form_posts(&entry, "nobody") {
        let response = app
            .post_form(&path, None, &[("title", "x"), ("body", "x")])
            .await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{path}");
        assert!(response.location().starts_with("/login"), "{path}");
    }
    assert_eq!(
        (
            app.count("incidents").await,
            app.count("timeline_entries").await
        ),
        before
    );
}

#[tokio::test]
async fn api_without_a_valid_token_answers_401_in_json() {
    let (app, entry) = app_with_incident().await;
    let mut calls: Vec<(Method, String)> = API_READS
        .iter()
        .map(|p| (Method::GET, (*p).to_owned()))
        .collect();
    calls.extend(api_writes(&entry));
    for (method, path) in calls {
        for token in [None, Some("hs_not-a-real-token")] {
            let response = app.api(method.clone(), &path, token, Some(json!({}))).await;
            assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert_eq!(response.json()["error"]["code"], "unauthenticated");
            assert_eq!(response.header("www-authenticate"), "Bearer");
        }
    }
}

#[tokio::test]
async fn a_viewer_can_read_everything_but_gets_403_on_every_write() {
    let (app, entry) = app_with_incident().await;
    let viewer = app.user(Role::Viewer).await;
    for path in ["/incidents", "/incidents/INC-1"] {
        app.get(path, Some(&viewer))
            .await
            .assert_status(StatusCode::OK);
    }
    // A viewer's write token cannot write either, and read tokens never write.
    let viewer_write = app.token(&viewer, Scope::Write).await;
    let admin = app.user(Role::Admin).await;
    let admin_read = app.token(&admin, Scope::Read).await;
    let admin_ingest = app.token(&admin, Scope::Ingest).await;
    let before = (
        app.count("incidents").await,
        app.count("timeline_entries").await,
        app.count("users").await,
        app.count("services").await,
    );
    for path in form_posts(&entry, &viewer.id) {
        let response = app
            .post_form(
                &path,
                Some(&viewer),
                &[
                    ("title", "x"),
                    ("body", "x"),
                    ("status", "closed"),
                    ("version", "1"),
                    ("name", "x"),
                    ("role", "admin"),
                ],
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            response.body
        );
    }
    for path in [
        "/incidents/new",
        "/incidents/INC-1/edit",
        "/admin/users",
        "/admin/tokens",
    ] {
        assert_eq!(
            app.get(path, Some(&viewer)).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    for (method, path) in api_writes(&entry) {
        for token in [&viewer_write, &admin_read, &admin_ingest] {
            let response = app
                .api(
                    method.clone(),
                    &path,
                    Some(token),
                    Some(json!({"title": "x", "version": 1, "body": "x", "name": "x"})),
                )
                .await;
            assert_eq!(response.status, StatusCode::FORBIDDEN, "{method} {path}");
            assert_eq!(response.json()["error"]["code"], "forbidden");
        }
    }
    assert_eq!(
        (
            app.count("incidents").await,
            app.count("timeline_entries").await,
            app.count("users").await,
            app.count("services").await,
        ),
        before
    );
}

#[tokio::test]
async fn ingest_tokens_cannot_read() {
    let (app, _) = app_with_incident().await;
    let admin = app.user(Role::Admin).await;
    let ingest = app.token(&admin, Scope::Ingest).await;
    for path in API_READS {
        let response = app.api(Method::GET, path, Some(&ingest), None).await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{path}");
    }
}

#[tokio::test]
async fn a_cross_origin_form_post_is_refused_with_nothing_written() {
    let (app, entry) = app_with_incident().await;
    let admin = app.user(Role::Admin).await;
    let before = (
        app.count("incidents").await,
        app.count("timeline_entries").await,
        app.count("users").await,
    );
    for path in form_posts(&entry, &admin.id) {
        for (origin, fetch_site) in [
            ("https://evil.example", Some("cross-site")),
            ("https://evil.example", None),
        ] {
            let mut req = Request::post(&path)
                .header(header::HOST, HOST)
                .header(header::ORIGIN, origin)
                .header(header::COOKIE, &admin.cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            if let Some(site) = fetch_site {
                req = req.header("sec-fetch-site", site);
            }
            let body = "title=Forged&severity=sev1&service=checkout&category=deploy&body=forged&name=forged&role=admin&email=x%40evil.example&password=0123456789";
            let response = app.send(req.body(Body::from(body)).expect("request")).await;
            assert_eq!(response.status, StatusCode::FORBIDDEN, "{path}");
            assert!(
                response.body.contains("another site"),
                "{path}: an explanation is shown"
            );
        }
    }
    assert_eq!(
        (
            app.count("incidents").await,
            app.count("timeline_entries").await,
            app.count("users").await
        ),
        before
    );
    // The same form from this site goes through.
    let ok = app
        .post_form(
            "/incidents/INC-1/timeline",
            Some(&admin),
            &[("kind", "note"), ("body", "same site")],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(format!("{ORIGIN}/"), "http://hindsight.test/");
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_a_request_id() {
    let (app, _) = app_with_incident().await;
    let admin = app.user(Role::Admin).await;
    for response in [
        app.get("/incidents", Some(&admin)).await,
        app.get("/login", None).await,
        app.get("/healthz", None).await,
        app.get("/no/such/page", Some(&admin)).await,
        app.api(Method::GET, "/api/v1/incidents", None, None).await,
    ] {
        assert_eq!(
            response.header("content-security-policy"),
            "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
        );
        assert_eq!(response.header("x-content-type-options"), "nosniff");
        assert_eq!(response.header("referrer-policy"), "same-origin");
        assert_eq!(response.header("x-frame-options"), "DENY");
        assert_eq!(
            response.header("x-request-id").len(),
            36,
            "a UUID request id"
        );
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413_on_pages_and_api() {
    let app = TestApp::spawn_with(&[("HINDSIGHT_MAX_BODY_BYTES", "4096")]).await;
    app.service("checkout", "").await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    let big = "x".repeat(10_000);
    let page = app
        .post_form(
            "/incidents",
            Some(&admin),
            &[("title", "t"), ("summary", &big)],
        )
        .await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(page.body.contains("4096 bytes"), "{}", page.body);
    let api = app
        .api(
            Method::POST,
            "/api/v1/incidents",
            Some(&token),
            Some(json!({"title": "t", "summary": big})),
        )
        .await;
    assert_eq!(api.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(api.json()["error"]["code"], "payload_too_large");
    assert_eq!(app.count("incidents").await, 0);
}

#[tokio::test]
async fn markdown_xss_payloads_come_out_inert_on_the_incident_page() {
    let app = TestApp::spawn().await;
    app.service("checkout", "").await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    let payload = "<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[x](JaVaScRiPt:alert(3))\n\n[y](&#106;avascript:alert(4))\n\n<svg onload=alert(5)></svg>\n\n<a href=\"data:text/html,<script>alert(6)</script>\">z</a>";
    app.declare(
        &token,
        json!({"title": "<b>bold title</b>", "severity": "sev3", "service": "checkout", "category": "data",
               "summary": payload, "customer_impact": payload}),
    )
    .await;
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/timeline",
        Some(&token),
        Some(json!({"kind": "note", "body": payload})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let page = app.get("/incidents/INC-1", Some(&admin)).await;
    page.assert_status(StatusCode::OK);
    // Raw HTML shows as the text typed, so only the page's markup is searched.
    let html = crate::common::markup_only(&page.body);
    for needle in [
        "<script>", // an inline script tag (the page's own has a src)
        "onerror",
        "javascript:",
        "<svg",
        "onload=alert",
        "data:text/html",
    ] {
        assert!(!html.contains(needle), "{needle} survived");
    }
    assert!(page.body.contains("bold title"));
    assert!(
        !page.body.contains("<b>bold title</b>"),
        "titles are escaped, not rendered"
    );
}

#[tokio::test]
async fn unknown_routes_get_a_404_page_or_json_error() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Read).await;
    let page = app.get("/nowhere", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page.body.contains("Not Found"));
    let api = app
        .api(Method::GET, "/api/v1/nowhere", Some(&token), None)
        .await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert_eq!(api.json()["error"]["code"], "not_found");
    let missing = app
        .api(Method::GET, "/api/v1/incidents/INC-99", Some(&token), None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let nonsense = app
        .api(
            Method::GET,
            "/api/v1/incidents/'%20OR%201=1",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(nonsense.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_static_files_and_openapi_are_served_without_login() {
    let app = TestApp::spawn().await;
    let health = app.get("/healthz", None).await;
    health.assert_status(StatusCode::OK);
    assert_eq!(health.json(), json!({"status": "ok"}));
    let css = app.get("/static/app.css", None).await;
    css.assert_status(StatusCode::OK);
    assert!(css.header("content-type").starts_with("text/css"));
    // An unclosed block silently drops every rule after it (merges have done this).
    let mut depth = 0i64;
    for c in css.body.chars() {
        depth += match c {
            '{' => 1,
            '}' => -1,
            _ => 0,
        };
        assert!(depth >= 0, "a stray closing brace in app.css");
    }
    assert_eq!(depth, 0, "every block in app.css is closed");
    app.get("/static/nope.css", None)
        .await
        .assert_status(StatusCode::NOT_FOUND);
    let spec = app.get("/api/openapi.json", None).await;
    spec.assert_status(StatusCode::OK);
    let spec = spec.json();
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    for path in [
        "/api/v1/incidents",
        "/api/v1/incidents/{incident}",
        "/api/v1/incidents/{incident}/timeline",
        "/api/v1/timeline/{id}",
        "/api/v1/services",
        "/api/v1/categories",
        "/api/v1/incidents/{incident}/postmortem",
        "/api/v1/incidents/{incident}/postmortem/status",
        "/api/v1/incidents/{incident}/postmortem.md",
        "/api/v1/reports/weekly",
        "/api/v1/reports/weekly.md",
        "/api/v1/reports/weekly.csv",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is described");
    }
}
