//! Alert rules with severity tiers over the collector's windows: validation, the hysteresis
//! that keeps a flapping signal from firing again and again, and the evaluation tick that
//! records firings and resolutions and opens incidents for page-tier alerts.

pub mod api;
pub mod db;
pub mod web;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::auth::User;
use crate::catalog::CatalogCache;
use crate::db::Db;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::incidents::{Actor, IncidentChanges, Severity};
use crate::metrics::{QuantileMode, Rule, Scope, Signal, WindowReport};
use crate::signals::{Signals, Trigger, now_ms};

/// What the alerts pages and API need, taken from the app state by `app.rs`.
#[derive(Clone)]
pub struct AlertsState {
    pub db: Db,
    /// The collector: rules are evaluated over its windows, and its services are offered in
    /// the rule form.
    pub signals: Arc<Signals>,
    pub evaluator: Arc<Evaluator>,
    /// The managed service list, also offered in the rule form.
    pub catalog: Arc<CatalogCache>,
}

choice! {
    /// How loud an alert is.
    pub enum Tier, "tier" {
        /// User-facing: opens an incident with a snapshot attached.
        Page = "page",
        /// Shown on the alerts page for next-business-day review.
        Ticket = "ticket",
        /// Recorded only.
        Log = "log",
    }
}

impl Tier {
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Page => "users are hurt now: open an incident",
            Self::Ticket => "needs a look next business day",
            Self::Log => "record only",
        }
    }
}

choice! {
    /// What a rule watches, as stored and typed (`p99`, `error_rate`, …).
    pub enum Watched, "signal" {
        P50 = "p50",
        P95 = "p95",
        P99 = "p99",
        Avg = "avg",
        ErrorRate = "error_rate",
        Saturation = "saturation",
        Traffic = "traffic",
    }
}

impl Watched {
    /// How the rule reads, e.g. "p99 latency above 250 ms".
    pub fn describe(self, threshold: f64) -> String {
        match self {
            Self::P50 | Self::P95 | Self::P99 => {
                format!("{} latency above {threshold} ms", self.as_str())
            }
            Self::Avg => format!("mean latency above {threshold} ms"),
            Self::ErrorRate => format!("error rate above {:.2}%", threshold * 100.0),
            Self::Saturation => format!("saturation above {threshold}"),
            Self::Traffic => format!("traffic below {threshold} events/s"),
        }
    }

    fn signal(self) -> Signal {
        match self {
            Self::P50 => Signal::P50,
            Self::P95 => Signal::P95,
            Self::P99 => Signal::P99,
            Self::Avg => Signal::Avg,
            Self::ErrorRate => Signal::ErrorRate,
            Self::Saturation => Signal::Saturation,
            Self::Traffic => Signal::Traffic,
        }
    }

    /// A value of this signal with its unit, e.g. "214.0 ms" or "2.62%".
    pub fn format(self, v: f64) -> String {
        match self {
            Self::P50 | Self::P95 | Self::P99 | Self::Avg => format!("{v:.1} ms"),
            Self::ErrorRate => format!("{:.2}%", v * 100.0),
            Self::Traffic => format!("{v:.1}/s"),
            Self::Saturation => format!("{v:.1}"),
        }
    }

    /// The signal's current value in a report (for display; decisions use counters).
    pub fn value(self, report: &WindowReport) -> Option<f64> {
        let w = &report.last_t;
        match self {
            Self::P50 => w.latency_ms.as_ref().map(|l| l.p50),
            Self::P95 => w.latency_ms.as_ref().map(|l| l.p95),
            Self::P99 => w.latency_ms.as_ref().map(|l| l.p99),
            Self::Avg => w.latency_ms.as_ref().map(|l| l.mean),
            Self::ErrorRate => Some(w.error_rate),
            Self::Saturation => report.saturation.mean,
            Self::Traffic => Some(w.rate_per_s),
        }
    }
}

/// A rule as stored.
#[derive(Debug, Clone, Serialize)]
pub struct AlertRule {
    pub id: String,
    pub name: String,
    pub service: String,
    pub signal: Watched,
    pub threshold: f64,
    pub min_samples: i64,
    pub for_secs: i64,
    pub tier: Tier,
    pub page_severity: Severity,
    pub enabled: bool,
    pub version: i64,
}

impl AlertRule {
    pub fn describe(&self) -> String {
        self.signal.describe(self.threshold)
    }
}

/// A checked rule, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleValues {
    pub name: String,
    pub service: String,
    pub watched: Watched,
    pub threshold: f64,
    pub min_samples: i64,
    pub for_secs: i64,
    pub tier: Tier,
    pub page_severity: Severity,
    pub enabled: bool,
}

/// A rule as typed into the form or sent to the API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    #[serde(default)]
    pub name: Option<String>,
    pub service: Option<String>,
    pub signal: Option<String>,
    pub threshold: Option<f64>,
    /// The tier (`page`, `ticket`, `log`); API.md calls it `severity`.
    #[serde(alias = "severity")]
    pub tier: Option<String>,
    #[serde(default)]
    pub min_samples: Option<i64>,
    #[serde(default)]
    pub for_secs: Option<i64>,
    #[serde(default)]
    pub page_severity: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl RuleInput {
    /// Checks every field, naming each problem.
    pub fn check(&self) -> Result<RuleValues, AppError> {
        let mut errors = FieldErrors::new();
        let service = self.service.as_deref().map(str::trim).unwrap_or("");
        if let Err(e) = crate::metrics::ServiceName::parse(service) {
            errors.insert("service".into(), e.to_string());
        }
        let watched = Watched::parse(self.signal.as_deref().unwrap_or(""));
        if watched.is_none() {
            errors.insert("signal".into(), Watched::field_error());
        }
        match self.threshold {
            Some(t) if t.is_finite() && t >= 0.0 => {
                if watched == Some(Watched::ErrorRate) && t > 1.0 {
                    errors.insert(
                        "threshold".into(),
                        "an error rate is a fraction from 0 to 1 (0.05 = 5%)".into(),
                    );
                }
            }
            Some(_) => {
                errors.insert("threshold".into(), "must be a number ≥ 0".into());
            }
            None => {
                errors.insert("threshold".into(), "is required".into());
            }
        }
        let tier = Tier::parse(self.tier.as_deref().unwrap_or(""));
        if tier.is_none() {
            errors.insert("tier".into(), Tier::field_error());
        }
        let min_samples = self.min_samples.unwrap_or(20);
        if !(1..=1_000_000).contains(&min_samples) {
            errors.insert("min_samples".into(), "must be from 1 to 1000000".into());
        }
        let for_secs = self.for_secs.unwrap_or(60);
        if !(0..=86_400).contains(&for_secs) {
            errors.insert("for_secs".into(), "must be from 0 to 86400 seconds".into());
        }
        let page_severity = Severity::parse(self.page_severity.as_deref().unwrap_or("sev2"));
        if page_severity.is_none() {
            errors.insert("page_severity".into(), Severity::field_error());
        }
        let name = self.name.as_deref().map(str::trim).unwrap_or("").to_owned();
        if name.chars().count() > 100 {
            errors.insert("name".into(), "must be at most 100 characters".into());
        }
        match (watched, tier, page_severity, self.threshold) {
            (Some(watched), Some(tier), Some(page_severity), Some(threshold))
                if errors.is_empty() =>
            {
                Ok(RuleValues {
                    name: if name.is_empty() {
                        format!("{service} {}", watched.describe(threshold))
                    } else {
                        name
                    },
                    service: service.to_owned(),
                    watched,
                    threshold,
                    min_samples,
                    for_secs,
                    tier,
                    page_severity,
                    enabled: self.enabled.unwrap_or(true),
                })
            }
            _ => Err(AppError::fields(errors)),
        }
    }
}

/// Where a rule stands between ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleState {
    Ok,
    /// Breaching since this time, not yet for long enough.
    Pending {
        since_ms: u64,
    },
    Firing,
    /// Firing, but back to normal since this time.
    Recovering {
        since_ms: u64,
    },
}

/// What the evaluator must do after a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Fire,
    Resolve,
}

/// The hysteresis: a rule fires once its signal has breached for `for_ms` without a break, and
/// resolves once it has been back to normal for `for_ms`. `None` (too few samples) changes
/// nothing.
pub fn step(
    state: RuleState,
    breaching: Option<bool>,
    now_ms: u64,
    for_ms: u64,
) -> (RuleState, Option<Transition>) {
    match (state, breaching) {
        (s, None) => (s, None),
        (RuleState::Ok, Some(true)) if for_ms == 0 => (RuleState::Firing, Some(Transition::Fire)),
        (RuleState::Ok, Some(true)) => (RuleState::Pending { since_ms: now_ms }, None),
        (RuleState::Ok, Some(false)) => (RuleState::Ok, None),
        (RuleState::Pending { since_ms }, Some(true))
            if now_ms.saturating_sub(since_ms) >= for_ms =>
        {
            (RuleState::Firing, Some(Transition::Fire))
        }
        (RuleState::Pending { .. }, Some(true)) => (state, None),
        (RuleState::Pending { .. }, Some(false)) => (RuleState::Ok, None),
        (RuleState::Firing, Some(true)) => (RuleState::Firing, None),
        (RuleState::Firing, Some(false)) if for_ms == 0 => {
            (RuleState::Ok, Some(Transition::Resolve))
        }
        (RuleState::Firing, Some(false)) => (RuleState::Recovering { since_ms: now_ms }, None),
        (RuleState::Recovering { .. }, Some(true)) => (RuleState::Firing, None),
        (RuleState::Recovering { since_ms }, Some(false))
            if now_ms.saturating_sub(since_ms) >= for_ms =>
        {
            (RuleState::Ok, Some(Transition::Resolve))
        }
        (RuleState::Recovering { .. }, Some(false)) => (state, None),
    }
}

/// Rule states kept between ticks (rebuilt from open alert events after a restart).
#[derive(Debug, Default)]
pub struct Evaluator {
    states: Mutex<HashMap<String, RuleState>>,
}

/// What one tick did, for logs and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub rule_id: String,
    pub transition: Transition,
    pub incident: Option<i64>,
}

impl Evaluator {
    /// Evaluates every enabled rule once at `now_ms`. Decisions come from the collector's
    /// counters (count of values ≤ threshold), never from sorting.
    pub async fn tick(&self, db: &Db, signals: &Signals, now_ms: u64) -> AppResult<Vec<Outcome>> {
        let rules = db::list_rules(&db.reader).await?;
        let open = db::open_events_by_rule(&db.reader).await?;
        let mut outcomes = Vec::new();
        for rule in rules.iter().filter(|r| r.enabled) {
            let watched = rule.signal;
            let decision = signals
                .registry
                .evaluate(
                    &rule.service,
                    Rule {
                        signal: watched.signal(),
                        threshold: rule.threshold,
                        min_samples: u64::try_from(rule.min_samples).unwrap_or(1),
                        scope: Scope::LastT,
                    },
                    now_ms,
                )
                .unwrap_or(None);
            let for_ms = u64::try_from(rule.for_secs).unwrap_or(0) * 1000;
            let (previous, transition) = {
                let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
                let current =
                    states
                        .get(&rule.id)
                        .copied()
                        .unwrap_or(if open.contains_key(&rule.id) {
                            RuleState::Firing
                        } else {
                            RuleState::Ok
                        });
                let (next, transition) = step(current, decision, now_ms, for_ms);
                states.insert(rule.id.clone(), next);
                (current, transition)
            };
            match transition {
                Some(Transition::Fire) => {
                    // A ticket or log firing that could not be recorded (the disk is full:
                    // exactly what the self-alert on write failures watches for) is tried again
                    // next tick instead of being remembered as recorded. (A page firing may have
                    // recorded its event before the incident failed, so it is not repeated.)
                    let incident = match fire(db, signals, rule, watched, now_ms).await {
                        Ok(incident) => incident,
                        Err(e) if rule.tier != Tier::Page => {
                            self.states
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(rule.id.clone(), previous);
                            return Err(e);
                        }
                        Err(e) => return Err(e),
                    };
                    outcomes.push(Outcome {
                        rule_id: rule.id.clone(),
                        transition: Transition::Fire,
                        incident,
                    });
                }
                Some(Transition::Resolve) => {
                    if let Some(event) = open.get(&rule.id) {
                        resolve(db, event).await?;
                    }
                    outcomes.push(Outcome {
                        rule_id: rule.id.clone(),
                        transition: Transition::Resolve,
                        incident: None,
                    });
                }
                None => {}
            }
        }
        Ok(outcomes)
    }

    /// Forgets a rule's state (after it was edited or deleted).
    pub fn forget(&self, rule_id: &str) {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(rule_id);
    }
}

/// Records a firing; a page-tier firing also opens an incident with a snapshot attached.
async fn fire(
    db: &Db,
    signals: &Signals,
    rule: &AlertRule,
    watched: Watched,
    now_ms: u64,
) -> AppResult<Option<i64>> {
    let report = signals
        .registry
        .report(&rule.service, now_ms, QuantileMode::Fast)
        .ok();
    let value = report.as_ref().and_then(|r| watched.value(r));
    let shown_now = value.map_or_else(|| "n/a".to_owned(), |v| watched.format(v));
    let mut tx = db.begin_write().await?;
    let event_id = db::insert_event(&mut tx, rule, value, Utc::now()).await?;
    let page = rule.tier == Tier::Page;
    if page {
        // A page opens an incident for the service, which must be on the service list.
        crate::catalog::db::ensure_service(&mut tx, &rule.service, "").await?;
    }
    crate::notifications::enqueue(
        &mut tx,
        crate::notifications::Event::AlertFired,
        crate::notifications::Notice {
            event: crate::notifications::Event::AlertFired.as_str().to_owned(),
            tier: rule.tier.as_str().to_owned(),
            incident: None,
            title: rule.name.clone(),
            severity: None,
            service: Some(rule.service.clone()),
            text: format!(
                "{} alert fired: {} on {} (now {shown_now})",
                rule.tier,
                rule.describe(),
                rule.service
            ),
            path: "/alerts".to_owned(),
            restricted: false,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::warn!(rule = %rule.name, service = %rule.service, tier = %rule.tier, value, "alert fired");
    if !page {
        return Ok(None);
    }
    let shown = value.map_or_else(|| "n/a".to_owned(), |v| watched.format(v));
    let changes = IncidentChanges {
        title: Some(
            format!("{}: {} (now {shown})", rule.service, rule.describe())
                .chars()
                .take(200)
                .collect(),
        ),
        severity: Some(rule.page_severity),
        service: Some(rule.service.clone()),
        category: Some("unknown".into()),
        summary: Some(format!(
            "Opened automatically by the page-tier alert rule **{}**: {} on `{}`.",
            rule.name,
            rule.describe(),
            rule.service
        )),
        ..IncidentChanges::default()
    };
    let incident = crate::incidents::declare(
        db,
        Actor::System(&format!("alert rule {}", rule.name)),
        &changes,
        FieldErrors::new(),
    )
    .await?;
    crate::signals::freeze(
        db,
        signals,
        &incident.id,
        &rule.service,
        Trigger::Alert,
        None,
    )
    .await?;
    let mut tx = db.begin_write().await?;
    db::link_incident(&mut tx, &event_id, &incident.id).await?;
    crate::timeline::db::insert(
        &mut tx,
        &incident.id,
        Utc::now(),
        crate::timeline::EntryKind::Alert,
        &format!(
            "Alert fired: **{}** — {} (now {shown}).",
            rule.name,
            rule.describe()
        ),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(Some(incident.number))
}

async fn resolve(db: &Db, event: &db::AlertEvent) -> AppResult<()> {
    let mut tx = db.begin_write().await?;
    db::end_event(&mut tx, &event.id, Utc::now()).await?;
    if let Some(incident_id) = &event.incident_id {
        crate::timeline::db::insert(
            &mut tx,
            incident_id,
            Utc::now(),
            crate::timeline::EntryKind::Alert,
            &format!("Alert resolved: **{}** is back to normal.", event.name),
            None,
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(rule = %event.name, "alert resolved");
    Ok(())
}

/// Adds a rule; returns its id.
pub async fn create_rule(db: &Db, admin: &User, values: &RuleValues) -> AppResult<String> {
    let mut tx = db.begin_write().await?;
    let id = db::insert_rule(&mut tx, values).await?;
    crate::auth::db::audit(
        &mut tx,
        Some(&admin.id),
        "alert_rule.create",
        &values.name,
        "",
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Saves a rule edited from `version`; when someone saved first, a conflict carrying the rule
/// as it is now (`Option<AlertRule>`: it may have been deleted). The rule's state restarts.
pub async fn update_rule(
    state: &AlertsState,
    admin: &User,
    id: &str,
    version: i64,
    values: &RuleValues,
) -> AppResult<()> {
    let mut tx = state.db.begin_write().await?;
    if !db::update_rule(&mut tx, id, version, values).await? {
        let current = db::find_rule(&mut *tx, id).await?;
        return Err(AppError::conflict(
            "alert rule",
            current.as_ref().map_or(version, |r| r.version),
            current,
        ));
    }
    crate::auth::db::audit(
        &mut tx,
        Some(&admin.id),
        "alert_rule.update",
        &values.name,
        "",
    )
    .await?;
    tx.commit().await?;
    state.evaluator.forget(id);
    Ok(())
}

/// Deletes a rule; its past firings stay in the history.
pub async fn delete_rule(state: &AlertsState, admin: &User, id: &str) -> AppResult<()> {
    let mut tx = state.db.begin_write().await?;
    if !db::delete_rule(&mut tx, id).await? {
        return Err(AppError::missing("alert rule"));
    }
    crate::auth::db::audit(&mut tx, Some(&admin.id), "alert_rule.delete", id, "").await?;
    tx.commit().await?;
    state.evaluator.forget(id);
    Ok(())
}

/// Runs `tick` every `every` until `stop` turns true (between ticks, so a firing being
/// recorded is finished first).
pub async fn run(
    db: Db,
    signals: std::sync::Arc<Signals>,
    evaluator: std::sync::Arc<Evaluator>,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
        if let Err(e) = evaluator.tick(&db, &signals, now_ms()).await {
            // A write this loop could not make counts like a refused request's (metrics,
            // readiness, the self-alert), so a full disk is noticed even when nobody is saving.
            if let AppError::Unavailable { fault, .. } = &e {
                db.health().failed(Some(*fault));
            }
            tracing::error!(error = %e, "alert evaluation failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_fires_only_after_breaching_for_the_whole_for_duration() {
        let mut s = RuleState::Ok;
        let mut fired = Vec::new();
        // Breach at 0 s, a dip at 20 s restarts the clock, then breach from 30 s on.
        for (t, breaching) in [
            (0, true),
            (10, true),
            (20, false),
            (30, true),
            (60, true),
            (89, true),
            (90, true),
            (100, true),
        ] {
            let (next, transition) = step(s, Some(breaching), t * 1000, 60_000);
            s = next;
            if let Some(tr) = transition {
                fired.push((t, tr));
            }
        }
        assert_eq!(fired, vec![(90, Transition::Fire)]);
        assert_eq!(s, RuleState::Firing);
    }

    #[test]
    fn a_flapping_signal_does_not_fire_again_and_resolves_after_calm() {
        let (mut s, _) = step(RuleState::Ok, Some(true), 0, 0);
        assert_eq!(s, RuleState::Firing);
        let mut transitions = Vec::new();
        for (t, breaching) in [
            (10, false),
            (20, true),
            (30, false),
            (40, false),
            (89, false),
            (90, false),
        ] {
            let (next, tr) = step(s, Some(breaching), t * 1000, 60_000);
            s = next;
            transitions.extend(tr.map(|tr| (t, tr)));
        }
        assert_eq!(
            transitions,
            vec![(90, Transition::Resolve)],
            "one resolution, no re-fire"
        );
    }

    #[test]
    fn too_few_samples_change_nothing() {
        for state in [
            RuleState::Ok,
            RuleState::Firing,
            RuleState::Pending { since_ms: 5 },
        ] {
            assert_eq!(step(state, None, 1_000_000, 0), (state, None));
        }
    }

    #[test]
    fn rule_input_names_every_problem() {
        let input = RuleInput {
            service: Some("has space".into()),
            signal: Some("p42".into()),
            threshold: Some(-1.0),
            tier: Some("shout".into()),
            min_samples: Some(0),
            for_secs: Some(-5),
            page_severity: Some("sev9".into()),
            ..RuleInput::default()
        };
        let AppError::Validation { fields, .. } = input.check().expect_err("invalid") else {
            panic!("validation error expected");
        };
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "for_secs",
                "min_samples",
                "page_severity",
                "service",
                "signal",
                "threshold",
                "tier"
            ]
        );
        let ok = RuleInput {
            service: Some("checkout".into()),
            signal: Some("error_rate".into()),
            threshold: Some(0.05),
            tier: Some("ticket".into()),
            ..RuleInput::default()
        }
        .check()
        .expect("valid");
        assert_eq!(ok.name, "checkout error rate above 5.00%");
        assert_eq!((ok.min_samples, ok.for_secs, ok.enabled), (20, 60, true));
    }
}
