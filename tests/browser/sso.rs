//! Single sign-on in a real browser against a real OpenID Connect provider
//! (`oidc-provider-mock`, from the venv `.ci/run` makes; `HINDSIGHT_OIDC_VENV` points
//! elsewhere): the first sign-in creates the account with the role its group maps to and
//! lands on home, sign-out goes through the provider's end-session page back to sign-in, and
//! someone in an unmapped group gets the page that says so.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::app::TestApp;
use crate::axe;
use crate::webdriver::Browser;

struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    fn start() -> Self {
        let venv = std::env::var("HINDSIGHT_OIDC_VENV")
            .unwrap_or_else(|_| "/var/tmp/hindsight-oidc-venv".into());
        let python = format!("{venv}/bin/python");
        assert!(
            std::path::Path::new(&python).exists(),
            "oidc-provider-mock is not installed in {venv}: run .ci/run or set HINDSIGHT_OIDC_VENV"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new(&python)
            .args(["-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("oidc-provider-mock starts");
        let provider = Self {
            child,
            issuer: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(format!(
            "{}/.well-known/openid-configuration",
            provider.issuer
        ))
        .call()
        .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "oidc-provider-mock did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        provider
    }

    fn set_user(&self, sub: &str, claims: serde_json::Value) {
        ureq::put(format!("{}/users/{sub}", self.issuer))
            .send_json(claims)
            .expect("set the user's claims");
    }
}

/// Clicks and waits for the next page, without the accessibility check `click_and_wait`
/// runs: the next page may be the provider's, which is not ours to check.
fn click_away(browser: &Browser, css: &str) {
    let old_page = browser.find("html");
    browser.find(css).click();
    browser.wait_until("the next page to load", || old_page.is_stale());
    browser.wait_until("the page to finish loading", || {
        browser.execute("return document.readyState", vec![]) == serde_json::json!("complete")
    });
}

/// On the provider's authorize page: types the subject and authorizes.
fn authorize_as(browser: &Browser, sub: &str) {
    browser.wait_until("the provider's authorize page", || {
        browser.current_url().contains("/oauth2/authorize")
    });
    browser.find("input[name=sub]").send_keys(sub);
    click_away(browser, "form button[type=submit]");
}

#[test]
fn single_sign_on_creates_the_user_with_the_mapped_role_and_refuses_unmapped_groups() {
    let provider = Provider::start();
    provider.set_user(
        "alice-sub",
        serde_json::json!({"email": "alice@example.com", "email_verified": true, "name": "Alice Lead", "groups": ["sre-leads"]}),
    );
    provider.set_user(
        "bob-sub",
        serde_json::json!({"email": "bob@example.com", "name": "Bob Marketing", "groups": ["marketing"]}),
    );
    let issuer = provider.issuer.clone();
    let app = TestApp::spawn_with(move |_base| {
        vec![
            ("HINDSIGHT_OIDC_ISSUER", issuer.clone()),
            ("HINDSIGHT_OIDC_CLIENT_ID", "hindsight".into()),
            ("HINDSIGHT_OIDC_CLIENT_SECRET", "browser-test-secret".into()),
            (
                "HINDSIGHT_OIDC_ROLE_MAP",
                "sre-leads:admin,engineering:responder".into(),
            ),
            ("HINDSIGHT_OIDC_PROVIDER_NAME", "Mock IdP".into()),
        ]
    });
    let browser = Browser::start("single_sign_on");

    browser.goto(&app.url("/login"));
    let button = browser.find("a.sso-button");
    assert_eq!(button.text(), "Sign in with Mock IdP");
    axe::check_page(&browser);
    click_away(&browser, "a.sso-button");
    authorize_as(&browser, "alice-sub");
    browser.wait_until("back on Hindsight's home", || {
        browser.current_url().starts_with(&app.address) && browser.current_path() == "/"
    });
    let who = browser.find(".who-name");
    assert_eq!(who.attribute("title").as_deref(), Some("alice@example.com"));
    assert!(
        browser
            .execute(
                "return document.querySelector('.who-name').textContent;",
                vec![]
            )
            .as_str()
            .is_some_and(|t| t.contains("Alice Lead")),
        "her name from the provider"
    );
    // (Read from the page, not as rendered: narrow widths hide the role badge.)
    assert_eq!(
        browser.execute(
            "return document.querySelector('.who-name .role').textContent;",
            vec![]
        ),
        serde_json::json!("admin"),
        "the role her group maps to"
    );
    assert!(
        !browser.find_all("nav a[href='/admin/users']").is_empty(),
        "an admin sees Admin"
    );

    // Sign out: Hindsight's session ends, then the provider's end-session page, then back.
    click_away(&browser, "form[action='/logout'] button");
    browser.wait_until("the provider's end-session page", || {
        browser.current_url().contains("/oauth2/end_session")
    });
    click_away(&browser, "form button[type=submit]");
    browser.wait_until("back on Hindsight's sign-in page", || {
        browser.current_url().starts_with(&app.address) && browser.current_path() == "/login"
    });
    assert!(browser.find_all(".who-name").is_empty(), "signed out");

    // Bob's only group is not mapped to a role: a clear page, no account.
    click_away(&browser, "a.sso-button");
    authorize_as(&browser, "bob-sub");
    browser.wait_until("Hindsight's refusal page", || {
        browser.current_url().starts_with(&app.address)
    });
    let page = browser.find("main").text();
    assert!(
        page.contains("your account is not in a group that may use Hindsight"),
        "{page}"
    );
    assert!(page.contains("bob@example.com"), "{page}");
    assert!(browser.find_all(".who-name").is_empty(), "not signed in");
    assert!(
        !browser.find_all("a[href='/login']").is_empty(),
        "a way back"
    );
    axe::check_page(&browser);
}
