//! Similar past incidents (the API, the declare form's step without JavaScript, accuracy on
//! a fixture of near-duplicate titles) and links between incidents.

use axum::http::{Method, StatusCode};
use hindsight::auth::{Role, Scope};
use serde_json::{Value, json};

use crate::common::{TestApp, TestUser};

async fn setup() -> (TestApp, TestUser, String) {
    let app = TestApp::spawn().await;
    for s in ["checkout", "payments", "search"] {
        app.service(s, "").await;
    }
    let responder = app.user(Role::Responder).await;
    let token = app.token(&responder, Scope::Write).await;
    (app, responder, token)
}

async fn declare(app: &TestApp, token: &str, title: &str, service: &str) -> Value {
    app.declare(
        token,
        json!({"title": title, "severity": "sev2", "service": service, "category": "unknown"}),
    )
    .await
}

async fn similar(app: &TestApp, token: &str, query: &str) -> Value {
    let r = app
        .api(
            Method::GET,
            &format!("/api/v1/incidents/similar?{query}"),
            Some(token),
            None,
        )
        .await;
    r.assert_status(StatusCode::OK);
    r.json()
}

fn numbers(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["number"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn similar_titles_are_suggested_best_first_with_status_postmortem_and_open_items() {
    let (app, _, token) = setup().await;
    declare(
        &app,
        &token,
        "Checkout returns 502: database pool exhausted",
        "checkout",
    )
    .await;
    declare(&app, &token, "Payments dashboard slow", "payments").await;
    declare(&app, &token, "Checkout button misaligned", "checkout").await;
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/postmortem",
        Some(&token),
        Some(json!({})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/action-items",
        Some(&token),
        Some(json!({"title": "Alert on pool saturation", "priority": "p1"})),
    )
    .await;

    let v = similar(
        &app,
        &token,
        "title=database+pool+exhausted+on+checkout&limit=5",
    )
    .await;
    let items = v["items"].as_array().expect("items");
    assert_eq!(numbers(&v)[0], "INC-1", "{v}");
    assert_eq!(items[0]["status"], "investigating");
    assert_eq!(items[0]["postmortem"]["status"], "draft");
    assert!(items[0]["score"].as_f64().expect("score") > 0.0);
    assert_eq!(items[0]["url"], "/incidents/INC-1");
    // Best first: scores never rise down the list.
    let scores: Vec<f64> = items
        .iter()
        .map(|i| i["score"].as_f64().unwrap_or(0.0))
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(
        !numbers(&v).contains(&"INC-2".to_owned()),
        "nothing shared: {v}"
    );
    // The word being typed counts as a prefix.
    assert_eq!(
        numbers(&similar(&app, &token, "title=pool+exhau").await)[0],
        "INC-1"
    );
    // Limit bounds the list.
    assert_eq!(
        similar(&app, &token, "title=checkout&limit=1").await["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn bad_similar_requests_get_422_naming_the_field_and_the_route_is_not_an_incident() {
    let (app, _, token) = setup().await;
    declare(&app, &token, "Checkout down", "checkout").await;
    let long = "x".repeat(301);
    for (query, field) in [
        ("title=", "title"),
        ("title=%20%20", "title"),
        ("service=checkout", "title"),
        (&*format!("title={long}"), "title"),
        ("title=db&limit=0", "limit"),
        ("title=db&limit=21", "limit"),
        ("title=db&limit=five", "limit"),
    ] {
        let r = app
            .api(
                Method::GET,
                &format!("/api/v1/incidents/similar?{query}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            r.body
        );
        assert!(r.body.contains(field), "{query}: {}", r.body);
    }
    // Only stop words: nothing to match on, an empty list (not an error, not every incident).
    assert_eq!(
        similar(&app, &token, "title=the+of+and").await["items"],
        json!([])
    );
    // Without a token: 401 like every API route.
    let r = app
        .api(Method::GET, "/api/v1/incidents/similar?title=x", None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn root_causes_and_postmortem_sections_count_and_the_service_picked_boosts() {
    let (app, _, token) = setup().await;
    // Same title words on two services; one also has the words in its root cause.
    declare(&app, &token, "Elevated error rate", "payments").await;
    declare(&app, &token, "Elevated error rate", "checkout").await;
    declare(&app, &token, "Orders missing", "search").await;
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-3/postmortem",
        Some(&token),
        Some(json!({})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let r = app
        .api(
            Method::PUT,
            "/api/v1/incidents/INC-3/postmortem",
            Some(&token),
            Some(json!({"version": 1,
                "sections": {"summary": "The reindex job dropped orders."},
                "root_causes": [{"category": "data", "description": "Reindex job truncated the orders table", "primary": true}]})),
        )
        .await;
    r.assert_status(StatusCode::OK);
    // Nothing in INC-3's title or summary says "truncated" or "reindex": its post-mortem does.
    let v = similar(&app, &token, "title=orders+table+truncated+by+reindex").await;
    assert_eq!(numbers(&v)[0], "INC-3", "{v}");
    let v = similar(&app, &token, "title=elevated+errors+rate&service=checkout").await;
    assert_eq!(numbers(&v)[..2], ["INC-2", "INC-1"], "{v}");
    let v = similar(&app, &token, "title=elevated+errors+rate&service=payments").await;
    assert_eq!(numbers(&v)[..2], ["INC-1", "INC-2"], "{v}");
}

/// Accuracy on near-duplicate titles: each query is how someone might title the same problem
/// again (other words, other order, half a word still being typed); the earlier incident
/// should be the first suggestion, among distractors sharing words with it.
#[tokio::test]
async fn near_duplicate_titles_find_their_earlier_incident() {
    let app = TestApp::spawn().await;
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/similar_titles.json")).expect("fixture");
    let responder = app.user(Role::Responder).await;
    let token = app.token(&responder, Scope::Write).await;
    let mut services: Vec<String> = Vec::new();
    for list in ["pairs", "distractors"] {
        for p in fixture[list].as_array().expect("list") {
            let s = p["service"].as_str().expect("service").to_owned();
            if !services.contains(&s) {
                app.service(&s, "").await;
                services.push(s);
            }
        }
    }
    let pairs = fixture["pairs"].as_array().expect("pairs");
    for p in pairs {
        declare(
            &app,
            &token,
            p["title"].as_str().expect("t"),
            p["service"].as_str().expect("s"),
        )
        .await;
    }
    for d in fixture["distractors"].as_array().expect("distractors") {
        declare(
            &app,
            &token,
            d["title"].as_str().expect("t"),
            d["service"].as_str().expect("s"),
        )
        .await;
    }
    let (mut top1, mut top5) = (0, 0);
    let mut misses = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        let want = format!("INC-{}", i + 1);
        let q = p["query"].as_str().expect("q");
        // Typed, not yet finished: the last word cut in half.
        let typed = &q[..q.len() - q.split(' ').next_back().map_or(0, |w| w.len() / 2)];
        for query in [q, typed] {
            let url = format!("title={}", url_escape(query));
            let got = numbers(&similar(&app, &token, &url).await);
            if got.first() == Some(&want) {
                top1 += 1;
            } else {
                misses.push(format!("{query:?} → {got:?}, want {want}"));
            }
            if got.contains(&want) {
                top5 += 1;
            }
        }
    }
    let total = pairs.len() * 2;
    println!(
        "near-duplicate accuracy: top-1 {top1}/{total}, top-5 {top5}/{total}; misses: {misses:#?}"
    );
    assert_eq!(
        top5, total,
        "every earlier incident is among the five suggestions: {misses:#?}"
    );
    assert!(
        top1 * 10 >= total * 9,
        "top-1 at least 90%: {top1}/{total} {misses:#?}"
    );
}

fn url_escape(text: &str) -> String {
    serde_urlencoded::to_string([("x", text)])
        .expect("encodes")
        .trim_start_matches("x=")
        .to_owned()
}

#[tokio::test]
async fn without_javascript_the_declare_form_shows_similar_incidents_before_creating() {
    let (app, responder, token) = setup().await;
    declare(
        &app,
        &token,
        "Checkout returns 502: database pool exhausted",
        "checkout",
    )
    .await;
    let page = app.get("/incidents/new", Some(&responder)).await;
    assert!(page.body.contains(r#"name="similar_checked" value="0""#));
    assert!(page.body.contains("data-similar-url"));
    let fields = [
        ("title", "Database pool exhausted on checkout"),
        ("severity", "sev1"),
        ("service", "checkout"),
        ("category", "unknown"),
        ("summary", "Typed summary kept"),
        ("similar_checked", "0"),
    ];
    let step = app.post_form("/incidents", Some(&responder), &fields).await;
    step.assert_status(StatusCode::OK);
    assert!(step.body.contains("These look similar"), "{}", step.body);
    assert!(step.body.contains(r#"href="/incidents/INC-1""#));
    assert!(step.body.contains("Typed summary kept"));
    assert!(step.body.contains("Declare anyway"));
    assert!(step.body.contains(r#"name="similar_checked" value="1""#));
    assert_eq!(app.count("incidents").await, 1, "nothing declared yet");
    // Declare anyway.
    let mut again = fields.to_vec();
    again[5] = ("similar_checked", "1");
    let done = app.post_form("/incidents", Some(&responder), &again).await;
    done.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(done.location(), "/incidents/INC-2");
    // Nothing similar: declared at once.
    let fresh = [
        ("title", "Payments webhook signature rejected"),
        ("severity", "sev3"),
        ("service", "payments"),
        ("category", "unknown"),
        ("similar_checked", "0"),
    ];
    app.post_form("/incidents", Some(&responder), &fresh)
        .await
        .assert_status(StatusCode::SEE_OTHER);
    // The fragment the script asks for while typing.
    let live = app
        .get(
            "/incidents/similar?title=pool+exhausted&service=checkout",
            Some(&responder),
        )
        .await;
    live.assert_status(StatusCode::OK);
    assert!(
        live.body.contains("INC-1 Checkout returns 502"),
        "{}",
        live.body
    );
    assert!(
        app.get("/incidents/similar?title=x", None)
            .await
            .status
            .is_redirection()
    );
}

async fn links(app: &TestApp, token: &str, key: &str) -> Vec<Value> {
    let r = app
        .api(
            Method::GET,
            &format!("/api/v1/incidents/{key}"),
            Some(token),
            None,
        )
        .await;
    r.assert_status(StatusCode::OK);
    r.json()["links"]
        .as_array()
        .cloned()
        .expect("links in the incident JSON")
}

#[tokio::test]
async fn links_show_on_both_sides_refuse_self_and_duplicates_and_are_recorded() {
    let (app, responder, token) = setup().await;
    declare(&app, &token, "Checkout down", "checkout").await;
    declare(&app, &token, "Checkout down again", "checkout").await;
    declare(&app, &token, "Payments down", "payments").await;
    let add = |from: &'static str, body: Value| {
        let app = &app;
        let token = &token;
        async move {
            app.api(
                Method::POST,
                &format!("/api/v1/incidents/{from}/links"),
                Some(token),
                Some(body),
            )
            .await
        }
    };
    let r = add(
        "INC-2",
        json!({"kind": "duplicate_of", "incident": "INC-1"}),
    )
    .await;
    r.assert_status(StatusCode::CREATED);
    let link_id = r.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(r.json()["kind"], "duplicate_of");
    assert_eq!(r.json()["incident"]["number"], "INC-1");
    // The other side reads the inverse.
    let on_1 = links(&app, &token, "INC-1").await;
    assert_eq!(on_1.len(), 1);
    assert_eq!(on_1[0]["kind"], "duplicated_by");
    assert_eq!(on_1[0]["incident"]["number"], "INC-2");
    assert_eq!(on_1[0]["incident"]["title"], "Checkout down again");
    // Self-links and a second link between the same two (either way round) are refused.
    let r = add("INC-1", json!({"kind": "related", "incident": "INC-1"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = add("INC-1", json!({"kind": "related", "incident": "INC-2"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = add("INC-1", json!({"kind": "sibling", "incident": "INC-3"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = add("INC-1", json!({"kind": "related", "incident": "INC-99"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    add("INC-3", json!({"kind": "caused_by", "incident": "1"}))
        .await
        .assert_status(StatusCode::CREATED);
    let on_1 = links(&app, &token, "INC-1").await;
    assert_eq!(on_1[1]["kind"], "caused", "{on_1:?}");
    // Both timelines say so.
    let incident = app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&token), None)
        .await
        .json();
    let bodies: Vec<&str> = incident["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["body"].as_str())
        .collect();
    assert!(
        bodies.contains(&"Linked: duplicated by INC-2."),
        "{bodies:?}"
    );
    assert!(bodies.contains(&"Linked: caused INC-3."), "{bodies:?}");
    // The pages show them, and the post-mortem export lists them.
    let page = app.get("/incidents/INC-1", Some(&responder)).await;
    assert!(page.body.contains("Related incidents"));
    assert!(page.body.contains("duplicated by"));
    assert!(page.body.contains(r#"href="/incidents/INC-2""#));
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/postmortem",
        Some(&token),
        Some(json!({})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let pm = app
        .get("/incidents/INC-1/postmortem", Some(&responder))
        .await;
    assert!(pm.body.contains("Related incidents") && pm.body.contains("INC-3 Payments down"));
    let md = app
        .api(
            Method::GET,
            "/api/v1/incidents/INC-1/postmortem.md",
            Some(&token),
            None,
        )
        .await;
    assert!(md.body.contains("## Related incidents"), "{}", md.body);
    assert!(
        md.body
            .contains("- Duplicated by INC-2: Checkout down again"),
        "{}",
        md.body
    );
    assert!(
        md.body.contains("- Caused INC-3: Payments down"),
        "{}",
        md.body
    );
    // Removed from either side; a second removal is 404.
    let del = |key: &'static str, id: String| {
        let app = &app;
        let token = &token;
        async move {
            app.api(
                Method::DELETE,
                &format!("/api/v1/incidents/{key}/links/{id}"),
                Some(token),
                None,
            )
            .await
        }
    };
    del("INC-3", link_id.clone())
        .await
        .assert_status(StatusCode::NOT_FOUND);
    del("INC-1", link_id.clone())
        .await
        .assert_status(StatusCode::NO_CONTENT);
    del("INC-1", link_id)
        .await
        .assert_status(StatusCode::NOT_FOUND);
    assert_eq!(links(&app, &token, "INC-2").await.len(), 0);
    let incident = app
        .api(Method::GET, "/api/v1/incidents/INC-2", Some(&token), None)
        .await
        .json();
    assert!(
        incident["timeline"]
            .to_string()
            .contains("Link removed: duplicate of INC-1.")
    );
}

#[tokio::test]
async fn links_are_added_and_removed_with_the_incident_page_forms() {
    let (app, responder, token) = setup().await;
    declare(&app, &token, "Checkout down", "checkout").await;
    declare(&app, &token, "Payments down", "payments").await;
    let r = app
        .post_form(
            "/incidents/INC-1/links",
            Some(&responder),
            &[("kind", "related"), ("incident", "INC-2")],
        )
        .await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/incidents/INC-1#related");
    let on_2 = links(&app, &token, "INC-2").await;
    assert_eq!(on_2[0]["kind"], "related");
    // A refused link comes back as a message, nothing written.
    let r = app
        .post_form(
            "/incidents/INC-1/links",
            Some(&responder),
            &[("kind", "related"), ("incident", "INC-1")],
        )
        .await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(app.count("incident_links").await, 1);
    let id = on_2[0]["id"].as_str().expect("id");
    app.post_form(
        &format!("/incidents/INC-2/links/{id}/delete"),
        Some(&responder),
        &[],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    assert_eq!(app.count("incident_links").await, 0);
    // Viewers cannot link.
    let viewer = app.user(Role::Viewer).await;
    let r = app
        .post_form(
            "/incidents/INC-1/links",
            Some(&viewer),
            &[("kind", "related"), ("incident", "INC-2")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// The incident page looks for similar earlier incidents only when asked (a ranking over every
/// incident is too dear for each refresh during an incident); asked, it lists the earlier one.
#[tokio::test]
async fn the_incident_page_finds_similar_earlier_incidents_when_asked() {
    let (app, responder, token) = setup().await;
    let earlier = declare(&app, &token, "Checkout database pool exhausted", "checkout").await;
    let later = declare(
        &app,
        &token,
        "Database pool exhausted on checkout",
        "checkout",
    )
    .await;
    let (earlier, later) = (
        earlier["number"].as_str().expect("key").to_owned(),
        later["number"].as_str().expect("key").to_owned(),
    );
    let page = app
        .get(&format!("/incidents/{later}"), Some(&responder))
        .await;
    page.assert_status(StatusCode::OK);
    assert!(page.body.contains("Find similar earlier incidents"));
    assert!(
        !page.body.contains(&format!("{earlier} Checkout database")),
        "not listed before it is asked for"
    );
    let asked = app
        .get(&format!("/incidents/{later}?similar=1"), Some(&responder))
        .await;
    asked.assert_status(StatusCode::OK);
    assert!(asked.body.contains("Looks similar"), "{}", asked.body);
    assert!(
        asked
            .body
            .contains(&format!("{earlier} Checkout database pool exhausted")),
        "the earlier incident is listed"
    );
}
