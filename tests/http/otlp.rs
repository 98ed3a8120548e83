//! OpenTelemetry traces in over OTLP/HTTP: protobuf (plain and gzip) and OTLP/JSON exports
//! become the service's window; bad payloads, wrong tokens and wrong content types are refused
//! whole with the OTLP error answer; kinds and the attribute filter choose the spans.

use std::io::Write as _;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Any};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message as _;
use serde_json::{Value, json};
use tower::ServiceExt;

use hindsight::auth::{Role, Scope};

use crate::common::{HOST, TestApp};

struct Raw {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

async fn post(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    gzip: bool,
    body: Vec<u8>,
) -> Raw {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, content_type);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = if gzip {
        req = req.header(header::CONTENT_ENCODING, "gzip");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&body).expect("gzip");
        enc.finish().expect("gzip")
    } else {
        body
    };
    let response = app
        .router
        .clone()
        .oneshot(req.body(Body::from(body)).expect("request"))
        .await
        .expect("infallible router");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Raw {
        status,
        headers,
        body,
    }
}

fn now_ns() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_nanos_opt().expect("in range")).expect("after 1970")
}

fn kv(key: &str, value: Any) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// A span of `ms` milliseconds that ended a second ago.
fn span(kind: SpanKind, ms: u64, error: bool, attributes: Vec<KeyValue>) -> Span {
    let end = now_ns() - 1_000_000_000;
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "GET /things".into(),
        kind: kind as i32,
        start_time_unix_nano: end - ms * 1_000_000,
        end_time_unix_nano: end,
        attributes,
        status: error.then(|| Status {
            code: SpanStatus::Error as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn export(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", Any::StringValue(service.into()))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn tokens(app: &TestApp) -> (String, String) {
    let admin = app.user(Role::Admin).await;
    (
        app.token(&admin, Scope::Ingest).await,
        app.token(&admin, Scope::Read).await,
    )
}

async fn window(app: &TestApp, read: &str, service: &str) -> Option<Value> {
    let response = app
        .api(
            Method::GET,
            &format!("/api/v1/metrics/services/{service}"),
            Some(read),
            None,
        )
        .await;
    (response.status == StatusCode::OK).then(|| response.json())
}

/// 1..=1000 ms in a scrambled order, every 100th an error (half by span status, half by an
/// HTTP 5xx attribute), plus client and internal spans that must not count.
fn known_spans() -> Vec<Span> {
    let mut spans: Vec<Span> = (0..1000u64)
        .map(|i| (i * 7919) % 1000 + 1)
        .map(|ms| match ms % 200 {
            0 => span(SpanKind::Server, ms, true, vec![]),
            100 => span(
                SpanKind::Consumer,
                ms,
                false,
                vec![kv("http.response.status_code", Any::IntValue(503))],
            ),
            _ => span(
                SpanKind::Server,
                ms,
                false,
                vec![kv("http.status_code", Any::IntValue(200))],
            ),
        })
        .collect();
    spans.push(span(SpanKind::Client, 5000, true, vec![]));
    spans.push(span(SpanKind::Internal, 5000, true, vec![]));
    spans
}

fn assert_known_window(body: &Value) {
    assert_eq!(body["count"], 1000, "{body}");
    assert_eq!(body["errors"], 10);
    let latency = &body["latency_ms"];
    assert_eq!(latency["min"], 1.0);
    assert_eq!(latency["p50"], 500.0);
    assert_eq!(latency["p90"], 900.0);
    assert_eq!(latency["p99"], 990.0);
    assert_eq!(latency["p999"], 999.0);
    assert_eq!(latency["max"], 1000.0);
}

#[tokio::test]
async fn protobuf_spans_become_the_services_window_with_exact_quantiles() {
    let app = TestApp::spawn().await;
    let (ingest, read) = tokens(&app).await;
    let spans = known_spans();
    for (i, chunk) in spans.chunks(334).enumerate() {
        // Half the requests gzipped, as collectors send them by default.
        let body = export("checkout", chunk.to_vec()).encode_to_vec();
        let r = post(
            &app,
            "/v1/traces",
            Some(&ingest),
            "application/x-protobuf",
            i % 2 == 0,
            body,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers[header::CONTENT_TYPE], "application/x-protobuf");
        let answer = ExportTraceServiceResponse::decode(r.body.as_slice()).expect("response");
        assert_eq!(answer.partial_success, None);
    }
    assert_known_window(&window(&app, &read, "checkout").await.expect("window"));
}

#[tokio::test]
async fn otlp_json_with_hex_ids_and_string_times_is_accepted_under_the_api_path() {
    let app = TestApp::spawn().await;
    let (ingest, read) = tokens(&app).await;
    let end = now_ns() - 1_000_000_000;
    let spans: Vec<Value> = (1..=100u64)
        .map(|ms| {
            json!({
                "traceId": "5b8efff798038103d269b633813fc60c",
                "spanId": "eee19b7ec3c1b174",
                "name": "POST /pay",
                "kind": 2,
                "startTimeUnixNano": (end - ms * 1_000_000).to_string(),
                "endTimeUnixNano": end.to_string(),
                "attributes": [{"key": "http.response.status_code", "value": {"intValue": if ms % 10 == 0 { "500" } else { "200" }}}],
                "status": {"code": if ms == 1 { 2 } else { 0 }}
            })
        })
        .collect();
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "payments"}}]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]
    }]});
    let r = post(
        &app,
        "/api/v1/otlp/v1/traces",
        Some(&ingest),
        "application/json",
        false,
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/json");
    let answer: Value = serde_json::from_slice(&r.body).expect("JSON answer");
    assert!(
        answer.get("partialSuccess").is_none_or(Value::is_null),
        "{answer}"
    );
    let w = window(&app, &read, "payments").await.expect("window");
    assert_eq!(w["count"], 100);
    assert_eq!(w["errors"], 11);
    assert_eq!(w["latency_ms"]["p50"], 50.0);
    assert_eq!(w["latency_ms"]["p99"], 99.0);
}

#[tokio::test]
async fn bad_payloads_get_400_with_a_status_and_nothing_is_recorded() {
    let app = TestApp::spawn().await;
    let (ingest, read) = tokens(&app).await;
    let good = export("orders", vec![span(SpanKind::Server, 5, false, vec![])]).encode_to_vec();
    let mut truncated = export(
        "orders",
        (1..=50)
            .map(|ms| span(SpanKind::Server, ms, false, vec![]))
            .collect(),
    )
    .encode_to_vec();
    truncated.truncate(truncated.len() - 7);
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("application/x-protobuf", truncated, false),
        ("application/x-protobuf", b"\xff\xff\xff\xff".to_vec(), false),
        // Claims gzip but is not.
        ("application/x-protobuf", good.clone(), true),
        ("application/json", b"{\"resourceSpans\": [".to_vec(), false),
        (
            "application/json",
            json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "not-hex", "kind": 2}]}]}]})
                .to_string()
                .into_bytes(),
            false,
        ),
    ];
    for (i, (content_type, body, lie_about_gzip)) in cases.into_iter().enumerate() {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/v1/traces")
            .header(header::HOST, HOST)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::AUTHORIZATION, format!("Bearer {ingest}"));
        if lie_about_gzip {
            req = req.header(header::CONTENT_ENCODING, "gzip");
        }
        let response = app
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).expect("request"))
            .await
            .expect("router");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "case {i}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            content_type,
            "case {i}"
        );
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let message = if content_type == "application/json" {
            let status: Value = serde_json::from_slice(&bytes).expect("JSON status");
            assert_eq!(status["code"], 3, "case {i}");
            status["message"].as_str().expect("message").to_owned()
        } else {
            let status =
                hindsight::signals::otlp::RpcStatus::decode(bytes.as_ref()).expect("Status");
            assert_eq!(status.code, 3, "case {i}");
            status.message
        };
        assert!(!message.is_empty(), "case {i}");
    }
    assert!(
        window(&app, &read, "orders").await.is_none(),
        "nothing recorded"
    );
}

#[tokio::test]
async fn tokens_content_types_and_sizes_are_checked_before_anything_is_read() {
    let app = TestApp::spawn_with(&[("HINDSIGHT_MAX_BODY_BYTES", "4096")]).await;
    let (ingest, read) = tokens(&app).await;
    let body = export("orders", vec![span(SpanKind::Server, 5, false, vec![])]).encode_to_vec();
    let pb = "application/x-protobuf";
    let r = post(&app, "/v1/traces", Some(&read), pb, false, body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let status = hindsight::signals::otlp::RpcStatus::decode(r.body.as_slice()).expect("Status");
    assert!(
        status.message.contains("ingest token"),
        "{}",
        status.message
    );
    let r = post(&app, "/v1/traces", None, pb, false, body.clone()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
    let r = post(
        &app,
        "/v1/traces",
        Some("hs_nonsense"),
        pb,
        false,
        body.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = post(
        &app,
        "/v1/traces",
        Some(&ingest),
        "text/plain",
        false,
        body.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Over the body limit as sent, and over the inflated limit (8×) once gunzipped.
    let big = export(
        "orders",
        (0..200)
            .map(|ms| span(SpanKind::Server, ms, false, vec![]))
            .collect(),
    )
    .encode_to_vec();
    assert!(big.len() > 4096);
    let r = post(&app, "/v1/traces", Some(&ingest), pb, false, big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let mut padded = export("orders", vec![span(SpanKind::Server, 5, false, vec![])]);
    padded.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(40_000);
    let r = post(
        &app,
        "/v1/traces",
        Some(&ingest),
        pb,
        true,
        padded.encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        window(&app, &read, "orders").await.is_none(),
        "nothing recorded"
    );
}

#[tokio::test]
async fn kinds_and_the_attribute_filter_choose_the_spans_that_count() {
    let app = TestApp::spawn_with(&[
        ("HINDSIGHT_OTLP_SPAN_KINDS", "server,client"),
        (
            "HINDSIGHT_OTLP_ATTRIBUTE_FILTER",
            "deployment.environment=production",
        ),
    ])
    .await;
    let (ingest, read) = tokens(&app).await;
    let prod = || {
        vec![kv(
            "deployment.environment",
            Any::StringValue("production".into()),
        )]
    };
    let staging = || {
        vec![kv(
            "deployment.environment",
            Any::StringValue("staging".into()),
        )]
    };
    let spans = vec![
        span(SpanKind::Server, 10, false, prod()),
        span(SpanKind::Client, 20, true, prod()),
        span(SpanKind::Consumer, 30, false, prod()),
        span(SpanKind::Server, 40, false, staging()),
        span(SpanKind::Server, 50, false, vec![]),
    ];
    let r = post(
        &app,
        "/v1/traces",
        Some(&ingest),
        "application/x-protobuf",
        false,
        export("search", spans).encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let w = window(&app, &read, "search").await.expect("window");
    assert_eq!(w["count"], 2);
    assert_eq!(w["errors"], 1);
    assert_eq!(w["latency_ms"]["max"], 20.0);
    // The filter also matches on the resource: then every span of it counts.
    let mut on_resource = export("search", vec![span(SpanKind::Server, 60, false, vec![])]);
    on_resource.resource_spans[0]
        .resource
        .as_mut()
        .expect("resource")
        .attributes
        .extend(prod());
    let r = post(
        &app,
        "/v1/traces",
        Some(&ingest),
        "application/x-protobuf",
        false,
        on_resource.encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        window(&app, &read, "search").await.expect("window")["count"],
        3
    );
}

#[tokio::test]
async fn spans_that_cannot_be_recorded_are_a_partial_success() {
    let app = TestApp::spawn_with(&[("HINDSIGHT_METRICS_AUTO_CREATE", "false")]).await;
    let (ingest, read) = tokens(&app).await;
    app.service("listed", "core").await;
    let mut request = export("listed", vec![span(SpanKind::Server, 5, false, vec![])]);
    // A service not on the list (pushes may not add services here), a resource without a
    // service.name, and a span that ends before it starts.
    request.resource_spans.extend(
        export(
            "unlisted",
            vec![span(SpanKind::Server, 5, false, vec![]); 3],
        )
        .resource_spans,
    );
    let mut nameless = export("x", vec![span(SpanKind::Server, 5, false, vec![])]);
    nameless.resource_spans[0].resource = None;
    request.resource_spans.extend(nameless.resource_spans);
    let mut backwards = span(SpanKind::Server, 5, false, vec![]);
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1;
    request.resource_spans[0].scope_spans[0]
        .spans
        .push(backwards);
    let r = post(
        &app,
        "/v1/traces",
        Some(&ingest),
        "application/x-protobuf",
        false,
        request.encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let answer = ExportTraceServiceResponse::decode(r.body.as_slice()).expect("response");
    let partial = answer.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 5);
    assert!(
        partial.error_message.contains("service.name"),
        "{}",
        partial.error_message
    );
    assert!(
        partial.error_message.contains("unlisted"),
        "{}",
        partial.error_message
    );
    assert_eq!(
        window(&app, &read, "listed").await.expect("window")["count"],
        1
    );
    assert!(window(&app, &read, "unlisted").await.is_none());
}

#[tokio::test]
async fn exports_beyond_the_concurrency_bound_get_429_with_retry_after_and_nothing_recorded() {
    let app = TestApp::spawn().await;
    let (ingest, read) = tokens(&app).await;
    // Every slot taken, as by exports still being decoded.
    let held = app
        .state
        .signals
        .otlp_slots
        .try_acquire_many(u32::try_from(hindsight::signals::OTLP_CONCURRENT_EXPORTS).expect("fits"))
        .expect("all slots");
    let body = export("checkout", known_spans()[..10].to_vec()).encode_to_vec();
    let busy = post(
        &app,
        "/v1/traces",
        Some(&ingest),
        "application/x-protobuf",
        false,
        body.clone(),
    )
    .await;
    assert_eq!(busy.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(busy.headers[header::RETRY_AFTER], "5");
    assert_eq!(busy.headers[header::CONTENT_TYPE], "application/x-protobuf");
    assert!(
        window(&app, &read, "checkout").await.is_none(),
        "nothing recorded"
    );
    // Once an export finishes, the retry goes through.
    drop(held);
    let retried = post(
        &app,
        "/v1/traces",
        Some(&ingest),
        "application/x-protobuf",
        false,
        body,
    )
    .await;
    assert_eq!(retried.status, StatusCode::OK);
    assert!(window(&app, &read, "checkout").await.is_some());
}
