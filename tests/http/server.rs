//! The real server process on a loopback port: what its log stream holds (JSON only, the setup
//! link in a JSON line, no secret in the access log, failed sign-ins with account and client)
//! and how it treats clients that trickle their request headers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

struct Server {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `hindsight serve` on a free loopback port with JSON logs on a pipe.
    fn start(settings: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hindsight"));
        cmd.arg("serve")
            .current_dir(dir.path())
            .env(
                "HINDSIGHT_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("hindsight.db").display()),
            )
            .env("HINDSIGHT_BIND", "127.0.0.1:0")
            .env("HINDSIGHT_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env_remove("HINDSIGHT_BASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in settings {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("hindsight starts");
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stderr.take().expect("stderr")) as Box<dyn Read + Send>,
            Box::new(child.stdout.take().expect("stdout")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut server = Self {
            child,
            addr: "127.0.0.1:1".parse().expect("placeholder"),
            lines,
            seen: Vec::new(),
            _dir: dir,
        };
        let listening = server.wait_for("Hindsight is listening");
        let address = listening["fields"]["address"]
            .as_str()
            .expect("the listening line names the address");
        server.addr = address.parse().expect("address");
        server
    }

    /// Reads log lines until one whose message contains `text`, returning it parsed.
    fn wait_for(&mut self, text: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no log line with {text:?}; saw:\n{}", self.seen.join("\n"))
            });
            self.seen.push(line.clone());
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(text))
            {
                return v;
            }
        }
    }

    /// Everything logged so far (after a moment for the last lines to arrive).
    fn drain(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(300)) {
            self.seen.push(line);
        }
        self.seen.clone()
    }

    /// One HTTP/1.1 request on a fresh connection; returns the status line and headers.
    fn request(&self, head: &str, body: &str) -> String {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let host = self.addr;
        write!(
            stream,
            "{head}\r\nHost: {host}\r\nOrigin: http://{host}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn with_json_logs_every_line_is_json_the_setup_link_is_in_one_and_no_secret_reaches_the_access_log()
{
    let mut server = Server::start(&[]);
    let link = server.drain().iter().find_map(|line| {
        let v: Value = serde_json::from_str(line).ok()?;
        v["fields"]["setup_link"].as_str().map(str::to_owned)
    });
    let link = link.expect("the setup link is in a JSON line");
    let secret = link.rsplit('/').next().expect("secret").to_owned();
    assert!(secret.len() >= 32, "{link}");

    let page = server.request(&format!("GET /setup/{secret} HTTP/1.1"), "");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let failed = server.request(
        "POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded",
        "email=mallory%40example.com&password=hunter2-guess-xyz",
    );
    assert!(failed.starts_with("HTTP/1.1 422"), "{failed}");

    let lines = server.drain();
    for line in &lines {
        assert!(
            serde_json::from_str::<Value>(line).is_ok_and(|v| v.is_object()),
            "not a JSON line: {line:?}"
        );
    }
    assert!(
        !lines.iter().any(|l| l.contains("No users yet")),
        "no human banner when the log is not a terminal"
    );
    let with_secret: Vec<&String> = lines.iter().filter(|l| l.contains(&secret)).collect();
    assert_eq!(
        with_secret.len(),
        1,
        "only the setup-link line holds the secret: {with_secret:?}"
    );
    assert!(with_secret[0].contains("setup_link"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("/setup/{secret}") && l.contains("request done")),
        "the access log shows the route, not the secret"
    );
    let failure = lines
        .iter()
        .find(|l| l.contains("sign-in failed"))
        .expect("the failed sign-in is logged");
    assert!(
        failure.contains("mallory@example.com") && failure.contains("127.0.0.1"),
        "{failure}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("hunter2")),
        "the password is never logged"
    );
}

#[test]
fn a_client_that_trickles_its_headers_is_cut_off_after_the_header_read_timeout() {
    let server = Server::start(&[("HINDSIGHT_HEADER_READ_TIMEOUT_SECS", "1")]);
    let mut slow = TcpStream::connect(server.addr).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let started = Instant::now();
    // Part of a request, then nothing more.
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
        .expect("send");
    // The server closes the connection (hyper may say 408 first); a read error would mean our
    // 10 s read timeout fired while the server still held it.
    let mut answer = Vec::new();
    let closed = slow.read_to_end(&mut answer);
    let waited = started.elapsed();
    assert!(
        closed.is_ok(),
        "the server still holds the connection: {closed:?}"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "closed after about a second, not held: {waited:?}"
    );
    // A connection that never sends anything is closed too.
    let mut idle = TcpStream::connect(server.addr).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let started = Instant::now();
    assert!(
        idle.read_to_end(&mut Vec::new()).is_ok(),
        "idle connection closed"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Normal requests are unaffected.
    let ok = server.request("GET /healthz HTTP/1.1", "");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}
