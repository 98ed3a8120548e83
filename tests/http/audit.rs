//! Admin › Audit: what is recorded (sign-ins and failures, role changes, tokens with their
//! owner), the filters (actor, action, dates; bookmarkable), paging, the formula-safe CSV of
//! the filtered view, `GET /api/v1/audit`, admins only — and the database refusing to change
//! or delete an entry.

use axum::http::{Method, StatusCode};

use crate::common::{PASSWORD, TestApp};
use hindsight::auth::{Role, Scope};

#[tokio::test]
async fn admin_reads_who_did_what_filtered_and_exported() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let viewer = app.user(Role::Viewer).await;

    // A failed and a successful sign-in, a role change, a token for someone else.
    app.post_form(
        "/login",
        None,
        &[
            ("email", viewer.email.as_str()),
            ("password", "not the password"),
        ],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    app.post_form(
        "/login",
        None,
        &[("email", viewer.email.as_str()), ("password", PASSWORD)],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    app.post_form(
        &format!("/admin/users/{}/role", viewer.id),
        Some(&admin),
        &[("role", "responder")],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    app.post_form(
        "/admin/tokens",
        Some(&admin),
        &[
            ("name", "=cmd|' /C calc'!A0"),
            ("user_id", viewer.id.as_str()),
            ("scope", "read"),
        ],
    )
    .await
    .assert_status(StatusCode::CREATED);

    let page = app.get("/admin/audit", Some(&admin)).await;
    page.assert_status(StatusCode::OK);
    for action in ["login.failed", "login", "user.role", "token.create"] {
        assert!(
            page.body.contains(&format!("<code>{action}</code>")),
            "{action}"
        );
    }
    assert!(page.body.contains("viewer → responder"), "old and new role");
    assert!(
        page.body
            .contains(&format!("read token owned by {}", viewer.email)),
        "the token's owner"
    );
    assert!(page.body.contains("href=\"/admin/audit\""), "the Audit tab");
    // Newest first: the token (last) before the failed sign-in (first).
    let token_at = page.body.find("<code>token.create</code>").expect("token");
    let failed_at = page.body.find("<code>login.failed</code>").expect("failed");
    assert!(token_at < failed_at, "newest first");

    // Filters: by actor (the admin did the role change and the token, not the sign-ins).
    let mine = app
        .get(&format!("/admin/audit?actor={}", admin.email), Some(&admin))
        .await;
    mine.assert_status(StatusCode::OK);
    assert!(mine.body.contains("<code>user.role</code>"));
    assert!(!mine.body.contains("<code>login.failed</code>"));
    assert!(mine.body.contains("2 entries"), "{}", mine.body);
    let nobody = app.get("/admin/audit?actor=none", Some(&admin)).await;
    assert!(nobody.body.contains("<code>login.failed</code>"));
    assert!(!nobody.body.contains("<code>user.role</code>"));
    let failures = app
        .get("/admin/audit?action=login.failed", Some(&admin))
        .await;
    assert!(failures.body.contains("1 entry"), "{}", failures.body);
    let long_ago = app
        .get("/admin/audit?from=2001-01-01&to=2001-12-31", Some(&admin))
        .await;
    assert!(long_ago.body.contains("No audit entries match."));
    let bad = app
        .get("/admin/audit?from=2026-02-30&to=2001-01-01", Some(&admin))
        .await;
    bad.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("from: must be a date like 2026-12-01"),
        "{}",
        bad.body
    );

    // The CSV is the filtered view, with the formula in the token's name defused.
    let csv = app
        .get("/admin/audit.csv?action=token.create", Some(&admin))
        .await;
    csv.assert_status(StatusCode::OK);
    assert!(csv.header("content-type").starts_with("text/csv"));
    assert!(csv.header("content-disposition").contains("audit.csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "at,actor_email,actor_name,action,target,detail");
    assert_eq!(lines.len(), 2, "{}", csv.body);
    assert!(lines[1].contains(",token.create,'=cmd|"), "{}", lines[1]);

    // Admins only.
    let viewer_session = app.user(Role::Responder).await;
    app.get("/admin/audit", Some(&viewer_session))
        .await
        .assert_status(StatusCode::FORBIDDEN);
    app.get("/admin/audit.csv", Some(&viewer_session))
        .await
        .assert_status(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_api_pages_the_log_for_admin_tokens_only() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let responder = app.user(Role::Responder).await;
    for n in 0..55 {
        app.post_form(
            "/login",
            None,
            &[
                ("email", &format!("nobody{n}@example.com")),
                ("password", "wrong password"),
            ],
        )
        .await;
    }
    let token = app.token(&admin, Scope::Read).await;
    let first = app
        .api(
            Method::GET,
            "/api/v1/audit?action=login.failed",
            Some(&token),
            None,
        )
        .await;
    first.assert_status(StatusCode::OK);
    let body = first.json();
    assert!(body["total"].as_i64().expect("total") >= 50, "{body}");
    assert_eq!(body["per_page"], 50);
    assert_eq!(body["items"].as_array().expect("items").len(), 50);
    assert_eq!(body["items"][0]["action"], "login.failed");
    assert!(body["items"][0]["actor_email"].is_null());
    let last = app
        .api(
            Method::GET,
            &format!("/api/v1/audit?action=login.failed&page={}", body["pages"]),
            Some(&token),
            None,
        )
        .await
        .json();
    assert!(!last["items"].as_array().expect("items").is_empty());
    assert_ne!(
        last["items"][0]["id"], body["items"][0]["id"],
        "another page"
    );

    app.api(
        Method::GET,
        "/api/v1/audit?to=2001-01-01&from=2002-01-01",
        Some(&token),
        None,
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    app.api(Method::GET, "/api/v1/audit?page=0", Some(&token), None)
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let not_admin = app.token(&responder, Scope::Write).await;
    app.api(Method::GET, "/api/v1/audit", Some(&not_admin), None)
        .await
        .assert_status(StatusCode::FORBIDDEN);
    app.api(Method::GET, "/api/v1/audit", None, None)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_database_refuses_to_change_or_delete_an_entry() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    app.post_form(
        "/login",
        None,
        &[("email", admin.email.as_str()), ("password", PASSWORD)],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    let before = app.count("audit_log").await;
    assert!(before >= 1);

    let update = sqlx::query("UPDATE audit_log SET detail = 'nothing happened'")
        .execute(&app.db.writer)
        .await
        .expect_err("an UPDATE is refused");
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = sqlx::query("DELETE FROM audit_log")
        .execute(&app.db.writer)
        .await
        .expect_err("a DELETE is refused");
    assert!(delete.to_string().contains("append-only"), "{delete}");
    assert_eq!(app.count("audit_log").await, before, "nothing lost");
    let detail: String = sqlx::query_scalar("SELECT detail FROM audit_log LIMIT 1")
        .fetch_one(&app.db.reader)
        .await
        .expect("entry");
    assert_ne!(detail, "nothing happened");
    // Appending still works.
    app.post_form(
        "/login",
        None,
        &[
            ("email", admin.email.as_str()),
            ("password", "wrong password!"),
        ],
    )
    .await;
    assert_eq!(app.count("audit_log").await, before + 1);
}
