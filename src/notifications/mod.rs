//! Outgoing notifications: when something people must know about happens (an incident opened,
//! its severity raised, an alert fired, a post-mortem published), a delivery is queued for every webhook destination
//! that asked for it, and a background worker sends them with retries and backoff. Queuing is
//! one insert, so no request ever waits on a remote server.

pub mod db;

use std::time::Duration;

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
        return serde_json::json!({
            "text": format!("{icon} {} <{url}|{}>", notice.text, notice.incident.as_deref().unwrap_or("open in Hindsight")),
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

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i64 = 6;

/// Wait before attempt `attempts + 1`: base, 2×, 4×, … (capped at 64×).
pub fn backoff(base: Duration, attempts: i64) -> Duration {
    base * 2u32.pow(u32::try_from(attempts.clamp(0, 6)).unwrap_or(6))
}

/// Sends every due delivery once; returns how many were attempted.
pub async fn deliver_due(db: &Db, base_url: &str, retry_base: Duration) -> Result<usize, AppError> {
    let due = db::due(&db.reader, 20).await?;
    let count = due.len();
    for delivery in due {
        let notice: Notice = match serde_json::from_str(&delivery.data) {
            Ok(n) => n,
            Err(e) => {
                record_attempt(db, &delivery.id, None, &format!("unreadable: {e}"), None).await?;
                continue;
            }
        };
        let payload = body(&delivery.format, &notice, base_url);
        let url = delivery.url.clone();
        let sent = tokio::task::spawn_blocking(move || send(&url, &payload)).await?;
        let (status, error) = match sent {
            Ok(code) if (200..300).contains(&code) => (Some(code), String::new()),
            Ok(code) => (Some(code), format!("answered {code}")),
            Err(e) => (None, e),
        };
        let next = if error.is_empty() || delivery.attempts + 1 >= MAX_ATTEMPTS {
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

/// One POST with a short timeout (blocking: runs on the blocking pool).
fn send(url: &str, payload: &serde_json::Value) -> Result<u16, String> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .new_agent();
    agent
        .post(url)
        .header("User-Agent", "Hindsight")
        .send_json(payload)
        .map(|response| response.status().as_u16())
        .map_err(|e| e.to_string())
}

/// Sends due deliveries every second until the process ends.
pub async fn run(
    db: Db,
    base_url: String,
    retry_base: Duration,
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
        if let Err(e) = deliver_due(&db, &base_url, retry_base).await {
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
    })
}

/// Checks a destination as typed into the admin form (naming each bad field) and adds it.
pub async fn add_destination(
    db: &Db,
    name: &str,
    url: &str,
    format: &str,
    events: &[String],
    tiers: &[String],
) -> AppResult<DestinationValues> {
    let values = check_destination(name, url, format, events, tiers)?;
    let mut tx = db.begin_write().await?;
    db::insert_destination(&mut tx, &values).await?;
    tx.commit().await?;
    Ok(values)
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
    fn json_bodies_carry_the_facts_and_an_absolute_link() {
        let body = body("json", &notice(), "https://hs.example.com");
        assert_eq!(body["event"], "incident_opened");
        assert_eq!(body["url"], "https://hs.example.com/incidents/INC-7");
        assert_eq!(body["severity"], "sev1");
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
