//! Signing in and out, first-admin setup, and the admin pages for users and tokens.

use axum::http::{Method, StatusCode};
use hindsight::auth::{Role, Scope};

use crate::common::{PASSWORD, TestApp, TestUser};

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or("").to_owned()
}

async fn login(app: &TestApp, email: &str, password: &str) -> crate::common::TestResponse {
    app.post_form(
        "/login",
        None,
        &[
            ("email", email),
            ("password", password),
            ("next", "/incidents/INC-7"),
        ],
    )
    .await
}

#[tokio::test]
async fn signing_in_sets_a_fresh_http_only_session_and_signing_out_ends_it() {
    let app = TestApp::spawn().await;
    let existing = app.user(Role::Responder).await;
    let page = app.get("/login?next=/incidents", None).await;
    page.assert_status(StatusCode::OK);
    assert!(page.body.contains("name=\"password\""));

    let response = login(&app, &existing.email, PASSWORD).await;
    response.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(
        response.location(),
        "/incidents/INC-7",
        "back to where they were going"
    );
    let set = response
        .set_cookie("hindsight_session")
        .expect("session cookie");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"));
    assert!(!set.contains("Secure"), "plain http base URL");
    let fresh = TestUser {
        cookie: cookie_pair(&set),
        ..existing.clone()
    };
    assert_ne!(fresh.cookie, existing.cookie);
    app.get("/incidents", Some(&fresh))
        .await
        .assert_status(StatusCode::OK);

    let out = app.post_form("/logout", Some(&fresh), &[]).await;
    out.assert_status(StatusCode::SEE_OTHER);
    assert!(
        out.set_cookie("hindsight_session")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    let after = app.get("/incidents", Some(&fresh)).await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "the old cookie no longer works"
    );
}

#[tokio::test]
async fn the_session_id_rotates_at_login() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::Viewer).await;
    // The browser already holds a session id (e.g. planted by someone else) and signs in.
    let response = app
        .send(
            axum::http::Request::post("/login")
                .header("host", crate::common::HOST)
                .header("origin", crate::common::ORIGIN)
                .header("cookie", &user.cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(format!(
                    "email={}&password=correct+horse+battery",
                    user.email.replace('@', "%40")
                )))
                .expect("request"),
        )
        .await;
    response.assert_status(StatusCode::SEE_OTHER);
    let new_cookie = cookie_pair(&response.set_cookie("hindsight_session").expect("cookie"));
    assert_ne!(new_cookie, user.cookie);
    assert_eq!(
        app.get("/incidents", Some(&user)).await.status,
        StatusCode::SEE_OTHER,
        "the old id is dead"
    );
}

#[tokio::test]
async fn secure_cookies_when_served_over_https() {
    let app = TestApp::spawn_with(&[("HINDSIGHT_BASE_URL", "https://hindsight.test")]).await;
    let user = app.user(Role::Viewer).await;
    let response = login(&app, &user.email, PASSWORD).await;
    let set = response.set_cookie("hindsight_session").expect("cookie");
    assert!(set.contains("; Secure"), "{set}");
}

#[tokio::test]
async fn wrong_passwords_are_refused_and_then_rate_limited() {
    let app = TestApp::spawn_with(&[("HINDSIGHT_LOGIN_MAX_FAILURES", "3")]).await;
    let user = app.user(Role::Responder).await;
    for _ in 0..3 {
        let response = login(&app, &user.email, "not the password").await;
        response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(response.body.contains("Email or password is not right."));
        assert!(response.set_cookie("hindsight_session").is_none());
    }
    let limited = login(&app, &user.email, PASSWORD).await;
    limited.assert_status(StatusCode::TOO_MANY_REQUESTS);
    assert!(
        limited
            .header("retry-after")
            .parse::<u64>()
            .is_ok_and(|s| s > 0)
    );
    assert!(limited.body.contains("too many attempts"));
    // Unknown accounts are answered the same way as wrong passwords.
    let unknown = login(&app, "nobody@example.com", PASSWORD).await;
    unknown.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unknown.body.contains("Email or password is not right."));
}

#[tokio::test]
async fn the_setup_link_creates_the_first_admin_once() {
    let app = TestApp::spawn().await;
    let mut tx = app.db.begin_write().await.expect("tx");
    let secret = hindsight::auth::db::create_setup_token(&mut tx)
        .await
        .expect("token");
    tx.commit().await.expect("commit");
    let path = format!("/setup/{secret}");
    app.get(&path, None).await.assert_status(StatusCode::OK);
    app.get("/setup/wrong", None)
        .await
        .assert_status(StatusCode::NOT_FOUND);

    let mismatch = app
        .post_form(
            &path,
            None,
            &[
                ("email", "ada@example.com"),
                ("name", "Ada"),
                ("password", "long enough pw"),
                ("confirm", "different pw!!"),
            ],
        )
        .await;
    mismatch.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mismatch.body.contains("does not match"));
    assert!(mismatch.body.contains("value=\"ada@example.com\""));

    let created = app
        .post_form(
            &path,
            None,
            &[
                ("email", "ada@example.com"),
                ("name", "Ada"),
                ("password", "long enough pw"),
                ("confirm", "long enough pw"),
            ],
        )
        .await;
    created.assert_status(StatusCode::SEE_OTHER);
    let admin = TestUser {
        id: String::new(),
        email: "ada@example.com".into(),
        name: "Ada".into(),
        cookie: cookie_pair(&created.set_cookie("hindsight_session").expect("signed in")),
    };
    app.get("/admin/users", Some(&admin))
        .await
        .assert_status(StatusCode::OK);
    let again = app
        .post_form(
            &path,
            None,
            &[
                ("email", "eve@example.com"),
                ("name", "Eve"),
                ("password", "long enough pw"),
                ("confirm", "long enough pw"),
            ],
        )
        .await;
    again.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn admins_add_users_change_roles_and_disable_accounts() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let invalid = app
        .post_form(
            "/admin/users",
            Some(&admin),
            &[
                ("email", "bad"),
                ("name", "Bo"),
                ("role", "root"),
                ("password", "short"),
            ],
        )
        .await;
    invalid.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    for text in [
        "must be an email address",
        "must be one of viewer, responder, admin",
        "at least 10 characters",
        "value=\"Bo\"",
    ] {
        assert!(invalid.body.contains(text), "{text}");
    }
    app.post_form(
        "/admin/users",
        Some(&admin),
        &[
            ("email", "bo@example.com"),
            ("name", "Bo"),
            ("role", "viewer"),
            ("password", "a long password"),
        ],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    let taken = app
        .post_form(
            "/admin/users",
            Some(&admin),
            &[
                ("email", "BO@example.com"),
                ("name", "Bo 2"),
                ("role", "viewer"),
                ("password", "a long password"),
            ],
        )
        .await;
    taken.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(taken.body.contains("already used"));

    let bo_id: String = sqlx::query_scalar("SELECT id FROM users WHERE email = 'bo@example.com'")
        .fetch_one(&app.db.reader)
        .await
        .expect("bo");
    app.post_form(
        &format!("/admin/users/{bo_id}/role"),
        Some(&admin),
        &[("role", "responder")],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    let bo = login(&app, "bo@example.com", "a long password").await;
    let bo = TestUser {
        id: bo_id.clone(),
        email: "bo@example.com".into(),
        name: "Bo".into(),
        cookie: cookie_pair(&bo.set_cookie("hindsight_session").expect("cookie")),
    };
    app.get("/incidents/new", Some(&bo))
        .await
        .assert_status(StatusCode::OK);
    let bo_token = app.token(&bo, Scope::Read).await;

    // Disabling ends sessions and tokens at once.
    app.post_form(&format!("/admin/users/{bo_id}/disable"), Some(&admin), &[])
        .await
        .assert_status(StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/incidents", Some(&bo)).await.status,
        StatusCode::SEE_OTHER
    );
    app.api(Method::GET, "/api/v1/incidents", Some(&bo_token), None)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    login(&app, "bo@example.com", "a long password")
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    app.post_form(&format!("/admin/users/{bo_id}/enable"), Some(&admin), &[])
        .await
        .assert_status(StatusCode::SEE_OTHER);
    login(&app, "bo@example.com", "a long password")
        .await
        .assert_status(StatusCode::SEE_OTHER);

    // The last admin stays an admin, and nobody disables themselves.
    app.post_form(
        &format!("/admin/users/{}/role", admin.id),
        Some(&admin),
        &[("role", "viewer")],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    app.post_form(
        &format!("/admin/users/{}/disable", admin.id),
        Some(&admin),
        &[],
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    let audit: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'user.%'")
            .fetch_one(&app.db.reader)
            .await
            .expect("audit");
    assert_eq!(audit, 4, "create, role, disable, enable are audited");
}

#[tokio::test]
async fn tokens_are_shown_once_stored_hashed_and_revocable() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let bad = app
        .post_form(
            "/admin/tokens",
            Some(&admin),
            &[("name", ""), ("user_id", &admin.id), ("scope", "root")],
        )
        .await;
    bad.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("must be one of read, write, ingest"));

    let created = app
        .post_form(
            "/admin/tokens",
            Some(&admin),
            &[
                ("name", "alertmanager"),
                ("user_id", &admin.id),
                ("scope", "read"),
            ],
        )
        .await;
    created.assert_status(StatusCode::CREATED);
    assert_eq!(created.header("cache-control"), "no-store");
    let start = created.body.find("hs_").expect("token shown");
    let secret = format!(
        "hs_{}",
        &created.body[start + 3..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect::<String>()
    );
    assert_eq!(secret.len(), 3 + 64, "256 random bits");
    app.api(Method::GET, "/api/v1/incidents", Some(&secret), None)
        .await
        .assert_status(StatusCode::OK);

    let stored: String = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_one(&app.db.reader)
        .await
        .expect("row");
    assert_ne!(stored, secret, "only a hash is stored");
    let listing = app.get("/admin/tokens", Some(&admin)).await;
    assert!(!listing.body.contains(&secret), "never shown again");

    let id: String = sqlx::query_scalar("SELECT id FROM api_tokens")
        .fetch_one(&app.db.reader)
        .await
        .expect("row");
    app.post_form(&format!("/admin/tokens/{id}/revoke"), Some(&admin), &[])
        .await
        .assert_status(StatusCode::SEE_OTHER);
    app.api(Method::GET, "/api/v1/incidents", Some(&secret), None)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn responders_cannot_open_admin_pages() {
    let app = TestApp::spawn().await;
    let responder = app.user(Role::Responder).await;
    for path in [
        "/admin/users",
        "/admin/tokens",
        "/admin/services",
        "/admin/categories",
    ] {
        let response = app.get(path, Some(&responder)).await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{path}");
        assert!(response.body.contains("This needs the admin role"));
    }
}

#[tokio::test]
async fn signing_in_without_a_next_page_lands_on_home() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::Responder).await;
    let response = app
        .post_form(
            "/login",
            None,
            &[("email", &user.email), ("password", PASSWORD)],
        )
        .await;
    response.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(response.location(), "/");
}
