//! `/insights`, its CSV and `GET /api/v1/insights` on a hand-built half year whose every
//! figure was worked out by hand (see `fixture`), the filters, and bad input.

use axum::http::{Method, StatusCode};
use hindsight::auth::{Role, Scope};
use serde_json::{Value, json};

use crate::common::TestApp;

const RANGE: &str = "since=2026-01-01&until=2026-06-30";

async fn exec(app: &TestApp, sql: &'static str, binds: &[Option<&str>]) {
    let mut tx = app.db.begin_write().await.expect("tx");
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(*b);
    }
    q.execute(&mut *tx).await.expect(sql);
    tx.commit().await.expect("commit");
}

fn id(number: i64) -> String {
    format!("00000000-0000-7000-8000-{number:012}")
}

/// Inserts an incident with exactly these milestones (detected, acknowledged, mitigated,
/// resolved), bypassing the lifecycle stamps.
#[allow(clippy::too_many_arguments)]
async fn incident(
    app: &TestApp,
    number: i64,
    severity: &str,
    service: &str,
    category: &str,
    started: &str,
    m: [Option<&str>; 4],
    exclude: bool,
) {
    let id = id(number);
    let number = number.to_string();
    let title = format!("Private title of incident {number}");
    exec(
        app,
        "INSERT INTO incidents (id, number, title, severity, status, service, category, team,
            started_at, detected_at, acknowledged_at, mitigated_at, resolved_at,
            exclude_from_metrics, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'investigating', ?, ?, (SELECT team FROM services WHERE name = ?),
                 ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            Some(&id),
            Some(&number),
            Some(&title),
            Some(severity),
            Some(service),
            Some(category),
            Some(service),
            Some(started),
            m[0],
            m[1],
            m[2],
            m[3],
            Some(if exclude { "1" } else { "0" }),
            Some(started),
            Some(started),
        ],
    )
    .await;
}

/// A post-mortem with a detection method and root causes (the first is primary).
async fn postmortem(app: &TestApp, number: i64, detection: &str, causes: &[&str]) {
    let pm = format!("pm-{number}");
    let inc = id(number);
    exec(
        app,
        "INSERT INTO postmortems (id, incident_id, status, template_name, detection_method,
            created_at, updated_at)
         VALUES (?, ?, 'draft', 'Standard', ?, '2026-07-01T00:00:00Z', '2026-07-01T00:00:00Z')",
        &[Some(&pm), Some(&inc), Some(detection)],
    )
    .await;
    for (pos, category) in causes.iter().enumerate() {
        let rc = format!("rc-{number}-{pos}");
        let primary = if pos == 0 { "1" } else { "0" };
        let position = pos.to_string();
        exec(
            app,
            "INSERT INTO root_causes (id, postmortem_id, incident_id, category, is_primary, position)
             VALUES (?, ?, ?, ?, ?, ?)",
            &[
                Some(&rc),
                Some(&pm),
                Some(&inc),
                Some(category),
                Some(primary),
                Some(&position),
            ],
        )
        .await;
    }
}

async fn alert(app: &TestApp, number: i64, at: &str) {
    let aid = uuid::Uuid::now_v7().to_string();
    let inc = id(number);
    exec(
        app,
        "INSERT INTO alert_events (id, name, service, tier, started_at, incident_id)
         VALUES (?, 'Checkout slow', 'checkout', 'page', ?, ?)",
        &[Some(&aid), Some(at), Some(&inc)],
    )
    .await;
}

#[allow(clippy::too_many_arguments)]
async fn item(
    app: &TestApp,
    number: i64,
    kind: &str,
    team: &str,
    status: &str,
    due: &str,
    completed: Option<&str>,
) {
    let iid = uuid::Uuid::now_v7().to_string();
    let inc = id(number);
    let reason = if status == "wont_do" {
        "superseded"
    } else {
        ""
    };
    exec(
        app,
        "INSERT INTO action_items (id, incident_id, title, team, kind, priority, status,
            wont_do_reason, due_on, completed_at, created_at, updated_at)
         VALUES (?, ?, 'Private item title', ?, ?, 'p1', ?, ?, ?, ?,
                 '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
        &[
            Some(&iid),
            Some(&inc),
            Some(team),
            Some(kind),
            Some(status),
            Some(reason),
            Some(due),
            completed,
        ],
    )
    .await;
}

/// The half year 2026-01-01 … 2026-06-30 (UTC), worked out by hand:
///
/// | inc | sev  | service  | category | started          | det   | ack   | mit   | resolved         | notes |
/// |-----|------|----------|----------|------------------|-------|-------|-------|------------------|-------|
/// | 1   | sev1 | checkout | deploy   | 01-10 10:00      | 10:05 | 10:10 | 10:30 | 01-10 12:00 (2h) | alert, no post-mortem; causes none |
/// | 2   | sev1 | checkout | deploy   | 02-10 10:00      | 10:10 | 10:30 | 11:00 | 02-10 14:00 (4h) | PM: customer; deploy (primary), capacity twice, config change |
/// | 3   | sev2 | search   | capacity | 02-20 00:00      | 00:00 | 01:00 | —     | 02-20 01:00 (1h) | PM: employee; capacity |
/// | 4   | sev1 | checkout | deploy   | 04-05 08:00      | 08:00 | 08:15 | —     | 04-05 09:00 (1h) | nothing recorded |
/// | 5   | sev2 | search   | deploy   | 05-01 00:00      | 00:30 | —     | —     | unresolved       | alert, but PM says employee |
/// | 6   | sev3 | checkout | capacity | 06-01 00:00      | —     | —     | —     | 06-01 06:00      | excluded from metrics; alert |
/// | 7   | sev1 | checkout | deploy   | 2025-12-31 23:00 | —     | —     | —     | —                | before the range |
///
/// Teams: checkout → payments, search → discovery.
async fn fixture(app: &TestApp) {
    app.service("checkout", "payments").await;
    app.service("search", "discovery").await;
    let t = |d: &'static str| Some(d);
    incident(
        app,
        1,
        "sev1",
        "checkout",
        "deploy",
        "2026-01-10T10:00:00Z",
        [
            t("2026-01-10T10:05:00Z"),
            t("2026-01-10T10:10:00Z"),
            t("2026-01-10T10:30:00Z"),
            t("2026-01-10T12:00:00Z"),
        ],
        false,
    )
    .await;
    incident(
        app,
        2,
        "sev1",
        "checkout",
        "deploy",
        "2026-02-10T10:00:00Z",
        [
            t("2026-02-10T10:10:00Z"),
            t("2026-02-10T10:30:00Z"),
            t("2026-02-10T11:00:00Z"),
            t("2026-02-10T14:00:00Z"),
        ],
        false,
    )
    .await;
    incident(
        app,
        3,
        "sev2",
        "search",
        "capacity",
        "2026-02-20T00:00:00Z",
        [
            t("2026-02-20T00:00:00Z"),
            t("2026-02-20T01:00:00Z"),
            None,
            t("2026-02-20T01:00:00Z"),
        ],
        false,
    )
    .await;
    incident(
        app,
        4,
        "sev1",
        "checkout",
        "deploy",
        "2026-04-05T08:00:00Z",
        [
            t("2026-04-05T08:00:00Z"),
            t("2026-04-05T08:15:00Z"),
            None,
            t("2026-04-05T09:00:00Z"),
        ],
        false,
    )
    .await;
    incident(
        app,
        5,
        "sev2",
        "search",
        "deploy",
        "2026-05-01T00:00:00Z",
        [t("2026-05-01T00:30:00Z"), None, None, None],
        false,
    )
    .await;
    incident(
        app,
        6,
        "sev3",
        "checkout",
        "capacity",
        "2026-06-01T00:00:00Z",
        [None, None, None, t("2026-06-01T06:00:00Z")],
        true,
    )
    .await;
    incident(
        app,
        7,
        "sev1",
        "checkout",
        "deploy",
        "2025-12-31T23:00:00Z",
        [None, None, None, None],
        false,
    )
    .await;
    alert(app, 1, "2026-01-10T10:01:00Z").await;
    alert(app, 5, "2026-05-01T00:10:00Z").await;
    alert(app, 6, "2026-06-01T00:00:00Z").await;
    postmortem(
        app,
        2,
        "customer_report",
        &["deploy", "capacity", "capacity", "config change"],
    )
    .await;
    postmortem(app, 3, "employee", &["capacity"]).await;
    postmortem(app, 5, "employee", &[]).await;
    // Prevent items of the deploy group: INC-1's done 01-20, INC-2's done 03-01 (a day after
    // its due date), INC-4's still open.
    item(
        app,
        1,
        "prevent",
        "payments",
        "done",
        "2026-01-25",
        Some("2026-01-20T00:00:00Z"),
    )
    .await;
    item(
        app,
        2,
        "prevent",
        "payments",
        "done",
        "2026-02-20",
        Some("2026-03-01T00:00:00Z"),
    )
    .await;
    item(app, 4, "prevent", "payments", "open", "2026-05-01", None).await;
    // Discovery: done at 23:30 on its due day (on time), one won't do, one due after the range.
    item(
        app,
        3,
        "mitigate",
        "discovery",
        "done",
        "2026-03-10",
        Some("2026-03-10T23:30:00Z"),
    )
    .await;
    item(
        app,
        3,
        "mitigate",
        "discovery",
        "wont_do",
        "2026-03-15",
        None,
    )
    .await;
    item(app, 3, "mitigate", "discovery", "open", "2026-07-15", None).await;
}

fn rows<'a>(v: &'a Value, figure: &str) -> &'a Vec<Value> {
    v[figure]["rows"].as_array().expect("rows")
}

#[tokio::test]
async fn every_figure_matches_the_hand_computed_fixture() {
    let app = TestApp::spawn().await;
    fixture(&app).await;
    let viewer = app.user(Role::Viewer).await;
    let token = app.token(&viewer, Scope::Read).await;
    let res = app
        .api(
            Method::GET,
            &format!("/api/v1/insights?{RANGE}"),
            Some(&token),
            None,
        )
        .await;
    res.assert_status(StatusCode::OK);
    let v = res.json();
    // INC-7 started the day before the range.
    assert_eq!(v["incidents"], 6);

    // Contributing factors: Q1 has INC-2 (deploy, capacity once though named twice, config
    // change) and INC-3 (capacity); INC-1 and INC-4 have no post-mortem.
    assert_eq!(v["factors"]["periods"], json!(["2026-Q1", "2026-Q2"]));
    assert_eq!(
        rows(&v, "factors"),
        &vec![
            json!({"period": "2026-Q1", "series": "capacity", "incidents": 2}),
            json!({"period": "2026-Q1", "series": "config change", "incidents": 1}),
            json!({"period": "2026-Q1", "series": "deploy", "incidents": 1}),
        ]
    );

    // Detection per month: the post-mortem's method wins over an alert (INC-5), an alert
    // counts when nothing is recorded (INC-1, INC-6), INC-4 has neither.
    assert_eq!(
        v["detection"]["periods"],
        json!([
            "2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"
        ])
    );
    assert_eq!(
        rows(&v, "detection"),
        &vec![
            json!({"period": "2026-01", "series": "alert", "incidents": 1}),
            json!({"period": "2026-02", "series": "customer", "incidents": 1}),
            json!({"period": "2026-02", "series": "employee", "incidents": 1}),
            json!({"period": "2026-04", "series": "not recorded", "incidents": 1}),
            json!({"period": "2026-05", "series": "employee", "incidents": 1}),
            json!({"period": "2026-06", "series": "alert", "incidents": 1}),
        ]
    );

    // MTTx: Q1 sev1 resolve is 2h and 4h → median (rank 1 of 2) 2h, p90 (rank 2) 4h;
    // acknowledge 5m and 20m; mitigate 30m and 1h. INC-6 (excluded) has no rows; INC-5 only
    // a detect time.
    let mttx = rows(&v, "mttx");
    let find = |q: &str, s: &str, m: &str| {
        mttx.iter()
            .find(|r| r["quarter"] == q && r["severity"] == s && r["measure"] == m)
            .cloned()
    };
    let r = find("2026-Q1", "sev1", "resolve").expect("Q1 sev1 resolve");
    assert_eq!(
        (&r["incidents"], &r["median_secs"], &r["p90_secs"]),
        (&json!(2), &json!(7200), &json!(14400))
    );
    let r = find("2026-Q1", "sev1", "acknowledge").expect("Q1 sev1 ack");
    assert_eq!(
        (&r["median_secs"], &r["p90_secs"]),
        (&json!(300), &json!(1200))
    );
    let r = find("2026-Q1", "sev1", "mitigate").expect("Q1 sev1 mitigate");
    assert_eq!(
        (&r["median_secs"], &r["p90_secs"]),
        (&json!(1800), &json!(3600))
    );
    let r = find("2026-Q1", "sev2", "acknowledge").expect("Q1 sev2 ack");
    assert_eq!(
        (&r["incidents"], &r["median_secs"]),
        (&json!(1), &json!(3600))
    );
    let r = find("2026-Q2", "sev1", "acknowledge").expect("Q2 sev1 ack");
    assert_eq!(r["median_secs"], 900);
    let r = find("2026-Q2", "sev2", "detect").expect("Q2 sev2 detect");
    assert_eq!(r["median_secs"], 1800);
    assert!(find("2026-Q2", "sev2", "resolve").is_none());
    assert!(
        mttx.iter().all(|r| r["severity"] != "sev3"),
        "INC-6 is excluded"
    );
    assert_eq!(mttx.len(), 4 + 3 + 3 + 1);

    // Hours: checkout 2 + 4 + 1 = 7 h (INC-6 excluded); search 1 h + INC-5 unresolved from
    // 05-01 to the range's end 07-01 (61 days = 1464 h) = 1465 h.
    assert_eq!(
        rows(&v, "hours"),
        &vec![
            json!({"service": "search", "incidents": 2, "hours": 1465.0, "unresolved": 1}),
            json!({"service": "checkout", "incidents": 3, "hours": 7.0, "unresolved": 0}),
        ]
    );

    // Follow-through: discovery 2 due (one on time at 23:30 of its due day, one won't do;
    // the one due 07-15 is outside); payments 3 due (on time, a day late, open).
    assert_eq!(
        rows(&v, "follow_through"),
        &vec![
            json!({"team": "discovery", "due": 2, "done_on_time": 1, "done_late": 0,
                   "wont_do": 1, "open": 0, "rate": 0.5}),
            json!({"team": "payments", "due": 3, "done_on_time": 1, "done_late": 1,
                   "wont_do": 0, "open": 1, "rate": 0.33}),
        ]
    );

    // Did the fix work: deploy has INC-1, 2, 4, 5 (4 > K = 2). Its prevent items: INC-1's done
    // 01-20, INC-2's done 03-01, INC-4's open but INC-4 started after 03-01 → fixed 03-01.
    // Before: INC-1, INC-2 in 59 days (01-01 → 03-01) = 2 × 30 / 59 = 1.02 per month;
    // after: INC-4, INC-5 in 122 days (03-01 → 07-01) = 2 × 30 / 122 = 0.49 per month.
    // capacity has only 2 incidents, not a group.
    let fix = rows(&v, "fix");
    assert_eq!(fix.len(), 1, "{fix:?}");
    let g = &fix[0];
    assert_eq!(g["group"], "deploy");
    assert_eq!(g["incidents"], 4);
    assert_eq!(
        (&g["prevent_items"], &g["prevent_done"]),
        (&json!(3), &json!(2))
    );
    assert_eq!(g["fixed_at"], "2026-03-01T00:00:00Z");
    assert_eq!(
        (
            &g["before_incidents"],
            &g["before_days"],
            &g["before_per_month"]
        ),
        (&json!(2), &json!(59), &json!(1.02))
    );
    assert_eq!(
        (
            &g["after_incidents"],
            &g["after_days"],
            &g["after_per_month"]
        ),
        (&json!(2), &json!(122), &json!(0.49))
    );
    assert_eq!(g["per_month"], json!([1, 1, 0, 1, 1, 0]));

    // Aggregates only: no incident or item title anywhere.
    let body = v.to_string();
    assert!(!body.contains("Private"), "{body}");
}

#[tokio::test]
async fn filters_by_team_and_service_and_one_figure_at_a_time() {
    let app = TestApp::spawn().await;
    fixture(&app).await;
    let viewer = app.user(Role::Viewer).await;
    let token = app.token(&viewer, Scope::Read).await;
    let get = |q: String| {
        let app = &app;
        let token = token.clone();
        async move {
            let res = app
                .api(
                    Method::GET,
                    &format!("/api/v1/insights?{q}"),
                    Some(&token),
                    None,
                )
                .await;
            res.assert_status(StatusCode::OK);
            res.json()
        }
    };
    // Payments: INC-1, 2, 4, 6. The deploy group is INC-1, 2, 4: one after the fix in 122 days
    // = 0.25 per month; follow-through only payments' items.
    let v = get(format!("team=payments&{RANGE}&figure=fix")).await;
    assert_eq!(v["incidents"], 4);
    assert!(v.get("hours").is_none(), "only the figure asked for");
    let g = &rows(&v, "fix")[0];
    assert_eq!(
        (
            &g["incidents"],
            &g["before_incidents"],
            &g["after_incidents"],
            &g["after_per_month"]
        ),
        (&json!(3), &json!(2), &json!(1), &json!(0.25))
    );
    let v = get(format!("team=payments&{RANGE}")).await;
    assert_eq!(rows(&v, "follow_through").len(), 1);
    assert_eq!(rows(&v, "follow_through")[0]["team"], "payments");
    assert_eq!(rows(&v, "hours").len(), 1);
    assert_eq!(rows(&v, "hours")[0]["hours"], 7.0);

    // Search only: hours of search, no group (2 deploy incidents of search is not > 2).
    let v = get(format!("service=search&{RANGE}")).await;
    assert_eq!(v["incidents"], 2);
    assert_eq!(rows(&v, "hours")[0]["service"], "search");
    assert!(rows(&v, "fix").is_empty());

    // A narrower range: Q2 only sees INC-4, 5, 6 and no factor.
    let v = get("since=2026-04-01&until=2026-06-30".into()).await;
    assert_eq!(v["incidents"], 3);
    assert!(rows(&v, "factors").is_empty());
    assert_eq!(v["mttx"]["quarters"], json!(["2026-Q2"]));
}

#[tokio::test]
async fn the_page_shows_each_figure_with_its_definition_chart_and_table() {
    let app = TestApp::spawn().await;
    fixture(&app).await;
    let viewer = app.user(Role::Viewer).await;
    let res = app
        .get(&format!("/insights?team=&service=&{RANGE}"), Some(&viewer))
        .await;
    res.assert_status(StatusCode::OK);
    let html = &res.body;
    for heading in [
        "Contributing factors per quarter",
        "How incidents were detected",
        "Time to acknowledge, mitigate and resolve by severity",
        "Incident hours by service",
        "Action-item follow-through per team",
        "Did the fix work?",
    ] {
        assert!(html.contains(heading), "{heading}");
    }
    for definition in [
        hindsight::insights::FACTORS_DEFINITION,
        hindsight::insights::DETECTION_DEFINITION,
        hindsight::insights::HOURS_DEFINITION,
        hindsight::insights::FOLLOW_THROUGH_DEFINITION,
    ] {
        let unescaped = html
            .replace("&#39;", "'")
            .replace("&#x27;", "'")
            .replace("&quot;", "\"")
            .replace("&#34;", "\"")
            .replace("&amp;", "&");
        assert!(unescaped.contains(definition), "{definition}");
    }
    // Six charts, each with a title and a description; the tables carry the same figures.
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 6);
    assert_eq!(html.matches("<desc id=").count(), 6);
    assert!(html.contains("<title id=\"chart-fix-t\">"));
    let text = html;
    assert!(text.contains("1465.00"), "search hours in the table");
    assert!(text.contains("2 in 59 d (1.02)"), "before the fix");
    assert!(text.contains("2 in 122 d (0.49)"), "after the fix");
    assert!(text.contains("2026-03-01"), "fixed on");
    assert!(text.contains("33%"), "payments on time");
    assert!(!html.contains("Private"), "no incident or item title");
    // The filter is a GET form whose values come back, and exports keep it.
    assert!(html.contains("<form method=\"get\" action=\"/insights\""));
    assert!(html.contains("value=\"2026-01-01\""));
    assert!(html.contains("/insights.csv?figure=fix&#38;since=2026-01-01&#38;until=2026-06-30"));
    // The page's JSON links work with the session (the API wants a token).
    assert!(html.contains("/insights.json?figure=hours&#38;since=2026-01-01&#38;until=2026-06-30"));
    let res = app
        .get(
            &format!("/insights.json?figure=hours&{RANGE}"),
            Some(&viewer),
        )
        .await;
    res.assert_status(StatusCode::OK);
    let v = res.json();
    assert_eq!(rows(&v, "hours")[0]["hours"], 1465.0);
    assert!(v.get("fix").is_none());
}

#[tokio::test]
async fn each_figure_exports_as_csv() {
    let app = TestApp::spawn().await;
    fixture(&app).await;
    let viewer = app.user(Role::Viewer).await;
    let csv = |figure: &'static str| {
        let app = &app;
        let viewer = &viewer;
        async move {
            let res = app
                .get(
                    &format!("/insights.csv?figure={figure}&{RANGE}"),
                    Some(viewer),
                )
                .await;
            res.assert_status(StatusCode::OK);
            assert!(res.header("content-type").starts_with("text/csv"));
            assert!(
                res.header("content-disposition")
                    .contains(&format!("insights-{figure}-2026-01-01-2026-06-30.csv"))
            );
            res.body
        }
    };
    let fix = csv("fix").await;
    let mut lines = fix.lines();
    assert!(
        lines
            .next()
            .expect("header")
            .starts_with("group,category,service,incidents")
    );
    let deploy = lines.next().expect("deploy");
    assert!(
        deploy.starts_with("deploy,deploy,,4,3,2,2026-03-01 00:00 UTC"),
        "{deploy}"
    );
    assert!(deploy.ends_with(",2,59,1.02,2,122,0.49"), "{deploy}");
    assert_eq!(
        csv("hours").await,
        "service,incidents,hours,unresolved\nsearch,2,1465.00,1\ncheckout,3,7.00,0\n"
    );
    assert_eq!(
        csv("factors").await,
        "quarter,category,incidents\n2026-Q1,capacity,2\n2026-Q1,config change,1\n2026-Q1,deploy,1\n"
    );
    assert!(
        csv("follow_through")
            .await
            .contains("payments,3,1,1,0,1,0.33\n")
    );
    assert!(csv("detection").await.contains("2026-04,not recorded,1\n"));
    assert!(
        csv("mttx")
            .await
            .contains("2026-Q1,sev1,resolve,2,7200,14400\n")
    );
}

#[tokio::test]
async fn bad_filters_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let viewer = app.user(Role::Viewer).await;
    let token = app.token(&viewer, Scope::Read).await;
    for (query, field) in [
        ("since=2026-07-01&until=2026-06-30", "since"),
        ("since=yesterday", "since"),
        ("until=1999-01-01", "until"),
        ("since=2010-01-01&until=2026-01-01", "until"),
        ("figure=everything", "figure"),
    ] {
        let res = app
            .api(
                Method::GET,
                &format!("/api/v1/insights?{query}"),
                Some(&token),
                None,
            )
            .await;
        res.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res.body.contains(field), "{query}: {}", res.body);
        let page = app.get(&format!("/insights?{query}"), Some(&viewer)).await;
        page.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    }
    // The CSV needs a figure.
    app.get("/insights.csv", Some(&viewer))
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    // Signed out: no figures.
    app.api(Method::GET, "/api/v1/insights", None, None)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    let res = app.get("/insights", None).await;
    assert!(res.status.is_redirection(), "{}", res.status);
    // Without dates: this quarter and the three before, up to today.
    let res = app
        .api(Method::GET, "/api/v1/insights", Some(&token), None)
        .await;
    res.assert_status(StatusCode::OK);
    assert_eq!(
        res.json()["mttx"]["quarters"].as_array().map(Vec::len),
        Some(4)
    );
}
