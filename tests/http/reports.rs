//! The weekly review (HTML, Markdown, CSV, JSON) on a hand-built week whose figures were
//! worked out by hand, recurrence on the incident page, list and API, and the dashboard.

use axum::http::{Method, StatusCode};
use hindsight::auth::{Role, Scope};
use serde_json::json;

use crate::common::{TestApp, TestUser};

/// Inserts an incident with exactly these milestones (UTC), bypassing the lifecycle stamps.
#[allow(clippy::too_many_arguments)]
async fn incident(
    app: &TestApp,
    number: i64,
    title: &str,
    severity: &str,
    service: &str,
    category: &str,
    status: &str,
    started: &str,
    milestones: [Option<&str>; 4],
    exclude: bool,
) {
    let team: String = sqlx::query_scalar("SELECT team FROM services WHERE name = ?")
        .bind(service)
        .fetch_one(&app.db.reader)
        .await
        .expect("service");
    let [detected, acknowledged, mitigated, resolved] = milestones;
    let mut tx = app.db.begin_write().await.expect("tx");
    sqlx::query(
        "INSERT INTO incidents (id, number, title, severity, status, service, category, team,
            started_at, detected_at, acknowledged_at, mitigated_at, resolved_at,
            exclude_from_metrics, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(format!("00000000-0000-7000-8000-{number:012}"))
    .bind(number)
    .bind(title)
    .bind(severity)
    .bind(status)
    .bind(service)
    .bind(category)
    .bind(team)
    .bind(started)
    .bind(detected)
    .bind(acknowledged)
    .bind(mitigated)
    .bind(resolved)
    .bind(exclude)
    .bind(started)
    .bind(started)
    .execute(&mut *tx)
    .await
    .expect("insert incident");
    tx.commit().await.expect("commit");
}

#[allow(clippy::too_many_arguments)]
async fn item(
    app: &TestApp,
    number: i64,
    title: &str,
    status: &str,
    created: &str,
    completed: Option<&str>,
    due: &str,
    team: &str,
) {
    let mut tx = app.db.begin_write().await.expect("tx");
    sqlx::query(
        "INSERT INTO action_items (id, incident_id, title, team, kind, priority, status,
            due_on, completed_at, created_at, updated_at)
         VALUES (?, (SELECT id FROM incidents WHERE number = ?), ?, ?, 'prevent', 'p1', ?, ?, ?, ?, ?)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(number)
    .bind(title)
    .bind(team)
    .bind(status)
    .bind(due)
    .bind(completed)
    .bind(created)
    .bind(created)
    .execute(&mut *tx)
    .await
    .expect("insert item");
    tx.commit().await.expect("commit");
}

async fn firing(
    app: &TestApp,
    name: &str,
    service: &str,
    tier: &str,
    at: &str,
    incident: Option<i64>,
) {
    let mut tx = app.db.begin_write().await.expect("tx");
    sqlx::query(
        "INSERT INTO alert_events (id, name, service, tier, started_at, incident_id)
         VALUES (?, ?, ?, ?, ?, (SELECT id FROM incidents WHERE number = ?))",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(name)
    .bind(service)
    .bind(tier)
    .bind(at)
    .bind(incident)
    .execute(&mut *tx)
    .await
    .expect("insert firing");
    tx.commit().await.expect("commit");
}

/// Week 2026-W47 is Monday 2026-11-16 to Sunday 2026-11-22 (UTC).
///
/// This week: INC-1 sev1 deploy (detect 5m, ack 2m, mitigate 30m, resolve 1h), INC-2 sev2
/// capacity (detect 10m, ack 1m, resolve 3h), INC-3 sev3 deploy (detect 1m, still open, a
/// formula for a title), INC-4 sev4 capacity excluded from metrics. Earlier: INC-5 (W46,
/// detect 20m, ack 10m, resolve 2h) and INC-6 (W43, detect 2m, resolve 30m), both deploy.
/// Later: INC-7 (W48).
async fn week_fixture() -> (TestApp, TestUser, String) {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    app.service("search", "Discovery").await;
    let lead = app.user(Role::Viewer).await;
    let token = app.token(&lead, Scope::Read).await;
    incident(
        &app,
        1,
        "Checkout 502 after deploy",
        "sev1",
        "checkout",
        "deploy",
        "resolved",
        "2026-11-17T10:00:00.000Z",
        [
            Some("2026-11-17T10:05:00.000Z"),
            Some("2026-11-17T10:07:00.000Z"),
            Some("2026-11-17T10:30:00.000Z"),
            Some("2026-11-17T11:00:00.000Z"),
        ],
        false,
    )
    .await;
    incident(
        &app,
        2,
        "Search slow",
        "sev2",
        "search",
        "capacity",
        "resolved",
        "2026-11-18T09:00:00.000Z",
        [
            Some("2026-11-18T09:10:00.000Z"),
            Some("2026-11-18T09:11:00.000Z"),
            None,
            Some("2026-11-18T12:00:00.000Z"),
        ],
        false,
    )
    .await;
    incident(
        &app,
        3,
        "=HYPERLINK(\"http://evil\") login, flaky",
        "sev3",
        "checkout",
        "deploy",
        "investigating",
        "2026-11-20T08:00:00.000Z",
        [Some("2026-11-20T08:01:00.000Z"), None, None, None],
        false,
    )
    .await;
    incident(
        &app,
        4,
        "Load test noise",
        "sev4",
        "search",
        "capacity",
        "resolved",
        "2026-11-21T12:00:00.000Z",
        [
            Some("2026-11-21T12:00:00.000Z"),
            Some("2026-11-21T12:00:00.000Z"),
            None,
            Some("2026-11-22T12:00:00.000Z"),
        ],
        true,
    )
    .await;
    incident(
        &app,
        5,
        "Checkout deploy broke carts",
        "sev2",
        "checkout",
        "deploy",
        "closed",
        "2026-11-03T10:00:00.000Z",
        [
            Some("2026-11-03T10:20:00.000Z"),
            Some("2026-11-03T10:30:00.000Z"),
            None,
            Some("2026-11-03T12:00:00.000Z"),
        ],
        false,
    )
    .await;
    incident(
        &app,
        6,
        "Deploy froze checkout",
        "sev3",
        "checkout",
        "deploy",
        "closed",
        "2026-10-20T00:00:00.000Z",
        [
            Some("2026-10-20T00:02:00.000Z"),
            None,
            None,
            Some("2026-10-20T00:30:00.000Z"),
        ],
        false,
    )
    .await;
    incident(
        &app,
        7,
        "Next week",
        "sev2",
        "checkout",
        "deploy",
        "investigating",
        "2026-11-23T00:00:00.000Z",
        [None, None, None, None],
        false,
    )
    .await;
    // Open, due in the week: overdue at its end, and due but not closed.
    item(
        &app,
        5,
        "Add a canary stage",
        "open",
        "2026-11-04T00:00:00.000Z",
        None,
        "2026-11-20",
        "Storefront",
    )
    .await;
    // Opened and closed this week, due this week.
    item(
        &app,
        1,
        "Roll back automatically",
        "done",
        "2026-11-17T12:00:00.000Z",
        Some("2026-11-19T12:00:00.000Z"),
        "2026-11-21",
        "Storefront",
    )
    .await;
    // Closed only after the week, due before it: overdue at the week's end.
    item(
        &app,
        6,
        "Write the runbook",
        "done",
        "2026-10-21T00:00:00.000Z",
        Some("2026-11-25T00:00:00.000Z"),
        "2026-11-10",
        "Storefront",
    )
    .await;
    firing(
        &app,
        "checkout p99",
        "checkout",
        "page",
        "2026-11-17T09:58:00.000Z",
        Some(1),
    )
    .await;
    firing(
        &app,
        "checkout p99",
        "checkout",
        "page",
        "2026-11-19T01:00:00.000Z",
        None,
    )
    .await;
    firing(
        &app,
        "checkout p99",
        "checkout",
        "page",
        "2026-11-21T01:00:00.000Z",
        None,
    )
    .await;
    firing(
        &app,
        "search errors",
        "search",
        "ticket",
        "2026-11-18T08:55:00.000Z",
        None,
    )
    .await;
    firing(
        &app,
        "search errors",
        "search",
        "ticket",
        "2026-11-24T08:55:00.000Z",
        None,
    )
    .await;
    (app, lead, token)
}

#[tokio::test]
async fn the_weekly_json_has_the_hand_computed_figures() {
    let (app, _, token) = week_fixture().await;
    let response = app
        .api(
            Method::GET,
            "/api/v1/reports/weekly?week=2026-W47",
            Some(&token),
            None,
        )
        .await;
    response.assert_status(StatusCode::OK);
    let r = response.json();
    assert_eq!(r["week"], "2026-W47");
    assert_eq!(
        (r["starts_on"].as_str(), r["ends_on"].as_str()),
        (Some("2026-11-16"), Some("2026-11-22"))
    );
    let numbers: Vec<&str> = r["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .filter_map(|i| i["number"].as_str())
        .collect();
    assert_eq!(
        numbers,
        ["INC-1", "INC-2", "INC-3", "INC-4"],
        "most severe first, this week only"
    );
    assert_eq!(r["incidents"][0]["duration_secs"], 3600);
    assert_eq!(
        r["incidents"][2]["duration_secs"],
        json!(null),
        "still open"
    );
    assert_eq!(
        r["mttx"],
        json!([
            {"measure": "detect",
             "this_week": {"n": 3, "median_secs": 300, "p90_secs": 600},
             "previous_4_weeks": {"n": 2, "median_secs": 120, "p90_secs": 1200}},
            {"measure": "acknowledge",
             "this_week": {"n": 2, "median_secs": 60, "p90_secs": 120},
             "previous_4_weeks": {"n": 1, "median_secs": 600, "p90_secs": 600}},
            {"measure": "mitigate",
             "this_week": {"n": 1, "median_secs": 1800, "p90_secs": 1800},
             "previous_4_weeks": {"n": 0, "median_secs": null, "p90_secs": null}},
            {"measure": "resolve",
             "this_week": {"n": 2, "median_secs": 3600, "p90_secs": 10800},
             "previous_4_weeks": {"n": 2, "median_secs": 1800, "p90_secs": 7200}},
        ])
    );
    assert_eq!(
        r["action_items"],
        json!({"opened": 1, "closed": 1, "overdue": 2, "due": 2, "due_closed": 1,
               "completion_rate": 0.5})
    );
    let recurring = r["recurring"].as_array().expect("recurring");
    assert_eq!(recurring.len(), 1, "only deploy recurs: {recurring:#?}");
    assert_eq!(recurring[0]["category"], "deploy");
    assert_eq!(recurring[0]["service"], json!(null));
    // In the 90 days up to the week's end: INC-1, 3, 5, 6; in the last 30: INC-1, 3, 5.
    assert_eq!(
        (
            recurring[0]["count"].as_u64(),
            recurring[0]["count_30"].as_u64()
        ),
        (Some(4), Some(3))
    );
    let members: Vec<&str> = recurring[0]["incidents"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|i| i["number"].as_str())
        .collect();
    assert_eq!(members, ["INC-3", "INC-1", "INC-5", "INC-6"]);
    let open: Vec<&str> = recurring[0]["open_action_items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["title"].as_str())
        .collect();
    assert_eq!(open, ["Add a canary stage"]);
    assert_eq!(
        r["alerts"],
        json!([
            {"name": "checkout p99", "service": "checkout", "tier": "page", "firings": 3, "with_incident": 1},
            {"name": "search errors", "service": "search", "tier": "ticket", "firings": 1, "with_incident": 0},
        ])
    );
    let weeks = r["weeks"].as_array().expect("weeks");
    assert_eq!(weeks.len(), 12);
    assert_eq!(
        weeks[11],
        json!({"week": "2026-W47", "incidents": 4, "mttr_median_secs": 3600})
    );
    assert_eq!(
        weeks[10],
        json!({"week": "2026-W46", "incidents": 0, "mttr_median_secs": null})
    );
    assert_eq!(
        weeks[9],
        json!({"week": "2026-W45", "incidents": 1, "mttr_median_secs": 7200})
    );
}

#[tokio::test]
async fn the_team_filter_keeps_that_teams_incidents_and_items() {
    let (app, _, token) = week_fixture().await;
    let r = app
        .api(
            Method::GET,
            "/api/v1/reports/weekly?week=2026-W47&team=Discovery",
            Some(&token),
            None,
        )
        .await
        .json();
    let numbers: Vec<&str> = r["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .filter_map(|i| i["number"].as_str())
        .collect();
    assert_eq!(numbers, ["INC-2", "INC-4"]);
    assert_eq!(r["action_items"]["opened"], 0);
    assert_eq!(r["alerts"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn the_weekly_csv_has_one_row_per_incident_with_formulas_defused() {
    let (app, lead, token) = week_fixture().await;
    let expected = "week,incident,title,severity,status,service,category,team,started_at,detected_at,acknowledged_at,mitigated_at,resolved_at,duration_secs,excluded_from_metrics,detect_secs,acknowledge_secs,mitigate_secs,resolve_secs
2026-W47,INC-1,Checkout 502 after deploy,sev1,resolved,checkout,deploy,Storefront,2026-11-17T10:00:00.000Z,2026-11-17T10:05:00.000Z,2026-11-17T10:07:00.000Z,2026-11-17T10:30:00.000Z,2026-11-17T11:00:00.000Z,3600,false,300,120,1800,3600
2026-W47,INC-2,Search slow,sev2,resolved,search,capacity,Discovery,2026-11-18T09:00:00.000Z,2026-11-18T09:10:00.000Z,2026-11-18T09:11:00.000Z,,2026-11-18T12:00:00.000Z,10800,false,600,60,,10800
2026-W47,INC-3,\"'=HYPERLINK(\"\"http://evil\"\") login, flaky\",sev3,investigating,checkout,deploy,Storefront,2026-11-20T08:00:00.000Z,2026-11-20T08:01:00.000Z,,,,,false,60,,,
2026-W47,INC-4,Load test noise,sev4,resolved,search,capacity,Discovery,2026-11-21T12:00:00.000Z,2026-11-21T12:00:00.000Z,2026-11-21T12:00:00.000Z,,2026-11-22T12:00:00.000Z,86400,true,0,0,,86400
";
    let page = app
        .get("/reports/weekly.csv?week=2026-W47", Some(&lead))
        .await;
    page.assert_status(StatusCode::OK);
    assert!(page.header("content-type").starts_with("text/csv"));
    assert!(
        page.header("content-disposition")
            .contains("weekly-review-2026-W47.csv")
    );
    assert_eq!(page.body, expected);
    let api = app
        .api(
            Method::GET,
            "/api/v1/reports/weekly.csv?week=2026-W47",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(api.body, expected);
}

#[tokio::test]
async fn the_weekly_markdown_reads_like_meeting_notes() {
    let (app, lead, token) = week_fixture().await;
    let expected = r#"# Weekly review 2026-W47 (2026-11-16 – 2026-11-22)

## Incidents (4)

### sev1 (1)

| Incident | Title | Status | Service | Category | Started | Duration |
|---|---|---|---|---|---|---|
| [INC-1](http://hindsight.test/incidents/INC-1) | Checkout 502 after deploy | resolved | checkout | deploy | 2026-11-17 10:00 | 1h 00m |

### sev2 (1)

| Incident | Title | Status | Service | Category | Started | Duration |
|---|---|---|---|---|---|---|
| [INC-2](http://hindsight.test/incidents/INC-2) | Search slow | resolved | search | capacity | 2026-11-18 09:00 | 3h 00m |

### sev3 (1)

| Incident | Title | Status | Service | Category | Started | Duration |
|---|---|---|---|---|---|---|
| [INC-3](http://hindsight.test/incidents/INC-3) | =HYPERLINK\("http://evil"\) login, flaky | investigating | checkout | deploy | 2026-11-20 08:00 | ongoing |

### sev4 (1)

| Incident | Title | Status | Service | Category | Started | Duration |
|---|---|---|---|---|---|---|
| [INC-4](http://hindsight.test/incidents/INC-4) | Load test noise | resolved | search | capacity | 2026-11-21 12:00 | 1d 0h |

## Time to detect, acknowledge, mitigate, resolve

| | Median | p90 | n | Previous 4 weeks: median | p90 | n |
|---|---|---|---|---|---|---|
| Time to detect | 5m | 10m | 3 | 2m | 20m | 2 |
| Time to acknowledge | 1m | 2m | 2 | 10m | 10m | 1 |
| Time to mitigate | 30m | 30m | 1 | — | — | 0 |
| Time to resolve | 1h 00m | 3h 00m | 2 | 30m | 2h 00m | 2 |

1 incident(s) excluded from metrics are left out.

## Action items

- Opened: 1
- Closed: 1
- Overdue at the end of the week: 2
- Due this week and closed by its end: 1 of 2 (50%)

## Recurring (more than 2 incidents in 90 days)

### deploy — 3 in the last 30 days, 4 in 90 days

- [INC-3](http://hindsight.test/incidents/INC-3) =HYPERLINK\("http://evil"\) login, flaky (2026-11-20 08:00)
- [INC-1](http://hindsight.test/incidents/INC-1) Checkout 502 after deploy (2026-11-17 10:00)
- [INC-5](http://hindsight.test/incidents/INC-5) Checkout deploy broke carts (2026-11-03 10:00)
- [INC-6](http://hindsight.test/incidents/INC-6) Deploy froze checkout (2026-10-20 00:00)

Still open from earlier:

- [ ] INC-5: Add a canary stage (p1, no owner, due 2026-11-20)

## Alert noise

| Alert | Service | Tier | Firings | With an incident |
|---|---|---|---|---|
| checkout p99 | checkout | page | 3 | 1 |
| search errors | search | ticket | 1 | 0 |
"#;
    let page = app
        .get("/reports/weekly.md?week=2026-W47", Some(&lead))
        .await;
    page.assert_status(StatusCode::OK);
    assert!(page.header("content-type").starts_with("text/markdown"));
    assert_eq!(page.body, expected);
    let api = app
        .api(
            Method::GET,
            "/api/v1/reports/weekly.md?week=2026-W47",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(api.body, expected);
}

#[tokio::test]
async fn the_weekly_page_shows_the_week_grouped_with_navigation() {
    let (app, lead, _) = week_fixture().await;
    let page = app.get("/reports/weekly?week=2026-W47", Some(&lead)).await;
    page.assert_status(StatusCode::OK);
    let html = &page.body;
    for needle in [
        "Weekly review 2026-W47",
        "2026-11-16 – 2026-11-22",
        "href=\"/reports/weekly?week=2026-W46\"",
        "href=\"/reports/weekly?week=2026-W48\"",
        "href=\"/reports/weekly.md?week=2026-W47\"",
        "href=\"/reports/weekly.csv?week=2026-W47\"",
        "<span class=\"key\">INC-1</span> Checkout 502 after deploy",
        "=HYPERLINK(&#34;http://evil&#34;) login, flaky",
        "excluded",
        "Add a canary stage",
        "checkout p99",
        "<svg class=\"chart\"",
        "4 in 90 days",
    ] {
        assert!(html.contains(needle), "the page shows {needle:?}");
    }
    assert!(!html.contains("Next week"), "INC-7 belongs to W48");
    // Severity groups in order, each with its own table.
    let positions: Vec<usize> = [
        "sev-sev1\">sev1</span> 1",
        "sev-sev2\">sev2</span> 1",
        "sev-sev3\">sev3</span> 1",
        "sev-sev4\">sev4</span> 1",
    ]
    .iter()
    .map(|n| html.find(n).unwrap_or_else(|| panic!("group {n}")))
    .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "sev1 first");
    // The recurring category links to its incidents on the list.
    assert!(
        html.contains(
            "href=\"/incidents?category=deploy&#38;since=2026-08-25&#38;until=2026-11-22\""
        ),
        "{html}"
    );
    let list = app
        .get(
            "/incidents?category=deploy&since=2026-08-25&until=2026-11-22",
            Some(&lead),
        )
        .await;
    for n in ["INC-1<", "INC-3<", "INC-5<", "INC-6<"] {
        assert!(list.body.contains(n), "the list shows {n}");
    }
    assert!(!list.body.contains("INC-7<"));
}

#[tokio::test]
async fn a_recurring_group_lists_its_most_pressing_open_items_and_counts_the_rest() {
    let (app, lead, _) = week_fixture().await;
    // Ten more open items on an earlier deploy incident, none due for months, next to the
    // overdue "Add a canary stage".
    for n in 1..=10 {
        item(
            &app,
            6,
            &format!("Later step {n:02}"),
            "open",
            "2026-10-21T00:00:00.000Z",
            None,
            &format!("2099-01-{n:02}"),
            "Storefront",
        )
        .await;
    }
    let page = app.get("/reports/weekly?week=2026-W47", Some(&lead)).await;
    page.assert_status(StatusCode::OK);
    let html = &page.body;
    let list_start = html.find("Still open from earlier").expect("open items");
    let list = &html[list_start..];
    let list = &list[..list.find("</ul>").expect("list end")];
    assert!(list.contains("11, the most pressing first"), "{list}");
    let canary = list
        .find("Add a canary stage")
        .expect("the overdue item is listed");
    let first_later = list.find("Later step").expect("later steps are listed");
    assert!(canary < first_later, "overdue first: {list}");
    assert_eq!(
        list.matches("Later step").count(),
        7,
        "eight in all: {list}"
    );
    assert!(list.contains("Later step 07") && !list.contains("Later step 08"));
    assert!(
        list.contains("… and 3 more open: <a href=\"/reports/weekly.md?week=2026-W47\">"),
        "{list}"
    );
    let markdown = app
        .get("/reports/weekly.md?week=2026-W47", Some(&lead))
        .await;
    markdown.assert_status(StatusCode::OK);
    for n in 1..=10 {
        assert!(markdown.body.contains(&format!("Later step {n:02}")));
    }
}

#[tokio::test]
async fn a_bad_week_is_a_422_naming_the_field_never_a_500() {
    let (app, lead, token) = week_fixture().await;
    for week in [
        "2027-W53",
        "soon",
        "2026-W00",
        "'; DROP TABLE incidents",
        "2026-W5%00",
    ] {
        let path = format!(
            "/reports/weekly?week={}",
            week.replace(' ', "%20")
                .replace(';', "%3B")
                .replace('\'', "%27")
        );
        let page = app.get(&path, Some(&lead)).await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{week}: {}",
            page.body
        );
        assert!(page.body.contains("week"), "{week}");
        let api = app
            .api(Method::GET, &format!("/api/v1{path}"), Some(&token), None)
            .await;
        assert_eq!(api.status, StatusCode::UNPROCESSABLE_ENTITY, "{week}");
        assert!(api.json()["error"]["fields"]["week"].is_string(), "{week}");
    }
    let page = app.get("/reports/weekly?week=2027-W53", Some(&lead)).await;
    assert!(page.body.contains("2027 has no ISO week 53"));
}

#[tokio::test]
async fn the_default_week_is_the_last_complete_one() {
    let app = TestApp::spawn().await;
    let lead = app.user(Role::Viewer).await;
    let page = app.get("/reports/weekly", Some(&lead)).await;
    page.assert_status(StatusCode::OK);
    let today = chrono::Utc::now().date_naive();
    let expected = hindsight::reports::IsoWeek::last_complete(today).label();
    assert!(page.body.contains(&format!("Weekly review {expected}")));
    assert!(page.body.contains("No incidents started this week."));
}

async fn declare_form(app: &TestApp, who: &TestUser, title: &str, service: &str, category: &str) {
    let response = app
        .post_form(
            "/incidents",
            Some(who),
            &[
                ("title", title),
                ("severity", "sev2"),
                ("service", service),
                ("category", category),
            ],
        )
        .await;
    response.assert_status(StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_third_incident_in_a_category_gets_the_banner_the_first_does_not() {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    app.service("search", "Discovery").await;
    let rita = app.user(Role::Responder).await;
    let token = app.token(&rita, Scope::Write).await;
    declare_form(&app, &rita, "Deploy broke checkout", "checkout", "deploy").await;
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/action-items",
        Some(&token),
        Some(json!({"title": "Add a canary stage", "priority": "p1"})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    declare_form(&app, &rita, "Deploy broke search", "search", "deploy").await;
    // A different category in between does not count.
    declare_form(&app, &rita, "Disk full", "search", "capacity").await;
    declare_form(
        &app,
        &rita,
        "Deploy broke checkout again",
        "checkout",
        "deploy",
    )
    .await;

    let first = app.get("/incidents/INC-1", Some(&rita)).await;
    assert!(!first.body.contains("This has happened before"));
    let second = app.get("/incidents/INC-2", Some(&rita)).await;
    assert!(
        !second.body.contains("This has happened before"),
        "one earlier is not enough"
    );
    let fourth = app.get("/incidents/INC-4", Some(&rita)).await;
    let html = &fourth.body;
    assert!(html.contains("This has happened before"), "{html}");
    assert!(
        html.contains("recurrence-banner prominent"),
        "just declared: shown prominently"
    );
    assert!(html.contains("2 earlier incidents in the 90 days"));
    assert!(html.contains("href=\"/incidents/INC-1\""));
    assert!(html.contains("href=\"/incidents/INC-2\""));
    assert!(
        !html.contains("href=\"/incidents/INC-3\""),
        "capacity is another kind"
    );
    assert!(html.contains("still open:"));
    assert!(html.contains("Add a canary stage"));

    // The list marks it and filters to it.
    let list = app.get("/incidents?recurring=1", Some(&rita)).await;
    list.assert_status(StatusCode::OK);
    assert!(list.body.contains("INC-4</span>"));
    for n in ["INC-1</span>", "INC-2</span>", "INC-3</span>"] {
        assert!(!list.body.contains(n), "{n} does not recur");
    }
    assert!(list.body.contains("1 incident"));
    let all = app.get("/incidents", Some(&rita)).await;
    assert_eq!(all.body.matches("recurring-badge").count(), 1);

    // The API says the same.
    let api = app
        .api(Method::GET, "/api/v1/incidents/INC-4", Some(&token), None)
        .await
        .json();
    assert_eq!(api["recurrence"]["recurring"], true);
    assert_eq!(api["recurrence"]["window_days"], 90);
    assert_eq!(api["recurrence"]["min_others"], 2);
    let related: Vec<&str> = api["recurrence"]["related"]
        .as_array()
        .expect("related")
        .iter()
        .filter_map(|r| r["number"].as_str())
        .collect();
    assert_eq!(related, ["INC-2", "INC-1"]);
    assert_eq!(
        api["recurrence"]["related"][1]["open_action_items"][0]["title"],
        "Add a canary stage"
    );
    let one = app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&token), None)
        .await
        .json();
    assert_eq!(one["recurrence"]["recurring"], false);
    assert_eq!(one["recurrence"]["related"], json!([]));
    let listed = app
        .api(
            Method::GET,
            "/api/v1/incidents?recurring=1",
            Some(&token),
            None,
        )
        .await
        .json();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["recurring"], true);
}

#[tokio::test]
async fn recurrence_follows_the_configured_threshold() {
    let app = TestApp::spawn_with(&[("HINDSIGHT_RECURRENCE_MIN_OTHERS", "1")]).await;
    app.service("checkout", "Storefront").await;
    let rita = app.user(Role::Responder).await;
    declare_form(&app, &rita, "First", "checkout", "deploy").await;
    declare_form(&app, &rita, "Second", "checkout", "deploy").await;
    let second = app.get("/incidents/INC-2", Some(&rita)).await;
    assert!(second.body.contains("This has happened before"));
    assert!(second.body.contains("1 earlier incident in the 90 days"));
}

#[tokio::test]
async fn unknown_category_incidents_never_recur_by_category() {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    let rita = app.user(Role::Responder).await;
    for title in ["One", "Two", "Three"] {
        declare_form(&app, &rita, title, "checkout", "unknown").await;
    }
    let third = app.get("/incidents/INC-3", Some(&rita)).await;
    assert!(!third.body.contains("This has happened before"));
}

#[tokio::test]
async fn the_dashboard_shows_open_incidents_my_items_and_reviews() {
    let (app, _, _) = week_fixture().await;
    let rita = app.user(Role::Responder).await;
    let token = app.token(&rita, Scope::Write).await;
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-3/action-items",
        Some(&token),
        Some(json!({"title": "Fix the login retry", "owner": rita.email})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    // A post-mortem of INC-1 in review, with Rita asked to review it.
    let mut tx = app.db.begin_write().await.expect("tx");
    sqlx::query(
        "INSERT INTO postmortems (id, incident_id, status, template_name, created_at, updated_at)
         VALUES ('pm-1', (SELECT id FROM incidents WHERE number = 1), 'in_review', 'Standard',
                 '2026-11-18T00:00:00Z', '2026-11-18T00:00:00Z')",
    )
    .execute(&mut *tx)
    .await
    .expect("postmortem");
    sqlx::query(
        "INSERT INTO postmortem_reviewers (postmortem_id, user_id, state, requested_at)
         VALUES ('pm-1', ?, 'requested', '2026-11-18T00:00:00Z')",
    )
    .bind(&rita.id)
    .execute(&mut *tx)
    .await
    .expect("reviewer");
    tx.commit().await.expect("commit");

    let home = app.get("/", Some(&rita)).await;
    home.assert_status(StatusCode::OK);
    let html = &home.body;
    // Open: INC-3 (sev3) and INC-7 (sev2).
    assert!(
        html.contains("Open incidents <span class=\"muted\">2</span>"),
        "{html}"
    );
    assert!(html.contains("Fix the login retry"));
    assert!(html.contains(
        "INC-1 Checkout 502 after deploy</a> <span class=\"badge ok-badge\">your review</span>"
    ));
    assert!(html.contains("Open the weekly review"));
    let anonymous = app.get("/", None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
}

/// More post-mortems in review than the home page lists: the one the viewer was asked about
/// comes first even though it changed last, then the oldest others, twenty in all.
#[tokio::test]
async fn the_dashboard_shows_a_change_on_the_next_view_after_it_was_read() {
    let (app, _, _) = week_fixture().await;
    let rita = app.user(Role::Responder).await;
    let token = app.token(&rita, Scope::Write).await;
    let before = app.get("/", Some(&rita)).await;
    assert!(before.body.contains("Nothing open is yours."));
    assert!(
        before
            .body
            .contains("Open incidents <span class=\"muted\">2</span>")
    );
    // The same view again is the same page, then a new item and a new incident show at once.
    assert_eq!(app.get("/", Some(&rita)).await.body, before.body);
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-3/action-items",
        Some(&token),
        Some(json!({"title": "Page the database team sooner", "owner": rita.email})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    app.api(
        Method::POST,
        "/api/v1/incidents",
        Some(&token),
        Some(json!({"title": "Search is slow", "severity": "sev2", "service": "search", "category": "capacity"})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let after = app.get("/", Some(&rita)).await;
    assert!(after.body.contains("Page the database team sooner"));
    assert!(
        after
            .body
            .contains("Open incidents <span class=\"muted\">3</span>"),
        "{}",
        after.body
    );
    // Another person's dashboard is their own.
    let other = app.user(Role::Responder).await;
    assert!(
        app.get("/", Some(&other))
            .await
            .body
            .contains("Nothing open is yours.")
    );
}

#[tokio::test]
async fn reviews_the_viewer_was_asked_about_come_first_past_the_list_size() {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    let rita = app.user(Role::Responder).await;
    for n in 1..=25 {
        declare_form(&app, &rita, &format!("Review {n}"), "checkout", "deploy").await;
    }
    let mut tx = app.db.begin_write().await.expect("tx");
    for n in 1..=25 {
        sqlx::query(
            "INSERT INTO postmortems (id, incident_id, status, template_name, created_at, updated_at)
             VALUES (?, (SELECT id FROM incidents WHERE number = ?), 'in_review', 'Standard',
                     '2026-11-01T00:00:00Z', ?)",
        )
        .bind(format!("pm-{n}"))
        .bind(n)
        .bind(format!("2026-11-01T00:{n:02}:00Z"))
        .execute(&mut *tx)
        .await
        .expect("postmortem");
    }
    sqlx::query(
        "INSERT INTO postmortem_reviewers (postmortem_id, user_id, state, requested_at)
         VALUES ('pm-25', ?, 'requested', '2026-11-01T00:00:00Z')",
    )
    .bind(&rita.id)
    .execute(&mut *tx)
    .await
    .expect("reviewer");
    tx.commit().await.expect("commit");

    let html = app.get("/", Some(&rita)).await.body;
    let at = |n: i64| html.find(&format!("INC-{n} Review {n}</a>"));
    let asked = at(25).expect("the review Rita was asked for is listed");
    assert!(
        html[asked..]
            .starts_with("INC-25 Review 25</a> <span class=\"badge ok-badge\">your review</span>")
    );
    let mut last = asked;
    for n in 1..=19 {
        let here = at(n).unwrap_or_else(|| panic!("INC-{n} is among the oldest 19"));
        assert!(here > last, "INC-{n} follows, oldest change first");
        last = here;
    }
    for n in 20..=24 {
        assert!(at(n).is_none(), "INC-{n} is past the twenty listed");
    }
}

#[tokio::test]
async fn the_default_review_is_built_ahead_and_rebuilt_after_writes_settle() {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    let week = hindsight::reports::IsoWeek::last_complete(chrono::Utc::now().date_naive());
    let key = hindsight::reports::weekly_key(week, None);
    let fresh = || app.state.reports.is_fresh(&app.db, &key);
    assert!(!fresh(), "nothing is built before the warmer runs");
    let warmer = tokio::spawn(hindsight::reports::keep_weekly_warm(
        <hindsight::reports::ReportsState as axum::extract::FromRef<_>>::from_ref(&app.state),
        std::time::Duration::from_millis(20),
    ));
    let wait_for_fresh = || async {
        for _ in 0..200 {
            if fresh() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        false
    };
    assert!(
        wait_for_fresh().await,
        "the warmer builds the default review"
    );
    app.declare(
        &token,
        json!({"title": "Checkout down", "severity": "sev2", "service": "checkout", "category": "deploy"}),
    )
    .await;
    assert!(!fresh(), "a write makes the built review stale at once");
    assert!(
        wait_for_fresh().await,
        "and it is rebuilt once writes settle"
    );
    warmer.abort();
}

/// The current week's overdue figure is "so far": what the board lists as overdue today, on
/// the weekly review, its API and the progress page alike (they used to count up to Sunday).
#[tokio::test]
async fn the_current_weeks_overdue_is_what_the_board_shows_today() {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    let lead = app.user(Role::Responder).await;
    let token = app.token(&lead, Scope::Read).await;
    let today = chrono::Utc::now().date_naive();
    let created = (chrono::Utc::now() - chrono::Duration::days(10))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    incident(
        &app,
        1,
        "Checkout 502",
        "sev2",
        "checkout",
        "deploy",
        "investigating",
        &created,
        [None, None, None, None],
        false,
    )
    .await;
    let day = |d: i64| (today + chrono::Duration::days(d)).to_string();
    // Due yesterday and open: overdue. Due today: not yet. Due yesterday but done: never.
    item(
        &app,
        1,
        "Overdue one",
        "open",
        &created,
        None,
        &day(-1),
        "Storefront",
    )
    .await;
    item(
        &app,
        1,
        "Due today",
        "open",
        &created,
        None,
        &day(0),
        "Storefront",
    )
    .await;
    let done_at = created.clone();
    item(
        &app,
        1,
        "Done one",
        "done",
        &created,
        Some(&done_at),
        &day(-1),
        "Storefront",
    )
    .await;

    let board = app
        .api(
            Method::GET,
            "/api/v1/action-items?overdue=true",
            Some(&token),
            None,
        )
        .await;
    board.assert_status(StatusCode::OK);
    let listed: Vec<String> = board.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["title"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(listed, ["Overdue one"]);

    let iso = chrono::Datelike::iso_week(&today);
    let week = format!("{}-W{:02}", iso.year(), iso.week());
    let review = app
        .api(
            Method::GET,
            &format!("/api/v1/reports/weekly?week={week}"),
            Some(&token),
            None,
        )
        .await;
    review.assert_status(StatusCode::OK);
    assert_eq!(
        review.json()["action_items"]["overdue"],
        json!(1),
        "the review counts what is overdue today, not what will be by Sunday"
    );
    let page = app
        .get(&format!("/reports/weekly?week={week}"), Some(&lead))
        .await;
    page.assert_status(StatusCode::OK);
    assert!(page.body.contains("Overdue so far"), "{}", page.body);

    let progress = app.get("/action-items/progress", Some(&lead)).await;
    progress.assert_status(StatusCode::OK);
    let overdue_row = progress
        .body
        .split("<th scope=\"row\">Overdue</th>")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .expect("the overdue row");
    let last_cell = overdue_row
        .rsplit("<td class=\"num\">")
        .next()
        .and_then(|c| c.split("</td>").next())
        .expect("this week's cell");
    assert_eq!(last_cell, "1", "this week so far on the progress page");
}
