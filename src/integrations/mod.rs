//! Alerts pushed by Prometheus Alertmanager and Grafana: the webhook payload, turning a group
//! of alerts into an incident and timeline entries, and treating every label as untrusted
//! text (length-limited, secrets redacted, Markdown escaped).

pub mod api;
pub mod db;
pub mod web;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::db::Db;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::incidents::{Actor, IncidentChanges, IncidentRef, Severity, Status};
use crate::timeline::EntryKind;

/// What the receivers and the integrations page need, taken from the app state by `app.rs`.
#[derive(Clone)]
pub struct IntegrationsState {
    pub db: Db,
    pub mapping: Arc<Mapping>,
    /// Where Hindsight is reached, for the receiver URLs the page shows.
    pub base_url: String,
    /// Whether alert labels may add services to the list, and up to how many.
    pub growth: crate::catalog::Growth,
}

choice! {
    /// Which receiver a payload came to.
    pub enum Source, "source" {
        Alertmanager = "alertmanager",
        Grafana = "grafana",
    }
}

/// The webhook body of Alertmanager (version 4); Grafana's alerting webhook sends the same
/// fields plus a few of its own. Unknown fields are ignored: both evolve.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    pub group_key: String,
    pub status: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    pub external_url: Option<String>,
    pub alerts: Vec<WebhookAlert>,
    /// Grafana: the notification's title and message.
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: String,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: Option<String>,
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// Grafana: links to the dashboard and panel.
    #[serde(default, rename = "dashboardURL")]
    pub dashboard_url: Option<String>,
    #[serde(default, rename = "panelURL")]
    pub panel_url: Option<String>,
}

/// How labels map to incident fields (from the settings).
#[derive(Debug, Clone)]
pub struct Mapping {
    /// `severity` label value → incident severity.
    pub severities: Vec<(String, Severity)>,
    /// Label naming the service (falls back to `job`).
    pub service_label: String,
    /// Move the incident to `monitoring` when every alert of its group is resolved.
    pub resolve_to_monitoring: bool,
}

impl Default for Mapping {
    fn default() -> Self {
        Self {
            severities: parse_severity_map(DEFAULT_SEVERITY_MAP).unwrap_or_default(),
            service_label: "service".into(),
            resolve_to_monitoring: true,
        }
    }
}

pub const DEFAULT_SEVERITY_MAP: &str =
    "critical=sev1,page=sev1,error=sev2,major=sev2,warning=sev3,minor=sev3,info=sev4";

/// `critical=sev1,warning=sev3` → pairs; an unknown severity is an error naming it.
pub fn parse_severity_map(raw: &str) -> Result<Vec<(String, Severity)>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (label, sev) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not label=sevN"))?;
            let severity =
                Severity::parse(sev).ok_or_else(|| format!("{sev:?} is not sev1..sev4"))?;
            Ok((label.trim().to_lowercase(), severity))
        })
        .collect()
}

/// The alert label that opens a restricted incident when it is `"true"`.
pub const RESTRICTED_LABEL: &str = "hindsight_restricted";

/// Where an alert's incident is filed when its labels name no service, or one the service
/// list may not gain.
pub const FALLBACK_SERVICE: &str = "unknown-service";

/// Longest label or annotation value kept.
const MAX_TEXT: usize = 500;

/// Untrusted text from an alert: control characters dropped, secrets redacted, cut to a length.
pub fn clean(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect();
    let redacted = redact_secrets(&flat);
    if redacted.chars().count() > max {
        let mut cut: String = redacted.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        redacted
    }
}

/// Replaces things that look like credentials with `[redacted]`: known token prefixes, private
/// keys, bearer tokens, and the value of `password=`/`secret:`/`token=`-style pairs.
pub fn redact_secrets(text: &str) -> String {
    const PREFIXES: &[&str] = &[
        "hs_",
        "AKIA",
        "ASIA",
        "ghp_",
        "gho_",
        "ghs_",
        "github_pat_",
        "glpat-",
        "xoxb-",
        "xoxp-",
        "xoxa-",
        "xoxs-",
        "sk_live_",
        "sk_test_",
        "rk_live_",
        "AIza",
        "eyJ",
    ];
    const KEYS: &[&str] = &[
        "password",
        "passwd",
        "secret",
        "token",
        "apikey",
        "api_key",
        "api-key",
        "authorization",
    ];
    if text.contains("PRIVATE KEY-----") {
        return "[redacted: private key]".into();
    }
    let mut out = String::with_capacity(text.len());
    let mut redact_next = false;
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let bare = word.trim_matches(|c: char| "\"'`,;()[]{}<>".contains(c));
        let lower = bare.to_lowercase();
        if redact_next && !bare.is_empty() {
            out.push_str("[redacted]");
            redact_next = false;
            continue;
        }
        if lower == "bearer" || KEYS.iter().any(|k| lower == format!("{k}:")) {
            // `Bearer xyz`, `password: xyz`: the next word is the secret.
            redact_next = true;
            out.push_str(word);
            continue;
        }
        if let Some((key, value)) = bare.split_once(['=', ':'])
            && !value.is_empty()
            && KEYS.iter().any(|k| key.to_lowercase().ends_with(k))
        {
            out.push_str(&word.replacen(value, "[redacted]", 1));
            continue;
        }
        if bare.len() >= 16 && PREFIXES.iter().any(|p| bare.starts_with(p)) {
            out.push_str(&word.replacen(bare, "[redacted]", 1));
            continue;
        }
        out.push_str(word);
    }
    out
}

/// An http(s) URL kept as a link target, or nothing.
fn safe_url(url: Option<&str>) -> Option<String> {
    let url = url?.trim();
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() <= 2000
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>' || c == '"');
    ok.then(|| url.replace('(', "%28").replace(')', "%29"))
}

/// What a delivery changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    pub incident: Option<String>,
    pub created: bool,
    pub new_alerts: usize,
    pub resolved: usize,
    pub duplicates: usize,
}

/// One alert, checked and cleaned.
#[derive(Debug, Clone)]
struct Alert {
    firing: bool,
    name: String,
    summary: String,
    labels: Vec<(String, String)>,
    fingerprint: String,
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    links: Vec<(&'static str, String)>,
}

fn parse_time(field: String, raw: &str, errors: &mut FieldErrors) -> Option<DateTime<Utc>> {
    match DateTime::parse_from_rfc3339(raw.trim()) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            errors.insert(field, "must be an RFC 3339 time".into());
            None
        }
    }
}

/// Checks the payload beyond its shape: statuses and times, naming each bad field.
fn check(payload: &WebhookPayload) -> Result<Vec<Alert>, AppError> {
    let mut errors = FieldErrors::new();
    if payload.group_key.trim().is_empty() {
        errors.insert("groupKey".into(), "must not be empty".into());
    }
    if payload.alerts.is_empty() {
        errors.insert("alerts".into(), "must hold at least one alert".into());
    }
    let mut alerts = Vec::with_capacity(payload.alerts.len());
    for (i, a) in payload.alerts.iter().enumerate() {
        let firing = match a.status.as_str() {
            "firing" => true,
            "resolved" => false,
            _ => {
                errors.insert(
                    format!("alerts[{i}].status"),
                    "must be firing or resolved".into(),
                );
                continue;
            }
        };
        let starts_at = parse_time(format!("alerts[{i}].startsAt"), &a.starts_at, &mut errors);
        // Alertmanager sends 0001-01-01 for "no end" while firing.
        let ends_at = match a.ends_at.as_deref() {
            Some(raw) if !raw.starts_with("0001-") && !raw.is_empty() => {
                parse_time(format!("alerts[{i}].endsAt"), raw, &mut errors)
            }
            _ => None,
        };
        let name = a
            .labels
            .get("alertname")
            .map(|n| clean(n, 200))
            .unwrap_or_else(|| "alert".into());
        let summary = a
            .annotations
            .get("summary")
            .or_else(|| a.annotations.get("description"))
            .or_else(|| payload.common_annotations.get("summary"))
            .map(|s| clean(s, MAX_TEXT))
            .unwrap_or_default();
        let labels: Vec<(String, String)> = a
            .labels
            .iter()
            .take(30)
            .map(|(k, v)| (clean(k, 100), clean(v, MAX_TEXT)))
            .collect();
        let fingerprint = a
            .fingerprint
            .as_deref()
            .map(|f| clean(f, 100))
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| {
                crate::auth::secret_hash(&format!("{:?}", a.labels))[..16].to_owned()
            });
        let mut links = Vec::new();
        for (label, url) in [
            ("source", a.generator_url.as_deref()),
            ("dashboard", a.dashboard_url.as_deref()),
            ("panel", a.panel_url.as_deref()),
        ] {
            if let Some(url) = safe_url(url) {
                links.push((label, url));
            }
        }
        if let Some(starts_at) = starts_at {
            alerts.push(Alert {
                firing,
                name,
                summary,
                labels,
                fingerprint,
                starts_at,
                ends_at,
                links,
            });
        }
    }
    if errors.is_empty() {
        Ok(alerts)
    } else {
        Err(AppError::fields(errors))
    }
}

fn entry_body(alert: &Alert) -> String {
    let mut body = format!(
        "**{}**: {}",
        if alert.firing { "Firing" } else { "Resolved" },
        crate::markdown::escape(&alert.name)
    );
    if !alert.summary.is_empty() {
        body.push_str(" — ");
        body.push_str(&crate::markdown::escape(&alert.summary));
    }
    for (label, url) in &alert.links {
        body.push_str(&format!(" · [{label}]({url})"));
    }
    if !alert.labels.is_empty() {
        let labels: Vec<String> = alert
            .labels
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    crate::markdown::escape(k),
                    crate::markdown::escape(v)
                )
            })
            .collect();
        body.push_str("\n\nLabels: ");
        body.push_str(&labels.join(", "));
    }
    body
}

/// Deliveries are applied one at a time, so two retries of one group arriving together cannot
/// both open an incident.
static RECEIVING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Applies one webhook delivery: opens or appends to the incident tracking the group, records
/// each new firing and resolution once, and marks the group resolved when nothing is firing.
///
/// The alerts, their timeline entries and the AlertFired notice are written in one transaction.
/// Opening the incident (with its service put on the list first) and moving it to monitoring
/// are operations of the incidents area, which commit on their own (`incidents::declare` and
/// `incidents::update` take the database, not a transaction); a retry of a half-applied
/// delivery finds the incident by its group and the stored alerts, so it is not applied twice.
pub async fn receive(
    db: &Db,
    mapping: &Mapping,
    growth: crate::catalog::Growth,
    source: Source,
    payload: &WebhookPayload,
) -> AppResult<Receipt> {
    let alerts = check(payload)?;
    let _one_at_a_time = RECEIVING.lock().await;
    let group_key = clean(&payload.group_key, 500);
    let mut receipt = Receipt::default();

    let mut incident = db::tracking_incident(&db.reader, source, &group_key).await?;
    let needs_incident = incident.is_none()
        && alerts.iter().any(|a| a.firing)
        && db::any_new_firing(
            &db.reader,
            source,
            alerts
                .iter()
                .filter(|a| a.firing)
                .map(|a| (a.fingerprint.as_str(), a.starts_at)),
        )
        .await?;
    if needs_incident {
        let labels = &payload.common_labels;
        let first = alerts.iter().find(|a| a.firing);
        let label = |key: &str| {
            labels.get(key).cloned().or_else(|| {
                first.and_then(|a| {
                    a.labels
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.clone())
                })
            })
        };
        let severity = label("severity")
            .and_then(|s| {
                mapping
                    .severities
                    .iter()
                    .find(|(l, _)| *l == s.to_lowercase())
                    .map(|(_, sev)| *sev)
            })
            .unwrap_or(Severity::Sev3);
        let named = label(&mapping.service_label)
            .or_else(|| label("job"))
            .map(|s| clean(&s, 60))
            .filter(|s| crate::catalog::parse_name("service", s).is_ok());
        // An alert must never be lost, so a service the list may not gain is filed under the
        // fallback, and the incident says which service the alert named.
        let listed = crate::catalog::db::list_services(&db.reader).await?;
        let (service, unlisted) = match named {
            Some(name) => match listed.iter().find(|s| s.name.eq_ignore_ascii_case(&name)) {
                Some(known) => (known.name.clone(), None),
                None if growth.allows(listed.len()) => (name, None),
                None => (FALLBACK_SERVICE.to_owned(), Some(name)),
            },
            None => (FALLBACK_SERVICE.to_owned(), None),
        };
        let title = payload
            .common_annotations
            .get("summary")
            .cloned()
            .or_else(|| first.map(|a| a.summary.clone()).filter(|s| !s.is_empty()))
            .or_else(|| payload.title.clone())
            .or_else(|| first.map(|a| a.name.clone()))
            .map(|t| clean(&t, 200))
            .unwrap_or_else(|| "Alert".into());
        let mut summary = format!(
            "Opened by {} for the alert group {}.",
            source.as_str(),
            crate::markdown::code_span(&group_key)
        );
        if let Some(name) = &unlisted {
            summary.push_str(&format!(
                "\n\nThe alert names the service {}, which is not on the service list{}: filed \
                 under {FALLBACK_SERVICE}.",
                crate::markdown::code_span(name),
                if growth.creates {
                    " and the list is full (HINDSIGHT_MAX_SERVICES)"
                } else {
                    " (alerts may not add services: HINDSIGHT_INGEST_CREATES_SERVICES)"
                }
            ));
        }
        if let Some(message) = payload.message.as_deref().or(payload
            .common_annotations
            .get("description")
            .map(String::as_str))
        {
            summary.push_str("\n\n");
            summary.push_str(&crate::markdown::escape(&clean(message, 2000)));
        }
        if let Some(url) = safe_url(payload.external_url.as_deref()) {
            summary.push_str(&format!("\n\n[Open in {}]({url})", source.as_str()));
        }
        let mut tx = db.begin_write().await?;
        crate::catalog::db::ensure_service(&mut tx, &service, "").await?;
        tx.commit().await?;
        let changes = IncidentChanges {
            title: Some(title),
            severity: Some(severity),
            service: Some(service),
            category: Some("unknown".into()),
            summary: Some(summary),
            started_at: first.map(|a| a.starts_at).filter(|t| *t <= Utc::now()),
            // The alert detected it when it started firing.
            detected_at: Some(first.map(|a| a.starts_at).filter(|t| *t <= Utc::now())),
            // `hindsight_restricted="true"` on the alert opens a restricted incident: with no
            // commander yet, only admins see it until one of them adds people.
            restricted: label(RESTRICTED_LABEL).map(|v| v.trim().eq_ignore_ascii_case("true")),
            ..IncidentChanges::default()
        };
        let declared = crate::incidents::declare(
            db,
            Actor::System(source.as_str()),
            &changes,
            FieldErrors::new(),
        )
        .await?;
        receipt.created = true;
        incident = Some(declared.id);
    }

    let mut tx = db.begin_write().await?;
    // This writes alert firings (counted by when they started) and timeline entries only: what
    // reports count changes from the earliest alert's start on.
    for alert in &alerts {
        tx.changes_since(alert.starts_at);
    }
    // Of incidents, only the tracked one's timeline (and none without one: the write then
    // says nothing, as if it might have changed any).
    if let Some(incident_id) = &incident {
        tx.changes_only_incident(incident_id);
    }
    for alert in &alerts {
        let stored = db::find_alert(&mut tx, source, &alert.fingerprint, alert.starts_at).await?;
        let new = match (&stored, alert.firing) {
            (None, _) => {
                db::insert_alert(
                    &mut tx,
                    source,
                    &group_key,
                    alert.fingerprint.as_str(),
                    &alert.name,
                    &service_of(alert, mapping),
                    alert.starts_at,
                    alert.ends_at.filter(|_| !alert.firing),
                    incident.as_deref(),
                    alert.links.first().map_or("", |(_, u)| u.as_str()),
                )
                .await?;
                true
            }
            (Some(event), false) if event.ended_at.is_none() => {
                db::end_alert(&mut tx, &event.id, alert.ends_at.unwrap_or_else(Utc::now)).await?;
                true
            }
            _ => false,
        };
        if !new {
            receipt.duplicates += 1;
            continue;
        }
        if alert.firing {
            receipt.new_alerts += 1;
        } else {
            receipt.resolved += 1;
        }
        if let Some(incident_id) = &incident {
            let at = if alert.firing {
                alert.starts_at
            } else {
                alert.ends_at.unwrap_or_else(Utc::now)
            };
            crate::timeline::db::insert(
                &mut tx,
                incident_id,
                at.min(Utc::now()),
                EntryKind::Alert,
                &entry_body(alert),
                None,
            )
            .await?;
        }
    }
    let all_resolved =
        receipt.resolved > 0 && !db::group_has_open_alerts(&mut tx, source, &group_key).await?;
    if let (true, Some(incident_id)) = (all_resolved, &incident) {
        crate::timeline::db::insert(
            &mut tx,
            incident_id,
            Utc::now(),
            EntryKind::Alert,
            &format!(
                "All alerts of this group are resolved ({}).",
                source.as_str()
            ),
            None,
        )
        .await?;
    }
    let current = match &incident {
        Some(incident_id) => Some(
            crate::incidents::db::find(&mut *tx, &IncidentRef::Id(incident_id.clone()))
                .await?
                .ok_or_else(|| AppError::Internal("tracked incident vanished".into()))?,
        ),
        None => None,
    };
    if let Some(current) = &current
        && receipt.new_alerts > 0
    {
        let names: Vec<&str> = alerts
            .iter()
            .filter(|a| a.firing)
            .map(|a| a.name.as_str())
            .collect();
        crate::notifications::enqueue(
            &mut tx,
            crate::notifications::Event::AlertFired,
            crate::notifications::Notice {
                event: crate::notifications::Event::AlertFired.as_str().to_owned(),
                tier: "page".to_owned(),
                incident: Some(current.key()),
                title: current.title.clone(),
                severity: Some(current.severity.as_str().to_owned()),
                service: Some(current.service.clone()),
                text: format!(
                    "{} alert firing on {}: {}",
                    source.as_str(),
                    current.key(),
                    names.join(", ")
                ),
                path: current.url(),
                restricted: current.restricted,
            },
        )
        .await?;
    }
    tx.commit().await?;

    if let Some(current) = current {
        if all_resolved && mapping.resolve_to_monitoring && current.status < Status::Monitoring {
            let changes = IncidentChanges {
                status: Some(Status::Monitoring),
                ..IncidentChanges::default()
            };
            crate::incidents::update(
                db,
                Actor::System(source.as_str()),
                &current,
                current.version,
                &changes,
                FieldErrors::new(),
                "",
            )
            .await?;
        }
        receipt.incident = Some(current.key());
    }
    Ok(receipt)
}

/// Keeps what a receiver got (cut to 4 KiB, secrets redacted) and how it was answered, for
/// the integrations page.
pub async fn log_delivery(
    db: &Db,
    source: Source,
    status: u16,
    outcome: &str,
    payload: &[u8],
) -> AppResult<()> {
    let text = String::from_utf8_lossy(&payload[..payload.len().min(4096)]).into_owned();
    let mut tx = db.begin_write().await?;
    db::log_payload(
        &mut tx,
        source,
        status,
        &redact_secrets(outcome),
        &redact_secrets(&text),
    )
    .await?;
    // The payload log is read only by the integrations page, uncached: no cache need empty.
    tx.commit_private().await?;
    Ok(())
}

fn service_of(alert: &Alert, mapping: &Mapping) -> String {
    alert
        .labels
        .iter()
        .find(|(k, _)| *k == mapping.service_label || k == "job")
        .map(|(_, v)| clean(v, 60))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_labels_are_redacted() {
        for (input, must_not_contain) in [
            ("token=abc123secretvalue", "abc123secretvalue"),
            ("db password: hunter2hunter2", "hunter2hunter2"),
            (
                "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
                "eyJhbGci",
            ),
            ("key AKIAIOSFODNN7EXAMPLE leaked", "AKIAIOSFODNN7EXAMPLE"),
            (
                "use hs_0123456789abcdef0123456789abcdef",
                "hs_0123456789abcdef",
            ),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIE...", "MIIE"),
            (
                "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa in config",
                "ghp_aaaa",
            ),
        ] {
            let out = redact_secrets(input);
            assert!(!out.contains(must_not_contain), "{input:?} → {out:?}");
            assert!(out.contains("[redacted"), "{out}");
        }
        assert_eq!(
            redact_secrets("p99 above 2 s on checkout"),
            "p99 above 2 s on checkout"
        );
    }

    #[test]
    fn text_is_cut_and_markdown_escaped() {
        assert_eq!(clean(&"x".repeat(600), 10).chars().count(), 10);
        assert_eq!(clean("a\u{7}b", 10), "a b");
        assert_eq!(
            crate::markdown::escape("[click](javascript:x) *b*"),
            "\\[click\\]\\(javascript:x\\) \\*b\\*"
        );
        assert_eq!(safe_url(Some("javascript:alert(1)")), None);
        assert_eq!(
            safe_url(Some("http://p:9090/graph?g0.expr=up(x)")).as_deref(),
            Some("http://p:9090/graph?g0.expr=up%28x%29")
        );
    }

    #[test]
    fn severity_maps_parse_and_name_bad_entries() {
        let map = parse_severity_map("critical=sev1, warning = sev3").expect("valid");
        assert_eq!(
            map,
            vec![
                ("critical".into(), Severity::Sev1),
                ("warning".into(), Severity::Sev3)
            ]
        );
        assert!(parse_severity_map("critical=sev9").is_err());
        assert!(parse_severity_map("critical").is_err());
    }
}
