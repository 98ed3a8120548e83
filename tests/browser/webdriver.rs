//! A small W3C WebDriver client on ureq: starts chromedriver on a free loopback port, opens a
//! headless Chromium session, and offers the few commands the browser tests need. Every wait
//! polls with a deadline, so a missing element fails the test in seconds with a message
//! saying what was awaited, not with a hang.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long any wait (an element, a page, a condition) may take before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
/// The W3C key under which an element reference travels.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

const MISSING_BROWSER: &str = "the browser tests need Chromium and its WebDriver: install the \
    Debian packages chromium and chromium-driver (apt-get install chromium chromium-driver)";

/// A chromedriver process on a loopback port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(agent: &ureq::Agent) -> Self {
        let program = find_program(&["chromedriver"])
            .unwrap_or_else(|| panic!("chromedriver was not found on PATH; {MISSING_BROWSER}"));
        // The port is free when chosen but another process may take it before chromedriver
        // binds it; then chromedriver exits and we try another.
        let mut exits = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(&program)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
            let mut driver = Self {
                child,
                url: format!("http://127.0.0.1:{port}"),
            };
            match driver.wait_ready(agent) {
                Ok(()) => return driver,
                Err(status) => exits.push(status),
            }
        }
        panic!("chromedriver exited at start three times ({exits:?}); {MISSING_BROWSER}");
    }

    /// Waits for `/status` to say ready; `Err` with the exit status if the process ended.
    fn wait_ready(&mut self, agent: &ureq::Agent) -> Result<(), String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(status.to_string());
            }
            let ready = agent
                .get(format!("{}/status", self.url))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == json!(true));
            if ready {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready on {} within {WAIT:?}",
                self.url
            );
            sleep(POLL);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (chromedriver takes a port number, not a socket).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The first of `names` that is an executable file on PATH.
fn find_program(names: &[&str]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Debian's Chromium: /usr/bin/chromium when present, otherwise whatever PATH offers.
fn chromium_binary() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/chromium");
    if debian.is_file() {
        return debian;
    }
    find_program(&["chromium", "chromium-browser"])
        .unwrap_or_else(|| panic!("Chromium was not found (/usr/bin/chromium); {MISSING_BROWSER}"))
}

/// A WebDriver error answer: its W3C code (`no such element`, `stale element reference`, ...)
/// and message.
#[derive(Debug)]
pub(crate) struct WdError {
    pub(crate) code: String,
    pub(crate) message: String,
}

/// One headless Chromium session. Dropping it ends the session and stops chromedriver; when
/// dropped during a failing test it first saves a screenshot and the page source.
pub(crate) struct Browser {
    name: String,
    agent: ureq::Agent,
    session: String,
    // Declared last: dropped after the session has been deleted.
    _driver: Driver,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; `name` labels failure screenshots.
    pub(crate) fn start(name: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let binary = chromium_binary();
        let driver = Driver::start(&agent);
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "goog:chromeOptions": {
                        "binary": binary,
                        "args": [
                            "--headless",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-dev-shm-usage",
                            "--window-size=1280,1000",
                        ],
                    },
                },
            },
        });
        let value = send(
            &agent,
            "POST",
            &format!("{}/session", driver.url),
            Some(capabilities),
        )
        .unwrap_or_else(|e| {
            panic!(
                "chromedriver could not start Chromium ({}: {}); {MISSING_BROWSER}",
                e.code, e.message
            )
        });
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("new session answer without a sessionId: {value}"))
            .to_owned();
        let browser = Self {
            name: name.to_owned(),
            session: format!("{}/session/{id}", driver.url),
            agent,
            _driver: driver,
        };
        let ms = u64::try_from(WAIT.as_millis()).unwrap_or(10_000);
        browser.command(
            "POST",
            "/timeouts",
            Some(json!({"implicit": 0, "pageLoad": ms, "script": ms})),
        );
        browser
    }

    fn try_command(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        send(
            &self.agent,
            method,
            &format!("{}{path}", self.session),
            body,
        )
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_command(method, path, body).unwrap_or_else(|e| {
            panic!(
                "WebDriver {method} {path} failed: {}: {}",
                e.code, e.message
            )
        })
    }

    /// Opens `url` and waits for it to load; the page is checked for accessibility.
    pub(crate) fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })));
        crate::axe::check_page(self);
    }

    /// Sets the window (and so the page) width in CSS pixels.
    pub(crate) fn set_width(&self, width: u32) {
        self.command(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": 1000})),
        );
    }

    /// Runs `script` (whose last argument is the callback to call with the result) and waits.
    pub(crate) fn execute_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.command(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
    }

    pub(crate) fn current_url(&self) -> String {
        self.command("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The path of the current page (`/incidents/INC-1`), without query or fragment.
    pub(crate) fn current_path(&self) -> String {
        let url = self.current_url();
        let after_scheme = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
        path.split(['?', '#']).next().unwrap_or(path).to_owned()
    }

    /// The elements matching `css` right now (no waiting).
    pub(crate) fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let found = self.command(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_array()
            .map(|items| items.iter().filter_map(|v| self.element(v)).collect())
            .unwrap_or_default()
    }

    /// The first element matching `css`, waiting up to `WAIT` for it to appear.
    pub(crate) fn find(&self, css: &str) -> Element<'_> {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.try_command(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            ) {
                Ok(v) => {
                    return self
                        .element(&v)
                        .unwrap_or_else(|| panic!("odd element answer for {css}: {v}"));
                }
                Err(e) if e.code == "no such element" && Instant::now() < deadline => sleep(POLL),
                Err(e) => panic!(
                    "no element matches {css:?} on {} after {WAIT:?} ({}: {})",
                    self.current_url(),
                    e.code,
                    e.message
                ),
            }
        }
    }

    fn element(&self, v: &Value) -> Option<Element<'_>> {
        v[ELEMENT_KEY].as_str().map(|id| Element {
            browser: self,
            id: id.to_owned(),
        })
    }

    /// Polls `condition` until it holds; fails the test after `WAIT`, naming `what`.
    pub(crate) fn wait_until(&self, what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !condition() {
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {what}; the browser is at {}",
                self.current_url()
            );
            sleep(POLL);
        }
    }

    /// Clicks `element` (a submit button or link) and waits until the next page has replaced
    /// the current one and finished loading.
    pub(crate) fn click_and_wait(&self, element: &Element<'_>) {
        let old_page = self.find("html");
        element.click();
        self.wait_until("the next page to load", || old_page.is_stale());
        self.wait_until("the page to finish loading", || {
            self.execute("return document.readyState", vec![]) == json!("complete")
        });
        crate::axe::check_page(self);
    }

    /// Runs `script` as a function body in the page; `args` may hold `Element::to_arg` values.
    pub(crate) fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Saves a PNG of the visible page.
    pub(crate) fn screenshot(&self, path: &Path) {
        let encoded = self.command("GET", "/screenshot", None);
        let png = base64_decode(encoded.as_str().unwrap_or_default());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        std::fs::write(path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Where this test's screenshots go: `<target>/tmp/browser/<test>-<label>.png`.
    pub(crate) fn screenshot_path(&self, label: &str) -> PathBuf {
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("browser")
            .join(format!("{}-{label}.png", self.name))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Best effort: leave a picture and the HTML of where the test failed.
            let shot = self.screenshot_path("failure");
            if let Ok(v) = self.try_command("GET", "/screenshot", None) {
                let _ = std::fs::create_dir_all(shot.parent().unwrap_or(Path::new(".")));
                if std::fs::write(&shot, base64_decode(v.as_str().unwrap_or_default())).is_ok() {
                    eprintln!("browser screenshot at the failure: {}", shot.display());
                }
            }
            if let Ok(v) = self.try_command("GET", "/source", None) {
                let html = shot.with_extension("html");
                if std::fs::write(&html, v.as_str().unwrap_or_default()).is_ok() {
                    eprintln!("page source at the failure: {}", html.display());
                }
            }
        }
        let _ = self.try_command("DELETE", "", None);
    }
}

/// An element of the current page. It goes stale when the page is replaced.
pub(crate) struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

impl Element<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    pub(crate) fn click(&self) {
        self.browser
            .command("POST", &self.path("/click"), Some(json!({})));
    }

    /// Types `text` into the element.
    pub(crate) fn send_keys(&self, text: &str) {
        self.browser
            .command("POST", &self.path("/value"), Some(json!({ "text": text })));
    }

    pub(crate) fn clear(&self) {
        self.browser
            .command("POST", &self.path("/clear"), Some(json!({})));
    }

    /// The rendered text, as a person reads it.
    pub(crate) fn text(&self) -> String {
        self.browser
            .command("GET", &self.path("/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) fn attribute(&self, name: &str) -> Option<String> {
        self.browser
            .command("GET", &self.path(&format!("/attribute/{name}")), None)
            .as_str()
            .map(str::to_owned)
    }

    /// The elements matching `css` inside this one (no waiting).
    pub(crate) fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let found = self.browser.command(
            "POST",
            &self.path("/elements"),
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| self.browser.element(v))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether a person can see it (not hidden by CSS).
    pub(crate) fn is_displayed(&self) -> bool {
        self.browser.command("GET", &self.path("/displayed"), None) == json!(true)
    }

    /// True once the page this element belonged to has been replaced.
    pub(crate) fn is_stale(&self) -> bool {
        matches!(
            self.browser.try_command("GET", &self.path("/name"), None),
            Err(e) if e.code == "stale element reference"
        )
    }

    /// This element as an argument to `Browser::execute`.
    pub(crate) fn to_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }
}

/// Sends one WebDriver command and unwraps its `value`.
fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> Result<Value, WdError> {
    let transport = |e: ureq::Error| WdError {
        code: "transport".into(),
        message: format!("{method} {url}: {e}"),
    };
    let mut response = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        (_, Some(body)) => agent.post(url).send_json(body),
        (_, None) => agent.post(url).send_json(json!({})),
    }
    .map_err(transport)?;
    let status = response.status();
    let answer: Value = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_json()
        .map_err(transport)?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        Ok(value)
    } else {
        Err(WdError {
            code: value["error"]
                .as_str()
                .unwrap_or("unknown error")
                .to_owned(),
            message: value["message"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// Standard base64 (screenshots arrive that way; not worth a dependency).
fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn base64_decodes_what_it_should() {
    assert_eq!(base64_decode("aGluZHNpZ2h0"), b"hindsight");
    assert_eq!(base64_decode("aGk=\n"), b"hi");
}
