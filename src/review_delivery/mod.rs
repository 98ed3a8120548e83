//! The weekly review, delivered: subscriptions (a team or all teams; a weekday, an hour and an
//! IANA time zone; e-mail addresses and/or a webhook destination), the schedule (the next due
//! time in the subscription's zone, safe across clock changes), and delivery with a log,
//! retries and backoff.
//!
//! A scheduled delivery is made by moving the subscription's `next_due_at` past now in the same
//! transaction that queues it: a server that was down at the hour queues the missed review
//! once when it comes back, never once per missed week. E-mails are sent by this area's loop
//! (through the inbox's mailer); webhook summaries go through the notifications outbox (its
//! egress checks, signing, retries), and the log reads their outcome from there.
//!
//! Who may subscribe what (users have no team membership in Hindsight, so the rule is by
//! role and address): responders and admins may subscribe, for one team or all; a responder
//! may put only their own e-mail address on a subscription, an admin any address; a webhook
//! destination (Admin › Integrations, a shared channel) needs an admin. Subscriptions are
//! listed to their creator and to admins, and deleted by them.
//!
//! The review's e-mail and webhook summary carry figures and a link, never an incident's
//! title, so a restricted incident is counted without being revealed.

pub mod api;
pub mod db;
pub mod web;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::Serialize;

use crate::auth::{Role, User};
use crate::db::Db;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::inbox::mail::Mailer;
use crate::recurrence::Rule;
use crate::reports::{IsoWeek, Measure, WeekCache, WeeklyReport};

/// What the subscription pages, the API and the loop need.
#[derive(Clone)]
pub struct ReviewDeliveryState {
    pub db: Db,
    /// The zone the review's weeks are counted in (as on the review page).
    pub tz: Tz,
    pub base_url: String,
    pub rule: Rule,
    pub weeks: Arc<WeekCache>,
    pub mailer: Option<Mailer>,
    /// The first retry waits this long, then twice as long each time.
    pub retry_base: StdDuration,
    pub catalog: Arc<crate::catalog::CatalogCache>,
}

// ---------------------------------------------------------------------------------------------
// The schedule

/// Parses a weekday: a name (`monday`, `Mon`, any case) or an ISO number, 1 = Monday … 7 =
/// Sunday.
pub fn parse_weekday(raw: &str) -> Option<Weekday> {
    let raw = raw.trim();
    if let Ok(n) = raw.parse::<u8>() {
        return match n {
            1..=7 => Weekday::try_from(n - 1).ok(),
            _ => None,
        };
    }
    raw.parse::<Weekday>().ok()
}

/// The weekday's English name.
pub fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// `hour:00` on `day` in `tz`, as UTC: when a clock change skips that hour, the first moment
/// after the gap; when it happens twice, the first of them.
pub fn local_hour(day: NaiveDate, hour: u32, tz: Tz) -> DateTime<Utc> {
    let naive = day.and_hms_opt(hour, 0, 0).unwrap_or_default();
    if let Some(t) = tz.from_local_datetime(&naive).earliest() {
        return t.with_timezone(&Utc);
    }
    // In a gap (spring forward): walk forward to the first local time that exists.
    (1..=180)
        .map(|m| naive + Duration::minutes(m))
        .find_map(|n| tz.from_local_datetime(&n).earliest())
        .map_or_else(|| naive.and_utc(), |t| t.with_timezone(&Utc))
}

/// The first `weekday` at `hour:00` in `tz` strictly after `after`.
pub fn next_due(weekday: Weekday, hour: u32, tz: Tz, after: DateTime<Utc>) -> DateTime<Utc> {
    let local_today = after.with_timezone(&tz).date_naive();
    (0..=14)
        .map(|d| local_today + Duration::days(d))
        .filter(|d| chrono::Datelike::weekday(d) == weekday)
        .map(|d| local_hour(d, hour, tz))
        .find(|t| *t > after)
        .unwrap_or(after + Duration::weeks(1))
}

// ---------------------------------------------------------------------------------------------
// Subscriptions

/// A subscription as typed (form or JSON), before checking.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub team: Option<String>,
    pub weekday: String,
    pub hour: String,
    pub timezone: String,
    pub emails: Vec<String>,
    pub webhook_destination: Option<String>,
}

/// A checked subscription.
#[derive(Debug, Clone)]
pub struct Checked {
    pub team: Option<String>,
    pub weekday: Weekday,
    pub hour: u32,
    pub tz: Tz,
    pub emails: Vec<String>,
    pub webhook_destination: Option<String>,
}

/// Checks a draft for `user`: 422 naming every bad field, 403 for what their role may not do.
pub fn check(draft: &Draft, user: &User) -> AppResult<Checked> {
    let mut errors = FieldErrors::new();
    let team = draft
        .team
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    if team
        .as_ref()
        .is_some_and(|t| t.chars().count() > 60 || t.chars().any(char::is_control))
    {
        errors.insert(
            "team".into(),
            "must be at most 60 characters, no control characters".into(),
        );
    }
    let weekday = parse_weekday(&draft.weekday);
    if weekday.is_none() {
        errors.insert(
            "weekday".into(),
            "must be a day name (monday … sunday) or an ISO number 1 (Monday) … 7 (Sunday)".into(),
        );
    }
    let hour = draft.hour.trim().parse::<u32>().ok().filter(|h| *h <= 23);
    if hour.is_none() {
        errors.insert("hour".into(), "must be a whole hour from 0 to 23".into());
    }
    let tz = draft.timezone.trim().parse::<Tz>().ok();
    if tz.is_none() {
        errors.insert(
            "timezone".into(),
            "must be an IANA time zone such as Europe/Berlin or UTC".into(),
        );
    }
    let mut emails: Vec<String> = Vec::new();
    for raw in &draft.emails {
        let e = raw.trim();
        if e.is_empty() {
            continue;
        }
        if e.len() > 254 || e.parse::<lettre::Address>().is_err() {
            errors.insert("emails".into(), format!("{e:?} is not an e-mail address"));
            break;
        }
        if !emails.iter().any(|x| x.eq_ignore_ascii_case(e)) {
            emails.push(e.to_owned());
        }
    }
    if emails.len() > 50 {
        errors.insert("emails".into(), "at most 50 addresses".into());
    }
    let webhook_destination = draft
        .webhook_destination
        .as_deref()
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_owned);
    if emails.is_empty() && webhook_destination.is_none() && !errors.contains_key("emails") {
        errors.insert(
            "emails".into(),
            "give at least one e-mail address or a webhook destination".into(),
        );
    }
    if !errors.is_empty() {
        return Err(AppError::fields(errors));
    }
    user.require(Role::Responder)?;
    if user.role < Role::Admin {
        if webhook_destination.is_some() {
            return Err(AppError::Forbidden(
                "only admins may send the review to a webhook destination".into(),
            ));
        }
        if emails.iter().any(|e| !e.eq_ignore_ascii_case(&user.email)) {
            return Err(AppError::Forbidden(
                "responders may subscribe only their own e-mail address".into(),
            ));
        }
    }
    match (weekday, hour, tz) {
        (Some(weekday), Some(hour), Some(tz)) => Ok(Checked {
            team,
            weekday,
            hour,
            tz,
            emails,
            webhook_destination,
        }),
        _ => Err(AppError::Internal("checked fields went missing".into())),
    }
}

/// A subscription as pages and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct Subscription {
    pub id: String,
    pub team: Option<String>,
    /// ISO weekday number, 1 = Monday.
    pub weekday: i64,
    pub hour: i64,
    pub timezone: String,
    pub emails: Vec<String>,
    pub webhook_destination: Option<String>,
    pub webhook_destination_name: Option<String>,
    pub next_due_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Subscription {
    pub fn weekday_name(&self) -> &'static str {
        u8::try_from(self.weekday - 1)
            .ok()
            .and_then(|n| Weekday::try_from(n).ok())
            .map_or("?", weekday_name)
    }

    /// The next delivery in the subscription's own zone (`2026-12-04 16:00 CET (+01:00)`).
    pub fn next_local(&self) -> String {
        match self.timezone.parse::<Tz>() {
            Ok(tz) => crate::time::format_time(tz, self.next_due_at),
            Err(_) => self.next_due_at.to_rfc3339(),
        }
    }

    pub fn team_label(&self) -> &str {
        self.team.as_deref().unwrap_or("all teams")
    }
}

/// One delivery of a review to one target, as the log shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Delivery {
    pub id: String,
    pub subscription_id: String,
    pub week: String,
    pub trigger: String,
    pub channel: String,
    pub target: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: String,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Creates a subscription; its first delivery is the next matching hour.
pub async fn create(
    state: &ReviewDeliveryState,
    user: &User,
    draft: &Draft,
) -> AppResult<Subscription> {
    let c = check(draft, user)?;
    let mut tx = state.db.begin_write().await?;
    if let Some(dest) = &c.webhook_destination
        && !db::destination_exists(&mut tx, dest).await?
    {
        return Err(AppError::field(
            "webhook_destination",
            "no such webhook destination (see Admin › Integrations)",
        ));
    }
    let id = crate::db::new_id();
    let next = next_due(c.weekday, c.hour, c.tz, Utc::now());
    db::insert(&mut tx, &id, &c, next, &user.id).await?;
    crate::auth::db::audit(
        &mut tx,
        Some(&user.id),
        "review_subscription.create",
        &id,
        &format!(
            "{} {} {:02}:00 {}",
            c.team.as_deref().unwrap_or("all teams"),
            weekday_name(c.weekday),
            c.hour,
            c.tz.name()
        ),
    )
    .await?;
    tx.commit().await?;
    db::get(&state.db.reader, &id)
        .await?
        .ok_or_else(|| AppError::not_found("review subscription", &id))
}

/// The subscriptions `user` may see: all for admins, their own for others.
pub async fn list(state: &ReviewDeliveryState, user: &User) -> AppResult<Vec<Subscription>> {
    let owner = (user.role < Role::Admin).then_some(user.id.as_str());
    db::list(&state.db.reader, owner).await
}

/// One subscription `user` may see (404 otherwise, so ids of others' are not confirmed).
pub async fn visible(
    state: &ReviewDeliveryState,
    user: &User,
    id: &str,
) -> AppResult<Subscription> {
    let found = db::get(&state.db.reader, id).await?;
    match found {
        Some(s) if user.role >= Role::Admin || s.created_by.as_deref() == Some(&user.id) => Ok(s),
        _ => Err(AppError::not_found("review subscription", id)),
    }
}

pub async fn delete(state: &ReviewDeliveryState, user: &User, id: &str) -> AppResult<()> {
    user.require(Role::Responder)?;
    visible(state, user, id).await?;
    let mut tx = state.db.begin_write().await?;
    db::delete(&mut tx, id).await?;
    crate::auth::db::audit(
        &mut tx,
        Some(&user.id),
        "review_subscription.delete",
        id,
        "",
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The deliveries of the subscriptions `user` may see, newest first.
pub async fn log(state: &ReviewDeliveryState, user: &User, limit: i64) -> AppResult<Vec<Delivery>> {
    let owner = (user.role < Role::Admin).then_some(user.id.as_str());
    db::log(&state.db.reader, owner, limit).await
}

// ---------------------------------------------------------------------------------------------
// Queuing and sending

/// The review's link.
pub fn review_url(base_url: &str, week: IsoWeek, team: Option<&str>) -> String {
    let mut params = vec![("week", week.label())];
    if let Some(t) = team {
        params.push(("team", t.to_owned()));
    }
    format!(
        "{}/reports/weekly?{}",
        base_url.trim_end_matches('/'),
        serde_urlencoded::to_string(&params).unwrap_or_default()
    )
}

/// The review's figures in one line (no incident titles).
pub fn summary_line(r: &WeeklyReport) -> String {
    let by_sev: Vec<String> = crate::incidents::Severity::ALL
        .iter()
        .map(|s| format!("{} {}", s.as_str(), r.of_severity(*s).len()))
        .collect();
    let mttr = r
        .mttx
        .iter()
        .find(|m| m.measure == Measure::Resolve)
        .and_then(|m| m.this_week.median_secs);
    format!(
        "{} incident{} ({}), median time to resolve {}, {} action item{} overdue, {} recurring",
        r.incidents.len(),
        if r.incidents.len() == 1 { "" } else { "s" },
        by_sev.join(", "),
        crate::time::human_secs(mttr),
        r.action_items.overdue,
        if r.action_items.overdue == 1 { "" } else { "s" },
        r.recurring.len()
    )
}

/// The e-mail: subject, plain text and HTML, each with the figures and the link.
pub fn compose(r: &WeeklyReport, url: &str) -> (String, String, String) {
    let who = r.team.as_deref().unwrap_or("all teams");
    let subject = format!("[Hindsight] Weekly review {} · {who}", r.week);
    let mttx: Vec<(String, String)> = r
        .mttx
        .iter()
        .map(|m| {
            (
                m.measure.label().to_owned(),
                crate::time::human_secs(m.this_week.median_secs),
            )
        })
        .collect();
    let mut text = format!(
        "Weekly review {} ({} – {}), {who}\n\n{}\n\n",
        r.week,
        r.starts_on,
        r.ends_on,
        summary_line(r)
    );
    for s in crate::incidents::Severity::ALL {
        text.push_str(&format!("{}: {}\n", s.as_str(), r.of_severity(s).len()));
    }
    for (label, value) in &mttx {
        text.push_str(&format!("{label} (median): {value}\n"));
    }
    text.push_str(&format!(
        "Action items: {} opened, {} closed, {} overdue\n\nThe whole review: {url}\n",
        r.action_items.opened, r.action_items.closed, r.action_items.overdue
    ));
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut rows = String::new();
    rows.push_str(&format!(
        "<tr><th align=\"left\">Incidents</th><td>{}</td></tr>",
        r.incidents.len()
    ));
    for s in crate::incidents::Severity::ALL {
        rows.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
            s.as_str(),
            r.of_severity(s).len()
        ));
    }
    for (label, value) in &mttx {
        rows.push_str(&format!(
            "<tr><th align=\"left\">{} (median)</th><td>{}</td></tr>",
            esc(label),
            esc(value)
        ));
    }
    rows.push_str(&format!(
        "<tr><th align=\"left\">Action items</th><td>{} opened, {} closed, {} overdue</td></tr><tr><th align=\"left\">Recurring</th><td>{}</td></tr>",
        r.action_items.opened, r.action_items.closed, r.action_items.overdue, r.recurring.len()
    ));
    let html = format!(
        "<!doctype html><html><body><h1>Weekly review {} · {}</h1><p>{} – {}</p><table>{rows}</table><p><a href=\"{}\">Open the whole review</a></p></body></html>",
        esc(&r.week),
        esc(who),
        r.starts_on,
        r.ends_on,
        esc(url)
    );
    (subject, text, html)
}

/// Queues the review of `week` for every target of `sub` inside `tx`: an e-mail delivery for
/// this area's loop, a webhook delivery in the notifications outbox. Returns the deliveries'
/// ids.
async fn queue(
    state: &ReviewDeliveryState,
    tx: &mut sqlx::SqliteConnection,
    sub: &Subscription,
    week: IsoWeek,
    trigger: &str,
) -> AppResult<Vec<String>> {
    let mut ids = Vec::new();
    let now = Utc::now();
    if sub.emails.is_empty() && sub.webhook_destination.is_none() {
        // Its webhook destination was deleted: say so in the log rather than skip silently.
        let id = crate::db::new_id();
        db::insert_delivery(
            &mut *tx,
            &id,
            &sub.id,
            &week.label(),
            trigger,
            "webhook",
            "",
            now,
        )
        .await?;
        db::record(
            &mut *tx,
            &id,
            "failed",
            "no target: the webhook destination was deleted",
            None,
        )
        .await?;
        ids.push(id);
    }
    if !sub.emails.is_empty() {
        let id = crate::db::new_id();
        db::insert_delivery(
            &mut *tx,
            &id,
            &sub.id,
            &week.label(),
            trigger,
            "email",
            &sub.emails.join(", "),
            now,
        )
        .await?;
        ids.push(id);
    }
    if let Some(dest) = &sub.webhook_destination {
        let report = crate::reports::weekly(
            &state.db,
            week,
            sub.team.as_deref(),
            state.tz,
            state.rule,
            &state.weeks,
        )
        .await?;
        let path = review_url("", week, sub.team.as_deref());
        let notice = crate::notifications::Notice {
            event: "weekly_review".into(),
            tier: "log".into(),
            incident: None,
            title: format!("Weekly review {}", week.label()),
            severity: None,
            service: None,
            text: format!(
                "Weekly review {} ({}): {}",
                week.label(),
                sub.team_label(),
                summary_line(&report)
            ),
            path,
            // The summary carries counts only, never an incident's title or link.
            restricted: false,
        };
        let target = sub
            .webhook_destination_name
            .clone()
            .unwrap_or_else(|| dest.clone());
        // Queued in the outbox, the delivery shares the outbox row's id (its outcome is read
        // from there); a destination that is gone or disabled is logged as failed at once.
        let queued =
            crate::notifications::db::enqueue_to(&mut *tx, dest, "weekly_review", &notice).await?;
        let id = queued.clone().unwrap_or_else(crate::db::new_id);
        db::insert_delivery(
            &mut *tx,
            &id,
            &sub.id,
            &week.label(),
            trigger,
            "webhook",
            &target,
            now,
        )
        .await?;
        if queued.is_none() {
            db::record(
                &mut *tx,
                &id,
                "failed",
                "the destination is gone or disabled",
                None,
            )
            .await?;
        }
        ids.push(id);
    }
    Ok(ids)
}

/// "Send a test now": queues the last complete week's review for `id` (202; the delivery
/// shows in the log).
pub async fn send_now(
    state: &ReviewDeliveryState,
    user: &User,
    id: &str,
) -> AppResult<Vec<String>> {
    user.require(Role::Responder)?;
    let sub = visible(state, user, id).await?;
    let week = IsoWeek::last_complete(crate::time::today(state.tz));
    let mut tx = state.db.begin_write().await?;
    let ids = queue(state, &mut tx, &sub, week, "test").await?;
    crate::auth::db::audit(
        &mut tx,
        Some(&user.id),
        "review_subscription.send",
        id,
        &week.label(),
    )
    .await?;
    tx.commit().await?;
    Ok(ids)
}

/// Queues the review for every subscription due by `now`, and moves each one's next due time
/// past `now` in the same transaction: a missed hour (the server was down) is sent once.
pub async fn schedule_due(state: &ReviewDeliveryState, now: DateTime<Utc>) -> AppResult<usize> {
    let due = db::due_subscriptions(&state.db.reader, now).await?;
    let mut queued = 0;
    for sub in due {
        let tz: Tz = sub.timezone.parse().unwrap_or(state.tz);
        let weekday = u8::try_from(sub.weekday - 1)
            .ok()
            .and_then(|n| Weekday::try_from(n).ok())
            .unwrap_or(Weekday::Mon);
        let hour = u32::try_from(sub.hour).unwrap_or(0);
        let week = IsoWeek::last_complete(crate::time::today(state.tz));
        let mut tx = state.db.begin_write().await?;
        // Another round may have moved it already (two servers, or a slow round).
        if db::advance(
            &mut tx,
            &sub.id,
            sub.next_due_at,
            next_due(weekday, hour, tz, now),
        )
        .await?
        {
            queued += queue(state, &mut tx, &sub, week, "schedule").await?.len();
        }
        tx.commit().await?;
    }
    Ok(queued)
}

/// Attempts before an e-mail delivery is given up (as webhook deliveries).
pub const MAX_ATTEMPTS: i64 = crate::notifications::MAX_ATTEMPTS;

/// Sends every e-mail delivery due by `now` once; returns how many were attempted. A failure
/// is logged on the delivery and retried with backoff (base, 2×, 4× …) up to `MAX_ATTEMPTS`.
pub async fn deliver_due(state: &ReviewDeliveryState, now: DateTime<Utc>) -> AppResult<usize> {
    let due = db::due_emails(&state.db.reader, now).await?;
    let count = due.len();
    for d in due {
        let result = match &state.mailer {
            None => Err("mail is not configured (HINDSIGHT_SMTP_URL)".to_owned()),
            Some(mailer) => match IsoWeek::parse(&d.week) {
                Err(e) => Err(e),
                Ok(week) => {
                    let report = crate::reports::weekly(
                        &state.db,
                        week,
                        d.team.as_deref(),
                        state.tz,
                        state.rule,
                        &state.weeks,
                    )
                    .await?;
                    let url = review_url(&state.base_url, week, d.team.as_deref());
                    let (subject, text, html) = compose(&report, &url);
                    let to: Vec<String> = d.target.split(", ").map(str::to_owned).collect();
                    mailer.send_alternative(&to, &subject, text, html).await
                }
            },
        };
        let mut tx = state.db.begin_write().await?;
        match result {
            Ok(()) => db::record(&mut tx, &d.id, "delivered", "", None).await?,
            Err(error) => {
                tracing::warn!(delivery = %d.id, %error, "a weekly review e-mail was not sent");
                let next = (d.attempts + 1 < MAX_ATTEMPTS && state.mailer.is_some())
                    .then(|| now + crate::notifications::backoff(state.retry_base, d.attempts));
                let status = if next.is_some() { "pending" } else { "failed" };
                db::record(&mut tx, &d.id, status, &error, next).await?;
            }
        }
        tx.commit().await?;
    }
    Ok(count)
}

/// The loop: schedules and sends every few seconds; stops on shutdown between rounds.
pub async fn run(state: ReviewDeliveryState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(StdDuration::from_secs(5));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = Utc::now();
        if let Err(e) = schedule_due(&state, now).await {
            tracing::warn!(error = %e, "scheduling weekly reviews failed; retrying shortly");
        }
        if let Err(e) = deliver_due(&state, now).await {
            tracing::warn!(error = %e, "sending weekly reviews failed; retrying shortly");
        }
    }
}

#[cfg(test)]
mod tests;
