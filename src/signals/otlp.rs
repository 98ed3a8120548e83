//! OpenTelemetry traces in (OTLP/HTTP): decoding an export request (protobuf, optionally
//! gzipped, or OTLP/JSON) with the maintained `opentelemetry-proto` types, turning the spans
//! that count (server and consumer by default) into collector events of the service named by
//! their `service.name` resource attribute, and recording them.

use std::collections::BTreeMap;
use std::io::Read as _;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use prost::Message as _;

use super::{SELF_SERVICE, Signals, WRITES_SERVICE};
use crate::metrics::{Event, MetricsError, ServiceName};

/// How far in the future a span may end (clock skew between hosts), as for pushed events.
const MAX_SKEW_MS: u64 = 60_000;

/// Which spans become events: their kinds, and optionally one attribute that must have a
/// given value (on the span or its resource).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpRules {
    kinds: Vec<SpanKind>,
    filter: Option<(String, String)>,
}

impl Default for OtlpRules {
    fn default() -> Self {
        Self {
            kinds: vec![SpanKind::Server, SpanKind::Consumer],
            filter: None,
        }
    }
}

impl OtlpRules {
    /// Parses `HINDSIGHT_OTLP_SPAN_KINDS` (comma-separated: server, consumer, client, producer,
    /// internal) and `HINDSIGHT_OTLP_ATTRIBUTE_FILTER` (`key=value`, empty for none).
    pub fn parse(kinds: &str, filter: &str) -> Result<Self, String> {
        let mut parsed = Vec::new();
        for raw in kinds.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let kind = match raw.to_ascii_lowercase().as_str() {
                "server" => SpanKind::Server,
                "consumer" => SpanKind::Consumer,
                "client" => SpanKind::Client,
                "producer" => SpanKind::Producer,
                "internal" => SpanKind::Internal,
                _ => {
                    return Err(format!(
                        "unknown span kind {raw:?}: use server, consumer, client, producer or internal"
                    ));
                }
            };
            if !parsed.contains(&kind) {
                parsed.push(kind);
            }
        }
        if parsed.is_empty() {
            return Err("name at least one span kind".into());
        }
        let filter = match filter.trim() {
            "" => None,
            f => match f.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    Some((k.trim().to_owned(), v.trim().to_owned()))
                }
                _ => return Err("must look like key=value".into()),
            },
        };
        Ok(Self {
            kinds: parsed,
            filter,
        })
    }

    fn counts_kind(&self, kind: i32) -> bool {
        self.kinds.iter().any(|k| *k as i32 == kind)
    }
}

/// How the request body is encoded (and the answer must be).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The encoding of a `Content-Type`, or `None` for one OTLP/HTTP does not define.
    pub fn from_content_type(value: &str) -> Option<Self> {
        let essence = value.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Self::Protobuf)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(Self::Json)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// Why a request was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Over the size limit once decompressed (413).
    TooLarge(usize),
    /// Not a valid export request (400).
    Invalid(String),
}

/// Gunzips `body` when `gzip`, refusing to inflate past `limit` bytes (a small gzip bomb
/// must not take the memory a large body could not).
pub fn inflate(body: &[u8], gzip: bool, limit: usize) -> Result<Vec<u8>, DecodeError> {
    if !gzip {
        return Ok(body.to_vec());
    }
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    let mut decoder =
        flate2::read::GzDecoder::new(body).take(u64::try_from(limit).unwrap_or(u64::MAX) + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Invalid(format!("the gzip body could not be read: {e}")))?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge(limit));
    }
    Ok(out)
}

/// Decodes a whole export request; nothing is recorded from a request that fails here.
pub fn decode(encoding: Encoding, body: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body).map_err(|e| {
            DecodeError::Invalid(format!("not an OTLP ExportTraceServiceRequest: {e}"))
        }),
        Encoding::Json => serde_json::from_slice(body).map_err(|e| {
            DecodeError::Invalid(format!("not an OTLP/JSON ExportTraceServiceRequest: {e}"))
        }),
    }
}

/// The events of one request, grouped by service, and the spans that were refused.
#[derive(Debug, Default)]
pub struct Converted {
    pub services: BTreeMap<String, Vec<Event>>,
    pub rejected: i64,
    /// The first few reasons, for the partial-success message.
    pub reasons: Vec<String>,
}

impl Converted {
    fn reject(&mut self, n: usize, reason: impl FnOnce() -> String) {
        self.rejected = self
            .rejected
            .saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
        if self.reasons.len() < 3 {
            let reason = reason();
            if !self.reasons.contains(&reason) {
                self.reasons.push(reason);
            }
        }
    }
}

fn string_value(value: Option<&AnyValue>) -> Option<String> {
    match value?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        any_value::Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

fn http_status(attributes: &[KeyValue]) -> Option<i64> {
    ["http.response.status_code", "http.status_code"]
        .iter()
        .find_map(|key| match attribute(attributes, key)?.value.as_ref()? {
            any_value::Value::IntValue(i) => Some(*i),
            any_value::Value::StringValue(s) => s.trim().parse().ok(),
            any_value::Value::DoubleValue(d) => Some(*d as i64),
            _ => None,
        })
}

/// Turns the spans that count into events. Spans of other kinds, or that the attribute filter
/// leaves out, are ignored (accepted, not counted); spans that count but cannot be recorded
/// (no or an invalid `service.name`, end before start, outside the window) are rejected.
pub fn convert(
    request: &ExportTraceServiceRequest,
    rules: &OtlpRules,
    now_ms: u64,
    window_ms: u64,
) -> Converted {
    let mut out = Converted::default();
    for resource_spans in &request.resource_spans {
        let resource_attrs: &[KeyValue] = resource_spans
            .resource
            .as_ref()
            .map_or(&[], |r| r.attributes.as_slice());
        let resource_match = rules.filter.as_ref().map(|(k, v)| {
            string_value(attribute(resource_attrs, k)).is_some_and(|found| &found == v)
        });
        let service = string_value(attribute(resource_attrs, "service.name"));
        let service = service
            .as_deref()
            .map(|name| match ServiceName::parse(name.trim()) {
                Ok(n) if n.as_str() == SELF_SERVICE || n.as_str() == WRITES_SERVICE => {
                    Err(format!(
                        "service.name {:?} is reserved for Hindsight's own traffic",
                        n.as_str()
                    ))
                }
                Ok(n) => Ok(n.as_str().to_owned()),
                Err(e) => Err(format!("service.name: {e}")),
            });
        let mut events = Vec::new();
        for scope in &resource_spans.scope_spans {
            for span in &scope.spans {
                if !rules.counts_kind(span.kind) {
                    continue;
                }
                if let (Some(false), Some((k, v))) = (resource_match, &rules.filter)
                    && string_value(attribute(&span.attributes, k)).as_deref() != Some(v.as_str())
                {
                    continue;
                }
                if span.end_time_unix_nano < span.start_time_unix_nano
                    || span.start_time_unix_nano == 0
                {
                    out.reject(1, || {
                        "spans need a start time and an end time at or after it".to_owned()
                    });
                    continue;
                }
                let at_ms = span.end_time_unix_nano / 1_000_000;
                if at_ms > now_ms + MAX_SKEW_MS {
                    out.reject(1, || {
                        "spans ending more than a minute in the future".to_owned()
                    });
                    continue;
                }
                if at_ms + window_ms < now_ms {
                    out.reject(1, || {
                        "spans that ended before the collector's time window".to_owned()
                    });
                    continue;
                }
                let duration_ns = span.end_time_unix_nano - span.start_time_unix_nano;
                // Microseconds, rounded to nearest, like the events API.
                let latency_us = duration_ns.saturating_add(500) / 1000;
                let error = span
                    .status
                    .as_ref()
                    .is_some_and(|s| s.code == SpanStatus::Error as i32)
                    || http_status(&span.attributes).is_some_and(|code| code >= 500);
                events.push(Event {
                    latency_us,
                    ok: !error,
                    at_ms,
                });
            }
        }
        if events.is_empty() {
            continue;
        }
        match service {
            Some(Ok(name)) => out.services.entry(name).or_default().extend(events),
            Some(Err(reason)) => out.reject(events.len(), || reason),
            None => out.reject(events.len(), || {
                "spans whose resource has no service.name attribute".to_owned()
            }),
        }
    }
    for events in out.services.values_mut() {
        // Recorded in time order, so the window's clock never has to clamp.
        events.sort_by_key(|e| e.at_ms);
    }
    out
}

/// Records converted spans, service by service. `admit` says whether a service may get
/// events (the same rule as pushed events); refused services' spans are counted as rejected.
/// Returns the answer for the exporter.
pub fn record(
    signals: &Signals,
    mut converted: Converted,
    admit: impl Fn(&str) -> Result<(), String>,
) -> ExportTraceServiceResponse {
    let services = std::mem::take(&mut converted.services);
    for (name, events) in services {
        if let Err(reason) = admit(&name) {
            converted.reject(events.len(), || reason);
            continue;
        }
        match signals.registry.record_batch(&name, &events) {
            Ok(()) => {}
            Err(
                e
                @ (MetricsError::TooManyServices { .. } | MetricsError::InvalidServiceName { .. }),
            ) => {
                converted.reject(events.len(), || e.to_string());
            }
            Err(e) => converted.reject(events.len(), || e.to_string()),
        }
    }
    ExportTraceServiceResponse {
        partial_success: (converted.rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: converted.rejected,
            error_message: format!("rejected: {}", converted.reasons.join("; ")),
        }),
    }
}

/// The body of an answer in the request's encoding.
pub fn encode_response(encoding: Encoding, response: &ExportTraceServiceResponse) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error answer (opentelemetry-proto does not
/// ship it without tonic; these are its field numbers, derived by prost).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// gRPC codes used in error answers.
pub mod rpc_code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const UNAVAILABLE: i32 = 14;
    pub const UNAUTHENTICATED: i32 = 16;
}

/// An error answer's body in `encoding`.
pub fn encode_status(encoding: Encoding, code: i32, message: &str) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => RpcStatus {
            code,
            message: message.to_owned(),
        }
        .encode_to_vec(),
        Encoding::Json => serde_json::json!({"code": code, "message": message, "details": []})
            .to_string()
            .into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

    const NOW: u64 = 1_780_000_000_000;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn span(kind: SpanKind, ms: u64, attrs: Vec<KeyValue>, error: bool) -> Span {
        let end = NOW * 1_000_000 - 1_000_000;
        Span {
            kind: kind as i32,
            start_time_unix_nano: end - ms * 1_000_000,
            end_time_unix_nano: end,
            attributes: attrs,
            status: error.then(|| Status {
                code: SpanStatus::Error as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn request(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: resource,
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

    #[test]
    fn server_spans_become_events_with_errors_from_status_and_http_code() {
        let req = request(
            vec![kv("service.name", Value::StringValue("checkout".into()))],
            vec![
                span(SpanKind::Server, 12, vec![], false),
                span(SpanKind::Server, 5, vec![], true),
                span(
                    SpanKind::Consumer,
                    7,
                    vec![kv("http.response.status_code", Value::IntValue(503))],
                    false,
                ),
                span(SpanKind::Client, 99, vec![], true),
            ],
        );
        let out = convert(&req, &OtlpRules::default(), NOW, 300_000);
        assert_eq!(out.rejected, 0);
        let got: Vec<(u64, bool)> = out.services["checkout"]
            .iter()
            .map(|e| (e.latency_us, e.ok))
            .collect();
        assert_eq!(got, vec![(12_000, true), (5_000, false), (7_000, false)]);
    }

    #[test]
    fn the_filter_and_kinds_choose_spans_and_bad_spans_are_rejected() {
        let rules =
            OtlpRules::parse("client", "deployment.environment=production").expect("valid rules");
        let env = |v: &str| kv("deployment.environment", Value::StringValue(v.into()));
        let req = request(
            vec![kv("service.name", Value::StringValue("api".into()))],
            vec![
                span(SpanKind::Client, 1, vec![env("production")], false),
                span(SpanKind::Client, 2, vec![env("staging")], false),
                span(SpanKind::Server, 3, vec![env("production")], false),
            ],
        );
        let out = convert(&req, &rules, NOW, 300_000);
        assert_eq!(out.services["api"].len(), 1);
        let nameless = request(vec![], vec![span(SpanKind::Server, 1, vec![], false)]);
        let out = convert(&nameless, &OtlpRules::default(), NOW, 300_000);
        assert!(out.services.is_empty());
        assert_eq!(out.rejected, 1);
        assert!(OtlpRules::parse("server,bogus", "").is_err());
        assert!(OtlpRules::parse("", "").is_err());
        assert!(OtlpRules::parse("server", "novalue").is_err());
    }

    #[test]
    fn a_gzip_bomb_is_refused_past_the_limit() {
        use flate2::write::GzEncoder;
        use std::io::Write as _;
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 100_000]).expect("compress");
        let gz = enc.finish().expect("compress");
        assert_eq!(inflate(&gz, true, 1000), Err(DecodeError::TooLarge(1000)));
        assert_eq!(inflate(&gz, true, 100_000).map(|b| b.len()), Ok(100_000));
        assert!(matches!(
            inflate(b"not gzip", true, 1000),
            Err(DecodeError::Invalid(_))
        ));
    }
}
