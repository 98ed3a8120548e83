//! Prometheus as a snapshot source: the per-service PromQL queries, running them as range
//! queries against `HINDSIGHT_PROMETHEUS_URL`, and the frozen series a snapshot keeps.
//! Prometheus being slow, down or refusing a query never fails a snapshot: it becomes a note.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{AppError, FieldErrors};

/// Where Prometheus is and how to ask it. The secret is never printed (`Debug` hides it).
#[derive(Clone)]
pub struct Source {
    /// Base URL without a trailing slash, e.g. `http://prometheus:9090`.
    pub url: String,
    pub auth: Auth,
    /// How far back a snapshot's range queries reach.
    pub range_minutes: u32,
    /// Per query.
    pub timeout: Duration,
}

#[derive(Clone)]
pub enum Auth {
    None,
    Bearer(String),
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match self.auth {
            Auth::None => "none",
            Auth::Bearer(_) => "bearer (not shown)",
            Auth::Basic { .. } => "basic (not shown)",
        };
        f.debug_struct("Source")
            .field("url", &self.url)
            .field("auth", &auth)
            .field("range_minutes", &self.range_minutes)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The golden-signal queries of one service; `None` = not set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queries {
    #[serde(default)]
    pub latency_p50: Option<String>,
    #[serde(default)]
    pub latency_p90: Option<String>,
    #[serde(default)]
    pub latency_p99: Option<String>,
    #[serde(default)]
    pub error_rate: Option<String>,
    #[serde(default)]
    pub traffic: Option<String>,
    #[serde(default)]
    pub saturation: Option<String>,
}

/// The longest query accepted (Prometheus itself takes far longer ones, but a query this long
/// in a settings form is a paste gone wrong).
pub const MAX_QUERY_CHARS: usize = 4000;

impl Queries {
    /// `(signal, query)` for every query that is set, in display order.
    pub fn set(&self) -> Vec<(&'static str, &str)> {
        [
            ("latency_p50", &self.latency_p50),
            ("latency_p90", &self.latency_p90),
            ("latency_p99", &self.latency_p99),
            ("error_rate", &self.error_rate),
            ("traffic", &self.traffic),
            ("saturation", &self.saturation),
        ]
        .into_iter()
        .filter_map(|(name, q)| q.as_deref().map(|q| (name, q)))
        .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.set().is_empty()
    }

    /// Trims every query (blank = not set) and checks length and characters; every problem
    /// is named by its field.
    pub fn checked(self) -> Result<Self, AppError> {
        let mut errors = FieldErrors::new();
        let mut clean = |field: &str, q: Option<String>| -> Option<String> {
            let q = q?;
            // Characters are checked before trimming, so the rule is the one the OpenAPI
            // pattern states: no control character but tab and line breaks, anywhere.
            if q.chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
            {
                errors.insert(field.to_owned(), "contains control characters".into());
                return None;
            }
            let q = Some(q.trim().to_owned()).filter(|q| !q.is_empty())?;
            if q.chars().count() > MAX_QUERY_CHARS {
                errors.insert(
                    field.to_owned(),
                    format!("at most {MAX_QUERY_CHARS} characters"),
                );
            } else if !balanced(&q) {
                errors.insert(
                    field.to_owned(),
                    "brackets are not balanced; is this PromQL?".into(),
                );
            }
            Some(q)
        };
        let queries = Self {
            latency_p50: clean("latency_p50", self.latency_p50),
            latency_p90: clean("latency_p90", self.latency_p90),
            latency_p99: clean("latency_p99", self.latency_p99),
            error_rate: clean("error_rate", self.error_rate),
            traffic: clean("traffic", self.traffic),
            saturation: clean("saturation", self.saturation),
        };
        if errors.is_empty() {
            Ok(queries)
        } else {
            Err(AppError::fields(errors))
        }
    }
}

/// Whether (), [] and {} pair up outside string literals: catches most mangled pastes.
fn balanced(q: &str) -> bool {
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in q.chars() {
        if let Some(open) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == open {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let want = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(want) {
                    return false;
                }
            }
            _ => {}
        }
    }
    stack.is_empty() && quote.is_none()
}

/// What a snapshot froze from Prometheus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frozen {
    /// The Prometheus URL asked (without credentials).
    pub url: String,
    /// Range asked, Unix seconds.
    pub start: i64,
    pub end: i64,
    pub step_secs: i64,
    pub results: Vec<FrozenQuery>,
    /// Why some or all figures are missing (Prometheus unreachable, not configured…).
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrozenQuery {
    pub signal: String,
    pub query: String,
    pub series: Vec<Series>,
    /// Prometheus's own error for this query, or why it could not be asked.
    pub error: Option<String>,
    /// More series came back than a snapshot keeps.
    #[serde(default)]
    pub truncated: bool,
}

/// One series of a range query: labels and `[unix seconds, value]` pairs as Prometheus sent
/// them (values stay strings so `NaN` and `+Inf` survive JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub metric: BTreeMap<String, String>,
    pub values: Vec<(f64, String)>,
}

/// A snapshot keeps at most this many series per query.
pub const MAX_SERIES: usize = 20;

/// The step for about 90 points over `range_secs` (at least 1 s).
pub fn step_for(range_secs: i64) -> i64 {
    (range_secs / 90).max(1)
}

/// A frozen result when there is nothing to ask: queries set but no Prometheus configured.
pub fn not_configured(queries: &Queries, now_s: i64) -> Frozen {
    Frozen {
        url: String::new(),
        start: now_s,
        end: now_s,
        step_secs: 0,
        results: queries
            .set()
            .into_iter()
            .map(|(signal, q)| FrozenQuery {
                signal: signal.to_owned(),
                query: q.to_owned(),
                series: Vec::new(),
                error: None,
                truncated: false,
            })
            .collect(),
        note: Some(
            "Prometheus queries are set for this service but HINDSIGHT_PROMETHEUS_URL is not, \
             so nothing was asked."
                .into(),
        ),
    }
}

/// Runs every query as a range query over the last `range_minutes`, in parallel, each with
/// `timeout`. Never fails: problems are recorded in the result.
pub async fn run(source: &Source, queries: &Queries, now_s: i64) -> Frozen {
    let range = i64::from(source.range_minutes) * 60;
    let step = step_for(range);
    let start = now_s - range;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(source.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (signal, query)) in queries.set().into_iter().enumerate() {
        let (agent, source) = (agent.clone(), source.clone());
        let (signal, query) = (signal.to_owned(), query.to_owned());
        tasks.spawn_blocking(move || {
            let result = range_query(&agent, &source, &query, start, now_s, step);
            (i, signal, query, result)
        });
    }
    let mut results = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(r) = done {
            results.push(r);
        }
    }
    results.sort_by_key(|r| r.0);
    let failed = results.iter().filter(|r| r.3.is_err()).count();
    let total = results.len();
    let results: Vec<FrozenQuery> = results
        .into_iter()
        .map(|(_, signal, query, result)| match result {
            Ok((series, truncated)) => FrozenQuery {
                signal,
                query,
                series,
                error: None,
                truncated,
            },
            Err(e) => FrozenQuery {
                signal,
                query,
                series: Vec::new(),
                error: Some(e),
                truncated: false,
            },
        })
        .collect();
    let note = (failed > 0).then(|| {
        if failed == total {
            format!(
                "Prometheus at {} did not answer any of the {total} queries; see each query's error.",
                source.url
            )
        } else {
            format!("{failed} of {total} Prometheus queries failed; see each query's error.")
        }
    });
    Frozen {
        url: source.url.clone(),
        start,
        end: now_s,
        step_secs: step,
        results,
        note,
    }
}

#[derive(Deserialize)]
struct ApiAnswer {
    status: String,
    #[serde(default)]
    data: Option<MatrixData>,
    #[serde(default)]
    error: Option<String>,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
}

#[derive(Deserialize)]
struct MatrixData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<RawSeries>,
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

fn range_query(
    agent: &ureq::Agent,
    source: &Source,
    query: &str,
    start: i64,
    end: i64,
    step: i64,
) -> Result<(Vec<Series>, bool), String> {
    let url = format!("{}/api/v1/query_range", source.url);
    let mut request = agent
        .get(&url)
        .query("query", query)
        .query("start", start.to_string())
        .query("end", end.to_string())
        .query("step", step.to_string());
    match &source.auth {
        Auth::None => {}
        Auth::Bearer(token) => request = request.header("Authorization", format!("Bearer {token}")),
        Auth::Basic { user, password } => {
            request = request.header(
                "Authorization",
                format!("Basic {}", base64(format!("{user}:{password}").as_bytes())),
            );
        }
    }
    // The error text names the host, never the credentials (they are headers).
    let mut response = request
        .call()
        .map_err(|e| format!("Prometheus could not be reached: {e}"))?;
    let status = response.status();
    let body = response
        .body_mut()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| format!("Prometheus's answer could not be read: {e}"))?;
    let answer: ApiAnswer = serde_json::from_str(&body).map_err(|_| {
        format!(
            "Prometheus answered HTTP {} with something that is not its JSON API",
            status.as_u16()
        )
    })?;
    if answer.status != "success" {
        return Err(format!(
            "Prometheus refused the query ({}): {}",
            answer.error_type.as_deref().unwrap_or("error"),
            answer.error.as_deref().unwrap_or("no reason given")
        ));
    }
    let data = answer
        .data
        .ok_or_else(|| "Prometheus answered without data".to_owned())?;
    if data.result_type != "matrix" {
        return Err(format!(
            "expected a range vector (matrix), got {}",
            data.result_type
        ));
    }
    let truncated = data.result.len() > MAX_SERIES;
    let series = data
        .result
        .into_iter()
        .take(MAX_SERIES)
        .map(|s| Series {
            metric: s.metric,
            values: s.values,
        })
        .collect();
    Ok((series, truncated))
}

/// Standard base64 with padding (for the basic-auth header; not worth a dependency).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn queries_are_trimmed_and_bad_ones_named() {
        let ok = Queries {
            latency_p99: Some(
                "  histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))  ".into(),
            ),
            traffic: Some("   ".into()),
            error_rate: Some("sum(rate(errors[5m]))\r\n  / sum(rate(requests[5m]))\n".into()),
            ..Queries::default()
        }
        .checked()
        .expect("valid");
        assert_eq!(
            ok.set(),
            vec![
                (
                    "latency_p99",
                    "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))"
                ),
                (
                    "error_rate",
                    "sum(rate(errors[5m]))\r\n  / sum(rate(requests[5m]))"
                )
            ]
        );
        let AppError::Validation { fields, .. } = Queries {
            latency_p50: Some("rate(x[5m]".into()),
            error_rate: Some("a\u{0}b".into()),
            // Trimming would drop it, but the OpenAPI pattern refuses it anywhere.
            latency_p90: Some("rate(x[5m])\u{b}".into()),
            // Blank once trimmed, but a control character all the same.
            traffic: Some("\u{85}".into()),
            saturation: Some("x".repeat(MAX_QUERY_CHARS + 1)),
            latency_p99: Some(r#"sum(rate(x{path=")"}[1m]))"#.into()),
        }
        .checked()
        .expect_err("invalid") else {
            panic!("validation error expected");
        };
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "error_rate",
                "latency_p50",
                "latency_p90",
                "saturation",
                "traffic"
            ]
        );
    }

    #[test]
    fn the_secret_is_not_in_debug_output() {
        let source = Source {
            url: "http://127.0.0.1:9090".into(),
            auth: Auth::Basic {
                user: "u".into(),
                password: "hunter2".into(),
            },
            range_minutes: 30,
            timeout: Duration::from_secs(3),
        };
        assert!(!format!("{source:?}").contains("hunter2"));
        let source = Source {
            auth: Auth::Bearer("tok-secret".into()),
            ..source
        };
        assert!(!format!("{source:?}").contains("tok-secret"));
    }

    #[test]
    fn thirty_minutes_gives_about_ninety_points() {
        assert_eq!(step_for(1800), 20);
        assert_eq!(step_for(30), 1);
    }
}
