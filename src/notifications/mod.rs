//! Outgoing notifications: when something people must know about happens (an incident opened,
//! its severity raised, an alert fired, a post-mortem published), a delivery is queued for every webhook destination
//! that asked for it, and a background worker sends them with retries and backoff. Queuing is
//! one insert, so no request ever waits on a remote server.
//!
//! Deliveries connect only to permitted addresses (`egress`), follow no redirects, are signed
//! with the destination's own secret (HMAC-SHA256 over timestamp and body, see [`signature`]),
//! and record only a status or a fixed phrase, never what the remote answered.

pub mod db;
pub mod egress;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use chrono::Utc;
use serde::Serialize;

use crate::db::Db;
use crate::error::{AppError, AppResult, FieldErrors};

choice! {
    /// What happened.
    pub enum Event, "event" {
        IncidentOpened = "incident_opened",
        SeverityRaised = "severity_raised",
        AlertFired = "alert_fired",
        PostmortemPublished = "postmortem_published",
    }
}

impl Event {
    pub fn label(self) -> &'static str {
        match self {
            Self::IncidentOpened => "incident opened",
            Self::SeverityRaised => "severity raised",
            Self::AlertFired => "alert fired",
            Self::PostmortemPublished => "post-mortem published",
        }
    }
}

/// The facts of a notification; links are made absolute when it is sent.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Notice {
    pub event: String,
    /// `page`, `ticket` or `log` for alerts; `page` for incident events (they are user-facing).
    pub tier: String,
    pub incident: Option<String>,
    pub title: String,
    pub severity: Option<String>,
    pub service: Option<String>,
    pub text: String,
    /// Path of the page to link to, e.g. `/incidents/INC-4`.
    pub path: String,
    /// About a restricted incident: destinations not marked to receive restricted details
    /// get [`Notice::redacted`] instead.
    #[serde(default)]
    pub restricted: bool,
}

impl Notice {
    /// What a destination not allowed restricted details is told: the event happened to a
    /// restricted incident, and nothing else (no key, title, service, text or link).
    pub fn redacted(&self) -> Self {
        let what = match self.event.as_str() {
            "incident_opened" => "A restricted incident was opened.",
            "severity_raised" => "A restricted incident's severity was raised.",
            "postmortem_published" => "A restricted incident's post-mortem was published.",
            _ => "A restricted incident changed.",
        };
        Self {
            event: self.event.clone(),
            tier: self.tier.clone(),
            incident: None,
            title: "Restricted incident".to_owned(),
            severity: None,
            service: None,
            text: what.to_owned(),
            path: "/".to_owned(),
            restricted: true,
        }
    }
}

/// Queues `notice` for every enabled destination that wants its event and tier, inside the
/// caller's write transaction (the outbox): the notice is sent if and only if the change that
/// caused it commits. Returns how many deliveries were queued.
pub async fn enqueue(
    conn: &mut sqlx::SqliteConnection,
    event: Event,
    notice: Notice,
) -> crate::error::AppResult<usize> {
    db::enqueue(conn, event, &notice).await
}

/// The body sent to a destination: Hindsight's JSON, or a Slack-compatible `{"text": …}`.
pub fn body(format: &str, notice: &Notice, base_url: &str) -> serde_json::Value {
    let url = format!("{base_url}{}", notice.path);
    if format == "slack" {
        let icon = match (notice.event.as_str(), notice.tier.as_str()) {
            (_, "page") => ":rotating_light:",
            ("alert_fired", _) => ":warning:",
            _ => ":information_source:",
        };
        // Titles and alert names are untrusted: unescaped, `<!channel>` would ping everyone and
        // `<https://evil|fix>` would disguise a link.
        return serde_json::json!({
            "text": format!(
                "{icon} {} <{}|{}>",
                slack_escape(&notice.text),
                slack_escape(&url),
                slack_escape(notice.incident.as_deref().unwrap_or("open in Hindsight"))
            ),
        });
    }
    serde_json::json!({
        "event": notice.event,
        "tier": notice.tier,
        "incident": notice.incident,
        "title": notice.title,
        "severity": notice.severity,
        "service": notice.service,
        "text": notice.text,
        "url": url,
        "sent_at": Utc::now(),
    })
}

/// Text made safe for Slack's `mrkdwn`: `&`, `<` and `>` are the three characters Slack asks to
/// escape; with them escaped, no `<!channel>`, `<@user>` or `<url|label>` can be formed.
pub fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i64 = 6;

/// Wait before attempt `attempts + 1`: base, 2×, 4×, … (capped at 64×).
pub fn backoff(base: Duration, attempts: i64) -> Duration {
    base * 2u32.pow(u32::try_from(attempts.clamp(0, 6)).unwrap_or(6))
}

/// What a delivery's outcome column shows: the HTTP status, or one of these fixed phrases. The
/// remote's body and the transport's error text are never kept (they made the deliveries table
/// a port-scan oracle); the server log has the detail for the operator.
pub const NO_ANSWER: &str = "no answer";
pub const BLOCKED: &str = "refused: not a public address";

/// Header names of a signed delivery (documented in the README).
pub const SIGNATURE_HEADER: &str = "X-Hindsight-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Hindsight-Timestamp";
pub const DELIVERY_HEADER: &str = "X-Hindsight-Delivery";

/// `v1=` and the hex HMAC-SHA256, keyed with the destination's secret, of the timestamp (Unix
/// seconds, as sent in `X-Hindsight-Timestamp`), a `.`, and the exact body bytes. A receiver
/// computes the same and compares in constant time, and refuses old timestamps (replays).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(3 + 2 * digest.len());
    out.push_str("v1=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A new signing secret: 32 random bytes, hex, behind a readable prefix.
pub fn new_secret() -> AppResult<String> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf)
        .map_err(|e| AppError::Internal(format!("no randomness available: {e}")))?;
    Ok(format!(
        "whsec_{}",
        buf.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// A destination URL as pages show it after creation: scheme and host only, since the path
/// and query often are the credential (Slack and chat webhooks) and user info always is.
pub fn mask_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let more = rest[end..].trim_start_matches('/');
    if more.is_empty() {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}/…")
    }
}

/// Sends every due delivery once; returns how many were attempted. Only addresses `egress`
/// permits are connected to.
pub async fn deliver_due(
    db: &Db,
    base_url: &str,
    retry_base: Duration,
    egress: &egress::Egress,
) -> Result<usize, AppError> {
    let due = db::due(&db.reader, 20).await?;
    let count = due.len();
    for delivery in due {
        let notice: Notice = match serde_json::from_str(&delivery.data) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(delivery = %delivery.id, error = %e, "unreadable queued notification");
                record_attempt(db, &delivery.id, None, "unreadable", None).await?;
                continue;
            }
        };
        let payload = body(&delivery.format, &notice, base_url);
        let bytes = serde_json::to_vec(&payload).map_err(|e| AppError::Internal(e.to_string()))?;
        let (url, secret, id, egress) = (
            delivery.url.clone(),
            delivery.secret.clone(),
            delivery.id.clone(),
            egress.clone(),
        );
        let sent =
            tokio::task::spawn_blocking(move || send(&url, &bytes, &secret, &id, &egress)).await?;
        let (status, error) = match sent {
            Ok(code) if (200..300).contains(&code) => (Some(code), String::new()),
            Ok(code) => (Some(code), format!("answered {code}")),
            Err(Failure::Blocked) => (None, BLOCKED.to_owned()),
            Err(Failure::NoAnswer(detail)) => {
                // The detail is for the operator's log only (the URL may hold a credential,
                // so the destination is named by its id).
                tracing::info!(delivery = %delivery.id, error = %detail, "webhook delivery got no answer");
                (None, NO_ANSWER.to_owned())
            }
        };
        // A refused address will not become public by waiting: give up at once.
        let next = if error.is_empty() || error == BLOCKED || delivery.attempts + 1 >= MAX_ATTEMPTS
        {
            None
        } else {
            Some(Utc::now() + backoff(retry_base, delivery.attempts))
        };
        record_attempt(db, &delivery.id, status, &error, next).await?;
    }
    Ok(count)
}

/// Records one attempt of a delivery in its own transaction (each send is independent).
async fn record_attempt(
    db: &Db,
    id: &str,
    status: Option<u16>,
    error: &str,
    next: Option<chrono::DateTime<Utc>>,
) -> AppResult<()> {
    let mut tx = db.begin_write().await?;
    db::record_attempt(&mut tx, id, status, error, next).await?;
    tx.commit().await?;
    Ok(())
}

/// Why a POST got no status.
#[derive(Debug)]
enum Failure {
    /// The host resolved only to addresses that are not permitted.
    Blocked,
    /// Anything else: refused, timed out, TLS, unknown host (detail for the log).
    NoAnswer(String),
}

/// One signed POST with a short timeout (blocking: runs on the blocking pool).
fn send(
    url: &str,
    body: &[u8],
    secret: &str,
    delivery_id: &str,
    egress: &egress::Egress,
) -> Result<u16, Failure> {
    let blocked = Arc::new(AtomicBool::new(false));
    let agent = egress.agent(Duration::from_secs(5), Arc::clone(&blocked));
    let timestamp = Utc::now().timestamp();
    let mut request = agent
        .post(url)
        .header("User-Agent", "Hindsight")
        .header("Content-Type", "application/json")
        .header(DELIVERY_HEADER, delivery_id)
        .header(TIMESTAMP_HEADER, timestamp.to_string());
    if !secret.is_empty() {
        request = request.header(SIGNATURE_HEADER, signature(secret, timestamp, body));
    }
    match request.send(body) {
        Ok(response) => Ok(response.status().as_u16()),
        Err(_) if blocked.load(Ordering::Relaxed) => Err(Failure::Blocked),
        Err(e) => Err(Failure::NoAnswer(e.to_string())),
    }
}

/// Sends due deliveries every second until the process ends.
pub async fn run(
    db: Db,
    base_url: String,
    retry_base: Duration,
    egress: egress::Egress,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        // Stops between rounds only, so a delivery in progress is recorded before exit.
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
        if let Err(e) = deliver_due(&db, &base_url, retry_base, &egress).await {
            // A write this loop could not make counts like a refused request's (metrics,
            // readiness, the self-alert), so a full disk is noticed even when nobody is saving.
            if let AppError::Unavailable { fault, .. } = &e {
                db.health().failed(Some(*fault));
            }
            tracing::error!(error = %e, "delivering notifications failed");
        }
    }
}

/// A destination as typed into the admin form, checked.
#[derive(Debug, Clone)]
pub struct DestinationValues {
    pub name: String,
    pub url: String,
    pub format: String,
    pub events: Vec<Event>,
    pub tiers: Vec<String>,
    /// Receives restricted incidents' titles and links.
    pub restricted_details: bool,
}

pub fn check_destination(
    name: &str,
    url: &str,
    format: &str,
    events: &[String],
    tiers: &[String],
) -> Result<DestinationValues, AppError> {
    let mut errors = FieldErrors::new();
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.insert("name".into(), "must be 1 to 100 characters".into());
    }
    let url = url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.len() > 2000
        || url.contains(char::is_whitespace)
    {
        errors.insert("url".into(), "must be an http(s) URL".into());
    }
    if !matches!(format, "json" | "slack") {
        errors.insert("format".into(), "must be json or slack".into());
    }
    let parsed: Vec<Event> = events.iter().filter_map(|e| Event::parse(e)).collect();
    if parsed.is_empty() || parsed.len() != events.len() {
        errors.insert(
            "events".into(),
            "choose at least one of the listed events".into(),
        );
    }
    let tiers: Vec<String> = tiers.iter().map(|t| t.trim().to_owned()).collect();
    if tiers.is_empty()
        || tiers
            .iter()
            .any(|t| !matches!(t.as_str(), "page" | "ticket" | "log"))
    {
        errors.insert(
            "tiers".into(),
            "choose at least one of page, ticket, log".into(),
        );
    }
    if !errors.is_empty() {
        return Err(AppError::fields(errors));
    }
    Ok(DestinationValues {
        name: name.to_owned(),
        url: url.to_owned(),
        format: format.to_owned(),
        events: parsed,
        tiers,
        restricted_details: false,
    })
}

/// A destination just added or given a new secret: the secret is returned this once.
#[derive(Debug, Clone)]
pub struct NewSecret {
    pub destination: String,
    pub secret: String,
}

/// Checks a destination as typed into the admin form (naming each bad field) and adds it with
/// a new signing secret, which is returned to be shown once.
pub async fn add_destination(
    db: &Db,
    name: &str,
    url: &str,
    format: &str,
    events: &[String],
    tiers: &[String],
    restricted_details: bool,
) -> AppResult<NewSecret> {
    let mut values = check_destination(name, url, format, events, tiers)?;
    values.restricted_details = restricted_details;
    let secret = new_secret()?;
    let mut tx = db.begin_write().await?;
    db::insert_destination(&mut tx, &values, &secret).await?;
    tx.commit().await?;
    Ok(NewSecret {
        destination: values.name,
        secret,
    })
}

/// Gives a destination a new signing secret (the old one stops working at once) and returns
/// it to be shown once.
pub async fn rotate_secret(db: &Db, id: &str) -> AppResult<NewSecret> {
    let secret = new_secret()?;
    let mut tx = db.begin_write().await?;
    let name = db::set_secret(&mut tx, id, &secret)
        .await?
        .ok_or_else(|| AppError::missing("destination"))?;
    tx.commit().await?;
    Ok(NewSecret {
        destination: name,
        secret,
    })
}

/// Marks a destination as allowed (or not) to receive restricted incidents' titles and links;
/// audited (`destination.restricted_details`), since it decides who outside Hindsight reads
/// them. Returns the destination's name.
pub async fn set_restricted_details(
    db: &Db,
    admin: &crate::auth::User,
    id: &str,
    allowed: bool,
) -> AppResult<String> {
    let mut tx = db.begin_write().await?;
    let name = db::set_restricted_details(&mut tx, id, allowed)
        .await?
        .ok_or_else(|| AppError::missing("destination"))?;
    crate::auth::db::audit(
        &mut tx,
        Some(&admin.id),
        "destination.restricted_details",
        &name,
        if allowed { "allowed" } else { "not allowed" },
    )
    .await?;
    tx.commit().await?;
    Ok(name)
}

/// Deletes a destination (its deliveries go with it).
pub async fn delete_destination(db: &Db, id: &str) -> AppResult<()> {
    let mut tx = db.begin_write().await?;
    if !db::delete_destination(&mut tx, id).await? {
        return Err(AppError::missing("destination"));
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            event: "incident_opened".into(),
            tier: "page".into(),
            incident: Some("INC-7".into()),
            title: "Checkout down".into(),
            severity: Some("sev1".into()),
            service: Some("checkout".into()),
            text: "INC-7 sev1 opened: Checkout down".into(),
            path: "/incidents/INC-7".into(),
            restricted: false,
        }
    }

    #[test]
    fn slack_bodies_are_a_text_with_a_link() {
        let body = body("slack", &notice(), "https://hs.example.com");
        assert_eq!(
            body,
            serde_json::json!({"text": ":rotating_light: INC-7 sev1 opened: Checkout down <https://hs.example.com/incidents/INC-7|INC-7>"})
        );
    }

    #[test]
    fn slack_text_cannot_ping_everyone_or_disguise_a_link() {
        let mut n = notice();
        n.text = "INC-7 sev1 opened: <!channel> see <https://evil.example|the fix> & more".into();
        let body = body("slack", &n, "https://hs.example.com");
        assert_eq!(
            body["text"],
            ":rotating_light: INC-7 sev1 opened: &lt;!channel&gt; see &lt;https://evil.example|the fix&gt; &amp; more <https://hs.example.com/incidents/INC-7|INC-7>"
        );
    }

    #[test]
    fn json_bodies_carry_the_facts_and_an_absolute_link() {
        let body = body("json", &notice(), "https://hs.example.com");
        assert_eq!(body["event"], "incident_opened");
        assert_eq!(body["url"], "https://hs.example.com/incidents/INC-7");
        assert_eq!(body["severity"], "sev1");
    }

    #[test]
    fn signatures_are_hmac_sha256_over_timestamp_dot_body() {
        // What a receiver computes: HMAC-SHA256(secret, "<timestamp>.<body>"), hex.
        let sig = signature("whsec_k", 1_700_000_000, b"{\"a\":1}");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"whsec_k").expect("key");
        mac.update(b"1700000000.{\"a\":1}");
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sig, format!("v1={expected}"));
        assert_ne!(sig, signature("whsec_other", 1_700_000_000, b"{\"a\":1}"));
        assert_ne!(sig, signature("whsec_k", 1_700_000_001, b"{\"a\":1}"));
        assert_eq!(sig.len(), 3 + 64);
    }

    #[test]
    fn destination_urls_are_masked_to_scheme_and_host() {
        assert_eq!(
            mask_url("https://hooks.slack.com/services/T0/B0/secretpart"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            mask_url("https://user:pass@chat.example.com:8443/hook?token=x"),
            "https://chat.example.com:8443/…"
        );
        assert_eq!(mask_url("http://10.0.0.5:8080"), "http://10.0.0.5:8080");
        assert_eq!(mask_url("http://10.0.0.5:8080/"), "http://10.0.0.5:8080");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(2);
        let waits: Vec<u64> = (0..9).map(|a| backoff(base, a).as_secs()).collect();
        assert_eq!(waits, vec![2, 4, 8, 16, 32, 64, 128, 128, 128]);
    }

    #[test]
    fn destinations_are_checked_field_by_field() {
        let AppError::Validation { fields, .. } =
            check_destination("", "ftp://x", "xml", &["nope".into()], &[]).expect_err("invalid")
        else {
            panic!("validation error expected");
        };
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(names, ["events", "format", "name", "tiers", "url"]);
    }
}
