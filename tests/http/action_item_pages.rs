//! Action items in the browser: the incident page section, forms, quick status, the board with
//! its counts, bulk changes and CSV export.

use axum::http::{Method, StatusCode};
use hindsight::auth::{Role, Scope};
use serde_json::json;

use crate::common::{TestApp, TestUser};

async fn setup() -> (TestApp, TestUser, String) {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    let responder = app.user(Role::Responder).await;
    let token = app.token(&responder, Scope::Write).await;
    app.declare(&token, json!({"title": "Checkout down", "severity": "sev1", "service": "checkout", "category": "deploy"})).await;
    (app, responder, token)
}

async fn item_id(app: &TestApp, title: &str) -> String {
    sqlx::query_scalar("SELECT id FROM action_items WHERE title = ?")
        .bind(title)
        .fetch_one(&app.db.reader)
        .await
        .expect("item")
}

#[tokio::test]
async fn items_are_added_from_the_incident_page_and_tracked_there() {
    let (app, responder, _) = setup().await;
    let form = app
        .get("/incidents/INC-1/action-items/new", Some(&responder))
        .await;
    form.assert_status(StatusCode::OK);
    let bad = app
        .post_form(
            "/incidents/INC-1/action-items",
            Some(&responder),
            &[
                ("title", ""),
                ("kind", "prevent"),
                ("priority", "p9"),
                ("due_on", "soon"),
                ("description", "keep me"),
            ],
        )
        .await;
    bad.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("must be one of p1, p2, p3") && bad.body.contains("keep me"));
    for (title, priority) in [("Add canary stage", "p1"), ("Write runbook", "p2")] {
        let created = app
            .post_form(
                "/incidents/INC-1/action-items",
                Some(&responder),
                &[
                    ("title", title),
                    ("kind", "prevent"),
                    ("priority", priority),
                    ("owner", &responder.email),
                    ("due_on", "2020-01-01"),
                ],
            )
            .await;
        created.assert_status(StatusCode::SEE_OTHER);
        assert_eq!(created.location(), "/incidents/INC-1#action-items");
    }
    let page = app.get("/incidents/INC-1", Some(&responder)).await;
    assert!(page.body.contains("0 of 2 done") && page.body.contains("1 p1 still open"));
    assert!(page.body.contains("overdue"));

    let id = item_id(&app, "Write runbook").await;
    app.post_form(
        &format!("/action-items/{id}/status"),
        Some(&responder),
        &[("status", "done"), ("version", "1")],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    let refused = app
        .post_form(
            &format!("/action-items/{id}/status"),
            Some(&responder),
            &[("status", "wont_do"), ("version", "2")],
        )
        .await;
    assert!(
        refused
            .set_cookie("hindsight_flash")
            .is_some_and(|c| c.contains("error")),
        "won't do without a reason is refused"
    );
    let page = app.get("/incidents/INC-1", Some(&responder)).await;
    assert!(page.body.contains("1 of 2 done"));
    assert!(
        page.body
            .contains("href=\"/action-items?owner=me\" title=\"Open action items you own\">1<"),
        "the header counts my open items"
    );

    // Closing the incident with the p1 still open warns, but closes.
    let closed = app
        .post_form(
            "/incidents/INC-1/status",
            Some(&responder),
            &[("status", "closed"), ("version", "1")],
        )
        .await;
    closed.assert_status(StatusCode::SEE_OTHER);
    let flash = closed.set_cookie("hindsight_flash").expect("flash");
    assert!(
        flash.starts_with("hindsight_flash=warn") && flash.contains("Add+canary+stage"),
        "{flash}"
    );
}

#[tokio::test]
async fn editing_a_stale_item_shows_a_conflict_and_keeps_the_typed_text() {
    let (app, responder, token) = setup().await;
    let created = app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/action-items",
            Some(&token),
            Some(json!({"title": "Tune pool size"})),
        )
        .await
        .json();
    let id = created["id"].as_str().expect("id").to_owned();
    app.api(
        Method::PATCH,
        &format!("/api/v1/action-items/{id}"),
        Some(&token),
        Some(json!({"version": 1, "priority": "p1"})),
    )
    .await
    .assert_status(StatusCode::OK);
    let stale = app
        .post_form(
            &format!("/action-items/{id}/edit"),
            Some(&responder),
            &[
                ("version", "1"),
                ("title", "Tune pool size and alert"),
                ("kind", "prevent"),
                ("priority", "p3"),
                ("status", "open"),
            ],
        )
        .await;
    stale.assert_status(StatusCode::CONFLICT);
    assert!(
        stale
            .body
            .contains("Someone else saved this action item first")
    );
    assert!(stale.body.contains("value=\"Tune pool size and alert\""));
    assert!(stale.body.contains("name=\"version\" value=\"2\""));
}

#[tokio::test]
async fn the_board_counts_filters_bulk_changes_and_exports_exactly() {
    let (app, responder, token) = setup().await;
    let other = app.user(Role::Responder).await;
    for (title, owner, due, priority) in [
        (
            "Alpha",
            Some(responder.email.as_str()),
            Some("2020-01-01"),
            "p1",
        ),
        ("Bravo", None, Some("2099-01-01"), "p2"),
        ("Charlie", Some(other.email.as_str()), None, "p3"),
        ("Delta, \"quoted\"", None, Some("2020-02-02"), "p2"),
    ] {
        app.api(
            Method::POST,
            "/api/v1/incidents/INC-1/action-items",
            Some(&token),
            Some(json!({"title": title, "owner": owner, "due_on": due, "priority": priority})),
        )
        .await
        .assert_status(StatusCode::CREATED);
    }
    let board = app.get("/action-items", Some(&responder)).await;
    board.assert_status(StatusCode::OK);
    for text in [
        "Open <span class=\"count-badge\">4</span>",
        "Mine <span class=\"count-badge\">1</span>",
        "Overdue <span class=\"count-badge\">2</span>",
        "No owner <span class=\"count-badge\">2</span>",
        "4 action items",
    ] {
        assert!(board.body.contains(text), "board shows {text}");
    }
    let overdue = app.get("/action-items?due=overdue", Some(&responder)).await;
    assert!(
        overdue.body.contains("2 action items")
            && overdue.body.contains("Alpha")
            && !overdue.body.contains("Bravo")
    );
    let bad = app.get("/action-items?priority=p7", Some(&responder)).await;
    bad.assert_status(StatusCode::UNPROCESSABLE_ENTITY);

    // Bulk: give both unowned items to the other responder.
    let bravo = item_id(&app, "Bravo").await;
    let delta = item_id(&app, "Delta, \"quoted\"").await;
    let response = app
        .post_form(
            "/action-items/bulk",
            Some(&responder),
            &[
                ("ids", &bravo),
                ("ids", &delta),
                ("owner", &other.email),
                ("status", ""),
                ("back", "owner=none"),
            ],
        )
        .await;
    response.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(response.location(), "/action-items?owner=none");
    let unowned = app.get("/action-items?owner=none", Some(&responder)).await;
    assert!(unowned.body.contains("0 action items"));

    // CSV of the current filter.
    let csv = app
        .get(
            &format!(
                "/action-items.csv?owner={}",
                other.email.replace('@', "%40")
            ),
            Some(&responder),
        )
        .await;
    csv.assert_status(StatusCode::OK);
    assert!(csv.header("content-type").starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 4, "header + 3 items: {}", csv.body);
    assert!(lines[0].starts_with("incident,title,status,priority"));
    assert!(csv.body.contains("\"Delta, \"\"quoted\"\"\""));
    assert!(!csv.body.contains("Alpha"));

    let viewer = app.user(Role::Viewer).await;
    app.get("/action-items", Some(&viewer))
        .await
        .assert_status(StatusCode::OK);
    app.post_form(
        "/action-items/bulk",
        Some(&viewer),
        &[("ids", &bravo), ("status", "done")],
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    app.post_form(
        &format!("/action-items/{bravo}/status"),
        Some(&viewer),
        &[("status", "done"), ("version", "2")],
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_progress_page_shows_completion_per_team_and_week() {
    let (app, responder, token) = setup().await;
    for (title, team) in [
        ("One", "Storefront"),
        ("Two", "Storefront"),
        ("Three", "Payments"),
    ] {
        app.api(
            Method::POST,
            "/api/v1/incidents/INC-1/action-items",
            Some(&token),
            Some(json!({"title": title, "team": team, "due_on": "2020-01-01"})),
        )
        .await
        .assert_status(StatusCode::CREATED);
    }
    let one = item_id(&app, "One").await;
    app.api(
        Method::PATCH,
        &format!("/api/v1/action-items/{one}"),
        Some(&token),
        Some(json!({"version": 1, "status": "done"})),
    )
    .await
    .assert_status(StatusCode::OK);
    let page = app.get("/action-items/progress", Some(&responder)).await;
    page.assert_status(StatusCode::OK);
    assert!(page.body.contains("1 (50%)"), "Storefront: one of two done");
    assert!(page.body.contains("0 (0%)"), "Payments: none done");
    assert!(page.body.contains("class=\"opened\""), "weekly chart");
    // This week: three opened, one closed.
    assert!(page.body.contains("<th scope=\"row\">Opened</th>"));
}

#[tokio::test]
async fn statuses_read_as_words_on_the_board_and_the_incident_page() {
    let (app, responder, token) = setup().await;
    for (title, status, reason) in [
        ("Add a canary stage", "in_progress", None),
        (
            "Rewrite the deploy tool",
            "wont_do",
            Some("replaced by the canary"),
        ),
    ] {
        let mut body = json!({"title": title, "status": status});
        if let Some(r) = reason {
            body["wont_do_reason"] = json!(r);
        }
        app.api(
            Method::POST,
            "/api/v1/incidents/INC-1/action-items",
            Some(&token),
            Some(body),
        )
        .await
        .assert_status(StatusCode::CREATED);
    }
    for path in ["/action-items?status=all", "/incidents/INC-1"] {
        let page = app.get(path, Some(&responder)).await;
        page.assert_status(StatusCode::OK);
        assert!(
            page.body.contains(">in progress<"),
            "{path} says in progress"
        );
        assert!(
            page.body.contains(">won&#39;t do<") || page.body.contains(">won't do<"),
            "{path} says won't do"
        );
        // The stored names stay in values and class names only, never as the text people read.
        assert!(!page.body.contains(">in_progress<"), "{path}");
        assert!(!page.body.contains(">wont_do<"), "{path}");
    }
}
