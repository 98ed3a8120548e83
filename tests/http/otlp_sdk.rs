//! The real OpenTelemetry Python SDK and its OTLP/HTTP protobuf exporter against the real
//! server process on a loopback port: the service's window holds exactly the spans it sent.
//! Needs the virtual environment `.ci/run` creates (see `VENV_HINT`); without it the test
//! fails and says how to create it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const VENV_HINT: &str = "python3 -m venv /var/tmp/hindsight-otel-venv && \
/var/tmp/hindsight-otel-venv/bin/pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http \
(or set HINDSIGHT_OTEL_VENV to another venv with both)";

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("HINDSIGHT_OTEL_VENV").map_or_else(
        || PathBuf::from("/var/tmp/hindsight-otel-venv"),
        PathBuf::from,
    );
    let python = venv.join("bin/python");
    let ok = Command::new(&python)
        .args([
            "-c",
            "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http",
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the OpenTelemetry SDK venv is missing at {}; create it with: {VENV_HINT}",
        venv.display()
    );
    python
}

fn cli(db_url: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hindsight"))
        .args(args)
        .env("HINDSIGHT_DATABASE_URL", db_url)
        .env("HINDSIGHT_LOG_FORMAT", "json")
        .output()
        .expect("hindsight runs");
    assert!(
        out.status.success(),
        "hindsight {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn spans_from_the_python_sdk_become_the_window_with_exact_quantiles() {
    let python = venv_python();
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = format!("sqlite://{}", dir.path().join("hindsight.db").display());
    cli(&db_url, &["migrate"]);
    cli(
        &db_url,
        &[
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--name",
            "Ops",
            "--role",
            "admin",
        ],
    );
    let token = |scope: &str| {
        let out = cli(
            &db_url,
            &[
                "token",
                "create",
                "--user",
                "ops@example.com",
                "--name",
                scope,
                "--scope",
                scope,
            ],
        );
        out.lines().last().expect("token printed").trim().to_owned()
    };
    let (ingest, read) = (token("ingest"), token("read"));

    let mut child = Command::new(env!("CARGO_BIN_EXE_hindsight"))
        .arg("serve")
        .current_dir(dir.path())
        .env("HINDSIGHT_DATABASE_URL", &db_url)
        .env("HINDSIGHT_BIND", "127.0.0.1:0")
        .env("HINDSIGHT_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("HINDSIGHT_BASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hindsight starts");
    let stderr = child.stderr.take().expect("stderr");
    let server = Killed(child);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the server logs that it listens");
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Hindsight is listening"))
        {
            break v["fields"]["address"].as_str().expect("address").to_owned();
        }
    };

    let sent = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/otlp_sdk_send.py"
        ))
        .arg(format!("http://{addr}/v1/traces"))
        .arg(&ingest)
        .arg("storefront")
        .output()
        .expect("python runs");
    assert!(
        sent.status.success(),
        "the SDK's export failed: {}{}",
        String::from_utf8_lossy(&sent.stdout),
        String::from_utf8_lossy(&sent.stderr)
    );

    let mut response = ureq::get(&format!("http://{addr}/api/v1/metrics/services/storefront"))
        .header("Authorization", &format!("Bearer {read}"))
        .call()
        .expect("the window exists");
    let body: Value = response.body_mut().read_json().expect("JSON");
    drop(server);
    // 200 server spans of 1..=200 ms; 8 errors (4 by status, 4 by HTTP 503); the 20 client
    // spans of 9 s do not count. Nearest rank: the ⌈q·200⌉-th smallest.
    assert_eq!(body["count"], 200, "{body}");
    assert_eq!(body["errors"], 8, "{body}");
    let latency = &body["latency_ms"];
    assert_eq!(latency["min"], 1.0);
    assert_eq!(latency["p50"], 100.0);
    assert_eq!(latency["p90"], 180.0);
    assert_eq!(latency["p95"], 190.0);
    assert_eq!(latency["p99"], 198.0);
    assert_eq!(latency["max"], 200.0);
}
