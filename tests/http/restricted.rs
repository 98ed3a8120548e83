//! Restricted incidents: only admins, the commander and the participants see one; everyone
//! else gets 404 on its URLs and finds nothing of it anywhere. The outsider sweep requests every
//! GET route the routers declare (read from `src/`), so a new route fails here until it is
//! added to [`SWEEP`].

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, TestUser};
use hindsight::auth::{Role, Scope};

/// Words that appear only in the restricted incident (title, summary, timeline, post-mortem,
/// action item): none may reach an outsider.
const SECRETS: &[&str] = &[
    "Quokkafjord",
    "Zanzibarite",
    "Xylophonewombat",
    "Pangolinstew",
    "Narwhalplinth",
];

/// Every GET route and the URLs the sweep requests for it. Placeholders: `{INC}` the restricted
/// incident's key, `{LATER}` a public incident alike declared after it, `{ITEM}` its action
/// item, `{SNAP}` its snapshot, `{WEEK}` the ISO week it
/// started in, `{WORD}` a word of its title. A route whose URLs name the restricted incident
/// (or its item or snapshot) must answer the outsider 404; the others must answer without any
/// of [`SECRETS`]. Adding a GET route: one line here.
const SWEEP: &[(&str, &[&str])] = &[
    ("/", &["/"]),
    ("/healthz", &["/healthz"]),
    ("/readyz", &["/readyz"]),
    ("/metrics", &["/metrics"]),
    ("/login", &["/login"]),
    ("/setup/{token}", &["/setup/nope"]),
    ("/static/{file}", &["/static/app.css"]),
    ("/api/openapi.json", &["/api/openapi.json"]),
    ("/admin/users", &["/admin/users"]),
    ("/admin/tokens", &["/admin/tokens"]),
    ("/admin/services", &["/admin/services"]),
    ("/admin/categories", &["/admin/categories"]),
    ("/admin/integrations", &["/admin/integrations"]),
    ("/admin/templates", &["/admin/templates"]),
    ("/admin/templates/new", &["/admin/templates/new"]),
    ("/admin/templates/{id}", &["/admin/templates/standard"]),
    (
        "/incidents",
        &[
            "/incidents",
            "/incidents?status=open",
            "/incidents?status=investigating",
            "/incidents?severity=sev1",
            "/incidents?service=checkout",
            "/incidents?q={WORD}",
            "/incidents?recurring=1",
            "/incidents?sort=updated",
        ],
    ),
    ("/incidents/new", &["/incidents/new"]),
    (
        "/incidents/{incident}",
        &["/incidents/{INC}", "/incidents/{LATER}"],
    ),
    ("/incidents/{incident}/edit", &["/incidents/{INC}/edit"]),
    (
        "/incidents/{incident}/action-items/new",
        &["/incidents/{INC}/action-items/new"],
    ),
    (
        "/incidents/{incident}/postmortem",
        &["/incidents/{INC}/postmortem"],
    ),
    (
        "/incidents/{incident}/postmortem/edit",
        &["/incidents/{INC}/postmortem/edit"],
    ),
    (
        "/incidents/{incident}/postmortem/history",
        &["/incidents/{INC}/postmortem/history"],
    ),
    (
        "/incidents/{incident}/postmortem/diff",
        &["/incidents/{INC}/postmortem/diff?from=1&to=2"],
    ),
    (
        "/incidents/{incident}/postmortem/revisions/{version}",
        &["/incidents/{INC}/postmortem/revisions/1"],
    ),
    (
        "/incidents/{incident}/postmortem/print",
        &["/incidents/{INC}/postmortem/print"],
    ),
    (
        "/incidents/{incident}/postmortem.md",
        &["/incidents/{INC}/postmortem.md"],
    ),
    (
        "/postmortems",
        &["/postmortems", "/postmortems?status=draft"],
    ),
    (
        "/action-items",
        &[
            "/action-items",
            "/action-items?status=open",
            "/action-items?incident={INC}",
            "/action-items?service=checkout",
        ],
    ),
    ("/action-items.csv", &["/action-items.csv"]),
    ("/action-items/progress", &["/action-items/progress"]),
    ("/action-items/{id}/edit", &["/action-items/{ITEM}/edit"]),
    ("/alerts", &["/alerts"]),
    ("/alerts/rules", &["/alerts/rules"]),
    ("/inbox", &["/inbox"]),
    (
        "/reports/weekly",
        &["/reports/weekly", "/reports/weekly?week={WEEK}"],
    ),
    ("/reports/weekly.md", &["/reports/weekly.md?week={WEEK}"]),
    ("/reports/weekly.csv", &["/reports/weekly.csv?week={WEEK}"]),
    (
        "/search",
        &[
            "/search?q={WORD}",
            "/search?q=Xylophonewombat",
            "/search?q=Pangolinstew",
            "/search?q=Narwhalplinth&kind=action_items",
            "/search?q=Zanzibarite&kind=incidents",
        ],
    ),
    ("/services", &["/services"]),
    ("/services/{service}", &["/services/checkout"]),
    ("/services/{service}/live", &["/services/checkout/live"]),
    (
        "/api/v1/incidents",
        &[
            "/api/v1/incidents",
            "/api/v1/incidents?status=open",
            "/api/v1/incidents?q={WORD}",
            "/api/v1/incidents?service=checkout",
        ],
    ),
    (
        "/api/v1/incidents/{incident}",
        &["/api/v1/incidents/{INC}", "/api/v1/incidents/{LATER}"],
    ),
    (
        "/api/v1/incidents/{incident}/postmortem",
        &["/api/v1/incidents/{INC}/postmortem"],
    ),
    (
        "/api/v1/incidents/{incident}/postmortem/revisions",
        &["/api/v1/incidents/{INC}/postmortem/revisions"],
    ),
    (
        "/api/v1/incidents/{incident}/postmortem/revisions/{version}",
        &["/api/v1/incidents/{INC}/postmortem/revisions/1"],
    ),
    (
        "/api/v1/incidents/{incident}/postmortem.md",
        &["/api/v1/incidents/{INC}/postmortem.md"],
    ),
    (
        "/api/v1/postmortem-templates",
        &["/api/v1/postmortem-templates"],
    ),
    (
        "/api/v1/action-items",
        &[
            "/api/v1/action-items",
            "/api/v1/action-items?incident={INC}",
            "/api/v1/action-items?status=open",
        ],
    ),
    (
        "/api/v1/action-items/{id}",
        &["/api/v1/action-items/{ITEM}"],
    ),
    ("/api/v1/alert-rules", &["/api/v1/alert-rules"]),
    ("/api/v1/alerts", &["/api/v1/alerts"]),
    ("/api/v1/services", &["/api/v1/services"]),
    ("/api/v1/categories", &["/api/v1/categories"]),
    ("/api/v1/inbox", &["/api/v1/inbox"]),
    (
        "/api/v1/reports/weekly",
        &[
            "/api/v1/reports/weekly",
            "/api/v1/reports/weekly?week={WEEK}",
        ],
    ),
    (
        "/api/v1/reports/weekly.md",
        &["/api/v1/reports/weekly.md?week={WEEK}"],
    ),
    (
        "/api/v1/reports/weekly.csv",
        &["/api/v1/reports/weekly.csv?week={WEEK}"],
    ),
    ("/api/v1/snapshots/{id}", &["/api/v1/snapshots/{SNAP}"]),
    (
        "/api/v1/metrics/services/{service}",
        &["/api/v1/metrics/services/checkout"],
    ),
    (
        "/api/v1/services/{service}/prometheus",
        &["/api/v1/services/checkout/prometheus"],
    ),
    (
        "/incidents/similar",
        &["/incidents/similar?title={WORD}+payroll+leak&service=checkout"],
    ),
    (
        "/api/v1/incidents/similar",
        &["/api/v1/incidents/similar?title={WORD}+payroll+leak&service=checkout"],
    ),
    (
        "/incidents/{incident}/evidence",
        &["/incidents/{INC}/evidence"],
    ),
    (
        "/api/v1/incidents/{incident}/evidence",
        &["/api/v1/incidents/{INC}/evidence"],
    ),
    (
        "/api/v1/incidents/{incident}/links",
        &[
            "/api/v1/incidents/{INC}/links",
            "/api/v1/incidents/{LATER}/links",
        ],
    ),
    ("/account", &["/account"]),
    ("/account/sessions", &["/account/sessions"]),
    ("/reset/{token}", &["/reset/nope"]),
    (
        "/admin/audit",
        &["/admin/audit", "/admin/audit?action=incident.access"],
    ),
    ("/admin/audit.csv", &["/admin/audit.csv"]),
    ("/api/v1/audit", &["/api/v1/audit"]),
    ("/auth/oidc/start", &["/auth/oidc/start"]),
    (
        "/auth/oidc/callback",
        &["/auth/oidc/callback?code=x&state=y"],
    ),
    ("/insights", &["/insights", "/insights?service=checkout"]),
    (
        "/insights.csv",
        &[
            "/insights.csv?figure=factors",
            "/insights.csv?figure=detection",
            "/insights.csv?figure=mttx",
            "/insights.csv?figure=hours",
            "/insights.csv?figure=follow_through",
            "/insights.csv?figure=fix",
        ],
    ),
    ("/insights.json", &["/insights.json"]),
    ("/api/v1/insights", &["/api/v1/insights"]),
    (
        "/reports/weekly/subscriptions",
        &["/reports/weekly/subscriptions"],
    ),
    (
        "/api/v1/review-subscriptions",
        &["/api/v1/review-subscriptions"],
    ),
];

/// An id no record has.
const NO_SUCH_ID: &str = "00000000-0000-4000-8000-000000000000";

/// Routes mounted at the root although declared in an `api.rs` (everything else there is
/// under `/api/v1`).
const ROOT_ROUTES_IN_API_FILES: &[&str] = &["/metrics", "/v1/traces"];

/// Every GET route the routers in `src/` declare: each `.route("…", …)` whose method list
/// includes `get(`; routes of an `api.rs` are nested under `/api/v1`.
fn declared_get_routes() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![root];
    let mut out = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source");
            let api = path.file_name().is_some_and(|n| n == "api.rs");
            for call in text.split(".route(").skip(1) {
                let call = call.trim_start();
                // A path given by a constant (`.route(PAGE, …)`) is looked up in the same
                // file; one that cannot be read this way fails, so no route slips past.
                let (route, rest) = if let Some(literal) = call.strip_prefix('"') {
                    literal.split_once('"').expect("a closed string literal")
                } else {
                    let name: String = call
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let value = text
                        .split(&format!("const {name}: &str = \""))
                        .nth(1)
                        .and_then(|v| v.split_once('"'))
                        .map(|(v, _)| v)
                        .unwrap_or_else(|| {
                            panic!(
                                "{}: .route({name}, …) — the sweep cannot read this path; \
                                 write it as a string literal or a `const {name}: &str` in the same file",
                                path.display()
                            )
                        });
                    (value, &call[name.len()..])
                };
                let methods = rest
                    .split(".route(")
                    .next()
                    .and_then(|m| m.split("\n}").next())
                    .unwrap_or("");
                if !methods.contains("get(") {
                    continue;
                }
                let full = if api && !ROOT_ROUTES_IN_API_FILES.contains(&route) {
                    format!("/api/v1{route}")
                } else {
                    route.to_owned()
                };
                out.push((full, path.display().to_string()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_sweep_covers_every_get_route() {
    let declared = declared_get_routes();
    let missing: Vec<String> = declared
        .iter()
        .filter(|(route, _)| !SWEEP.iter().any(|(r, _)| r == route))
        .map(|(route, file)| {
            format!(
                "GET {route} (declared in {file}) is not in the outsider sweep: add a line \
                 (\"{route}\", &[\"<url to request>\"]) to SWEEP in tests/http/restricted.rs"
            )
        })
        .collect();
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    let stale: Vec<&str> = SWEEP
        .iter()
        .map(|(r, _)| *r)
        .filter(|r| !declared.iter().any(|(route, _)| route == r))
        .collect();
    assert!(
        stale.is_empty(),
        "routes in SWEEP that no router declares (remove them): {stale:?}"
    );
    // At the time of writing: 63 GET routes.
    assert!(
        declared.len() >= 63,
        "found only {} GET routes",
        declared.len()
    );
}

struct World {
    app: TestApp,
    admin: TestUser,
    commander: TestUser,
    participant: TestUser,
    outsider: TestUser,
    outsider_token: String,
    /// A second outsider with the viewer role, and their read token.
    onlooker: TestUser,
    onlooker_token: String,
    participant_token: String,
    admin_token: String,
    key: String,
    /// A public incident declared after it, alike (its recurrence counts the restricted one).
    later: String,
    item: String,
    snapshot: String,
    week: String,
}

async fn api_ok(app: &TestApp, method: Method, path: &str, token: &str, body: Value) -> Value {
    let r = app.api(method, path, Some(token), Some(body)).await;
    assert!(r.status.is_success(), "{path}: {} {}", r.status, r.body);
    if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

/// A public incident and a restricted one full of [`SECRETS`]: timeline, post-mortem, action
/// item, snapshot, an @mention; the participant is a viewer, the outsider a responder (who
/// can open more pages than a viewer).
async fn world() -> World {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let commander = app.user(Role::Responder).await;
    let participant = app.user(Role::Viewer).await;
    let outsider = app.user(Role::Responder).await;
    let token = app.token(&commander, Scope::Write).await;
    let ingest = app.token(&admin, Scope::Ingest).await;
    let outsider_token = app.token(&outsider, Scope::Read).await;
    let onlooker = app.user(Role::Viewer).await;
    let onlooker_token = app.token(&onlooker, Scope::Read).await;
    let participant_token = app.token(&participant, Scope::Read).await;
    let admin_token = app.token(&admin, Scope::Read).await;
    app.service("checkout", "payments").await;
    let events: Vec<Value> = (0..50)
        .map(|_| json!({"latency_ms": 40.0, "status_code": 200}))
        .collect();
    api_ok(
        &app,
        Method::POST,
        "/api/v1/metrics/events",
        &ingest,
        json!({"service": "checkout", "events": events}),
    )
    .await;
    // Two public incidents alike before it and one after: the restricted one then counts in
    // recurrence and in the weekly review's recurring groups, whose lists must not name it.
    for title in ["Public checkout slowness", "Public checkout errors"] {
        app.declare(
            &token,
            json!({"title": title, "severity": "sev2", "service": "checkout", "category": "deploy"}),
        )
        .await;
    }
    let incident = app
        .declare(
            &token,
            json!({"title": "Quokkafjord payroll leak", "severity": "sev1",
                   "service": "checkout", "category": "deploy",
                   "summary": "Zanzibarite exfiltration",
                   "restricted": true, "participants": [participant.email]}),
        )
        .await;
    assert_eq!(incident["restricted"], json!(true));
    assert_eq!(incident["participants"], json!([participant.email]));
    let key = incident["number"].as_str().expect("key").to_owned();
    let base = format!("/api/v1/incidents/{key}");
    api_ok(
        &app,
        Method::POST,
        &format!("{base}/timeline"),
        &token,
        json!({"body": format!("Xylophonewombat found; @{} and @{} look", participant.email.split('@').next().unwrap_or(""), outsider.email.split('@').next().unwrap_or(""))}),
    )
    .await;
    let item = api_ok(
        &app,
        Method::POST,
        &format!("{base}/action-items"),
        &token,
        json!({"title": "Narwhalplinth rotation", "owner": outsider.email, "priority": "p1"}),
    )
    .await;
    let item = item["id"].as_str().expect("item id").to_owned();
    api_ok(
        &app,
        Method::POST,
        &format!("{base}/postmortem"),
        &token,
        json!({}),
    )
    .await;
    api_ok(
        &app,
        Method::PUT,
        &format!("{base}/postmortem"),
        &token,
        json!({"version": 1, "sections": {"summary": "Pangolinstew happened"}}),
    )
    .await;
    let later = app
        .declare(
            &token,
            json!({"title": "Public checkout again", "severity": "sev3",
                   "service": "checkout", "category": "deploy"}),
        )
        .await;
    let later = later["number"].as_str().expect("key").to_owned();
    // The commander links the public incident to the restricted one: the public side's page,
    // JSON and timeline must not name it to outsiders.
    api_ok(
        &app,
        Method::POST,
        &format!("/api/v1/incidents/{later}/links"),
        &token,
        json!({"kind": "related", "incident": key}),
    )
    .await;
    let full = api_ok(&app, Method::GET, &base, &token, Value::Null).await;
    let snapshot = full["snapshots"][0]["id"]
        .as_str()
        .expect("a snapshot frozen at declaration")
        .to_owned();
    let started = chrono::DateTime::parse_from_rfc3339(full["started_at"].as_str().expect("t"))
        .expect("time");
    let week = started.format("%G-W%V").to_string();
    World {
        app,
        admin,
        commander,
        participant,
        outsider,
        outsider_token,
        onlooker,
        onlooker_token,
        participant_token,
        admin_token,
        key,
        later,
        item,
        snapshot,
        week,
    }
}

impl World {
    fn url(&self, template: &str) -> String {
        template
            .replace("{INC}", &self.key)
            .replace("{LATER}", &self.later)
            .replace("{ITEM}", &self.item)
            .replace("{SNAP}", &self.snapshot)
            .replace("{WEEK}", &self.week)
            .replace("{WORD}", "Quokkafjord")
    }

    /// GET as a signed-in user (pages) or with their token (`/api/…`).
    async fn get(&self, url: &str, user: &TestUser, token: &str) -> crate::common::TestResponse {
        if url.starts_with("/api/v1/") {
            self.app.api(Method::GET, url, Some(token), None).await
        } else {
            self.app.get(url, Some(user)).await
        }
    }
}

/// The restricted incident's key as a whole word (`INC-2`, not `INC-20`).
fn names_key(body: &str, key: &str) -> bool {
    body.match_indices(key).any(|(at, _)| {
        !body[at + key.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

#[tokio::test]
async fn an_outsider_finds_nothing_of_a_restricted_incident_on_any_get_route() {
    let w = world().await;
    let mut requested = 0;
    let mut leaks = Vec::new();
    let outsiders = [
        (&w.outsider, &w.outsider_token),
        (&w.onlooker, &w.onlooker_token),
    ];
    for ((route, urls), (outsider, token)) in SWEEP
        .iter()
        .flat_map(|entry| outsiders.iter().map(move |o| (entry, *o)))
    {
        for template in *urls {
            let url = w.url(template);
            let own = ["{INC}", "{ITEM}", "{SNAP}"]
                .iter()
                .any(|p| template.contains(p))
                && !template.contains('?');
            // As a signed-in outsider (pages) or with an outsider's read token (API): a
            // responder and a viewer, neither added to the incident.
            let r = w.get(&url, outsider, token).await;
            requested += 1;
            if r.status.is_server_error() {
                leaks.push(format!(
                    "{route}: GET {url} answered {} to {}",
                    r.status, outsider.email
                ));
            }
            if own {
                // Answered exactly like the same URL naming nothing that exists: 404, or the
                // 403 a viewer gets on a form page before anything is looked up.
                let missing = w.url(
                    &template
                        .replace("{INC}", "INC-999")
                        .replace("{ITEM}", NO_SUCH_ID)
                        .replace("{SNAP}", NO_SUCH_ID),
                );
                let m = w.get(&missing, outsider, token).await;
                let expected = [StatusCode::NOT_FOUND, StatusCode::FORBIDDEN];
                if r.status != m.status || !expected.contains(&r.status) {
                    leaks.push(format!(
                        "{route}: GET {url} answered {} to {}, but {} for a missing one",
                        r.status, outsider.email, m.status
                    ));
                }
            }
            // What the URL itself carries is echoed back (a search box, a "not found" naming
            // the key asked for): only the rest counts. A search for a secret word still
            // fails here on the incident's key, title or other words when it finds a hit.
            for secret in SECRETS.iter().filter(|s| !url.contains(*s)) {
                if r.body.contains(secret) {
                    leaks.push(format!("GET {url} shows {secret} to {}", outsider.email));
                }
            }
            if !url.contains(&w.key) && names_key(&r.body, &w.key) {
                leaks.push(format!("GET {url} names {} to {}", w.key, outsider.email));
            }
        }
    }
    println!(
        "outsider sweep: {} GET routes, {requested} requests",
        SWEEP.len()
    );
    assert!(leaks.is_empty(), "an outsider sees:\n{}", leaks.join("\n"));
    assert!(requested >= 160, "only {requested} requests");
}

/// A missing incident and a hidden one answer alike (no existence oracle).
#[tokio::test]
async fn a_hidden_incident_answers_like_a_missing_one() {
    let w = world().await;
    let hidden = w
        .app
        .api(
            Method::GET,
            &format!("/api/v1/incidents/{}", w.key),
            Some(&w.outsider_token),
            None,
        )
        .await;
    let missing = w
        .app
        .api(
            Method::GET,
            "/api/v1/incidents/INC-999",
            Some(&w.outsider_token),
            None,
        )
        .await;
    hidden.assert_status(StatusCode::NOT_FOUND);
    missing.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(
        hidden.body.replace(&w.key, "KEY"),
        missing.body.replace("INC-999", "KEY")
    );
}

/// The participant and an admin see it everywhere the outsider does not: the sweep cannot
/// pass by hiding everything.
#[tokio::test]
async fn participants_and_admins_see_it() {
    let w = world().await;
    for (user, token) in [
        (&w.participant, &w.participant_token),
        (&w.admin, &w.admin_token),
        (&w.commander, &w.admin_token),
    ] {
        for template in [
            "/incidents/{INC}",
            "/incidents/{INC}/postmortem",
            "/incidents?q={WORD}",
            "/incidents",
            "/search?q=Xylophonewombat",
            "/search?q=Narwhalplinth",
            "/action-items?status=open",
            "/postmortems",
            "/incidents/similar?title={WORD}+payroll+leak",
            "/incidents/{LATER}",
        ] {
            let url = w.url(template);
            let r = w.app.get(&url, Some(user)).await;
            r.assert_status(StatusCode::OK);
            assert!(
                SECRETS.iter().any(|s| r.body.contains(s)),
                "{} does not see it on {url}",
                user.email
            );
        }
        if user.id == w.commander.id {
            continue;
        }
        for template in [
            "/api/v1/incidents/{INC}",
            "/api/v1/incidents?q={WORD}",
            "/api/v1/action-items/{ITEM}",
            "/api/v1/snapshots/{SNAP}",
            "/api/v1/incidents/{INC}/postmortem.md",
            "/api/v1/incidents/similar?title={WORD}+payroll+leak",
            "/api/v1/incidents/{LATER}/links",
        ] {
            let url = w.url(template);
            let r = w.app.api(Method::GET, &url, Some(token), None).await;
            r.assert_status(StatusCode::OK);
            if template.contains("similar") || template.contains("/links") {
                assert!(
                    r.body.contains(&w.key),
                    "{} is not offered it on {url}: {}",
                    user.email,
                    r.body
                );
            }
        }
    }
    // Their downloads of it are in the audit log (participant and admin, one each).
    let exports: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'incident.export'")
            .fetch_one(&w.app.db.reader)
            .await
            .expect("audit");
    assert_eq!(exports, 2);
}

/// Only the commander or an admin changes who may see it; someone who cannot see it is told
/// it does not exist; adding the outsider lets them in, removing them shuts them out again,
/// and each change is audited and on the timeline (the removed person not named there).
#[tokio::test]
async fn the_commander_or_an_admin_changes_who_may_see_it() {
    let w = world().await;
    let path = format!("/api/v1/incidents/{}", w.key);
    // The participant (a viewer) cannot write at all; a responder participant who is not the
    // commander is refused with 403 naming who may.
    let helper = w.app.user(Role::Responder).await;
    let admin_write = w.app.token(&w.admin, Scope::Write).await;
    let current = w
        .app
        .api(Method::GET, &path, Some(&admin_write), None)
        .await
        .json();
    let version = current["version"].as_i64().expect("version");
    let r = w
        .app
        .api(
            Method::PATCH,
            &path,
            Some(&admin_write),
            // A script may name a participant by user id (API.md: `email|id`).
            Some(json!({"version": version, "participants": [w.participant.email, helper.id]})),
        )
        .await;
    r.assert_status(StatusCode::OK);
    let listed = r.json()["participants"].clone();
    assert!(
        listed
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p == helper.email.as_str())),
        "the participant named by id is listed by e-mail: {listed}"
    );
    let helper_token = w.app.token(&helper, Scope::Write).await;
    let current = w
        .app
        .api(Method::GET, &path, Some(&helper_token), None)
        .await;
    current.assert_status(StatusCode::OK);
    let version = current.json()["version"].as_i64().expect("version");
    let r = w
        .app
        .api(
            Method::PATCH,
            &path,
            Some(&helper_token),
            Some(json!({"version": version, "restricted": false})),
        )
        .await;
    r.assert_status(StatusCode::FORBIDDEN);
    assert!(r.body.contains("commander"), "{}", r.body);
    // The outsider cannot even learn it exists.
    let outsider_write = w.app.token(&w.outsider, Scope::Write).await;
    w.app
        .api(
            Method::PATCH,
            &path,
            Some(&outsider_write),
            Some(json!({"version": version, "participants": [w.outsider.email]})),
        )
        .await
        .assert_status(StatusCode::NOT_FOUND);
    // The commander adds the outsider from the incident page: now they see it.
    let page = format!("/incidents/{}", w.key);
    let r = w
        .app
        .post_form(
            &format!("{page}/access"),
            Some(&w.commander),
            &[
                ("restricted", "on"),
                (
                    "participants",
                    &format!(
                        "{}, {}, {}",
                        w.participant.email, helper.email, w.outsider.email
                    ),
                ),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    w.app
        .get(&page, Some(&w.outsider))
        .await
        .assert_status(StatusCode::OK);
    // … and removes them again.
    let r = w
        .app
        .post_form(
            &format!("{page}/access"),
            Some(&w.commander),
            &[("restricted", "on"), ("participants", &w.participant.email)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    w.app
        .get(&page, Some(&w.outsider))
        .await
        .assert_status(StatusCode::NOT_FOUND);
    let shown = w.app.get(&page, Some(&w.participant)).await;
    assert!(shown.body.contains("Participants added"), "{}", shown.body);
    assert!(
        shown.body.contains("2 participants removed"),
        "{}",
        shown.body
    );
    let audited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'incident.access'")
            .fetch_one(&w.app.db.reader)
            .await
            .expect("audit");
    // Declared restricted, the admin's change, the two page changes.
    assert_eq!(audited, 4);
    // Made public by the commander, the outsider sees it.
    let r = w
        .app
        .post_form(
            &format!("{page}/access"),
            Some(&w.commander),
            &[("participants", &w.participant.email)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    w.app
        .get(&page, Some(&w.outsider))
        .await
        .assert_status(StatusCode::OK);
}

/// Webhooks: a destination not marked for restricted details is told only that a restricted
/// incident was opened; one marked so gets the title and link.
#[tokio::test]
async fn webhooks_say_only_that_a_restricted_incident_was_opened() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    app.service("checkout", "").await;
    for (name, details) in [("plain", ""), ("trusted", "on")] {
        let r = app
            .post_form(
                "/admin/integrations",
                Some(&admin),
                &[
                    ("name", name),
                    ("url", &format!("https://{name}.example.com/hook")),
                    ("format", "json"),
                    ("event_incident_opened", "on"),
                    ("tier_page", "on"),
                    ("restricted_details", details),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    app.declare(
        &token,
        json!({"title": "Quokkafjord", "severity": "sev2", "service": "checkout",
               "category": "unknown", "restricted": true}),
    )
    .await;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT w.name, d.data FROM webhook_deliveries d
         JOIN webhook_destinations w ON w.id = d.destination_id ORDER BY w.name",
    )
    .fetch_all(&app.db.reader)
    .await
    .expect("deliveries");
    assert_eq!(rows.len(), 2);
    let (plain, trusted) = (&rows[0].1, &rows[1].1);
    assert!(
        !plain.contains("Quokkafjord") && !plain.contains("INC-1"),
        "{plain}"
    );
    assert!(
        plain.contains("A restricted incident was opened"),
        "{plain}"
    );
    assert!(
        trusted.contains("Quokkafjord") && trusted.contains("INC-1"),
        "{trusted}"
    );
    // Marked on Admin › Integrations later, the plain destination gets the next one in full.
    let id: String = sqlx::query_scalar("SELECT id FROM webhook_destinations WHERE name = 'plain'")
        .fetch_one(&app.db.reader)
        .await
        .expect("id");
    let r = app
        .post_form(
            &format!("/admin/integrations/destinations/{id}/restricted"),
            Some(&admin),
            &[("restricted_details", "on")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    app.declare(
        &token,
        json!({"title": "Wombatgate", "severity": "sev2", "service": "checkout",
               "category": "unknown", "restricted": true}),
    )
    .await;
    let full: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_deliveries d JOIN webhook_destinations w
         ON w.id = d.destination_id WHERE w.name = 'plain' AND d.data LIKE '%Wombatgate%'",
    )
    .fetch_one(&app.db.reader)
    .await
    .expect("deliveries");
    assert_eq!(full, 1);
}

/// An Alertmanager alert labelled `hindsight_restricted="true"` opens a restricted incident:
/// an admin sees it, a responder does not find it.
#[tokio::test]
async fn an_alert_label_opens_a_restricted_incident() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let responder = app.user(Role::Responder).await;
    let ingest = app.token(&admin, Scope::Ingest).await;
    let admin_read = app.token(&admin, Scope::Read).await;
    let responder_read = app.token(&responder, Scope::Read).await;
    let body = include_str!("fixtures/alertmanager_firing.json").replace(
        "\"severity\": \"critical\"}",
        "\"severity\": \"critical\", \"hindsight_restricted\": \"true\"}",
    );
    assert!(body.contains("hindsight_restricted"), "fixture changed");
    let r = app
        .api(
            Method::POST,
            "/api/v1/integrations/alertmanager",
            Some(&ingest),
            Some(serde_json::from_str(&body).expect("json")),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let seen = app
        .api(
            Method::GET,
            "/api/v1/incidents/INC-1",
            Some(&admin_read),
            None,
        )
        .await;
    seen.assert_status(StatusCode::OK);
    assert_eq!(seen.json()["restricted"], json!(true));
    app.api(
        Method::GET,
        "/api/v1/incidents/INC-1",
        Some(&responder_read),
        None,
    )
    .await
    .assert_status(StatusCode::NOT_FOUND);
    let list = app
        .api(
            Method::GET,
            "/api/v1/incidents",
            Some(&responder_read),
            None,
        )
        .await
        .json();
    assert_eq!(list["total"], json!(0), "{list}");
}
