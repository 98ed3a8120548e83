//! Single sign-on against a real OpenID Connect provider (`oidc-provider-mock` from PyPI, in
//! the venv `.ci/run` makes; `HINDSIGHT_OIDC_VENV` points elsewhere), started per test on a
//! free loopback port: first sign-in creates the account with the mapped role, later ones
//! update it, unmapped groups and disabled accounts are refused with a clear page, a state
//! works once and only in the browser that started it, consent denied and a bad code are
//! pages (never 500), password sign-in can be turned off except for break-glass admins, and
//! sign-out goes on to the provider's end-session endpoint.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;

use crate::common::{HOST, ORIGIN, TestApp, TestResponse, TestUser};
use hindsight::auth::Role;

/// The mock provider process; killed when dropped.
pub struct Provider {
    child: Child,
    pub issuer: String,
    agent: ureq::Agent,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn venv() -> String {
    std::env::var("HINDSIGHT_OIDC_VENV").unwrap_or_else(|_| "/var/tmp/hindsight-oidc-venv".into())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free loopback port")
        .local_addr()
        .expect("address")
        .port()
}

impl Provider {
    pub fn start() -> Self {
        let python = format!("{}/bin/python", venv());
        assert!(
            std::path::Path::new(&python).exists(),
            "oidc-provider-mock is not installed: run .ci/run (or python3 -m venv {v} && {v}/bin/pip install oidc-provider-mock), or set HINDSIGHT_OIDC_VENV",
            v = venv()
        );
        let port = free_port();
        let child = Command::new(&python)
            .args(["-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("oidc-provider-mock starts");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let provider = Self {
            child,
            issuer: format!("http://127.0.0.1:{port}"),
            agent,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let up = provider
                .agent
                .get(format!(
                    "{}/.well-known/openid-configuration",
                    provider.issuer
                ))
                .call()
                .is_ok_and(|r| r.status() == 200);
            if up {
                break provider;
            }
            assert!(
                Instant::now() < deadline,
                "oidc-provider-mock did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sets the claims the provider puts in `sub`'s ID token.
    pub fn set_user(&self, sub: &str, claims: serde_json::Value) {
        let r = self
            .agent
            .put(format!("{}/users/{sub}", self.issuer))
            .send_json(claims)
            .expect("set user");
        assert_eq!(r.status(), 204);
    }

    /// Signs `sub` in on the provider's authorize page (its form) or denies; returns the
    /// callback path and query the provider redirects to.
    pub fn authorize(&self, authorize_url: &str, sub: Option<&str>) -> String {
        let form: Vec<(&str, &str)> = match sub {
            Some(sub) => vec![("sub", sub)],
            None => vec![("action", "deny")],
        };
        let r = self
            .agent
            .post(authorize_url)
            .send_form(form)
            .expect("authorize");
        assert!(
            r.status().is_redirection(),
            "authorize answered {}",
            r.status()
        );
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("redirect")
            .to_owned();
        location
            .strip_prefix(ORIGIN)
            .unwrap_or_else(|| panic!("redirect to our callback, not {location}"))
            .to_owned()
    }
}

pub fn settings(provider: &Provider) -> Vec<(&'static str, String)> {
    vec![
        ("HINDSIGHT_OIDC_ISSUER", provider.issuer.clone()),
        ("HINDSIGHT_OIDC_CLIENT_ID", "hindsight".into()),
        ("HINDSIGHT_OIDC_CLIENT_SECRET", "test-client-secret".into()),
        (
            "HINDSIGHT_OIDC_ROLE_MAP",
            "sre-leads:admin,engineering:responder".into(),
        ),
        ("HINDSIGHT_OIDC_PROVIDER_NAME", "Mock IdP".into()),
    ]
}

async fn spawn(extra: &[(&'static str, String)]) -> TestApp {
    let pairs: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::spawn_with(&pairs).await
}

async fn get_with_cookie(app: &TestApp, path: &str, cookie: &str) -> TestResponse {
    let mut req = Request::get(path).header(header::HOST, HOST);
    if !cookie.is_empty() {
        req = req.header(header::COOKIE, cookie);
    }
    app.send(req.body(Body::empty()).expect("request")).await
}

/// `name=value` of a Set-Cookie header.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or_default().to_owned()
}

/// Starts a sign-in: (the provider's authorize URL, this browser's state cookie).
async fn start(app: &TestApp, next: &str) -> (String, String) {
    let r = get_with_cookie(app, &format!("/auth/oidc/start?next={next}"), "").await;
    r.assert_status(StatusCode::SEE_OTHER);
    let state_cookie = r
        .set_cookie("hindsight_oidc_state")
        .expect("the pending sign-in is tied to this browser");
    assert!(state_cookie.contains("HttpOnly"), "{state_cookie}");
    (r.location().to_owned(), cookie_pair(&state_cookie))
}

/// The whole browser round trip; returns the callback's answer.
async fn sign_in(app: &TestApp, provider: &Provider, sub: &str) -> TestResponse {
    let (authorize, cookie) = start(app, "/incidents").await;
    let callback = provider.authorize(&authorize, Some(sub));
    get_with_cookie(app, &callback, &cookie).await
}

fn session_of(r: &TestResponse) -> TestUser {
    let cookie = cookie_pair(&r.set_cookie("hindsight_session").expect("a session"));
    TestUser {
        id: String::new(),
        email: String::new(),
        name: String::new(),
        cookie,
    }
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = ?")
        .bind(action)
        .fetch_one(&app.db.reader)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sign_in_creates_the_user_with_the_mapped_role_and_later_ones_update_it() {
    let provider = Provider::start();
    provider.set_user(
        "alice-sub",
        json!({"email": "alice@example.com", "email_verified": true, "name": "Alice Lead", "groups": ["everyone", "sre-leads"]}),
    );
    let app = spawn(&settings(&provider)).await;
    // Another admin, so Alice is not the last one when her groups change below (the last
    // enabled admin is never demoted by a sign-in).
    app.user(Role::Admin).await;

    let login = app.get("/login", None).await;
    login.assert_status(StatusCode::OK);
    assert!(
        login.body.contains("Sign in with Mock IdP"),
        "{}",
        login.body
    );
    assert!(
        login.body.contains("name=\"password\""),
        "local sign-in stays on by default"
    );

    let r = sign_in(&app, &provider, "alice-sub").await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/incidents", "back where the sign-in started");
    let alice = session_of(&r);
    let home = app.get("/", Some(&alice)).await;
    home.assert_status(StatusCode::OK);
    assert!(home.body.contains("Alice Lead"), "signed in as Alice");
    let (role, name): (String, String) =
        sqlx::query_as("SELECT role, name FROM users WHERE email = 'alice@example.com'")
            .fetch_one(&app.db.reader)
            .await
            .expect("created just in time");
    assert_eq!((role.as_str(), name.as_str()), ("admin", "Alice Lead"));
    // An admin page opens: the mapped role is the one in force.
    app.get("/admin/users", Some(&alice))
        .await
        .assert_status(StatusCode::OK);
    assert_eq!(audit_count(&app, "sso.login").await, 1);

    // Later: she moved teams and changed her display name at the provider.
    provider.set_user(
        "alice-sub",
        json!({"email": "alice@example.com", "email_verified": true, "name": "Alice Moved", "groups": ["engineering"]}),
    );
    let r = sign_in(&app, &provider, "alice-sub").await;
    r.assert_status(StatusCode::SEE_OTHER);
    let (role, name): (String, String) =
        sqlx::query_as("SELECT role, name FROM users WHERE email = 'alice@example.com'")
            .fetch_one(&app.db.reader)
            .await
            .expect("still one account");
    assert_eq!((role.as_str(), name.as_str()), ("responder", "Alice Moved"));
    assert_eq!(
        app.count("users").await,
        2,
        "the same account, not a second one"
    );
    let changed: String = sqlx::query_scalar(
        "SELECT detail FROM audit_log WHERE action = 'user.role' AND target = 'alice@example.com'",
    )
    .fetch_one(&app.db.reader)
    .await
    .expect("role change audited");
    assert!(changed.contains("admin → responder"), "{changed}");
    let r = sign_in(&app, &provider, "alice-sub").await;
    app.get("/admin/users", Some(&session_of(&r)))
        .await
        .assert_status(StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_in_no_mapped_group_is_refused_with_a_clear_page_and_no_account() {
    let provider = Provider::start();
    provider.set_user(
        "bob-sub",
        json!({"email": "bob@example.com", "name": "Bob", "groups": ["marketing"]}),
    );
    let app = spawn(&settings(&provider)).await;
    let r = sign_in(&app, &provider, "bob-sub").await;
    r.assert_status(StatusCode::FORBIDDEN);
    assert!(
        r.body
            .contains("your account is not in a group that may use Hindsight"),
        "{}",
        r.body
    );
    assert!(r.body.contains("href=\"/login\""), "a way back");
    assert!(r.set_cookie("hindsight_session").is_none());
    assert_eq!(app.count("users").await, 0, "no account is created");
    let detail: String = sqlx::query_scalar(
        "SELECT detail FROM audit_log WHERE action = 'sso.refused' AND target = 'bob@example.com'",
    )
    .fetch_one(&app.db.reader)
    .await
    .expect("the refusal is audited");
    assert!(detail.starts_with("no_mapped_group"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_works_once_and_only_in_the_browser_that_started_it() {
    let provider = Provider::start();
    provider.set_user(
        "carol-sub",
        json!({"email": "carol@example.com", "groups": ["engineering"]}),
    );
    let app = spawn(&settings(&provider)).await;

    // Another browser (no state cookie) cannot finish someone's sign-in.
    let (authorize, _cookie) = start(&app, "/").await;
    let callback = provider.authorize(&authorize, Some("carol-sub"));
    let r = get_with_cookie(&app, &callback, "").await;
    r.assert_status(StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("This sign-in link has expired"),
        "{}",
        r.body
    );

    // The right browser, once; the same callback again is refused.
    let (authorize, cookie) = start(&app, "/").await;
    let callback = provider.authorize(&authorize, Some("carol-sub"));
    get_with_cookie(&app, &callback, &cookie)
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let again = get_with_cookie(&app, &callback, &cookie).await;
    again.assert_status(StatusCode::BAD_REQUEST);
    assert!(again.set_cookie("hindsight_session").is_none());

    // No state, or one Hindsight never issued.
    for path in [
        "/auth/oidc/callback?code=abc",
        "/auth/oidc/callback?code=abc&state=forged",
        "/auth/oidc/callback",
    ] {
        let r = get_with_cookie(&app, path, "hindsight_oidc_state=forged").await;
        r.assert_status(StatusCode::BAD_REQUEST);
    }
    assert!(audit_count(&app, "sso.refused").await >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_consent_and_a_code_the_provider_refuses_are_pages_not_errors() {
    let provider = Provider::start();
    provider.set_user(
        "dan-sub",
        json!({"email": "dan@example.com", "groups": ["engineering"]}),
    );
    let app = spawn(&settings(&provider)).await;

    let (authorize, cookie) = start(&app, "/").await;
    let callback = provider.authorize(&authorize, None);
    assert!(callback.contains("error=access_denied"), "{callback}");
    let r = get_with_cookie(&app, &callback, &cookie).await;
    r.assert_status(StatusCode::FORBIDDEN);
    assert!(
        r.body.contains("The sign-in did not complete"),
        "{}",
        r.body
    );
    assert!(r.body.contains("access_denied"));

    // A state Hindsight issued, with a code the token endpoint does not know (expired or
    // made up): the token endpoint's refusal is a page.
    let (authorize, cookie) = start(&app, "/").await;
    let state = authorize
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("state="))
        .expect("state in the authorize URL")
        .to_owned();
    let r = get_with_cookie(
        &app,
        &format!("/auth/oidc/callback?code=not-a-real-code&state={state}"),
        &cookie,
    )
    .await;
    r.assert_status(StatusCode::FORBIDDEN);
    assert!(r.body.contains("did not sign you in"), "{}", r.body);
    assert!(!r.body.contains("test-client-secret"));
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_account_stays_disabled_and_a_verified_email_links_a_local_account() {
    let provider = Provider::start();
    let app = spawn(&settings(&provider)).await;
    let local = app.user(Role::Responder).await;
    provider.set_user(
        "local-sub",
        json!({"email": local.email, "email_verified": true, "name": "Linked", "groups": ["engineering"]}),
    );
    let r = sign_in(&app, &provider, "local-sub").await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(app.count("users").await, 1, "linked, not duplicated");
    assert_eq!(audit_count(&app, "sso.link").await, 1);

    // An unverified address does not take over a local account.
    let other = app.user(Role::Viewer).await;
    provider.set_user(
        "imposter-sub",
        json!({"email": other.email, "email_verified": false, "groups": ["sre-leads"]}),
    );
    let r = sign_in(&app, &provider, "imposter-sub").await;
    r.assert_status(StatusCode::CONFLICT);
    assert!(r.body.contains("already has an account"), "{}", r.body);

    // Disabled in Hindsight: the provider cannot re-enable it.
    sqlx::query("UPDATE users SET disabled_at = '2026-01-01T00:00:00.000Z' WHERE id = ?")
        .bind(&local.id)
        .execute(&app.db.writer)
        .await
        .expect("disable");
    let r = sign_in(&app, &provider, "local-sub").await;
    r.assert_status(StatusCode::FORBIDDEN);
    assert!(r.body.contains("is disabled in Hindsight"), "{}", r.body);
    let still: Option<String> = sqlx::query_scalar("SELECT disabled_at FROM users WHERE id = ?")
        .bind(&local.id)
        .fetch_one(&app.db.reader)
        .await
        .expect("user");
    assert!(still.is_some());
}

async fn password_sign_in(app: &TestApp, email: &str) -> TestResponse {
    app.post_form(
        "/login",
        None,
        &[("email", email), ("password", crate::common::PASSWORD)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_local_login_off_only_break_glass_admins_use_a_password() {
    let provider = Provider::start();
    let mut extra = settings(&provider);
    extra.push(("HINDSIGHT_LOCAL_LOGIN", "false".into()));
    let app = spawn(&extra).await;
    let admin = app.user(Role::Admin).await;

    let login = app.get("/login", None).await;
    assert!(login.body.contains("Sign in with Mock IdP"));
    assert!(
        !login.body.contains("name=\"password\""),
        "no password form"
    );

    let r = password_sign_in(&app, &admin.email).await;
    r.assert_status(StatusCode::FORBIDDEN);
    assert!(
        r.body.contains("Password sign-in is turned off"),
        "{}",
        r.body
    );
    assert!(r.set_cookie("hindsight_session").is_none());

    hindsight::auth::sso::set_break_glass(&app.db, &admin.email, true)
        .await
        .expect("break-glass");
    let login = app.get("/login?local=1", None).await;
    assert!(
        login.body.contains("name=\"password\""),
        "the form for break-glass admins"
    );
    let r = password_sign_in(&app, &admin.email).await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert!(r.set_cookie("hindsight_session").is_some());

    hindsight::auth::sso::set_break_glass(&app.db, &admin.email, false)
        .await
        .expect("off");
    password_sign_in(&app, &admin.email)
        .await
        .assert_status(StatusCode::FORBIDDEN);
    assert_eq!(audit_count(&app, "user.break_glass").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_ends_the_session_and_goes_on_to_the_provider() {
    let provider = Provider::start();
    provider.set_user(
        "erin-sub",
        json!({"email": "erin@example.com", "groups": ["engineering"]}),
    );
    let app = spawn(&settings(&provider)).await;
    let r = sign_in(&app, &provider, "erin-sub").await;
    let erin = session_of(&r);
    let out = app.post_form("/logout", Some(&erin), &[]).await;
    out.assert_status(StatusCode::OK);
    let end_session = format!("{}/oauth2/end_session?", provider.issuer);
    assert!(out.body.contains(&end_session), "{}", out.body);
    assert!(out.body.contains("id_token_hint="));
    assert!(
        out.body
            .contains("post_logout_redirect_uri=http%3A%2F%2Fhindsight.test%2Flogin")
    );
    assert!(out.body.contains("http-equiv=\"refresh\""));
    let cleared = out.set_cookie("hindsight_session").expect("cookie cleared");
    assert!(cleared.contains("Max-Age=0"));
    // The local session is over.
    let home = app.get("/", Some(&erin)).await;
    home.assert_status(StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_is_down_does_not_stop_hindsight() {
    let port = free_port();
    let down = vec![
        ("HINDSIGHT_OIDC_ISSUER", format!("http://127.0.0.1:{port}")),
        ("HINDSIGHT_OIDC_CLIENT_ID", "hindsight".into()),
        ("HINDSIGHT_OIDC_DEFAULT_ROLE", "viewer".into()),
        ("HINDSIGHT_OIDC_PROVIDER_NAME", "Mock IdP".into()),
    ];
    let app = spawn(&down).await;
    app.get("/login", None).await.assert_status(StatusCode::OK);
    let r = get_with_cookie(&app, "/auth/oidc/start", "").await;
    r.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("Mock IdP cannot be reached"), "{}", r.body);
    let login = app.get("/login", None).await;
    assert!(
        login.body.contains("could not be reached a moment ago"),
        "{}",
        login.body
    );
    // Passwords still work meanwhile.
    let admin = app.user(Role::Admin).await;
    app.post_form(
        "/login",
        None,
        &[
            ("email", admin.email.as_str()),
            ("password", crate::common::PASSWORD),
        ],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
}

/// A provider of the tests' own, for what `oidc-provider-mock` never does: it serves
/// discovery, its signing key (JWKS) and a token endpoint that answers with whatever ID token
/// the test put there — signed with the key, or tampered with.
mod own_provider {
    use std::sync::{Arc, Mutex};

    use axum::Json;
    use axum::routing::{get, post};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    use rsa::{Pkcs1v15Sign, RsaPrivateKey};
    use serde_json::{Value, json};
    use sha2::{Digest, Sha256};

    pub struct OwnProvider {
        pub issuer: String,
        key: RsaPrivateKey,
        id_token: Arc<Mutex<String>>,
    }

    /// DER DigestInfo prefix of SHA-256 (RFC 8017 §9.2): RS256 signs prefix + digest.
    const SHA256_PREFIX: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];

    impl OwnProvider {
        pub async fn start() -> Self {
            let pem = include_str!("fixtures/oidc-test-signing-key.pem");
            let key = RsaPrivateKey::from_pkcs1_pem(pem).expect("test key");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("loopback");
            let issuer = format!("http://{}", listener.local_addr().expect("address"));
            let id_token = Arc::new(Mutex::new(String::new()));
            let discovery = json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "jwks_uri": format!("{issuer}/jwks"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            });
            let jwks = json!({"keys": [{
                "kty": "RSA", "alg": "RS256", "use": "sig", "kid": "test",
                "n": B64.encode(key.n().to_bytes_be()),
                "e": B64.encode(key.e().to_bytes_be()),
            }]});
            let served = Arc::clone(&id_token);
            let app = axum::Router::new()
                .route(
                    "/.well-known/openid-configuration",
                    get(move || async move { Json(discovery) }),
                )
                .route("/jwks", get(move || async move { Json(jwks) }))
                .route(
                    "/token",
                    post(move || async move {
                        let token = served.lock().expect("lock").clone();
                        Json(json!({
                            "access_token": "at", "token_type": "Bearer", "expires_in": 60,
                            "id_token": token,
                        }))
                    }),
                );
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            Self {
                issuer,
                key,
                id_token,
            }
        }

        /// Signs `claims` (RS256) and makes it the token endpoint's next answer.
        pub fn issue(&self, claims: &Value, tamper: bool) {
            let header =
                B64.encode(json!({"alg": "RS256", "kid": "test", "typ": "JWT"}).to_string());
            let payload = B64.encode(claims.to_string());
            let input = format!("{header}.{payload}");
            let mut signed = SHA256_PREFIX.to_vec();
            signed.extend_from_slice(&Sha256::digest(input.as_bytes()));
            let mut signature = self
                .key
                .sign(Pkcs1v15Sign::new_unprefixed(), &signed)
                .expect("sign");
            if tamper {
                signature[10] ^= 0x55;
            }
            *self.id_token.lock().expect("lock") = format!("{input}.{}", B64.encode(signature));
        }
    }
}

/// The ID token checks, each against a token the tests' own provider signs: a good one signs
/// in (so the harness itself works), and a tampered signature, another audience, an expired
/// token or another nonce are each refused with a page, no session, and an audit entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_tokens_with_a_bad_signature_wrong_audience_or_expired_are_refused() {
    let provider = own_provider::OwnProvider::start().await;
    let app = spawn(&[
        ("HINDSIGHT_OIDC_ISSUER", provider.issuer.clone()),
        ("HINDSIGHT_OIDC_CLIENT_ID", "hindsight".into()),
        ("HINDSIGHT_OIDC_CLIENT_SECRET", "test-client-secret".into()),
        ("HINDSIGHT_OIDC_DEFAULT_ROLE", "viewer".into()),
    ])
    .await;
    let now = chrono::Utc::now().timestamp();
    // (what, tamper with the signature, claims for this nonce, accepted)
    type Claims<'a> = Box<dyn Fn(&str) -> serde_json::Value + 'a>;
    let cases: [(&str, bool, Claims<'_>, bool); 5] = [
        (
            "valid",
            false,
            Box::new(|nonce: &str| {
                json!({"iss": provider.issuer, "aud": "hindsight", "sub": "s1", "email": "ok@example.com",
                       "iat": now, "exp": now + 300, "nonce": nonce})
            }),
            true,
        ),
        (
            "bad signature",
            true,
            Box::new(|nonce: &str| {
                json!({"iss": provider.issuer, "aud": "hindsight", "sub": "s2", "email": "sig@example.com",
                       "iat": now, "exp": now + 300, "nonce": nonce})
            }),
            false,
        ),
        (
            "wrong audience",
            false,
            Box::new(|nonce: &str| {
                json!({"iss": provider.issuer, "aud": "another-app", "sub": "s3", "email": "aud@example.com",
                       "iat": now, "exp": now + 300, "nonce": nonce})
            }),
            false,
        ),
        (
            "expired",
            false,
            Box::new(|nonce: &str| {
                json!({"iss": provider.issuer, "aud": "hindsight", "sub": "s4", "email": "exp@example.com",
                       "iat": now - 7200, "exp": now - 3600, "nonce": nonce})
            }),
            false,
        ),
        (
            "another nonce",
            false,
            Box::new(|_nonce: &str| {
                json!({"iss": provider.issuer, "aud": "hindsight", "sub": "s5", "email": "nonce@example.com",
                       "iat": now, "exp": now + 300, "nonce": "replayed-from-elsewhere"})
            }),
            false,
        ),
    ];
    for (what, tamper, claims, accepted) in &cases {
        let (authorize, cookie) = start(&app, "/").await;
        let param = |name: &str| {
            authorize
                .split(['?', '&'])
                .find_map(|p| p.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} in {authorize}"))
                .to_owned()
        };
        assert!(authorize.contains("code_challenge_method=S256"), "PKCE");
        provider.issue(&claims(&param("nonce")), *tamper);
        let r = get_with_cookie(
            &app,
            &format!("/auth/oidc/callback?code=c&state={}", param("state")),
            &cookie,
        )
        .await;
        if *accepted {
            r.assert_status(StatusCode::SEE_OTHER);
            assert!(r.set_cookie("hindsight_session").is_some(), "{what}");
        } else {
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.body);
            assert!(
                r.body.contains("could not be verified"),
                "{what}: {}",
                r.body
            );
            assert!(r.set_cookie("hindsight_session").is_none(), "{what}");
        }
    }
    assert_eq!(
        app.count("users").await,
        1,
        "only the valid token made an account"
    );
    assert_eq!(audit_count(&app, "sso.refused").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_admin_is_not_demoted_by_a_sign_in() {
    let provider = Provider::start();
    provider.set_user(
        "only-admin",
        json!({"email": "boss@example.com", "groups": ["sre-leads"]}),
    );
    let app = spawn(&settings(&provider)).await;
    sign_in(&app, &provider, "only-admin")
        .await
        .assert_status(StatusCode::SEE_OTHER);
    provider.set_user(
        "only-admin",
        json!({"email": "boss@example.com", "groups": ["engineering"]}),
    );
    sign_in(&app, &provider, "only-admin")
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let role: String =
        sqlx::query_scalar("SELECT role FROM users WHERE email = 'boss@example.com'")
            .fetch_one(&app.db.reader)
            .await
            .expect("user");
    assert_eq!(role, "admin", "Hindsight keeps one enabled admin");
}

#[test]
fn single_sign_on_settings_are_checked_at_startup_naming_the_variable() {
    let config = |vars: &[(&str, &str)]| {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        hindsight::config::Config::from_lookup(|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    };
    let err = config(&[("HINDSIGHT_LOCAL_LOGIN", "false")]).expect_err("no SSO");
    assert_eq!(err.name, "HINDSIGHT_LOCAL_LOGIN");
    let err = config(&[
        ("HINDSIGHT_OIDC_ISSUER", "https://login.example.com"),
        ("HINDSIGHT_OIDC_CLIENT_ID", "hindsight"),
        ("HINDSIGHT_OIDC_CLIENT_SECRET", "very-secret-value"),
        ("HINDSIGHT_OIDC_ROLE_MAP", "sre:superuser"),
    ])
    .expect_err("bad role");
    assert_eq!(err.name, "HINDSIGHT_OIDC_ROLE_MAP");
    assert!(!err.to_string().contains("very-secret-value"));
    let ok = config(&[
        ("HINDSIGHT_BASE_URL", "https://hindsight.example.com/"),
        ("HINDSIGHT_OIDC_ISSUER", "https://login.example.com"),
        ("HINDSIGHT_OIDC_CLIENT_ID", "hindsight"),
        ("HINDSIGHT_OIDC_CLIENT_SECRET", "very-secret-value"),
        ("HINDSIGHT_OIDC_DEFAULT_ROLE", "viewer"),
        ("HINDSIGHT_LOCAL_LOGIN", "false"),
    ])
    .expect("valid");
    let oidc = ok.oidc.as_ref().expect("configured");
    assert_eq!(
        oidc.redirect_url,
        "https://hindsight.example.com/auth/oidc/callback"
    );
    assert!(!ok.local_login);
    assert!(
        !format!("{ok:?}").contains("very-secret-value"),
        "the secret never shows in Debug"
    );
}
