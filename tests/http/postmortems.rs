//! Post-mortems: starting from templates, saving with versions and revisions, conflicts, the
//! review workflow and publishing rules, templates that change later, exports and XSS.

use axum::http::{Method, StatusCode};
use hindsight::auth::{Role, Scope};
use serde_json::{Value, json};

use crate::common::{TestApp, TestUser};

const STANDARD: &str = "0190a000-0000-7000-8000-000000000001";
const XSS: &str = "<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[x](JaVaScRiPt:alert(3))\n\n[y](&#106;avascript:alert(4))\n\n<svg onload=alert(5)></svg>\n\n<a href=\"data:text/html,<script>alert(6)</script>\">z</a>";

struct Setup {
    app: TestApp,
    admin: TestUser,
    token: String,
}

/// An app with INC-1 (sev2, checkout, category unknown) and a write token.
async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    app.declare(
        &token,
        json!({"title": "Checkout down", "severity": "sev2", "service": "checkout", "category": "unknown"}),
    )
    .await;
    Setup { app, admin, token }
}

impl Setup {
    async fn start(&self) -> Value {
        self.start_on("INC-1", &self.token).await
    }

    /// Starts the post-mortem of `incident` as the owner of `token`.
    async fn start_on(&self, incident: &str, token: &str) -> Value {
        let r = self
            .app
            .api(
                Method::POST,
                &format!("/api/v1/incidents/{incident}/postmortem"),
                Some(token),
                Some(json!({})),
            )
            .await;
        r.assert_status(StatusCode::CREATED);
        r.json()
    }

    /// Declares another incident on checkout with category `unknown`.
    async fn declare(&self, title: &str, severity: &str) {
        self.app
            .declare(
                &self.token,
                json!({"title": title, "severity": severity, "service": "checkout", "category": "unknown"}),
            )
            .await;
    }

    async fn put(&self, body: Value) -> axum::http::StatusCode {
        self.app
            .api(
                Method::PUT,
                "/api/v1/incidents/INC-1/postmortem",
                Some(&self.token),
                Some(body),
            )
            .await
            .status
    }

    async fn get(&self) -> Value {
        let r = self
            .app
            .api(
                Method::GET,
                "/api/v1/incidents/INC-1/postmortem",
                Some(&self.token),
                None,
            )
            .await;
        r.assert_status(StatusCode::OK);
        r.json()
    }

    /// A colleague of the author is asked to review INC-1's post-mortem and approves it
    /// (publishing needs an approval from someone other than the author).
    async fn approved_by_a_colleague(&self) -> TestUser {
        let colleague = self.app.user(Role::Responder).await;
        self.app
            .api(
                Method::POST,
                "/api/v1/incidents/INC-1/postmortem/reviewers",
                Some(&self.token),
                Some(json!({"reviewers": [colleague.email]})),
            )
            .await
            .assert_status(StatusCode::OK);
        let approve = self
            .app
            .post_form(
                "/incidents/INC-1/postmortem/review",
                Some(&colleague),
                &[("decision", "approve"), ("comment", "Reads well.")],
            )
            .await;
        assert_eq!(approve.status, StatusCode::SEE_OTHER, "{}", approve.body);
        colleague
    }

    async fn status(&self, status: &str) -> crate::common::TestResponse {
        self.app
            .api(
                Method::POST,
                "/api/v1/incidents/INC-1/postmortem/status",
                Some(&self.token),
                Some(json!({ "status": status })),
            )
            .await
    }
}

/// Every section the standard template requires, written.
fn required_sections() -> serde_json::Map<String, Value> {
    [
        "summary",
        "impact",
        "trigger",
        "root_cause",
        "detection",
        "resolution",
    ]
    .into_iter()
    .map(|key| (key.to_owned(), json!(format!("{key} written"))))
    .collect()
}

fn section<'a>(pm: &'a Value, key: &str) -> &'a Value {
    pm["sections"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["key"] == key))
        .unwrap_or_else(|| panic!("no section {key} in {pm}"))
}

#[tokio::test]
async fn a_post_mortem_starts_from_the_severity_default_template_with_every_section() {
    let s = setup().await;
    let pm = s.start().await;
    assert_eq!(pm["status"], "draft");
    assert_eq!(pm["version"], 1);
    assert_eq!(pm["template"], "Standard (SRE book)");
    let keys: Vec<&str> = pm["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .map(|s| s["key"].as_str().expect("key"))
        .collect();
    assert_eq!(
        keys,
        [
            "summary",
            "impact",
            "trigger",
            "root_cause",
            "contributing_factors",
            "detection",
            "resolution",
            "went_well",
            "went_wrong",
            "got_lucky",
            "lessons"
        ]
    );
    assert!(
        section(&pm, "root_cause")["help"]
            .as_str()
            .expect("help")
            .contains("What in the system")
    );
    // Starting twice gives the same one back.
    let again = s
        .app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/postmortem",
            Some(&s.token),
            Some(json!({})),
        )
        .await;
    again.assert_status(StatusCode::OK);
    assert_eq!(again.json()["id"], pm["id"]);

    // A sev4 incident starts from the lightweight template.
    s.declare("Typo on a page", "sev4").await;
    let minor = s.start_on("INC-2", &s.token).await;
    assert_eq!(minor["template"], "Lightweight");
    assert_eq!(minor["sections"].as_array().map(Vec::len), Some(4));

    // The incident shows its post-mortem.
    let incident = s
        .app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&s.token), None)
        .await
        .json();
    assert_eq!(incident["postmortem"]["status"], "draft");
    assert_eq!(incident["postmortem"]["sections"], 11);
    let page = s.app.get("/incidents/INC-1", Some(&s.admin)).await;
    assert!(page.body.contains("0 of 11 sections written"));
}

#[tokio::test]
async fn saves_keep_every_revision_and_a_stale_save_is_refused_with_both_texts() {
    let s = setup().await;
    s.start().await;
    assert_eq!(
        s.put(json!({"version": 1, "sections": {"summary": "First draft."}}))
            .await,
        StatusCode::OK
    );
    assert_eq!(
        s.put(json!({"version": 2, "sections": {"summary": "First draft.\nSecond line.", "impact": "Checkout failed for 4% of users."}}))
            .await,
        StatusCode::OK
    );
    // Someone still on version 2 saves: 409, the current post-mortem in the error, nothing written.
    let stale = s
        .app
        .api(
            Method::PUT,
            "/api/v1/incidents/INC-1/postmortem",
            Some(&s.token),
            Some(json!({"version": 2, "sections": {"summary": "Overwritten?"}})),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    let error = &stale.json()["error"];
    assert_eq!(error["code"], "version_conflict");
    assert_eq!(error["current"]["version"], 3);
    assert_eq!(
        section(&error["current"], "summary")["markdown"],
        "First draft.\nSecond line."
    );
    let now = s.get().await;
    assert_eq!(
        section(&now, "summary")["markdown"],
        "First draft.\nSecond line."
    );

    // Every revision is there, with what changed.
    let list = s
        .app
        .api(
            Method::GET,
            "/api/v1/incidents/INC-1/postmortem/revisions",
            Some(&s.token),
            None,
        )
        .await
        .json();
    let versions: Vec<i64> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["version"].as_i64().expect("version"))
        .collect();
    assert_eq!(versions, [3, 2, 1]);
    assert_eq!(list["items"][0]["changed"], "Summary, Impact");
    let v2 = s
        .app
        .api(
            Method::GET,
            "/api/v1/incidents/INC-1/postmortem/revisions/2",
            Some(&s.token),
            None,
        )
        .await
        .json();
    let summary_v2 = v2["content"]["sections"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["key"] == "summary"))
        .expect("summary in v2");
    assert_eq!(summary_v2["body"], "First draft.");

    // The diff page shows exactly the added line and the new section.
    let diff = s
        .app
        .get(
            "/incidents/INC-1/postmortem/diff?from=2&to=3",
            Some(&s.admin),
        )
        .await;
    diff.assert_status(StatusCode::OK);
    assert!(
        diff.body
            .contains(r#"<span class="diff-same">  First draft.</span>"#),
        "{}",
        diff.body
    );
    assert!(
        diff.body
            .contains(r#"<span class="diff-added">+ Second line.</span>"#)
    );
    assert!(
        diff.body
            .contains(r#"<span class="diff-added">+ Checkout failed for 4% of users.</span>"#)
    );
    assert!(
        !diff.body.contains("diff-removed\">− "),
        "no line was removed"
    );
    let history = s
        .app
        .get("/incidents/INC-1/postmortem/history", Some(&s.admin))
        .await;
    assert!(history.body.contains("/postmortem/revisions/1"));
    assert!(history.body.contains("Summary, Impact"));
    let bad = s
        .app
        .get(
            "/incidents/INC-1/postmortem/diff?from=x&to=2",
            Some(&s.admin),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = s
        .app
        .get("/incidents/INC-1/postmortem/revisions/99", Some(&s.admin))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // Saving the same text again makes no new revision.
    assert_eq!(
        s.put(json!({"version": 3, "sections": {"summary": "First draft.\nSecond line."}}))
            .await,
        StatusCode::OK
    );
    assert_eq!(s.get().await["version"], 3);
}

#[tokio::test]
async fn bad_input_is_named_by_field_and_nothing_is_saved() {
    let s = setup().await;
    s.start().await;
    let r = s
        .app
        .api(
            Method::PUT,
            "/api/v1/incidents/INC-1/postmortem",
            Some(&s.token),
            Some(json!({"version": 1,
                "sections": {"nope": "x", "summary": "ok"},
                "root_causes": [{"category": "cosmic rays", "primary": true}, {"category": "deploy", "primary": true}],
                "detection_method": "psychic"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = &r.json()["error"]["fields"];
    for f in [
        "sections.nope",
        "root_causes[0].category",
        "detection_method",
    ] {
        assert!(fields.get(f).is_some(), "{f} missing in {fields}");
    }
    assert_eq!(s.get().await["version"], 1);
    assert_eq!(section(&s.get().await, "summary")["markdown"], "");
    let no_version = s
        .app
        .api(
            Method::PUT,
            "/api/v1/incidents/INC-1/postmortem",
            Some(&s.token),
            Some(json!({"sections": {"summary": "x"}})),
        )
        .await;
    assert_eq!(no_version.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_version.json()["error"]["fields"]["version"].is_string());
}

#[tokio::test]
async fn publishing_is_blocked_until_ready_and_lists_exactly_what_is_missing() {
    let s = setup().await;
    s.start().await;
    // Straight from draft: review first.
    let early = s.status("published").await;
    assert_eq!(early.status, StatusCode::UNPROCESSABLE_ENTITY);
    s.status("in_review").await.assert_status(StatusCode::OK);
    let page = s
        .app
        .get("/incidents/INC-1/postmortem", Some(&s.admin))
        .await;
    assert!(
        !page.body.contains("Before publishing:"),
        "nothing sensitive yet"
    );
    let blocked = s.status("published").await;
    assert_eq!(blocked.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = blocked.json()["error"]["fields"]["status"]
        .as_str()
        .expect("message")
        .to_owned();
    assert!(
        message.contains(
            "Fill in the required sections: Summary, Impact, Trigger, Root cause, Detection, Resolution."
        ),
        "{message}"
    );
    assert!(message.contains("primary root cause"), "{message}");
    assert!(message.contains("at least one action item"), "{message}");
    assert!(
        !message.contains("Where we got lucky"),
        "optional sections are not required"
    );

    // The page says the same.
    let page = s
        .app
        .get("/incidents/INC-1/postmortem", Some(&s.admin))
        .await;
    assert!(page.body.contains("Before it can be published"));
    assert!(page.body.contains("Set the primary root cause"));

    let mut sections = required_sections();
    sections.insert(
        "detection".into(),
        json!(
            "Paged ops-lead@corp.com; the token ghp_abcdefghijklmnopqrstuvwxyz0123456789 leaked."
        ),
    );
    let v = s.get().await["version"].as_i64().expect("version");
    assert_eq!(
        s.put(json!({"version": v, "sections": sections,
            "root_causes": [{"category": "config change", "description": "timeout set to 0", "primary": true}]}))
            .await,
        StatusCode::OK
    );
    let flagged = s
        .app
        .get("/incidents/INC-1/postmortem", Some(&s.admin))
        .await;
    assert!(
        flagged
            .body
            .contains("Before publishing: 2 possible secrets or personal data flagged"),
        "the publish panel points at the secret and the address"
    );
    assert!(flagged.body.contains("Possible secret") && flagged.body.contains("Personal data"));
    let still = s.status("published").await;
    assert_eq!(still.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = still.json()["error"]["fields"]["status"].to_string();
    assert!(
        message.contains("action item") && !message.contains("Fill in"),
        "{message}"
    );
    // A written reason stands in for action items.
    let v = s.get().await["version"].as_i64().expect("version");
    assert_eq!(
        s.put(json!({"version": v, "no_action_items_reason": "The config path is being removed entirely."}))
            .await,
        StatusCode::OK
    );
    let unapproved = s.status("published").await;
    unapproved.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unapproved.json()["error"]["fields"]["status"]
            .to_string()
            .contains("other than the author must approve"),
        "{}",
        unapproved.body
    );
    s.approved_by_a_colleague().await;
    let published = s.status("published").await;
    published.assert_status(StatusCode::OK);
    assert_eq!(published.json()["status"], "published");
    assert!(published.json()["published_at"].is_string());

    // Published is read-only until reopened, and reopening is recorded.
    let v = s.get().await["version"].as_i64().expect("version");
    assert_eq!(
        s.put(json!({"version": v, "sections": {"summary": "late edit"}}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let edit_page = s
        .app
        .get("/incidents/INC-1/postmortem/edit", Some(&s.admin))
        .await;
    assert_eq!(edit_page.status, StatusCode::SEE_OTHER);
    let reopen = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/status",
            Some(&s.admin),
            &[
                ("status", "draft"),
                ("comment", "New facts about the trigger"),
                ("version", &v.to_string()),
            ],
        )
        .await;
    assert_eq!(reopen.status, StatusCode::SEE_OTHER, "{}", reopen.body);
    let pm = s.get().await;
    assert_eq!(pm["status"], "draft");
    assert!(pm["published_at"].is_null());
    let page = s
        .app
        .get("/incidents/INC-1/postmortem", Some(&s.admin))
        .await;
    assert!(page.body.contains("moved it from Published to Draft"));
    assert!(page.body.contains("New facts about the trigger"));
    let incident = s.app.get("/incidents/INC-1", Some(&s.admin)).await;
    assert!(incident.body.contains("Post-mortem reopened as a draft"));
    assert!(incident.body.contains("Post-mortem published"));
    // Impossible moves are refused.
    assert_eq!(
        s.status("published").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        s.status("bogus").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn reviewers_are_asked_by_name_and_their_decisions_are_recorded() {
    let s = setup().await;
    s.start().await;
    let reviewer = s.app.user(Role::Responder).await;
    let bystander = s.app.user(Role::Responder).await;
    // The author cannot review their own post-mortem.
    let own = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/reviewers",
            Some(&s.admin),
            &[("reviewer", &s.admin.email)],
        )
        .await;
    assert_eq!(own.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(own.body.contains("authors do not review"));
    let unknown = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/reviewers",
            Some(&s.admin),
            &[("reviewer", "ghost@example.com")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unknown.body.contains("no user is ghost@example.com"));

    let asked = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/reviewers",
            Some(&s.admin),
            &[("reviewer", &reviewer.email)],
        )
        .await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER, "{}", asked.body);
    let pm = s.get().await;
    assert_eq!(pm["status"], "in_review");
    assert_eq!(pm["reviewers"][0]["email"], reviewer.email.as_str());
    assert_eq!(pm["reviewers"][0]["state"], "requested");
    let mine = s.app.get("/postmortems?review=mine", Some(&reviewer)).await;
    assert!(mine.body.contains("/incidents/INC-1/postmortem"));
    let not_mine = s
        .app
        .get("/postmortems?review=mine", Some(&bystander))
        .await;
    assert!(!not_mine.body.contains("/incidents/INC-1/postmortem"));

    // Only named reviewers decide; asking for changes needs a comment.
    let outsider = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/review",
            Some(&bystander),
            &[("decision", "approve")],
        )
        .await;
    assert_eq!(outsider.status, StatusCode::FORBIDDEN);
    let silent = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/review",
            Some(&reviewer),
            &[("decision", "request_changes"), ("comment", "  ")],
        )
        .await;
    assert_eq!(silent.status, StatusCode::UNPROCESSABLE_ENTITY);
    let changes = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/review",
            Some(&reviewer),
            &[
                ("decision", "request_changes"),
                ("comment", "Say how detection could be faster."),
            ],
        )
        .await;
    assert_eq!(changes.status, StatusCode::SEE_OTHER);
    let pm = s.get().await;
    assert_eq!(pm["reviewers"][0]["state"], "changes_requested");
    assert_eq!(
        pm["reviewers"][0]["comment"],
        "Say how detection could be faster."
    );
    let page = s
        .app
        .get("/incidents/INC-1/postmortem", Some(&s.admin))
        .await;
    assert!(page.body.contains("Changes were requested by"));
    // The author asks the same reviewer again in one click once the changes are made.
    assert!(
        page.body
            .contains(&format!(">Ask {} again</button>", reviewer.name)),
        "a one-click re-request next to the reviewer who asked for changes"
    );
    let again = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/reviewers",
            Some(&s.admin),
            &[("reviewer", &reviewer.id)],
        )
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let pm = s.get().await;
    assert_eq!(
        pm["reviewers"][0]["state"], "changes_requested",
        "asking again does not erase the open request for changes"
    );
    assert_eq!(
        pm["reviewers"][0]["comment"],
        "Say how detection could be faster."
    );
    let waiting = s.app.get("/postmortems?review=mine", Some(&reviewer)).await;
    assert!(
        waiting.body.contains("/incidents/INC-1/postmortem"),
        "asked again, it is waiting for them"
    );
    let blocked = s.status("published").await;
    assert_eq!(blocked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        blocked.body.contains("Changes were requested by"),
        "{}",
        blocked.body
    );

    let approve = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/review",
            Some(&reviewer),
            &[("decision", "approve"), ("comment", "Good now.")],
        )
        .await;
    assert_eq!(approve.status, StatusCode::SEE_OTHER);
    let pm = s.get().await;
    assert_eq!(pm["reviewers"][0]["state"], "approved");
    assert!(pm["reviewers"][0]["decided_at"].is_string());
    let timeline = s
        .app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&s.token), None)
        .await
        .json()["timeline"]
        .to_string();
    // The timeline (part of the published document) records the decisions; their comments
    // stay in the review record.
    assert!(timeline.contains("approved the post-mortem."), "{timeline}");
    assert!(timeline.contains("requested changes to the post-mortem."));
    assert!(!timeline.contains("Good now"), "{timeline}");
    assert_eq!(pm["reviewers"][0]["comment"], "Good now.");
}

#[tokio::test]
async fn an_author_asked_by_a_colleague_cannot_approve_their_own_post_mortem() {
    let s = setup().await;
    s.start().await; // the admin writes it
    let colleague = s.app.user(Role::Responder).await;
    let colleague_token = s.app.token(&colleague, Scope::Write).await;
    // The colleague asks the author to review: refused, whoever asks.
    let asked = s
        .app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/postmortem/reviewers",
            Some(&colleague_token),
            Some(json!({"reviewers": [s.admin.email]})),
        )
        .await;
    asked.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        asked.body.contains("authors do not review"),
        "{}",
        asked.body
    );
    assert_eq!(s.get().await["reviewers"].as_array().map(Vec::len), Some(0));

    // Even named as a reviewer (data from before this rule), the author cannot approve, and
    // their approval would not count towards publishing.
    let pm_id: String = sqlx::query_scalar("SELECT id FROM postmortems")
        .fetch_one(&s.app.db.reader)
        .await
        .expect("post-mortem");
    sqlx::query(
        "INSERT INTO postmortem_reviewers (postmortem_id, user_id, state, requested_by, requested_at)
         VALUES (?, ?, 'requested', ?, '2026-01-01T00:00:00.000Z')",
    )
    .bind(&pm_id)
    .bind(&s.admin.id)
    .bind(&colleague.id)
    .execute(&s.app.db.writer)
    .await
    .expect("legacy reviewer row");
    let mut sections = required_sections();
    sections.insert("summary".into(), json!("Checkout returned 502s."));
    assert_eq!(
        s.put(json!({"version": 1, "sections": sections,
            "no_action_items_reason": "one-off",
            "root_causes": [{"category": "deploy", "primary": true}]}))
            .await,
        StatusCode::OK
    );
    s.status("in_review").await.assert_status(StatusCode::OK);
    let own = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/review",
            Some(&s.admin),
            &[("decision", "approve")],
        )
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.body);
    assert!(own.body.contains("other than its author"), "{}", own.body);
    let unapproved = s.status("published").await;
    unapproved.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unapproved.body.contains("must approve"),
        "{}",
        unapproved.body
    );
    s.approved_by_a_colleague().await;
    s.status("published").await.assert_status(StatusCode::OK);
}

#[tokio::test]
async fn viewers_read_post_mortems_but_cannot_change_them() {
    let s = setup().await;
    s.start().await;
    let viewer = s.app.user(Role::Viewer).await;
    let page = s
        .app
        .get("/incidents/INC-1/postmortem", Some(&viewer))
        .await;
    page.assert_status(StatusCode::OK);
    assert!(
        !page.body.contains("/postmortem/edit"),
        "no edit links for viewers"
    );
    assert_eq!(
        s.app
            .get("/incidents/INC-1/postmortem/edit", Some(&viewer))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let post = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/edit",
            Some(&viewer),
            &[("version", "1"), ("section.summary", "viewer text")],
        )
        .await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);
    assert_eq!(section(&s.get().await, "summary")["markdown"], "");
    assert_eq!(s.app.count("postmortem_revisions").await, 1);
}

#[tokio::test]
async fn the_edit_form_saves_previews_and_merges_a_conflict_keeping_what_was_typed() {
    let s = setup().await;
    s.start().await;
    let other = s.app.user(Role::Responder).await;
    // Preview renders and checks, and saves nothing.
    let preview = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/edit",
            Some(&s.admin),
            &[
                ("version", "1"),
                ("action", "preview"),
                ("section.summary", "It was **human error**."),
            ],
        )
        .await;
    preview.assert_status(StatusCode::OK);
    assert!(preview.body.contains("<strong>human error</strong>"));
    assert!(preview.body.contains("Blameless language"));
    assert!(preview.body.contains("nothing is saved"));
    assert_eq!(s.get().await["version"], 1);

    // Two people start from version 1. The first saves Summary and Impact.
    let first = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/edit",
            Some(&other),
            &[
                ("version", "1"),
                ("section.summary", "Theirs: checkout failed."),
                ("section.impact", "4% of orders."),
            ],
        )
        .await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    // The second changed Summary too (a real conflict) and Trigger (only theirs to keep).
    let second = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/edit",
            Some(&s.admin),
            &[
                ("version", "1"),
                ("section.summary", "Mine: the payment call timed out."),
                ("section.impact", ""),
                ("section.trigger", "A config push set the timeout to 0."),
            ],
        )
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert!(
        second.body.contains("Theirs: checkout failed."),
        "their text is shown"
    );
    assert!(
        second.body.contains("Mine: the payment call timed out."),
        "mine is kept"
    );
    assert!(
        second
            .body
            .contains(r#"name="section.trigger" value="A config push set the timeout to 0.""#)
    );
    assert!(
        !second.body.contains(r#"name="section.impact""#),
        "impact was not changed by me"
    );
    assert!(second.body.contains(r#"name="version" value="2""#));
    // Nothing was overwritten.
    let pm = s.get().await;
    assert_eq!(
        section(&pm, "summary")["markdown"],
        "Theirs: checkout failed."
    );
    assert_eq!(section(&pm, "trigger")["markdown"], "");

    // Merging: save from the conflict page at the new version.
    let merged = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/edit",
            Some(&s.admin),
            &[
                ("version", "2"),
                ("section.trigger", "A config push set the timeout to 0."),
                (
                    "section.summary",
                    "Checkout failed: the payment call timed out.",
                ),
            ],
        )
        .await;
    assert_eq!(merged.status, StatusCode::SEE_OTHER, "{}", merged.body);
    let pm = s.get().await;
    assert_eq!(pm["version"], 3);
    assert_eq!(
        section(&pm, "summary")["markdown"],
        "Checkout failed: the payment call timed out."
    );
    assert_eq!(section(&pm, "impact")["markdown"], "4% of orders.");
    assert_eq!(
        section(&pm, "trigger")["markdown"],
        "A config push set the timeout to 0."
    );
}

#[tokio::test]
async fn the_primary_root_cause_sets_the_incident_category() {
    let s = setup().await;
    s.start().await;
    let r = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/edit",
            Some(&s.admin),
            &[
                ("version", "1"),
                ("primary_category", "config change"),
                ("primary_description", "Timeout default of 0."),
                ("factor_category", "process"),
                ("factor_description", "No canary for config."),
                ("factor_category", ""),
                ("factor_description", ""),
                ("detection_method", "customer_report"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let pm = s.get().await;
    assert_eq!(
        pm["root_causes"],
        json!([
            {"category": "config change", "description": "Timeout default of 0.", "primary": true},
            {"category": "process", "description": "No canary for config.", "primary": false}
        ])
    );
    assert_eq!(pm["detection_method"], "customer_report");
    let incident = s
        .app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&s.token), None)
        .await
        .json();
    assert_eq!(incident["category"], "config change");
    assert!(
        incident["timeline"]
            .to_string()
            .contains("primary root cause")
    );
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM root_causes WHERE is_primary = 1")
            .fetch_one(&s.app.db.reader)
            .await
            .expect("count"),
        1
    );
    // A category outside the taxonomy is named.
    let bad = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/edit",
            Some(&s.admin),
            &[
                ("version", "2"),
                ("primary_category", "gremlins"),
                ("factor_category", ""),
                ("factor_description", "typed but no category"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("is not a category"));
    // The message at the top names each problem and links to it; what was typed stays.
    assert!(
        bad.body.contains(
            "<a href=\"#root-causes\">Primary root cause</a>: &#34;gremlins&#34; is not a category"
        ),
        "{}",
        bad.body
    );
    assert!(
        bad.body
            .contains("<a href=\"#root-causes\">Contributing factor 1</a>: choose a category")
    );
    assert!(bad.body.contains(">typed but no category</textarea>"));
}

#[tokio::test]
async fn template_changes_leave_existing_post_mortems_alone() {
    let s = setup().await;
    s.start().await;
    let before = s.get().await["sections"].clone();
    // The admin drops every section but two, reorders and adds one.
    let edit = s
        .app
        .post_form(
            &format!("/admin/templates/{STANDARD}"),
            Some(&s.admin),
            &[
                ("name", "Standard (SRE book)"),
                ("is_default", "1"),
                ("version", "1"),
                ("title.0", "Impact"),
                ("key.0", "impact"),
                ("position.0", "2"),
                ("title.1", "Summary"),
                ("key.1", "summary"),
                ("position.1", "1"),
                ("required.1", "1"),
                ("title.2", "Customer communication"),
                ("help.2", "What did we tell customers, and when?"),
                ("position.2", "3"),
            ],
        )
        .await;
    assert_eq!(edit.status, StatusCode::SEE_OTHER, "{}", edit.body);
    assert_eq!(
        s.get().await["sections"],
        before,
        "the started post-mortem is unchanged"
    );
    s.declare("Second", "sev1").await;
    let fresh = s.start_on("INC-2", &s.token).await;
    let keys: Vec<&str> = fresh["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .map(|s| s["key"].as_str().expect("key"))
        .collect();
    assert_eq!(keys, ["summary", "impact", "customer_communication"]);

    // A stale template save is refused; a bad one names the row.
    let stale = s
        .app
        .post_form(
            &format!("/admin/templates/{STANDARD}"),
            Some(&s.admin),
            &[
                ("name", "Standard"),
                ("is_default", "1"),
                ("version", "1"),
                ("title.0", "Only"),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    let bad = s
        .app
        .post_form(
            "/admin/templates",
            Some(&s.admin),
            &[("name", ""), ("title.0", "A"), ("key.0", "Not A Key")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("must be 1 to 40 lower-case letters"));
    // The typed row comes back with three empty ones, and empty ones sent back again do not
    // pile up.
    assert_eq!(bad.body.matches("class=\"template-row\"").count(), 4);
    let again = s
        .app
        .post_form(
            "/admin/templates",
            Some(&s.admin),
            &[
                ("name", ""),
                ("title.0", "A"),
                ("key.0", "Not A Key"),
                ("title.1", ""),
                ("title.2", ""),
                ("title.3", ""),
            ],
        )
        .await;
    assert_eq!(again.body.matches("class=\"template-row\"").count(), 4);
    // A new template can be the default for a severity and chosen per incident.
    let created = s
        .app
        .post_form(
            "/admin/templates",
            Some(&s.admin),
            &[
                ("name", "Security"),
                ("default_for", "sev3"),
                ("title.0", "Exposure"),
                ("required.0", "1"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    s.declare("Third", "sev3").await;
    let third = s.start_on("INC-3", &s.token).await;
    assert_eq!(third["template"], "Security");
    let list = s.app.get("/admin/templates", Some(&s.admin)).await;
    assert!(list.body.contains("Security") && list.body.contains("sev3"));
    let viewer = s.app.user(Role::Responder).await;
    assert_eq!(
        s.app.get("/admin/templates", Some(&viewer)).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn xss_payloads_in_every_section_come_out_inert_in_html_and_markdown() {
    let s = setup().await;
    let pm = s.start().await;
    let mut sections = serde_json::Map::new();
    for sec in pm["sections"].as_array().expect("sections") {
        sections.insert(sec["key"].as_str().expect("key").into(), json!(XSS));
    }
    assert_eq!(
        s.put(json!({"version": 1, "sections": sections,
            "root_causes": [{"category": "deploy", "description": XSS, "primary": true}],
            "no_action_items_reason": XSS}))
            .await,
        StatusCode::OK
    );
    for path in [
        "/incidents/INC-1/postmortem",
        "/incidents/INC-1/postmortem/print",
        "/incidents/INC-1/postmortem/revisions/2",
    ] {
        let page = s.app.get(path, Some(&s.admin)).await;
        page.assert_status(StatusCode::OK);
        // Raw HTML shows as the text typed, so only the page's markup is searched.
        let html = crate::common::markup_only(&page.body);
        for needle in [
            "<script>", // an inline script tag (the page's own has a src)
            "<img src=x",
            "href=\"javascript:",
            "<svg",
            "data:text/html",
        ] {
            assert!(!html.contains(needle), "{needle} survived on {path}");
        }
    }
    let md = s
        .app
        .get("/incidents/INC-1/postmortem.md", Some(&s.admin))
        .await;
    md.assert_status(StatusCode::OK);
    assert!(md.header("content-type").starts_with("text/markdown"));
    assert!(md.header("content-disposition").starts_with("attachment"));
    // Rendered by any Markdown renderer that passes HTML through, nothing is live.
    let mut raw = String::new();
    pulldown_cmark::html::push_html(&mut raw, pulldown_cmark::Parser::new(&md.body));
    let raw = raw.to_lowercase();
    for needle in [
        "<script",
        "<img",
        "<svg",
        "<a href=\"javascript:",
        "<a href=\"data",
    ] {
        assert!(
            !raw.contains(needle),
            "{needle} is live in the export:\n{raw}"
        );
    }
    assert!(md.body.contains("alert(1)"), "the text itself is kept");
}

#[tokio::test]
async fn the_markdown_export_holds_the_whole_post_mortem_from_its_tables() {
    let s = setup().await;
    s.start().await;
    s.put(
        json!({"version": 1, "sections": {"summary": "Checkout failed for 23 minutes."},
        "root_causes": [{"category": "deploy", "description": "Bad build", "primary": true},
                        {"category": "process", "description": "No canary"}],
        "detection_method": "alert"}),
    )
    .await;
    s.app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/timeline",
            Some(&s.token),
            Some(json!({"kind": "mitigation", "body": "Rolled back build 42"})),
        )
        .await
        .assert_status(StatusCode::CREATED);
    s.app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/action-items",
            Some(&s.token),
            Some(json!({"title": "Add a canary stage", "priority": "p1", "owner": s.admin.email})),
        )
        .await
        .assert_status(StatusCode::CREATED);
    let md = s
        .app
        .api(
            Method::GET,
            "/api/v1/incidents/INC-1/postmortem.md",
            Some(&s.token),
            None,
        )
        .await;
    md.assert_status(StatusCode::OK);
    let body = md.body;
    assert!(
        body.starts_with("# Post-mortem: INC-1 Checkout down\n"),
        "{body}"
    );
    assert!(body.contains("## Summary\n\nCheckout failed for 23 minutes.\n"));
    assert!(body.contains("## Where we got lucky\n\n_Not written._"));
    assert!(body.contains("**Primary: deploy.** Bad build"));
    assert!(body.contains("- **process**: No canary"));
    assert!(body.contains("| Detected by | Alert |"));
    assert!(body.contains("Rolled back build 42"));
    assert!(body.contains("- [ ] **Add a canary stage** (p1, prevent, open) · owner"));
    // The page offers the download and a print view without navigation.
    let print = s
        .app
        .get("/incidents/INC-1/postmortem/print", Some(&s.admin))
        .await;
    assert!(print.body.contains("class=\"print-view\""));
    assert!(!print.body.contains("Add an action item"));
    // …with a way back and a Print button (hidden on paper by the print style sheet).
    assert!(
        print
            .body
            .contains("<a href=\"/incidents/INC-1/postmortem\">← Back to the post-mortem</a>"),
        "{}",
        print.body
    );
    assert!(print.body.contains("data-print>Print…</button>"));
}

#[tokio::test]
async fn the_list_filters_by_status_author_and_open_review() {
    let s = setup().await;
    s.start().await;
    s.declare("Second outage", "sev1").await;
    let other = s.app.user(Role::Responder).await;
    let other_token = s.app.token(&other, Scope::Write).await;
    s.start_on("INC-2", &other_token).await;
    s.app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-2/postmortem/reviewers",
            Some(&other_token),
            Some(json!({"reviewers": [s.admin.email]})),
        )
        .await
        .assert_status(StatusCode::OK);
    let all = s.app.get("/postmortems", Some(&s.admin)).await;
    assert!(all.body.contains("Checkout down") && all.body.contains("Second outage"));
    let in_review = s
        .app
        .get("/postmortems?status=in_review", Some(&s.admin))
        .await;
    assert!(!in_review.body.contains("Checkout down") && in_review.body.contains("Second outage"));
    let mine = s.app.get("/postmortems?author=me", Some(&s.admin)).await;
    assert!(mine.body.contains("Checkout down") && !mine.body.contains("Second outage"));
    let open = s.app.get("/postmortems?review=open", Some(&s.admin)).await;
    assert!(!open.body.contains("Checkout down") && open.body.contains("Second outage"));
    let bad = s.app.get("/postmortems?status=lost", Some(&s.admin)).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn action_items_added_from_the_post_mortem_return_to_it_and_p1_warns_on_publish() {
    let s = setup().await;
    s.start().await;
    let add = s
        .app
        .post_form(
            "/incidents/INC-1/action-items",
            Some(&s.admin),
            &[
                ("title", "Alert on checkout 5xx"),
                ("priority", "p1"),
                ("kind", "detect"),
                ("back", "postmortem"),
            ],
        )
        .await;
    assert_eq!(add.status, StatusCode::SEE_OTHER);
    assert_eq!(add.location(), "/incidents/INC-1/postmortem#action-items");
    let page = s
        .app
        .get("/incidents/INC-1/postmortem", Some(&s.admin))
        .await;
    assert!(page.body.contains("Alert on checkout 5xx"));
    assert!(page.body.contains("0 of 1 done"));
    assert!(page.body.contains("1 p1 still open"));

    let sections = required_sections();
    s.put(json!({"version": 1, "sections": sections,
        "root_causes": [{"category": "deploy", "primary": true}]}))
        .await;
    s.status("in_review").await.assert_status(StatusCode::OK);
    s.approved_by_a_colleague().await;
    let v = s.get().await["version"].to_string();
    let publish = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/status",
            Some(&s.admin),
            &[("status", "published"), ("version", &v)],
        )
        .await;
    assert_eq!(publish.status, StatusCode::SEE_OTHER, "{}", publish.body);
    let flash = publish.set_cookie("hindsight_flash").unwrap_or_default();
    assert!(flash.contains("warn"), "{flash}");
    assert_eq!(
        s.get().await["status"],
        "published",
        "the warning does not block"
    );
}

#[tokio::test]
async fn the_live_preview_renders_and_checks_one_text() {
    let s = setup().await;
    s.start().await;
    let r = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/preview",
            Some(&s.admin),
            &[(
                "text",
                "**Careless** config.\n\nToken: ghp_abcdefghijklmnopqrstuvwxyz0123456789 <script>x</script>",
            )],
        )
        .await;
    r.assert_status(StatusCode::OK);
    assert!(r.body.contains("<strong>Careless</strong>"));
    assert!(r.body.contains("Blameless language"));
    assert!(r.body.contains("Possible secret"));
    assert!(
        r.body.contains("line 3"),
        "the exact spot is named: {}",
        r.body
    );
    assert!(
        !r.body
            .contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789</mark>"),
        "the secret itself is not repeated in the warning"
    );
    assert!(!r.body.contains("<script>x"));
    let long = "x".repeat(hindsight::postmortems::SECTION_MAX + 1);
    let too_long = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/preview",
            Some(&s.admin),
            &[("text", long.as_str())],
        )
        .await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Templates are listed through the API with their sections.
    let templates = s
        .app
        .api(
            Method::GET,
            "/api/v1/postmortem-templates",
            Some(&s.token),
            None,
        )
        .await
        .json();
    assert_eq!(templates["total"], 2);
    assert_eq!(templates["items"][0]["name"], "Standard (SRE book)");
    assert_eq!(templates["items"][0]["is_default"], true);
    assert_eq!(
        templates["items"][0]["sections"].as_array().map(Vec::len),
        Some(11)
    );
    assert_eq!(templates["items"][1]["default_for"], "sev3,sev4");
}

#[tokio::test]
async fn the_api_lists_writing_check_findings_by_section_with_secrets_masked() {
    let s = setup().await;
    s.start().await;
    // A fake AWS-style access key ID: AKIA and 16 upper-case letters or digits.
    let key = "AKIAQ3EGRTXN4WZ7KD2P";
    let trigger = format!(
        "At 14:03 {} broke the deploy.\n\nThe config still held {key} for the payment client.",
        s.admin.name
    );
    assert_eq!(
        s.put(json!({
            "version": 1,
            "sections": {"summary": "Checkout was down for 20 minutes.", "trigger": trigger},
            "root_causes": [{"category": "deploy", "description": "It was human error.", "primary": true}],
        }))
        .await,
        StatusCode::OK
    );
    let pm = s.get().await;
    let findings = pm["findings"].as_array().expect("findings array");
    let in_trigger: Vec<&Value> = findings
        .iter()
        .filter(|f| f["section"] == "trigger")
        .collect();
    let kinds: Vec<&str> = in_trigger
        .iter()
        .map(|f| f["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["blame", "secret"], "{findings:#?}");

    let blame = in_trigger[0];
    assert_eq!(
        (blame["line"].as_u64(), blame["column"].as_u64()),
        (Some(1), Some(10))
    );
    assert_eq!(blame["excerpt"], format!("{} broke", s.admin.name));
    let message = blame["message"].as_str().expect("message");
    assert!(message.contains(&s.admin.name), "{message}");

    let secret = in_trigger[1];
    assert_eq!(secret["line"], 3);
    let excerpt = secret["excerpt"].as_str().expect("excerpt");
    assert!(!excerpt.contains(key), "the key is masked: {excerpt}");
    assert!(excerpt.ends_with("••••"), "{excerpt}");
    assert!(
        secret["message"]
            .as_str()
            .is_some_and(|m| m.contains("AWS access key ID")),
        "{secret}"
    );
    assert!(
        !serde_json::to_string(&pm["findings"])
            .expect("findings serialize")
            .contains(key),
        "no finding repeats the key"
    );

    // Root-cause descriptions are checked too; a clean section has no findings.
    assert!(
        findings
            .iter()
            .any(|f| f["section"] == "root_causes" && f["kind"] == "blame"),
        "{findings:#?}"
    );
    assert!(
        findings.iter().all(|f| f["section"] != "summary"),
        "{findings:#?}"
    );
    for f in findings {
        for field in ["section", "kind", "message", "line", "column", "excerpt"] {
            assert!(!f[field].is_null(), "{field} missing in {f}");
        }
    }
}

#[tokio::test]
async fn publishing_with_a_flagged_secret_asks_first_and_lists_it_masked() {
    let s = setup().await;
    s.start().await;
    s.app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/action-items",
            Some(&s.token),
            Some(json!({"title": "Rotate the leaked key", "priority": "p2"})),
        )
        .await
        .assert_status(StatusCode::CREATED);
    let mut sections = required_sections();
    sections.insert(
        "trigger".into(),
        json!("The deploy used key AKIAQ3EGRTXN4WZ7KD2P from the old config."),
    );
    s.put(json!({"version": 1, "sections": sections,
        "root_causes": [{"category": "deploy", "primary": true}]}))
        .await;
    s.status("in_review").await.assert_status(StatusCode::OK);
    s.approved_by_a_colleague().await;
    let v = s.get().await["version"].to_string();

    let asked = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/status",
            Some(&s.admin),
            &[("status", "published"), ("version", &v)],
        )
        .await;
    asked.assert_status(StatusCode::OK);
    assert!(
        asked
            .body
            .contains("Publish with possible secrets or personal data?")
    );
    assert!(asked.body.contains("Possible secret"));
    assert!(
        asked.body.contains("#section-trigger"),
        "links to where it is"
    );
    assert!(
        !asked.body.contains("AKIAQ3EGRTXN4WZ7KD2P"),
        "the key is not shown again"
    );
    assert_eq!(
        s.get().await["status"],
        "in_review",
        "nothing published yet"
    );

    let published = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/status",
            Some(&s.admin),
            &[
                ("status", "published"),
                ("version", &v),
                ("confirm", "publish-flagged"),
            ],
        )
        .await;
    assert_eq!(
        published.status,
        StatusCode::SEE_OTHER,
        "{}",
        published.body
    );
    assert_eq!(s.get().await["status"], "published");
}

/// Posts the editor's autosave as the page's script does (the whole form, urlencoded).
async fn autosave(
    s: &Setup,
    who: &TestUser,
    fields: &[(&str, &str)],
) -> crate::common::TestResponse {
    s.app
        .post_form("/incidents/INC-1/postmortem/draft", Some(who), fields)
        .await
}

#[tokio::test]
async fn typed_text_is_kept_as_a_draft_restored_on_return_and_gone_once_saved() {
    let s = setup().await;
    s.start().await;
    let generation = s.app.db.generation();
    let kept = autosave(
        &s,
        &s.admin,
        &[
            ("version", "1"),
            ("only", ""),
            ("section.summary", "Half-written summary about the pool"),
        ],
    )
    .await;
    kept.assert_status(StatusCode::OK);
    assert_eq!(kept.json()["kept"], true, "{}", kept.body);
    assert_eq!(
        s.app.db.generation(),
        generation,
        "an autosave leaves every read cache alone"
    );
    assert_eq!(s.get().await["version"], 1, "a draft is not a save");

    // Coming back (another tab, after a crash): the editor shows the draft and says so.
    let back = s
        .app
        .get("/incidents/INC-1/postmortem/edit", Some(&s.admin))
        .await;
    back.assert_status(StatusCode::OK);
    assert!(back.body.contains("Half-written summary about the pool"));
    assert!(back.body.contains("your unsaved draft"));
    // The saved post-mortem and other people's editors do not show it.
    let other = s.app.user(Role::Responder).await;
    let theirs = s
        .app
        .get("/incidents/INC-1/postmortem/edit", Some(&other))
        .await;
    assert!(!theirs.body.contains("Half-written summary"));
    assert!(!theirs.body.contains("your unsaved draft"));
    let shown = s
        .app
        .get("/incidents/INC-1/postmortem", Some(&s.admin))
        .await;
    assert!(!shown.body.contains("Half-written summary"));

    // Saving keeps the text and ends the draft.
    let saved = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/edit",
            Some(&s.admin),
            &[
                ("version", "1"),
                ("action", "save"),
                ("section.summary", "Half-written summary about the pool"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let pm = s.get().await;
    assert_eq!(pm["version"], 2);
    assert!(
        pm.to_string()
            .contains("Half-written summary about the pool")
    );
    let after = s
        .app
        .get("/incidents/INC-1/postmortem/edit", Some(&s.admin))
        .await;
    assert!(!after.body.contains("your unsaved draft"));

    // An autosave that was still on its way when Save went through is not kept: it would
    // bring back text older than what was just saved.
    let late = autosave(
        &s,
        &s.admin,
        &[("version", "1"), ("section.summary", "older text")],
    )
    .await;
    late.assert_status(StatusCode::OK);
    assert_eq!(late.json()["kept"], false);
    assert_eq!(late.json()["current_version"], 2);
    let edit = s
        .app
        .get("/incidents/INC-1/postmortem/edit", Some(&s.admin))
        .await;
    assert!(!edit.body.contains("older text"));
}

#[tokio::test]
async fn a_draft_can_be_discarded_and_is_refused_where_editing_is() {
    let s = setup().await;
    s.start().await;
    autosave(
        &s,
        &s.admin,
        &[("version", "1"), ("section.summary", "Not what I meant")],
    )
    .await
    .assert_status(StatusCode::OK);
    let discarded = s
        .app
        .post_form(
            "/incidents/INC-1/postmortem/draft/discard",
            Some(&s.admin),
            &[],
        )
        .await;
    assert_eq!(discarded.status, StatusCode::SEE_OTHER);
    let edit = s
        .app
        .get("/incidents/INC-1/postmortem/edit", Some(&s.admin))
        .await;
    assert!(!edit.body.contains("Not what I meant"));

    // A viewer cannot keep drafts; a form without its version is refused with the field named.
    let viewer = s.app.user(Role::Viewer).await;
    autosave(&s, &viewer, &[("version", "1")])
        .await
        .assert_status(StatusCode::FORBIDDEN);
    let bad = autosave(&s, &s.admin, &[("section.summary", "x")]).await;
    bad.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("version"), "{}", bad.body);
    let future = autosave(&s, &s.admin, &[("version", "99"), ("section.summary", "x")]).await;
    future.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_editor_shows_the_incidents_facts_and_timeline_beside_the_form() {
    let s = setup().await;
    s.start().await;
    s.app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/timeline",
            Some(&s.token),
            Some(json!({"kind": "note", "body": "Rolled back build 42"})),
        )
        .await
        .assert_status(StatusCode::CREATED);
    let edit = s
        .app
        .get("/incidents/INC-1/postmortem/edit", Some(&s.admin))
        .await;
    edit.assert_status(StatusCode::OK);
    let aside = edit
        .body
        .split("<aside class=\"pm-edit-aside\"")
        .nth(1)
        .expect("the side panel");
    assert!(aside.contains("Rolled back build 42"));
    assert!(aside.contains("sev2"));
    assert!(
        edit.body
            .contains("data-autosave-url=\"/incidents/INC-1/postmortem/draft\"")
    );
}

#[tokio::test]
async fn a_published_post_mortem_stays_as_published_while_the_incident_moves_on() {
    let s = setup().await;
    s.start().await;
    let created = s
        .app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/action-items",
            Some(&s.token),
            Some(json!({"title": "Add a pool saturation alert", "priority": "p2"})),
        )
        .await;
    created.assert_status(StatusCode::CREATED);
    let item_id = created.json()["id"].as_str().expect("id").to_owned();
    let v = s.get().await["version"].as_i64().expect("version");
    assert_eq!(
        s.put(json!({"version": v, "sections": required_sections(),
            "root_causes": [{"category": "config change", "description": "pool of 2", "primary": true}]}))
            .await,
        StatusCode::OK
    );
    // A colleague reviews: asks for changes first (a comment about the draft), then approves.
    let reviewer = s.app.user(Role::Responder).await;
    s.app
        .post_form(
            "/incidents/INC-1/postmortem/reviewers",
            Some(&s.admin),
            &[("reviewer", &reviewer.email)],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    s.app
        .post_form(
            "/incidents/INC-1/postmortem/review",
            Some(&reviewer),
            &[
                ("decision", "request_changes"),
                ("comment", "Redact the DB password in Detection"),
            ],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    s.app
        .post_form(
            "/incidents/INC-1/postmortem/reviewers",
            Some(&s.admin),
            &[("reviewer", &reviewer.email)],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    s.app
        .post_form(
            "/incidents/INC-1/postmortem/review",
            Some(&reviewer),
            &[("decision", "approve"), ("comment", "")],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let published = s.status("published").await;
    published.assert_status(StatusCode::OK);

    // The incident moves on: a new timeline entry, the item done.
    s.app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/timeline",
            Some(&s.token),
            Some(json!({"kind": "note", "body": "Saturation alert tuned after the review"})),
        )
        .await
        .assert_status(StatusCode::CREATED);
    s.app
        .api(
            Method::PATCH,
            &format!("/api/v1/action-items/{item_id}"),
            Some(&s.token),
            Some(json!({"version": 1, "status": "done"})),
        )
        .await
        .assert_status(StatusCode::OK);

    // The published document and its export are as they were at publishing.
    let page = s
        .app
        .get("/incidents/INC-1/postmortem", Some(&s.admin))
        .await;
    page.assert_status(StatusCode::OK);
    let (document, after) = page.body.split_once("</article>").expect("the document");
    let document = document
        .split("<article class=\"card pm-doc\">")
        .nth(1)
        .expect("the document");
    assert!(document.contains("Add a pool saturation alert"));
    assert!(!document.contains("Saturation alert tuned"), "{document}");
    assert!(
        document.contains("Post-mortem published"),
        "its own entry is in"
    );
    // …and what changed since is listed beside it, apart.
    assert!(after.contains("Since publishing"), "{after}");
    assert!(after.contains("Saturation alert tuned after the review"));
    assert!(after.contains("now done"));
    let markdown = s
        .app
        .api(
            Method::GET,
            "/api/v1/incidents/INC-1/postmortem.md",
            Some(&s.token),
            None,
        )
        .await;
    markdown.assert_status(StatusCode::OK);
    assert!(!markdown.body.contains("Saturation alert tuned"));
    assert!(
        markdown
            .body
            .contains("- [ ] **Add a pool saturation alert** (p2"),
        "the item as published (open): {}",
        markdown.body
    );
    // Review comments are not on the published page, nor the writing checks.
    assert!(!page.body.contains("Redact the DB password"));
    assert!(!page.body.contains("to look at before publishing"));
    let viewer = s.app.user(Role::Viewer).await;
    let read = s
        .app
        .get("/incidents/INC-1/postmortem", Some(&viewer))
        .await;
    assert!(!read.body.contains("Redact the DB password"));
    assert!(!read.body.contains("to look at before publishing"));

    // Reopened, it is live again: publishing anew would take the changes in.
    let v = s.get().await["version"].as_i64().expect("version");
    s.app
        .post_form(
            "/incidents/INC-1/postmortem/status",
            Some(&s.admin),
            &[
                ("status", "draft"),
                ("comment", "Add what happened after"),
                ("version", &v.to_string()),
            ],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let live = s
        .app
        .get("/incidents/INC-1/postmortem", Some(&s.admin))
        .await;
    assert!(
        live.body
            .contains("Saturation alert tuned after the review")
    );
    assert!(!live.body.contains("Since publishing"));
}

#[tokio::test]
async fn comparing_revisions_too_large_to_diff_says_so_instead_of_burning_cpu() {
    let s = setup().await;
    s.start().await;
    // 6,000 one-character lines, every one different between the two saves: Myers' worst case.
    let (a, b) = ("a\n".repeat(6_000), "b\n".repeat(6_000));
    for (version, text) in [(1, &a), (2, &b)] {
        assert_eq!(
            s.put(json!({"version": version, "sections": {"summary": text, "impact": format!("impact v{version}")}}))
                .await,
            StatusCode::OK
        );
    }
    let page = s
        .app
        .get(
            "/incidents/INC-1/postmortem/diff?from=2&to=3",
            Some(&s.admin),
        )
        .await;
    page.assert_status(StatusCode::OK);
    assert!(
        page.body.contains("Too large to compare line by line"),
        "the summary gets the note"
    );
    assert!(
        page.body.contains("/postmortem/revisions/2")
            && page.body.contains("/postmortem/revisions/3"),
        "and links to both versions"
    );
    assert!(
        !page.body.contains("− a"),
        "none of the summary's lines is listed"
    );
    // Small parts of the same pair are still compared line by line.
    assert!(page.body.contains("− impact v1") && page.body.contains("+ impact v2"));
}
