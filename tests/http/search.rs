//! Search: finds words in every kind of record, combines with the list filters, survives
//! hostile input and highlights without letting markup through.

use axum::http::{Method, StatusCode};
use hindsight::auth::{Role, Scope};
use serde_json::json;

use crate::common::{TestApp, TestUser};

/// INC-1 (sev1, checkout) with a timeline entry, an action item and a post-mortem section,
/// INC-2 (sev3, search) mentioning the same word.
async fn fixture() -> (TestApp, TestUser) {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    app.service("search", "Discovery").await;
    let rita = app.user(Role::Responder).await;
    let token = app.token(&rita, Scope::Write).await;
    app.declare(
        &token,
        json!({"title": "Checkout returns 502", "severity": "sev1", "service": "checkout",
               "category": "deploy", "summary": "The connection pool was exhausted."}),
    )
    .await;
    app.declare(
        &token,
        json!({"title": "Search index stale", "severity": "sev3", "service": "search",
               "category": "data", "summary": "Reindexing the pool of shards lagged."}),
    )
    .await;
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/timeline",
        Some(&token),
        Some(
            json!({"occurred_at": "2026-11-20T10:05:00Z", "kind": "action",
                    "body": "Rolled back the zeppelin release <script>alert(1)</script>"}),
        ),
    )
    .await
    .assert_status(StatusCode::CREATED);
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/action-items",
        Some(&token),
        Some(json!({"title": "Add a quokka canary", "description": "Gate deploys on it"})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let mut tx = app.db.begin_write().await.expect("tx");
    sqlx::query(
        "INSERT INTO postmortems (id, incident_id, status, template_name, created_at, updated_at)
         VALUES ('pm-1', (SELECT id FROM incidents WHERE number = 1), 'draft', 'Standard',
                 '2026-11-21T00:00:00Z', '2026-11-21T00:00:00Z')",
    )
    .execute(&mut *tx)
    .await
    .expect("postmortem");
    sqlx::query(
        "INSERT INTO postmortem_sections (postmortem_id, position, key, title, body)
         VALUES ('pm-1', 4, 'root_cause', 'Root cause', 'A narwhal config flag defaulted to off.')",
    )
    .execute(&mut *tx)
    .await
    .expect("section");
    tx.commit().await.expect("commit");
    (app, rita)
}

fn results(html: &str) -> usize {
    html.matches("<li class=\"result ").count()
}

#[tokio::test]
async fn search_finds_words_in_every_kind_of_record() {
    let (app, rita) = fixture().await;
    for (word, kind, link) in [
        ("returns", "incident", "href=\"/incidents/INC-1\""),
        ("zeppelin", "timeline", "href=\"/incidents/INC-1#entry-"),
        ("quokka", "action_item", "href=\"/incidents/INC-1#item-"),
        (
            "narwhal",
            "postmortem",
            "href=\"/incidents/INC-1/postmortem#section-root_cause\"",
        ),
    ] {
        let page = app.get(&format!("/search?q={word}"), Some(&rita)).await;
        page.assert_status(StatusCode::OK);
        // Adding an action item also notes it on the timeline, so a word can match twice.
        assert!(results(&page.body) >= 1, "{word}: {}", page.body);
        assert!(page.body.contains(&format!("result kind-{kind}")), "{word}");
        assert!(page.body.contains(link), "{word} links to its record");
        assert!(
            page.body.contains(&format!("<mark>{word}</mark>"))
                || page
                    .body
                    .contains(&format!("<mark>{}", &word[..1].to_uppercase())),
            "{word} is highlighted"
        );
    }
    // Prefixes match ("quok" finds "quokka"); diacritics fold.
    let page = app
        .get("/search?q=quok&kind=action_item", Some(&rita))
        .await;
    assert_eq!(results(&page.body), 1);
    let page = app.get("/search?q=z%C3%A9ppelin", Some(&rita)).await;
    assert_eq!(results(&page.body), 1, "é folds to e");
}

#[tokio::test]
async fn search_ranks_and_combines_with_the_list_filters() {
    let (app, rita) = fixture().await;
    let both = app.get("/search?q=pool", Some(&rita)).await;
    assert_eq!(results(&both.body), 2);
    let sev1 = app.get("/search?q=pool&severity=sev1", Some(&rita)).await;
    assert_eq!(results(&sev1.body), 1);
    assert!(sev1.body.contains("Checkout returns 502"));
    let search_only = app.get("/search?q=pool&service=search", Some(&rita)).await;
    assert_eq!(results(&search_only.body), 1);
    assert!(search_only.body.contains("Search index stale"));
    let kind = app
        .get("/search?q=zeppelin&kind=incident", Some(&rita))
        .await;
    assert_eq!(results(&kind.body), 0, "the word is only on a timeline");
    let bad = app
        .get("/search?q=pool&kind=users&severity=sev9", Some(&rita))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("kind: must be one of"));
    assert!(bad.body.contains("severity: must be one of"));
}

#[tokio::test]
async fn hostile_input_never_breaks_the_query() {
    let (app, rita) = fixture().await;
    for raw in [
        "%22",
        "*",
        "NEAR(",
        "NEAR(pool",
        "%22pool",
        "pool%22*",
        "pool%20OR",
        "-pool",
        "%3Cscript%3E",
        "%E6%95%B0%E6%8D%AE%E5%BA%93",
        "%00",
        "",
        "%20",
        "()%5E%7B%7D",
        "AND%20OR%20NOT",
        "pool:title",
        "%F0%9F%94%A5",
    ] {
        let page = app.get(&format!("/search?q={raw}"), Some(&rita)).await;
        assert_eq!(page.status, StatusCode::OK, "{raw}: {}", page.body);
    }
    // Operators are plain words: `"pool` still finds the pool.
    let quoted = app.get("/search?q=%22pool", Some(&rita)).await;
    assert_eq!(results(&quoted.body), 2);
}

#[tokio::test]
async fn snippets_highlight_without_letting_markup_through() {
    let (app, rita) = fixture().await;
    let page = app.get("/search?q=zeppelin", Some(&rita)).await;
    assert!(page.body.contains("<mark>zeppelin</mark>"));
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>alert"));
    // Searching for the markup itself highlights the words, never the tags.
    let page = app.get("/search?q=%3Cscript%3Ealert", Some(&rita)).await;
    assert_eq!(results(&page.body), 1);
    assert!(
        page.body
            .contains("&lt;<mark>script</mark>&gt;<mark>alert</mark>"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn the_header_search_box_goes_to_search_and_the_list_filter_still_works() {
    let (app, rita) = fixture().await;
    let page = app.get("/incidents", Some(&rita)).await;
    assert!(
        page.body
            .contains("<form class=\"search\" action=\"/search\"")
    );
    let list = app.get("/incidents?q=pool", Some(&rita)).await;
    assert!(list.body.contains("2 incidents"));
}

#[tokio::test]
async fn edits_and_deletions_reach_the_index() {
    let (app, rita) = fixture().await;
    let token = app.token(&rita, Scope::Write).await;
    let incident = app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&token), None)
        .await
        .json();
    let entry = incident["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .find(|e| e["body"].as_str().is_some_and(|b| b.contains("zeppelin")))
        .expect("the entry")
        .clone();
    app.api(
        Method::PATCH,
        &format!("/api/v1/timeline/{}", entry["id"].as_str().expect("id")),
        Some(&token),
        Some(json!({"version": entry["version"], "body": "Rolled back the blimp release"})),
    )
    .await
    .assert_status(StatusCode::OK);
    assert_eq!(
        results(&app.get("/search?q=zeppelin", Some(&rita)).await.body),
        0
    );
    assert_eq!(
        results(&app.get("/search?q=blimp", Some(&rita)).await.body),
        1
    );
    app.api(
        Method::DELETE,
        &format!("/api/v1/timeline/{}", entry["id"].as_str().expect("id")),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        results(&app.get("/search?q=blimp", Some(&rita)).await.body),
        0
    );
}

#[tokio::test]
async fn snippets_show_the_words_of_markdown_not_its_syntax() {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    let rita = app.user(Role::Responder).await;
    let token = app.token(&rita, Scope::Write).await;
    app.declare(
        &token,
        json!({"title": "Checkout returns 502", "severity": "sev1", "service": "checkout", "category": "deploy"}),
    )
    .await;
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/timeline",
        Some(&token),
        Some(json!({"kind": "action",
            "body": "Action item **Add a saturation alert \\(in\\-use connections\\)** created"})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let page = app.get("/search?q=saturation", Some(&rita)).await;
    page.assert_status(StatusCode::OK);
    assert!(
        page.body
            .contains("Add a <mark>saturation</mark> alert (in-use connections) created"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("**Add"),
        "no Markdown syntax in the snippet"
    );
}
