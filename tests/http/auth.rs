//! Signing in and out, first-admin setup, and the admin pages for users and tokens.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
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
    let set = response
        .set_cookie("__Host-hindsight_session")
        .expect("cookie");
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
        "at least 12 characters",
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

/// A sign-in form post as it reaches the server from `peer` (the TCP peer: the client, or a
/// proxy) with an optional `X-Forwarded-For`.
fn login_request(
    email: &str,
    password: &str,
    peer: &str,
    forwarded_for: Option<&str>,
) -> Request<Body> {
    let mut req = Request::post("/login")
        .header(header::HOST, crate::common::HOST)
        .header(header::ORIGIN, crate::common::ORIGIN)
        .header("sec-fetch-site", "same-origin")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    let body =
        serde_urlencoded::to_string([("email", email), ("password", password)]).expect("form");
    let mut req = req.body(Body::from(body)).expect("request");
    let peer: SocketAddr = format!("{peer}:40000").parse().expect("peer");
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

#[tokio::test]
async fn a_next_page_with_a_tab_or_control_character_goes_home_not_off_site() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::Responder).await;
    // Browsers strip the tab: `/<TAB>/evil.example` would become `//evil.example`.
    for next in [
        "/%09/evil.example",
        "/%0A/evil.example",
        "/%0D%0A/evil.example",
        "/%5Cevil.example",
    ] {
        let signed_in = app.get(&format!("/login?next={next}"), Some(&user)).await;
        signed_in.assert_status(StatusCode::SEE_OTHER);
        assert_eq!(signed_in.location(), "/", "{next}");
        let form = app.get(&format!("/login?next={next}"), None).await;
        assert!(
            !form.body.contains("evil.example"),
            "{next}: the form does not carry it"
        );
    }
    let response = app
        .post_form(
            "/login",
            None,
            &[
                ("email", &user.email),
                ("password", PASSWORD),
                ("next", "/\t/evil.example"),
            ],
        )
        .await;
    response.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(response.location(), "/");
}

/// Fires `n` sign-ins with a wrong password at once and returns how many were answered 422
/// (the password was checked and refused) and 429 (refused before checking).
async fn parallel_wrong_passwords(app: &TestApp, email: &str, n: usize) -> (usize, usize) {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let router = app.router.clone();
        let req = login_request(email, "not the password", "192.0.2.10", None);
        set.spawn(async move {
            use tower::ServiceExt;
            let response = router.oneshot(req).await.expect("infallible");
            let retry = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            (response.status(), retry)
        });
    }
    let (mut checked, mut limited) = (0, 0);
    while let Some(done) = set.join_next().await {
        match done.expect("request task") {
            (StatusCode::UNPROCESSABLE_ENTITY, _) => checked += 1,
            (StatusCode::TOO_MANY_REQUESTS, Some(s)) if s >= 1 => limited += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    (checked, limited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_parallel_wrong_passwords_check_at_most_the_limit_and_the_rest_get_429() {
    let app = TestApp::spawn_with(&[
        ("HINDSIGHT_LOGIN_MAX_FAILURES", "10"),
        ("HINDSIGHT_LOGIN_MAX_CONCURRENT", "10"),
    ])
    .await;
    let user = app.user(Role::Admin).await;
    let (checked, limited) = parallel_wrong_passwords(&app, &user.email, 300).await;
    assert!(
        (1..=10).contains(&checked),
        "at most the limit of 10 passwords were checked, not {checked}"
    );
    assert_eq!(checked + limited, 300);
    let throttled: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'login.throttled' AND target = ?",
    )
    .bind(&user.email)
    .fetch_one(&app.db.reader)
    .await
    .expect("audit");
    assert!(
        (1..=3).contains(&throttled),
        "throttling is audited once per limit, not per refused request: {throttled}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_checks_beyond_the_concurrency_bound_are_answered_429_at_once() {
    let app = TestApp::spawn_with(&[
        ("HINDSIGHT_LOGIN_MAX_FAILURES", "1000"),
        ("HINDSIGHT_LOGIN_ADDRESS_MAX_FAILURES", "1000"),
        ("HINDSIGHT_LOGIN_ACCOUNT_MAX_FAILURES", "1000"),
        ("HINDSIGHT_LOGIN_MAX_CONCURRENT", "2"),
    ])
    .await;
    let user = app.user(Role::Responder).await;
    let (checked, limited) = parallel_wrong_passwords(&app, &user.email, 40).await;
    assert!(
        limited > 0,
        "40 at once with 2 check slots: some are turned away instead of queued ({checked} checked)"
    );
    assert_eq!(checked + limited, 40);
    assert_eq!(
        app.state.login_limiter.free_slots(),
        2,
        "every slot is given back"
    );
    // Once the burst is over, the right password works.
    let ok = app
        .send(login_request(&user.email, PASSWORD, "192.0.2.10", None))
        .await;
    ok.assert_status(StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn behind_a_trusted_proxy_one_clients_failures_do_not_lock_out_the_others() {
    let app = TestApp::spawn_with(&[
        ("HINDSIGHT_LOGIN_MAX_FAILURES", "3"),
        ("HINDSIGHT_TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let user = app.user(Role::Responder).await;
    for _ in 0..3 {
        app.send(login_request(
            &user.email,
            "wrong password!",
            "127.0.0.1",
            Some("198.51.100.1"),
        ))
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    }
    app.send(login_request(
        &user.email,
        PASSWORD,
        "127.0.0.1",
        Some("198.51.100.1"),
    ))
    .await
    .assert_status(StatusCode::TOO_MANY_REQUESTS);
    // The same person from another address, through the same proxy, is let in.
    app.send(login_request(
        &user.email,
        PASSWORD,
        "127.0.0.1",
        Some("198.51.100.2"),
    ))
    .await
    .assert_status(StatusCode::SEE_OTHER);
    // A forged left-most entry does not help: the proxy appended the real address.
    app.send(login_request(
        &user.email,
        PASSWORD,
        "127.0.0.1",
        Some("198.51.100.2, 198.51.100.1"),
    ))
    .await
    .assert_status(StatusCode::TOO_MANY_REQUESTS);
    // A client that is not a trusted proxy cannot pick its address with the header.
    let other = app.user(Role::Responder).await;
    for n in 0..3 {
        app.send(login_request(
            &other.email,
            "wrong password!",
            "203.0.113.9",
            Some(&format!("198.51.100.{}", 50 + n)),
        ))
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    }
    app.send(login_request(
        &other.email,
        PASSWORD,
        "203.0.113.9",
        Some("198.51.100.99"),
    ))
    .await
    .assert_status(StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn guessing_from_many_addresses_hits_the_account_ceiling_but_cannot_lock_out_the_owner() {
    let app = TestApp::spawn_with(&[
        ("HINDSIGHT_LOGIN_MAX_FAILURES", "3"),
        ("HINDSIGHT_LOGIN_ACCOUNT_MAX_FAILURES", "6"),
    ])
    .await;
    let admin = app.user(Role::Admin).await;
    // The admin signed in from their usual address before the attack.
    app.send(login_request(&admin.email, PASSWORD, "192.0.2.1", None))
        .await
        .assert_status(StatusCode::SEE_OTHER);
    for n in 0..6 {
        app.send(login_request(
            &admin.email,
            "guess guess!",
            &format!("203.0.113.{n}"),
            None,
        ))
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    }
    app.send(login_request(
        &admin.email,
        "guess guess!",
        "203.0.113.77",
        None,
    ))
    .await
    .assert_status(StatusCode::TOO_MANY_REQUESTS);
    app.send(login_request(&admin.email, PASSWORD, "192.0.2.1", None))
        .await
        .assert_status(StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_session_idle_longer_than_the_limit_ends_and_activity_keeps_it_alive() {
    let app = TestApp::spawn_with(&[("HINDSIGHT_SESSION_IDLE_MINUTES", "60")]).await;
    let idle = app.user(Role::Responder).await;
    let active = app.user(Role::Responder).await;
    let ago = |minutes: i64| {
        (chrono::Utc::now() - chrono::Duration::minutes(minutes))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    for (user, minutes) in [(&idle, 61), (&active, 5)] {
        sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE user_id = ?")
            .bind(ago(minutes))
            .bind(&user.id)
            .execute(&app.db.writer)
            .await
            .expect("age the session");
    }
    let gone = app.get("/incidents", Some(&idle)).await;
    gone.assert_status(StatusCode::SEE_OTHER);
    assert!(gone.location().starts_with("/login"), "{}", gone.location());
    app.get("/incidents", Some(&active))
        .await
        .assert_status(StatusCode::OK);
    // The request renewed the active session (written off the request path).
    let renewed = ago(1);
    let mut seen = String::new();
    for _ in 0..50 {
        seen = sqlx::query_scalar("SELECT last_seen_at FROM sessions WHERE user_id = ?")
            .bind(&active.id)
            .fetch_one(&app.db.reader)
            .await
            .expect("session");
        if seen > renewed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(seen > renewed, "last seen {seen}");
}

#[tokio::test]
async fn https_deployments_use_a_host_only_cookie_and_hsts_and_pages_are_not_cached() {
    let app = TestApp::spawn_with(&[("HINDSIGHT_BASE_URL", "https://hindsight.test")]).await;
    let user = app.user(Role::Viewer).await;
    let response = login(&app, &user.email, PASSWORD).await;
    let set = response
        .set_cookie("__Host-hindsight_session")
        .expect("a __Host- cookie");
    assert!(
        set.contains("; Secure") && set.contains("Path=/") && !set.contains("Domain"),
        "{set}"
    );
    assert!(
        response
            .header("strict-transport-security")
            .starts_with("max-age=")
    );
    let host_cookie = TestUser {
        cookie: cookie_pair(&set),
        ..user.clone()
    };
    let page = app.get("/incidents", Some(&host_cookie)).await;
    page.assert_status(StatusCode::OK);
    assert_eq!(page.header("cache-control"), "no-store");
    assert!(
        page.header("strict-transport-security")
            .contains("max-age=31536000")
    );
    // A cookie without the prefix (one a sibling subdomain could plant) is not a session.
    let planted = TestUser {
        cookie: cookie_pair(&set).replacen("__Host-", "", 1),
        ..user.clone()
    };
    app.get("/incidents", Some(&planted))
        .await
        .assert_status(StatusCode::SEE_OTHER);
    // Plain http: no HSTS (it would be ignored, and wrong), still no caching of pages.
    let plain = TestApp::spawn().await;
    let viewer = plain.user(Role::Viewer).await;
    let page = plain.get("/incidents", Some(&viewer)).await;
    assert_eq!(page.header("strict-transport-security"), "");
    assert_eq!(page.header("cache-control"), "no-store");
    let css = plain.get("/static/app.css", None).await;
    assert!(
        css.header("cache-control").contains("max-age"),
        "static files stay cacheable"
    );
}
