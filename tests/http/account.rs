//! Your account: changing your password, your sessions, admin reset links and "End all
//! sessions", `hindsight user set-password`, and the password rules wherever a password is set.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use hindsight::auth::{Role, Scope};

use crate::common::{HOST, ORIGIN, PASSWORD, TestApp, TestResponse, TestUser};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const NEW_PASSWORD: &str = "a brand new passphrase";

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or("").to_owned()
}

/// Signs in through the login form as a browser at `peer` with `agent` would.
async fn sign_in_from(
    app: &TestApp,
    email: &str,
    password: &str,
    peer: &str,
    agent: &str,
) -> TestResponse {
    let body =
        serde_urlencoded::to_string([("email", email), ("password", password)]).expect("form");
    let mut req = Request::post("/login")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, ORIGIN)
        .header("sec-fetch-site", "same-origin")
        .header(header::USER_AGENT, agent)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("request");
    let peer: SocketAddr = format!("{peer}:40000").parse().expect("peer");
    req.extensions_mut().insert(ConnectInfo(peer));
    app.send(req).await
}

/// Another signed-in session of `user` (a second browser).
async fn second_session(app: &TestApp, user: &TestUser, password: &str) -> TestUser {
    let response = sign_in_from(app, &user.email, password, "198.51.100.20", FIREFOX).await;
    response.assert_status(StatusCode::SEE_OTHER);
    TestUser {
        cookie: cookie_pair(&response.set_cookie("hindsight_session").expect("cookie")),
        ..user.clone()
    }
}

#[track_caller]
fn assert_signed_in(response: &TestResponse) {
    assert_eq!(response.status, StatusCode::OK, "still signed in");
}

#[track_caller]
fn assert_signed_out(response: &TestResponse) {
    assert_eq!(response.status, StatusCode::SEE_OTHER, "signed out");
    assert!(
        response.location().starts_with("/login"),
        "{}",
        response.location()
    );
}

async fn audits(app: &TestApp, action: &str) -> Vec<(Option<String>, String, String)> {
    sqlx::query_as("SELECT actor_id, target, detail FROM audit_log WHERE action = ? ORDER BY at")
        .bind(action)
        .fetch_all(&app.db.reader)
        .await
        .expect("audit")
}

async fn change(app: &TestApp, user: &TestUser, fields: [&str; 3]) -> TestResponse {
    app.post_form(
        "/account/password",
        Some(user),
        &[
            ("current", fields[0]),
            ("new", fields[1]),
            ("confirm", fields[2]),
        ],
    )
    .await
}

#[tokio::test]
async fn the_header_links_your_name_to_your_account_page() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::Viewer).await;
    let home = app.get("/incidents", Some(&user)).await;
    assert!(
        home.body
            .contains("<a class=\"who-name\" href=\"/account\""),
        "the name in the header opens the account page"
    );
    let page = app.get("/account", Some(&user)).await;
    page.assert_status(StatusCode::OK);
    assert!(page.body.contains("Change password") && page.body.contains(&user.email));
    assert!(page.body.contains("href=\"/account/sessions\""));
    assert_signed_out(&app.get("/account", None).await);
    assert_signed_out(&app.get("/account/sessions", None).await);
}

#[tokio::test]
async fn changing_your_password_needs_the_current_one_and_signs_out_your_other_sessions() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::Responder).await;
    let other = second_session(&app, &user, PASSWORD).await;
    let token = app.token(&user, Scope::Read).await;

    let wrong = change(&app, &user, ["not my password", NEW_PASSWORD, NEW_PASSWORD]).await;
    wrong.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong
            .body
            .contains("Current password is not your current password")
    );
    let mismatch = change(
        &app,
        &user,
        [PASSWORD, NEW_PASSWORD, "a brand new passphrasE"],
    )
    .await;
    mismatch.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mismatch.body.contains("does not match the new password"));
    let short = change(&app, &user, [PASSWORD, "elevenchars", "elevenchars"]).await;
    short.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        short
            .body
            .contains("New password must be at least 12 characters")
    );
    let common = change(&app, &user, [PASSWORD, "1QAZ2WSX3EDC", "1QAZ2WSX3EDC"]).await;
    common.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(common.body.contains("list of commonly used passwords"));
    let long = "x".repeat(1025);
    let too_long = change(&app, &user, [PASSWORD, &long, &long]).await;
    too_long.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(too_long.body.contains("at most 1024 bytes"));
    let same = change(&app, &user, [PASSWORD, PASSWORD, PASSWORD]).await;
    same.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(same.body.contains("must differ from your current password"));
    for refused in [&wrong, &mismatch, &short, &common, &same] {
        for typed in ["not my password", NEW_PASSWORD, PASSWORD, "1QAZ2WSX3EDC"] {
            assert!(!refused.body.contains(typed), "a password is never echoed");
        }
    }
    // Nothing changed yet: both sessions work and the old password still signs in.
    assert_signed_in(&app.get("/incidents", Some(&other)).await);
    assert!(audits(&app, "password.change").await.is_empty());

    let done = change(&app, &user, [PASSWORD, NEW_PASSWORD, NEW_PASSWORD]).await;
    done.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(done.location(), "/account");
    let flash = app.get("/account", Some(&user)).await;
    assert_signed_in(&flash);
    // The flash cookie is set on the redirect; the page it lands on shows it.
    let shown = app
        .send(
            Request::get("/account")
                .header(header::HOST, HOST)
                .header(
                    header::COOKIE,
                    format!(
                        "{}; {}",
                        user.cookie,
                        cookie_pair(&done.set_cookie("hindsight_flash").expect("flash"))
                    ),
                )
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert!(
        shown
            .body
            .contains("Your password is changed. Your 1 other session was signed out."),
        "{}",
        shown.body
    );

    assert_signed_in(&app.get("/incidents", Some(&user)).await);
    assert_signed_out(&app.get("/incidents", Some(&other)).await);
    app.api(Method::GET, "/api/v1/incidents", Some(&token), None)
        .await
        .assert_status(StatusCode::OK);
    sign_in_from(&app, &user.email, PASSWORD, "198.51.100.20", FIREFOX)
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    sign_in_from(&app, &user.email, NEW_PASSWORD, "198.51.100.20", FIREFOX)
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let audit = audits(&app, "password.change").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0.as_deref(), Some(user.id.as_str()));
    assert_eq!(audit[0].2, "1 other sessions ended");
}

#[tokio::test]
async fn an_account_without_a_local_password_is_told_so() {
    let app = TestApp::spawn().await;
    let mut tx = app.db.begin_write().await.expect("tx");
    let sso = hindsight::auth::db::insert_user(
        &mut tx,
        "sso@example.com",
        "Sam Sso",
        Role::Responder,
        "!sso",
    )
    .await
    .expect("user");
    let secret =
        hindsight::auth::db::create_session(&mut tx, &sso.id, std::time::Duration::from_secs(3600))
            .await
            .expect("session");
    tx.commit().await.expect("commit");
    let user = TestUser {
        id: sso.id,
        email: sso.email,
        name: sso.name,
        cookie: format!("hindsight_session={secret}"),
    };
    let page = app.get("/account", Some(&user)).await;
    page.assert_status(StatusCode::OK);
    assert!(page.body.contains("has no Hindsight password"));
    assert!(
        !page.body.contains("name=\"current\""),
        "no form to fill in"
    );
    let refused = change(&app, &user, ["anything at all", NEW_PASSWORD, NEW_PASSWORD]).await;
    refused.assert_status(StatusCode::FORBIDDEN);
    assert!(refused.body.contains("single sign-on"));
}

/// The public ids of the sessions the page offers to sign out.
fn listed_ids(body: &str) -> Vec<String> {
    body.split("action=\"/account/sessions/")
        .skip(1)
        .filter_map(|rest| rest.split_once("/end\"").map(|(id, _)| id.to_owned()))
        .collect()
}

async fn public_ids(app: &TestApp, user_id: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT public_id FROM sessions WHERE user_id = ? ORDER BY created_at")
        .bind(user_id)
        .fetch_all(&app.db.reader)
        .await
        .expect("ids")
}

#[tokio::test]
async fn your_sessions_are_listed_without_secrets_and_can_be_signed_out() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::Viewer).await;
    let stranger = app.user(Role::Admin).await;
    let laptop = second_session(&app, &user, PASSWORD).await;

    let page = app.get("/account/sessions", Some(&user)).await;
    page.assert_status(StatusCode::OK);
    assert!(page.body.contains("this session"));
    assert!(page.body.contains("Firefox on Linux") && page.body.contains(FIREFOX));
    assert!(page.body.contains("198.51.100.20"), "the client address");
    assert!(page.body.contains("Sign out everywhere else"));
    // Neither cookie secret nor the stored hash of one is on the page.
    for session in [&user, &laptop] {
        let secret = session.cookie.split_once('=').expect("pair").1;
        assert!(!page.body.contains(secret));
        assert!(!page.body.contains(&hindsight::auth::secret_hash(secret)));
    }
    let listed = listed_ids(&page.body);
    assert_eq!(
        listed.len(),
        1,
        "the current session is signed out with the header's button"
    );
    let laptop_id = listed[0].clone();

    // Someone else's session id, or a made-up one, is not found: nobody ends it.
    let strangers = public_ids(&app, &stranger.id).await;
    app.post_form(
        &format!("/account/sessions/{}/end", strangers[0]),
        Some(&user),
        &[],
    )
    .await
    .assert_status(StatusCode::NOT_FOUND);
    app.post_form(
        "/account/sessions/0123456789abcdef01234567/end",
        Some(&user),
        &[],
    )
    .await
    .assert_status(StatusCode::NOT_FOUND);
    assert_signed_in(&app.get("/incidents", Some(&stranger)).await);

    let ended = app
        .post_form(
            &format!("/account/sessions/{laptop_id}/end"),
            Some(&user),
            &[],
        )
        .await;
    ended.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(ended.location(), "/account/sessions");
    assert_signed_out(&app.get("/incidents", Some(&laptop)).await);
    assert_signed_in(&app.get("/incidents", Some(&user)).await);
    assert!(listed_ids(&app.get("/account/sessions", Some(&user)).await.body).is_empty());

    // Sign out everywhere else: two more browsers go, this one stays.
    let phone = second_session(&app, &user, PASSWORD).await;
    let tablet = second_session(&app, &user, PASSWORD).await;
    app.post_form("/account/sessions/end-others", Some(&user), &[])
        .await
        .assert_status(StatusCode::SEE_OTHER);
    assert_signed_out(&app.get("/incidents", Some(&phone)).await);
    assert_signed_out(&app.get("/incidents", Some(&tablet)).await);
    assert_signed_in(&app.get("/incidents", Some(&user)).await);
    assert_signed_in(&app.get("/incidents", Some(&stranger)).await);
    assert_eq!(public_ids(&app, &user.id).await.len(), 1);
    assert_eq!(audits(&app, "session.end").await.len(), 1);
    let others = audits(&app, "session.end_others").await;
    assert_eq!(others.len(), 1);
    assert_eq!(others[0].2, "2 sessions ended");
}

/// The reset link's path (`/reset/…`) on the page that shows it once.
fn reset_path(body: &str) -> String {
    let start = body.find("/reset/").expect("a reset link on the page");
    body[start..]
        .chars()
        .take_while(|c| *c != '<' && *c != '"' && !c.is_whitespace())
        .collect()
}

async fn issue_reset(app: &TestApp, admin: &TestUser, user_id: &str) -> String {
    let shown = app
        .post_form(
            &format!("/admin/users/{user_id}/reset-password"),
            Some(admin),
            &[],
        )
        .await;
    shown.assert_status(StatusCode::CREATED);
    assert_eq!(shown.header("cache-control"), "no-store");
    assert!(
        shown.body.contains(&format!("{ORIGIN}/reset/")),
        "a whole link"
    );
    reset_path(&shown.body)
}

async fn reset(app: &TestApp, path: &str, new: &str, confirm: &str) -> TestResponse {
    app.post_form(path, None, &[("new", new), ("confirm", confirm)])
        .await
}

#[tokio::test]
async fn an_admin_reset_link_is_shown_once_works_once_and_signs_the_user_out_everywhere() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let user = app.user(Role::Responder).await;
    let laptop = second_session(&app, &user, PASSWORD).await;
    let token = app.token(&user, Scope::Read).await;

    let path = issue_reset(&app, &admin, &user.id).await;
    let secret = path.trim_start_matches("/reset/");
    assert!(secret.len() >= 32, "{secret}");
    // Shown once: not on the users page, and stored only as a hash.
    assert!(
        !app.get("/admin/users", Some(&admin))
            .await
            .body
            .contains(secret)
    );
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM password_resets")
        .fetch_all(&app.db.reader)
        .await
        .expect("rows");
    assert_eq!(stored, [hindsight::auth::secret_hash(secret)]);

    let form = app.get(&path, None).await;
    form.assert_status(StatusCode::OK);
    assert!(form.body.contains(&user.email));
    let mismatch = reset(&app, &path, NEW_PASSWORD, "something else entirely").await;
    mismatch.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mismatch.body.contains("does not match"));
    let common = reset(&app, &path, "Q1W2E3R4T5Y6", "Q1W2E3R4T5Y6").await;
    common.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(common.body.contains("commonly used") && !common.body.contains("Q1W2E3R4T5Y6"));
    // Refusals do not use the link up.
    assert_signed_in(&app.get("/incidents", Some(&laptop)).await);

    let done = reset(&app, &path, NEW_PASSWORD, NEW_PASSWORD).await;
    done.assert_status(StatusCode::SEE_OTHER);
    let fresh = TestUser {
        cookie: cookie_pair(&done.set_cookie("hindsight_session").expect("signed in")),
        ..user.clone()
    };
    assert_signed_in(&app.get("/incidents", Some(&fresh)).await);
    assert_signed_out(&app.get("/incidents", Some(&user)).await);
    assert_signed_out(&app.get("/incidents", Some(&laptop)).await);
    app.api(Method::GET, "/api/v1/incidents", Some(&token), None)
        .await
        .assert_status(StatusCode::OK);
    sign_in_from(&app, &user.email, PASSWORD, "198.51.100.20", FIREFOX)
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    sign_in_from(&app, &user.email, NEW_PASSWORD, "198.51.100.20", FIREFOX)
        .await
        .assert_status(StatusCode::SEE_OTHER);

    // Used up.
    app.get(&path, None)
        .await
        .assert_status(StatusCode::NOT_FOUND);
    reset(
        &app,
        &path,
        "yet another passphrase",
        "yet another passphrase",
    )
    .await
    .assert_status(StatusCode::NOT_FOUND);
    let link = audits(&app, "password.reset_link").await;
    assert_eq!(link.len(), 1);
    assert_eq!(link[0].0.as_deref(), Some(admin.id.as_str()));
    assert_eq!(link[0].1, user.email);
    assert_eq!(audits(&app, "password.reset").await.len(), 1);
}

#[tokio::test]
async fn reset_links_expire_and_a_new_one_replaces_the_old() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let user = app.user(Role::Viewer).await;

    let first = issue_reset(&app, &admin, &user.id).await;
    let second = issue_reset(&app, &admin, &user.id).await;
    app.get(&first, None)
        .await
        .assert_status(StatusCode::NOT_FOUND);
    app.get(&second, None).await.assert_status(StatusCode::OK);

    // A day later.
    sqlx::query("UPDATE password_resets SET expires_at = '2000-01-01T00:00:00.000Z'")
        .execute(&app.db.writer)
        .await
        .expect("age the link");
    let expired = app.get(&second, None).await;
    expired.assert_status(StatusCode::NOT_FOUND);
    assert!(expired.body.contains("invalid, expired or already used"));
    reset(&app, &second, NEW_PASSWORD, NEW_PASSWORD)
        .await
        .assert_status(StatusCode::NOT_FOUND);
    assert_signed_in(&app.get("/incidents", Some(&user)).await);

    // A disabled account gets no link; a link for a later-disabled account stops working.
    let third = issue_reset(&app, &admin, &user.id).await;
    app.post_form(
        &format!("/admin/users/{}/disable", user.id),
        Some(&admin),
        &[],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    app.get(&third, None)
        .await
        .assert_status(StatusCode::NOT_FOUND);
    app.post_form(
        &format!("/admin/users/{}/reset-password", user.id),
        Some(&admin),
        &[],
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    app.post_form(
        "/admin/users/no-such-user/reset-password",
        Some(&admin),
        &[],
    )
    .await
    .assert_status(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_admins_reset_passwords_and_end_other_peoples_sessions() {
    let app = TestApp::spawn().await;
    let responder = app.user(Role::Responder).await;
    let victim = app.user(Role::Admin).await;
    for action in ["reset-password", "end-sessions"] {
        let refused = app
            .post_form(
                &format!("/admin/users/{}/{action}", victim.id),
                Some(&responder),
                &[],
            )
            .await;
        assert!(
            matches!(
                refused.status,
                StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
            ),
            "{action}: {}",
            refused.status
        );
        assert!(!refused.body.contains("/reset/"));
    }
    assert_eq!(app.count("password_resets").await, 0);
    assert_signed_in(&app.get("/incidents", Some(&victim)).await);
}

#[tokio::test]
async fn an_admin_ends_every_session_of_a_user_and_their_tokens_keep_working() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let user = app.user(Role::Responder).await;
    let laptop = second_session(&app, &user, PASSWORD).await;
    let token = app.token(&user, Scope::Read).await;
    let users = app.get("/admin/users", Some(&admin)).await;
    assert!(
        users
            .body
            .contains(&format!("/admin/users/{}/end-sessions", user.id))
    );
    assert!(
        users
            .body
            .contains(&format!("/admin/users/{}/reset-password", user.id))
    );

    let ended = app
        .post_form(
            &format!("/admin/users/{}/end-sessions", user.id),
            Some(&admin),
            &[],
        )
        .await;
    ended.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(ended.location(), "/admin/users");
    assert_signed_out(&app.get("/incidents", Some(&user)).await);
    assert_signed_out(&app.get("/incidents", Some(&laptop)).await);
    assert_signed_in(&app.get("/incidents", Some(&admin)).await);
    app.api(Method::GET, "/api/v1/incidents", Some(&token), None)
        .await
        .assert_status(StatusCode::OK);
    let audit = audits(&app, "user.end_sessions").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0.as_deref(), Some(admin.id.as_str()));
    assert_eq!(audit[0].1, user.email);
    assert_eq!(audit[0].2, "2 sessions ended");
    app.post_form("/admin/users/no-such-user/end-sessions", Some(&admin), &[])
        .await
        .assert_status(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_password_rules_hold_where_users_are_added_and_on_the_setup_link() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    for (password, rule) in [
        ("Q1W2E3R4T5Y6", "list of commonly used passwords"),
        ("short pass", "at least 12 characters"),
        (&"y".repeat(1025), "at most 1024 bytes"),
    ] {
        let refused = app
            .post_form(
                "/admin/users",
                Some(&admin),
                &[
                    ("email", "cy@example.com"),
                    ("name", "Cy"),
                    ("role", "viewer"),
                    ("password", password),
                ],
            )
            .await;
        refused.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused.body.contains(rule), "{rule}");
        assert!(
            refused.body.contains("value=\"cy@example.com\"")
                && refused.body.contains("value=\"Cy\"")
        );
        assert!(!refused.body.contains(password));
    }

    let fresh = TestApp::spawn().await;
    let mut tx = fresh.db.begin_write().await.expect("tx");
    let secret = hindsight::auth::db::create_setup_token(&mut tx)
        .await
        .expect("token");
    tx.commit().await.expect("commit");
    let refused = fresh
        .post_form(
            &format!("/setup/{secret}"),
            None,
            &[
                ("email", "ada@example.com"),
                ("name", "Ada"),
                ("password", "1qaz2wsx3edc"),
                ("confirm", "1qaz2wsx3edc"),
            ],
        )
        .await;
    refused.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("commonly used"));
    assert!(refused.body.contains("value=\"ada@example.com\""));
    assert_eq!(fresh.count("users").await, 0);
}

fn set_password_cli(app: &TestApp, email: &str, stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hindsight"))
        .args(["user", "set-password", "--email", email, "--password-stdin"])
        .env("HINDSIGHT_DATABASE_URL", &app.state.config.database_url)
        .env("HINDSIGHT_LOG_FORMAT", "pretty")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hindsight runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("finishes")
}

#[tokio::test]
async fn the_command_line_sets_a_password_and_ends_every_session() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::Admin).await;
    let laptop = second_session(&app, &user, PASSWORD).await;
    let token = app.token(&user, Scope::Read).await;

    let weak = set_password_cli(&app, &user.email, b"password1234\n");
    assert!(!weak.status.success());
    let stderr = String::from_utf8_lossy(&weak.stderr);
    assert!(stderr.contains("commonly used"), "{stderr}");
    let unknown = set_password_cli(&app, "nobody@example.com", b"a brand new passphrase\n");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nobody@example.com"));
    assert_eq!(
        public_ids(&app, &user.id).await.len(),
        2,
        "refusals change nothing"
    );

    let done = set_password_cli(
        &app,
        &user.email.to_uppercase(),
        b"a brand new passphrase\n",
    );
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(stdout.contains("2 sessions ended"), "{stdout}");
    assert!(!stdout.contains(NEW_PASSWORD), "the password is not echoed");
    assert_signed_out(&app.get("/incidents", Some(&user)).await);
    assert_signed_out(&app.get("/incidents", Some(&laptop)).await);
    app.api(Method::GET, "/api/v1/incidents", Some(&token), None)
        .await
        .assert_status(StatusCode::OK);
    sign_in_from(&app, &user.email, PASSWORD, "198.51.100.20", FIREFOX)
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    sign_in_from(&app, &user.email, NEW_PASSWORD, "198.51.100.20", FIREFOX)
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let audit = audits(&app, "password.set").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0, None, "the command line has no actor");
}

#[tokio::test]
async fn guessing_the_current_password_is_throttled_like_signing_in() {
    let app = TestApp::spawn_with(&[("HINDSIGHT_LOGIN_MAX_FAILURES", "3")]).await;
    let user = app.user(Role::Responder).await;
    for _ in 0..3 {
        change(
            &app,
            &user,
            ["a wrong guess here", NEW_PASSWORD, NEW_PASSWORD],
        )
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let throttled = change(&app, &user, [PASSWORD, NEW_PASSWORD, NEW_PASSWORD]).await;
    throttled.assert_status(StatusCode::TOO_MANY_REQUESTS);
    assert!(!throttled.header("retry-after").is_empty());
    sign_in_from(&app, &user.email, PASSWORD, "198.51.100.20", FIREFOX)
        .await
        .assert_status(StatusCode::SEE_OTHER);
    assert!(
        audits(&app, "password.change").await.is_empty(),
        "nothing changed"
    );
}

#[tokio::test]
async fn using_a_reset_link_in_a_browser_signed_in_as_someone_else_ends_that_session() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let user = app.user(Role::Viewer).await;
    let path = issue_reset(&app, &admin, &user.id).await;
    let done = app
        .post_form(
            &path,
            Some(&admin),
            &[("new", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
        )
        .await;
    done.assert_status(StatusCode::SEE_OTHER);
    assert!(done.set_cookie("hindsight_session").is_some());
    assert_signed_out(&app.get("/incidents", Some(&admin)).await);
}
