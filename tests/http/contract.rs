//! The API contract a client generated from `/api/openapi.json` relies on: the description
//! admits valid edits, documents every status the API answers, links only to what exists, and
//! states the bounds the server enforces; every bad query, path or body answers the JSON error
//! naming the field; empty values and dates outside 2000–2100 are refused.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use hindsight::auth::{Role, Scope};
use serde_json::{Value, json};

use crate::common::{HOST, TestApp};

async fn app_with_incident() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    app.service("checkout", "").await;
    let admin = app.user(Role::Admin).await;
    let token = app.token(&admin, Scope::Write).await;
    app.declare(&token, json!({"title": "Checkout down", "severity": "sev1", "service": "checkout", "category": "deploy", "started_at": "2026-11-20T10:00:00Z"})).await;
    (app, token)
}

async fn spec(app: &TestApp) -> Value {
    let response = app.get("/api/openapi.json", None).await;
    response.assert_status(StatusCode::OK);
    response.json()
}

/// Resolves a local `$ref`.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(pointer) => spec
            .pointer(pointer.trim_start_matches('#'))
            .unwrap_or(&Value::Null),
        None => schema,
    }
}

fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if method != "parameters" {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// Asserts an API answer is the JSON error naming `field`, with `status`.
#[track_caller]
fn assert_field_error(response: &crate::common::TestResponse, status: StatusCode, field: &str) {
    assert_eq!(response.status, status, "body: {}", response.body);
    assert!(
        response
            .header("content-type")
            .starts_with("application/json"),
        "a JSON error, not {}: {}",
        response.header("content-type"),
        response.body
    );
    let body = response.json();
    assert!(
        body["error"]["fields"][field].is_string(),
        "the error names {field}: {body}"
    );
}

#[tokio::test]
async fn the_described_patch_bodies_admit_an_edit_that_carries_its_version() {
    let app = TestApp::spawn().await;
    let spec = spec(&app).await;
    for (path, field) in [
        ("/api/v1/incidents/{incident}", "title"),
        ("/api/v1/timeline/{id}", "body"),
        ("/api/v1/action-items/{id}", "title"),
    ] {
        let schema = resolve(
            &spec,
            &spec["paths"][path]["patch"]["requestBody"]["content"]["application/json"]["schema"],
        );
        // One object: `version` is one of its properties and required, and nothing else is
        // allowed. (It was an allOf whose first part forbade `version` and whose second
        // required it, so no body was valid.)
        assert!(schema.get("allOf").is_none(), "{path}: {schema}");
        assert_eq!(schema["additionalProperties"], json!(false), "{path}");
        assert!(
            schema["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!("version"))),
            "{path} requires version"
        );
        assert_eq!(schema["properties"]["version"]["type"], "integer", "{path}");
        assert!(
            schema["properties"][field].is_object(),
            "{path} has {field}"
        );
    }
}

#[tokio::test]
async fn every_status_the_api_answers_is_described() {
    let (app, write) = app_with_incident().await;
    let spec = spec(&app).await;
    for (method, path, op) in operations(&spec) {
        let responses = &op["responses"];
        for status in ["401", "403", "422"] {
            assert!(
                responses[status].is_object(),
                "{method} {path} documents {status}"
            );
        }
        if op.get("requestBody").is_some() {
            for status in ["400", "413", "415"] {
                assert!(
                    responses[status].is_object(),
                    "{method} {path} documents {status}"
                );
            }
        }
    }

    // And the app answers those codes where the issue found them undocumented.
    let no_type = Request::post("/api/v1/services")
        .header(header::HOST, HOST)
        .header(header::AUTHORIZATION, format!("Bearer {write}"))
        .body(Body::from(r#"{"name":"search"}"#))
        .expect("request");
    let response = app.send(no_type).await;
    assert_eq!(response.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(spec["paths"]["/api/v1/services"]["post"]["responses"]["415"].is_object());

    let malformed = Request::post("/api/v1/categories")
        .header(header::HOST, HOST)
        .header(header::AUTHORIZATION, format!("Bearer {write}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"name\":"))
        .expect("request");
    assert_eq!(app.send(malformed).await.status, StatusCode::BAD_REQUEST);
    assert!(spec["paths"]["/api/v1/categories"]["post"]["responses"]["400"].is_object());

    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/postmortem",
        Some(&write),
        Some(json!({})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let revision = app
        .api(
            Method::GET,
            "/api/v1/incidents/INC-1/postmortem/revisions/99999999999999999999",
            Some(&write),
            None,
        )
        .await;
    assert_eq!(revision.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        spec["paths"]["/api/v1/incidents/{incident}/postmortem/revisions/{version}"]["get"]
            ["responses"]["422"]
            .is_object()
    );

    let responder = app.user(Role::Responder).await;
    let ingest = app.token(&responder, Scope::Ingest).await;
    let report = app
        .api(Method::GET, "/api/v1/reports/weekly", Some(&ingest), None)
        .await;
    assert_eq!(report.status, StatusCode::FORBIDDEN);
    assert!(spec["paths"]["/api/v1/reports/weekly"]["get"]["responses"]["403"].is_object());
}

#[tokio::test]
async fn links_lead_only_to_what_a_new_resource_has() {
    let (app, write) = app_with_incident().await;
    let spec = spec(&app).await;
    let ids: Vec<String> = operations(&spec)
        .iter()
        .filter_map(|(_, _, op)| op["operationId"].as_str().map(str::to_owned))
        .collect();
    let created = &spec["paths"]["/api/v1/incidents"]["post"]["responses"]["201"]["links"];
    let created = created.as_object().expect("createIncident has links");
    for link in created.values() {
        let target = link["operationId"].as_str().expect("operationId");
        assert!(ids.iter().any(|id| id == target), "{target} exists");
        // A new incident has no post-mortem: a link there answers 404 for every new incident.
        assert_ne!(target, "getPostmortem");
        assert_ne!(target, "getPostmortemMarkdown");
    }
    assert!(created.values().any(|l| l["operationId"] == "getIncident"));
    let started = &spec["paths"]["/api/v1/incidents/{incident}/postmortem"]["post"]["responses"]["201"]
        ["links"];
    assert!(
        started
            .as_object()
            .is_some_and(|l| l.values().any(|l| l["operationId"] == "getPostmortem"))
    );
    // Followed on a new incident, the getIncident link answers.
    let incident = app.declare(&write, json!({"title": "Search slow", "severity": "sev3", "service": "checkout", "category": "capacity"})).await;
    let number = incident["number"].as_str().expect("number");
    app.api(
        Method::GET,
        &format!("/api/v1/incidents/{number}"),
        Some(&write),
        None,
    )
    .await
    .assert_status(StatusCode::OK);
}

#[tokio::test]
async fn a_bad_query_string_answers_the_json_error_naming_the_parameter() {
    let (app, write) = app_with_incident().await;
    for path in [
        "/api/v1/incidents?status=open&status=all",
        "/api/v1/action-items?status=open&status=done",
    ] {
        let response = app.api(Method::GET, path, Some(&write), None).await;
        assert_field_error(&response, StatusCode::UNPROCESSABLE_ENTITY, "status");
    }
    let response = app
        .api(
            Method::GET,
            "/api/v1/reports/weekly?week=2026-W47&week=2026-W48",
            Some(&write),
            None,
        )
        .await;
    assert_field_error(&response, StatusCode::UNPROCESSABLE_ENTITY, "week");
}

#[tokio::test]
async fn an_empty_query_value_is_an_error_not_no_filter() {
    let (app, write) = app_with_incident().await;
    for (path, field) in [
        ("/api/v1/reports/weekly?week=", "week"),
        ("/api/v1/reports/weekly.csv?week=&team=Payments", "week"),
        ("/api/v1/incidents?status=", "status"),
        ("/api/v1/incidents?status=open&service=", "service"),
        ("/api/v1/action-items?owner=", "owner"),
    ] {
        let response = app.api(Method::GET, path, Some(&write), None).await;
        assert_field_error(&response, StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    // Left out, the parameter means no filter, as before.
    app.api(Method::GET, "/api/v1/incidents", Some(&write), None)
        .await
        .assert_status(StatusCode::OK);
    app.api(Method::GET, "/api/v1/reports/weekly", Some(&write), None)
        .await
        .assert_status(StatusCode::OK);
}

#[tokio::test]
async fn a_null_time_is_refused_not_stored_as_now() {
    let (app, write) = app_with_incident().await;
    let before = app.count("timeline_entries").await;
    for body in [
        json!({"occurred_at": null, "body": "Rolled back"}),
        json!({"occurred_at": "", "body": "Rolled back"}),
    ] {
        let response = app
            .api(
                Method::POST,
                "/api/v1/incidents/INC-1/timeline",
                Some(&write),
                Some(body),
            )
            .await;
        assert_field_error(&response, StatusCode::UNPROCESSABLE_ENTITY, "occurred_at");
    }
    assert_eq!(
        app.count("timeline_entries").await,
        before,
        "nothing stored"
    );
    let response = app
        .api(
            Method::POST,
            "/api/v1/incidents",
            Some(&write),
            Some(json!({"title": "x", "severity": "sev2", "service": "checkout", "category": "deploy", "started_at": null})),
        )
        .await;
    assert_field_error(&response, StatusCode::UNPROCESSABLE_ENTITY, "started_at");
    // Left out, the time is now, as documented.
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/timeline",
        Some(&write),
        Some(json!({"body": "Rolled back"})),
    )
    .await
    .assert_status(StatusCode::CREATED);
}

#[tokio::test]
async fn dates_outside_2000_to_2100_are_refused_on_every_field() {
    let (app, write) = app_with_incident().await;
    let incidents = app.count("incidents").await;
    let response = app
        .api(
            Method::POST,
            "/api/v1/incidents",
            Some(&write),
            Some(json!({"title": "Old", "severity": "sev2", "service": "checkout", "category": "deploy", "started_at": "1815-06-18T10:00:00Z"})),
        )
        .await;
    assert_field_error(&response, StatusCode::UNPROCESSABLE_ENTITY, "started_at");
    let version = app
        .api(Method::GET, "/api/v1/incidents/INC-1", Some(&write), None)
        .await
        .json()["version"]
        .clone();
    let response = app
        .api(
            Method::PATCH,
            "/api/v1/incidents/INC-1",
            Some(&write),
            Some(json!({"version": version, "resolved_at": "2592-01-01T00:00:00Z"})),
        )
        .await;
    assert_field_error(&response, StatusCode::UNPROCESSABLE_ENTITY, "resolved_at");
    let response = app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/timeline",
            Some(&write),
            Some(json!({"occurred_at": "1999-12-31T23:59:00Z", "body": "Early"})),
        )
        .await;
    assert_field_error(&response, StatusCode::UNPROCESSABLE_ENTITY, "occurred_at");
    let response = app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/action-items",
            Some(&write),
            Some(json!({"title": "Add a canary", "due_on": "0020-03-01"})),
        )
        .await;
    assert_field_error(&response, StatusCode::UNPROCESSABLE_ENTITY, "due_on");
    for path in [
        "/api/v1/reports/weekly?week=1999-W10",
        "/api/v1/incidents?since=1815-01-01",
    ] {
        let response = app.api(Method::GET, path, Some(&write), None).await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            response.body
        );
    }
    assert_eq!(app.count("incidents").await, incidents, "nothing stored");
    // The page's form refuses it too, with the message next to the field.
    let responder = app.user(Role::Responder).await;
    let page = app
        .post_form(
            "/incidents",
            Some(&responder),
            &[
                ("title", "Old"),
                ("severity", "sev2"),
                ("service", "checkout"),
                ("category", "deploy"),
                ("started_at", "1815-06-18T10:00"),
            ],
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert!(page.body.contains("must be between 2000 and 2100"));
    // The edges are accepted.
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/action-items",
        Some(&write),
        Some(json!({"title": "Add a canary", "due_on": "2100-12-31"})),
    )
    .await
    .assert_status(StatusCode::CREATED);
}

#[tokio::test]
async fn the_description_states_the_bounds_the_server_enforces() {
    let app = TestApp::spawn().await;
    let spec = spec(&app).await;
    let create = resolve(
        &spec,
        &spec["paths"]["/api/v1/incidents"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"],
    )
    .clone();
    for field in ["title", "severity", "service", "category"] {
        assert!(
            create["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!(field))),
            "{field} is required"
        );
    }
    assert_eq!(create["properties"]["title"]["minLength"], 1);
    assert!(create["properties"]["severity"]["enum"].is_array());
    for field in ["started_at", "resolved_at"] {
        let pattern = create["properties"][field]["pattern"]
            .as_str()
            .unwrap_or_default();
        assert!(pattern.contains("2100"), "{field} is bounded: {pattern}");
    }
    let item = resolve(
        &spec,
        &spec["paths"]["/api/v1/incidents/{incident}/action-items"]["post"]["requestBody"]["content"]
            ["application/json"]["schema"],
    );
    assert!(
        item["properties"]["due_on"]["pattern"]
            .as_str()
            .is_some_and(|p| p.contains("2100"))
    );
    let week = spec["paths"]["/api/v1/reports/weekly"]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "week"))
        .cloned()
        .unwrap_or_default();
    assert!(
        week["schema"]["pattern"]
            .as_str()
            .is_some_and(|p| p.contains("2100"))
    );
    let rule = &spec["components"]["schemas"]["AlertRuleInput"]["properties"];
    assert_eq!(rule["for_secs"]["maximum"], 86400);
    assert_eq!(rule["min_samples"]["minimum"], 1);
}

#[tokio::test]
async fn a_saturation_beyond_the_collector_range_is_a_field_error_the_description_states() {
    let (app, _) = app_with_incident().await;
    let spec = spec(&app).await;
    assert_eq!(
        spec["components"]["schemas"]["EventBatch"]["properties"]["saturation"]["maximum"],
        json!(1e15)
    );
    let pusher = app.user(Role::Responder).await;
    let ingest = app.token(&pusher, Scope::Ingest).await;
    let response = app
        .api(
            Method::POST,
            "/api/v1/metrics/events",
            Some(&ingest),
            Some(json!({"service": "checkout", "saturation": 2.6e15})),
        )
        .await;
    // It was a 400 without a field ("saturation must be a finite number between 0 and 1e15").
    assert_field_error(&response, StatusCode::UNPROCESSABLE_ENTITY, "saturation");
}
