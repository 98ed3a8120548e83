//! Incidents: severities, the status lifecycle and its milestones, validation of input, and
//! the operations (declare, edit, change status) that the pages and the API share.

pub mod access;
pub mod api;
pub mod db;
pub mod record;
pub mod web;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::auth::User;
use crate::db::Db;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::timeline::{self, EntryKind};
pub use crate::visibility::Viewer;

/// What the incident pages and API need, taken from the app state by `app.rs`.
#[derive(Clone)]
pub struct IncidentsState {
    pub db: Db,
    /// Times typed without an offset on the pages are read in this zone.
    pub tz: Tz,
    /// Recently read list pages.
    pub lists: Arc<ListCache>,
    /// The recurrence rule the list marks and filters by.
    pub rule: crate::recurrence::Rule,
    /// Recurrence of the incident shown, cached per incident.
    pub recurrence: Arc<crate::recurrence::RecurrenceState>,
    /// The collector: a declaration freezes the service's window, the page lists its services.
    pub signals: Arc<crate::signals::Signals>,
    /// Services, categories and teams the forms offer.
    pub catalog: Arc<crate::catalog::CatalogCache>,
    /// What each recently viewed incident's page shows the same to everyone.
    pub records: Arc<RecordCache>,
}

/// The incident page's shared part per incident (see `record::IncidentRecord`).
pub type RecordCache = crate::db::IncidentCache<Arc<record::IncidentRecord>>;

/// Recently read list pages (the default list and "open" are what everyone keeps open).
pub type ListCache = crate::db::ReadCache<Arc<(Vec<db::ListRow>, i64)>>;

/// One page of the list, answered from `cache` when nothing was written since the same page
/// was read.
pub async fn list_cached(
    db: &Db,
    cache: &ListCache,
    viewer: &Viewer,
    filter: &db::ListFilter,
    sort: db::Sort,
    page: u32,
    per_page: u32,
) -> AppResult<Arc<(Vec<db::ListRow>, i64)>> {
    // Each viewer has their own pages: what one may see is not what another may.
    let key = format!("{filter:?}|{sort:?}|{page}|{per_page}|{}", viewer.id());
    cache
        .get_or_load(db, key, || async {
            db::list(&db.reader, viewer, filter, sort, page, per_page)
                .await
                .map(Arc::new)
        })
        .await
}

choice! {
    /// How bad it is. sev1 pages people; sev4 is minor.
    pub enum Severity, "severity" {
        Sev1 = "sev1",
        Sev2 = "sev2",
        Sev3 = "sev3",
        Sev4 = "sev4",
    }
}

impl Severity {
    /// One line on what the level means, shown where people choose it.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Sev1 => "Critical: users cannot use a core feature; page now",
            Self::Sev2 => "Major: a core feature is degraded for many users",
            Self::Sev3 => "Minor: limited impact, a workaround exists",
            Self::Sev4 => "Low: cosmetic or internal only, no user impact",
        }
    }
}

choice! {
    /// Where the response is. Moving forward stamps the matching milestone.
    pub enum Status, "status" {
        Investigating = "investigating",
        Identified = "identified",
        Monitoring = "monitoring",
        Resolved = "resolved",
        Closed = "closed",
    }
}

impl Status {
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Investigating => "looking for the cause",
            Self::Identified => "cause known, working on a fix",
            Self::Monitoring => "fix applied, watching that it holds",
            Self::Resolved => "users are no longer affected",
            Self::Closed => "follow-up done, nothing more to do",
        }
    }

    /// Still needs attention (not resolved or closed).
    pub fn is_open(self) -> bool {
        self < Self::Resolved
    }
}

/// An incident as stored, with the names of the people it refers to.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    pub id: String,
    pub number: i64,
    pub title: String,
    pub summary: String,
    pub customer_impact: String,
    pub severity: Severity,
    pub status: Status,
    pub service: String,
    pub category: String,
    pub team: String,
    pub commander_id: Option<String>,
    pub commander_name: Option<String>,
    pub started_at: DateTime<Utc>,
    pub detected_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub mitigated_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub exclude_from_metrics: bool,
    pub version: i64,
    pub created_by: Option<String>,
    pub created_by_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Only admins, the commander and its participants may see it (`crate::visibility`).
    pub restricted: bool,
}

impl Incident {
    /// `INC-42`.
    pub fn key(&self) -> String {
        format!("INC-{}", self.number)
    }

    pub fn url(&self) -> String {
        format!("/incidents/INC-{}", self.number)
    }
}

/// How an incident is addressed in a URL: its number (`INC-42`, `42`) or its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentRef {
    Number(i64),
    Id(String),
}

impl IncidentRef {
    pub fn parse(raw: &str) -> AppResult<Self> {
        let raw = raw.trim();
        let digits = raw
            .strip_prefix("INC-")
            .or_else(|| raw.strip_prefix("inc-"))
            .unwrap_or(raw);
        if let Ok(n) = digits.parse::<i64>()
            && n > 0
        {
            return Ok(Self::Number(n));
        }
        if uuid::Uuid::parse_str(raw).is_ok() {
            return Ok(Self::Id(raw.to_ascii_lowercase()));
        }
        Err(AppError::not_found("incident", raw))
    }
}

/// What a person may set on an incident, already checked for format. `None` leaves a field
/// as it is; for milestones `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentChanges {
    pub title: Option<String>,
    pub summary: Option<String>,
    pub customer_impact: Option<String>,
    pub severity: Option<Severity>,
    pub status: Option<Status>,
    pub service: Option<String>,
    pub category: Option<String>,
    pub team: Option<String>,
    pub commander_email: Option<Option<String>>,
    pub started_at: Option<DateTime<Utc>>,
    pub detected_at: Option<Option<DateTime<Utc>>>,
    pub acknowledged_at: Option<Option<DateTime<Utc>>>,
    pub mitigated_at: Option<Option<DateTime<Utc>>>,
    pub resolved_at: Option<Option<DateTime<Utc>>>,
    pub closed_at: Option<Option<DateTime<Utc>>>,
    pub exclude_from_metrics: Option<bool>,
    /// Make it restricted (or not): only its commander or an admin may.
    pub restricted: Option<bool>,
    /// The participants' e-mail addresses: the whole list, replacing the one before.
    pub participants: Option<Vec<String>>,
}

/// Raw input from a form or JSON body: strings to be parsed. For optional fields,
/// `Some(None)` (JSON `null`, or an empty form field) means "clear".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentInput {
    #[serde(default, deserialize_with = "not_null")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub summary: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub customer_impact: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub severity: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub service: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub category: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub team: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub commander: Option<Option<String>>,
    /// `null` is refused (it is not "now", nor "keep").
    #[serde(default, deserialize_with = "not_null")]
    pub started_at: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub detected_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub acknowledged_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub mitigated_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub resolved_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub closed_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub exclude_from_metrics: Option<bool>,
    #[serde(default, deserialize_with = "not_null")]
    pub restricted: Option<bool>,
    /// E-mail addresses of the people added to the incident (the whole list).
    #[serde(default, deserialize_with = "not_null")]
    pub participants: Option<Vec<String>>,
}

/// Distinguishes a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A field that may be left out but not given as `null`.
fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

pub const TITLE_MAX: usize = 200;
pub const TEXT_MAX: usize = 50_000;

impl IncidentInput {
    /// Checks every field's format. Returns what parsed and every problem found; callers go on
    /// to check references too, so a person sees all problems at once. Times without an
    /// offset are read in `tz`.
    pub fn parse(&self, tz: Tz) -> (IncidentChanges, FieldErrors) {
        let mut errors = FieldErrors::new();
        let mut out = IncidentChanges::default();

        if let Some(title) = &self.title {
            let title = title.trim();
            if title.is_empty() {
                errors.insert("title".into(), "must not be empty".into());
            } else if title.chars().count() > TITLE_MAX {
                errors.insert(
                    "title".into(),
                    format!("must be at most {TITLE_MAX} characters"),
                );
            } else {
                out.title = Some(title.to_owned());
            }
        }
        for (field, value, slot) in [
            ("summary", &self.summary, &mut out.summary),
            (
                "customer_impact",
                &self.customer_impact,
                &mut out.customer_impact,
            ),
        ] {
            if let Some(text) = value {
                if text.chars().count() > TEXT_MAX {
                    errors.insert(
                        field.into(),
                        format!("must be at most {TEXT_MAX} characters"),
                    );
                } else {
                    *slot = Some(text.trim_end().to_owned());
                }
            }
        }
        if let Some(raw) = &self.severity {
            match Severity::parse(raw) {
                Some(s) => out.severity = Some(s),
                None => {
                    errors.insert("severity".into(), Severity::field_error());
                }
            }
        }
        if let Some(raw) = &self.status {
            match Status::parse(raw) {
                Some(s) => out.status = Some(s),
                None => {
                    errors.insert("status".into(), Status::field_error());
                }
            }
        }
        for (field, value, slot) in [
            ("service", &self.service, &mut out.service),
            ("category", &self.category, &mut out.category),
        ] {
            if let Some(raw) = value {
                if raw.trim().is_empty() {
                    errors.insert(field.into(), "must be chosen".into());
                } else {
                    *slot = Some(raw.trim().to_owned());
                }
            }
        }
        if let Some(team) = &self.team {
            match crate::catalog::parse_team(team) {
                Ok(t) => out.team = Some(t),
                Err(_) => {
                    errors.insert("team".into(), "must be at most 60 characters".into());
                }
            }
        }
        if let Some(commander) = &self.commander {
            out.commander_email = Some(
                commander
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
        }
        if let Some(raw) = &self.started_at {
            match crate::time::parse_form_time(raw, tz) {
                Ok(Some(t)) => out.started_at = Some(t),
                Ok(None) => {
                    errors.insert("started_at".into(), "must not be empty".into());
                }
                Err(msg) => {
                    errors.insert("started_at".into(), msg);
                }
            }
        }
        for (field, value, slot) in [
            ("detected_at", &self.detected_at, &mut out.detected_at),
            (
                "acknowledged_at",
                &self.acknowledged_at,
                &mut out.acknowledged_at,
            ),
            ("mitigated_at", &self.mitigated_at, &mut out.mitigated_at),
            ("resolved_at", &self.resolved_at, &mut out.resolved_at),
            ("closed_at", &self.closed_at, &mut out.closed_at),
        ] {
            if let Some(raw) = value {
                match crate::time::parse_form_time(raw.as_deref().unwrap_or(""), tz) {
                    Ok(t) => *slot = Some(t),
                    Err(msg) => {
                        errors.insert(field.into(), msg);
                    }
                }
            }
        }
        out.exclude_from_metrics = self.exclude_from_metrics;
        out.restricted = self.restricted;
        if let Some(list) = &self.participants {
            match access::parse_participants(list) {
                Ok(emails) => out.participants = Some(emails),
                Err(msg) => {
                    errors.insert("participants".into(), msg);
                }
            }
        }
        (out, errors)
    }
}

/// The incident's fields after changes, before they are written.
#[derive(Debug, Clone)]
pub struct IncidentValues {
    pub title: String,
    pub summary: String,
    pub customer_impact: String,
    pub severity: Severity,
    pub status: Status,
    pub service: String,
    pub category: String,
    pub team: String,
    pub commander_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub detected_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub mitigated_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub exclude_from_metrics: bool,
    pub restricted: bool,
}

impl IncidentValues {
    fn from_incident(i: &Incident) -> Self {
        Self {
            title: i.title.clone(),
            summary: i.summary.clone(),
            customer_impact: i.customer_impact.clone(),
            severity: i.severity,
            status: i.status,
            service: i.service.clone(),
            category: i.category.clone(),
            team: i.team.clone(),
            commander_id: i.commander_id.clone(),
            started_at: i.started_at,
            detected_at: i.detected_at,
            acknowledged_at: i.acknowledged_at,
            mitigated_at: i.mitigated_at,
            resolved_at: i.resolved_at,
            closed_at: i.closed_at,
            exclude_from_metrics: i.exclude_from_metrics,
            restricted: i.restricted,
        }
    }

    /// Moves to `status`, stamping the milestones it implies with `now` where they are missing
    /// and clearing those a reopened incident has not reached again. Acknowledgement is never
    /// cleared: someone did respond.
    pub fn move_to(&mut self, status: Status, now: DateTime<Utc>) {
        self.status = status;
        if status >= Status::Identified && self.acknowledged_at.is_none() {
            self.acknowledged_at = Some(now);
        }
        stamp_or_clear(&mut self.mitigated_at, status >= Status::Monitoring, now);
        stamp_or_clear(&mut self.resolved_at, status >= Status::Resolved, now);
        stamp_or_clear(&mut self.closed_at, status >= Status::Closed, now);
    }

    /// Milestones must not come before the start, and closing not before resolving.
    pub fn check_milestones(&self) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::new();
        for (field, at) in [
            ("detected_at", self.detected_at),
            ("acknowledged_at", self.acknowledged_at),
            ("mitigated_at", self.mitigated_at),
            ("resolved_at", self.resolved_at),
            ("closed_at", self.closed_at),
        ] {
            if at.is_some_and(|t| t < self.started_at) {
                errors.insert(
                    field.into(),
                    "must not be before the start of the incident".into(),
                );
            }
        }
        if let (Some(closed), Some(resolved)) = (self.closed_at, self.resolved_at)
            && closed < resolved
        {
            errors.insert(
                "closed_at".into(),
                "must not be before it was resolved".into(),
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn stamp_or_clear(slot: &mut Option<DateTime<Utc>>, reached: bool, now: DateTime<Utc>) {
    if !reached {
        *slot = None;
    } else if slot.is_none() {
        *slot = Some(now);
    }
}

/// Resolves names to stored spellings and ids: unknown service, category or commander are
/// field errors.
async fn resolve_refs(
    db: &Db,
    changes: &IncidentChanges,
    values: &mut IncidentValues,
    errors: &mut FieldErrors,
) -> AppResult<()> {
    if let Some(service) = &changes.service {
        match crate::catalog::db::canonical_service(&db.reader, service).await? {
            Some(name) => values.service = name,
            None => {
                errors.insert(
                    "service".into(),
                    format!("{service} is not a known service; an admin can add it"),
                );
            }
        }
    }
    if let Some(category) = &changes.category {
        match crate::catalog::db::canonical_category(&db.reader, category).await? {
            Some(name) => values.category = name,
            None => {
                errors.insert(
                    "category".into(),
                    format!("{category} is not a known category"),
                );
            }
        }
    }
    if let Some(commander) = &changes.commander_email {
        values.commander_id = match commander {
            None => None,
            Some(email) => match crate::auth::db::find_user_by_email(&db.reader, email).await? {
                // A commander kept from before (named when viewers still could be) stays.
                Some(user)
                    if !user.can_be_assigned()
                        && values.commander_id.as_deref() != Some(user.id.as_str()) =>
                {
                    errors.insert("commander".into(), user.assignment_refusal("commander"));
                    None
                }
                Some(user) => Some(user.id),
                None => {
                    errors.insert("commander".into(), format!("no user has the email {email}"));
                    None
                }
            },
        };
    }
    Ok(())
}

fn apply_simple(changes: &IncidentChanges, values: &mut IncidentValues) {
    if let Some(v) = &changes.title {
        values.title.clone_from(v);
    }
    if let Some(v) = &changes.summary {
        values.summary.clone_from(v);
    }
    if let Some(v) = &changes.customer_impact {
        values.customer_impact.clone_from(v);
    }
    if let Some(v) = changes.severity {
        values.severity = v;
    }
    if let Some(v) = &changes.team {
        values.team.clone_from(v);
    }
    if let Some(v) = changes.started_at {
        values.started_at = v;
    }
    for (change, slot) in [
        (changes.detected_at, &mut values.detected_at),
        (changes.acknowledged_at, &mut values.acknowledged_at),
        (changes.mitigated_at, &mut values.mitigated_at),
        (changes.resolved_at, &mut values.resolved_at),
        (changes.closed_at, &mut values.closed_at),
    ] {
        if let Some(v) = change {
            *slot = v;
        }
    }
    if let Some(v) = changes.exclude_from_metrics {
        values.exclude_from_metrics = v;
    }
    if let Some(v) = changes.restricted {
        values.restricted = v;
    }
}

/// The earliest detection entry on the timeline that is earlier than the incident's Detected
/// milestone (or the first one when Detected is empty), and not before it started: what the
/// incident page offers as the better Detected time. Time to detect should come from when the
/// problem was noticed, which responders often record as an entry before fixing the milestone.
pub fn earlier_detection(
    incident: &Incident,
    entries: &[timeline::Entry],
) -> Option<DateTime<Utc>> {
    entries
        .iter()
        .filter(|e| e.kind == EntryKind::Detection && e.occurred_at >= incident.started_at)
        .map(|e| e.occurred_at)
        .min()
        .filter(|at| incident.detected_at.is_none_or(|detected| *at < detected))
}

/// The incident `raw` names (`INC-42` or its id) as `viewer` may see it, or a not-found error
/// naming it: one the viewer may not see is answered exactly like one that does not exist.
pub async fn find(db: &Db, raw: &str, viewer: &Viewer) -> AppResult<Incident> {
    find_in(&db.reader, raw, viewer).await
}

/// `find` on a given pool (a write's path reads from `Db::urgent`, so it never queues behind
/// page loads for a reader connection).
pub async fn find_in(pool: &sqlx::SqlitePool, raw: &str, viewer: &Viewer) -> AppResult<Incident> {
    let r = IncidentRef::parse(raw)?;
    match db::find(pool, &r).await? {
        Some(incident)
            if !incident.restricted || db::visible(pool, &incident.id, viewer).await? =>
        {
            Ok(incident)
        }
        _ => Err(AppError::not_found("incident", raw)),
    }
}

/// Who changes an incident.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A person: declaring makes them commander and acknowledges the incident.
    Person(&'a User),
    /// Hindsight itself on behalf of an alert rule or receiver (named): nobody has
    /// acknowledged anything yet.
    System(&'a str),
}

impl Actor<'_> {
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Self::Person(user) => Some(&user.id),
            Self::System(_) => None,
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::Person(user) => user.name.clone(),
            Self::System(what) => (*what).to_owned(),
        }
    }
}

/// Declares an incident: validates, numbers it, and records the declaration on its timeline,
/// all in one transaction.
pub async fn declare(
    db: &Db,
    by: Actor<'_>,
    changes: &IncidentChanges,
    mut errors: FieldErrors,
) -> AppResult<Incident> {
    let now = Utc::now();
    for (field, missing) in [
        ("title", changes.title.is_none()),
        ("severity", changes.severity.is_none()),
        ("service", changes.service.is_none()),
        ("category", changes.category.is_none()),
    ] {
        if missing && !errors.contains_key(field) {
            errors.insert(field.into(), "is required".into());
        }
    }
    let mut values = IncidentValues {
        title: String::new(),
        summary: String::new(),
        customer_impact: String::new(),
        severity: Severity::Sev3,
        status: Status::Investigating,
        service: String::new(),
        category: String::new(),
        team: String::new(),
        commander_id: by.user_id().map(str::to_owned),
        started_at: now,
        detected_at: None,
        acknowledged_at: None,
        mitigated_at: None,
        resolved_at: None,
        closed_at: None,
        exclude_from_metrics: false,
        restricted: false,
    };
    apply_simple(changes, &mut values);
    resolve_refs(db, changes, &mut values, &mut errors).await?;
    let participants = match &changes.participants {
        Some(emails) => access::resolve_participants(db, emails, &mut errors).await?,
        None => Vec::new(),
    };
    // Detected no later than now; a person declaring it has also acknowledged it.
    values.detected_at = values.detected_at.or(Some(now.max(values.started_at)));
    if let Actor::Person(_) = by {
        values.acknowledged_at = values.acknowledged_at.or(Some(now.max(values.started_at)));
    }
    values.move_to(
        changes.status.unwrap_or(Status::Investigating),
        now.max(values.started_at),
    );
    if let Err(more) = values.check_milestones() {
        errors.extend(more);
    }
    if values.team.is_empty()
        && let Ok(Some(team)) = db::service_team(&db.reader, &values.service).await
    {
        values.team = team;
    }
    if !errors.is_empty() {
        return Err(AppError::fields(errors));
    }

    let mut tx = db.begin_write().await?;
    let (user_id, who) = (by.user_id(), by.name());
    let (id, number) = db::insert(&mut tx, &values, user_id, now).await?;
    // The name and the service (which an alert label may have named) are untrusted text.
    let body = format!(
        "Incident declared by {}: {} on {}, status {}.",
        crate::markdown::escape(&who),
        values.severity.as_str(),
        crate::markdown::escape(&values.service),
        values.status.as_str()
    );
    timeline::db::insert(&mut tx, &id, now, EntryKind::StatusChange, &body, user_id).await?;
    if values.restricted || !participants.is_empty() {
        let before = access::Access::default();
        let after = access::Access {
            restricted: values.restricted,
            participants,
        };
        access::record(&mut tx, &id, number, user_id, &before, &after, now).await?;
    }
    let incident = db::find(&mut *tx, &IncidentRef::Number(number))
        .await?
        .ok_or_else(|| AppError::Internal("incident vanished after insert".into()))?;
    notify(
        &mut tx,
        crate::notifications::Event::IncidentOpened,
        &incident,
        format!(
            "{} {} opened: {} ({})",
            incident.key(),
            incident.severity.as_str(),
            incident.title,
            incident.service
        ),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(incident = number, "incident declared");
    Ok(incident)
}

/// A person declares an incident from a page or the API: `declare`, then the service's
/// window is frozen onto it when the collector has data (see `snapshot_on_open`).
pub async fn declare_by(
    db: &Db,
    signals: &crate::signals::Signals,
    user: &User,
    changes: &IncidentChanges,
    errors: FieldErrors,
) -> AppResult<Incident> {
    let incident = declare(db, Actor::Person(user), changes, errors).await?;
    snapshot_on_open(db, signals, &incident, user).await;
    Ok(incident)
}

/// Freezes the service's window onto a newly declared incident when the collector has data
/// for it. A failure here must not undo the declaration, so it is logged, not returned.
pub async fn snapshot_on_open(
    db: &Db,
    signals: &crate::signals::Signals,
    incident: &Incident,
    user: &User,
) {
    let result = crate::signals::freeze(
        db,
        signals,
        &incident.id,
        &incident.service,
        crate::signals::Trigger::IncidentOpen,
        Some(&user.id),
    )
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, incident = incident.number, "snapshot at declaration failed");
    }
}

/// Applies changes made from `version`. A stale version is a conflict carrying the incident as
/// it is now; status and severity changes are recorded on the timeline with `note`. `errors`
/// are problems already found in the input; they are reported together with any others.
pub async fn update(
    db: &Db,
    by: Actor<'_>,
    current: &Incident,
    version: i64,
    changes: &IncidentChanges,
    mut errors: FieldErrors,
    note: &str,
) -> AppResult<Incident> {
    let now = Utc::now();
    let mut values = IncidentValues::from_incident(current);
    apply_simple(changes, &mut values);
    resolve_refs(db, changes, &mut values, &mut errors).await?;
    let before = access::Access::load(&db.reader, current).await?;
    let after = access::Access {
        restricted: values.restricted,
        participants: match &changes.participants {
            Some(emails) => access::resolve_participants(db, emails, &mut errors).await?,
            None => before.participants.clone(),
        },
    };
    if after != before {
        access::may_change(by, current)?;
    }
    if let Some(status) = changes.status
        && status != current.status
    {
        values.move_to(status, now);
        // Hindsight moving an incident on its own (a group's alerts resolved) is not a person
        // acknowledging it: keep MTTA honest.
        if matches!(by, Actor::System(_)) && current.acknowledged_at.is_none() {
            values.acknowledged_at = None;
        }
        // Milestones typed in the same request win over the automatic stamps.
        apply_simple(
            &IncidentChanges {
                detected_at: changes.detected_at,
                acknowledged_at: changes.acknowledged_at,
                mitigated_at: changes.mitigated_at,
                resolved_at: changes.resolved_at,
                closed_at: changes.closed_at,
                ..IncidentChanges::default()
            },
            &mut values,
        );
    }
    if let Err(more) = values.check_milestones() {
        errors.extend(more);
    }
    if !errors.is_empty() {
        return Err(AppError::fields(errors));
    }

    let mut tx = db.begin_write().await?;
    // Reports and recurrence read incidents by start: this changes only what is counted from
    // the earlier of its old and new start on (a storm's status changes leave last week alone).
    tx.changes_since(current.started_at.min(values.started_at));
    // Its timeline, status, milestones and access: what other incidents' pages show of it
    // (a link's title and status) is read for each view, not cached.
    tx.changes_only_incident(&current.id);
    if !db::update(&mut tx, &current.id, version, &values, by.user_id(), now).await? {
        drop(tx);
        let fresh = db::find(&db.writer, &IncidentRef::Id(current.id.clone()))
            .await?
            .ok_or_else(|| AppError::not_found("incident", current.key()))?;
        return Err(conflict(&fresh));
    }
    if after != before {
        access::record(
            &mut tx,
            &current.id,
            current.number,
            by.user_id(),
            &before,
            &after,
            now,
        )
        .await?;
    }
    let note = note.trim();
    let mut lines = Vec::new();
    if values.status != current.status {
        lines.push(format!(
            "Status: {} → {}",
            current.status.as_str(),
            values.status.as_str()
        ));
    }
    if values.severity != current.severity {
        lines.push(format!(
            "Severity: {} → {}",
            current.severity.as_str(),
            values.severity.as_str()
        ));
    }
    if !lines.is_empty() {
        let mut body = lines.join("  \n");
        if !note.is_empty() {
            body.push_str("\n\n");
            body.push_str(note);
        }
        timeline::db::insert(
            &mut tx,
            &current.id,
            now,
            EntryKind::StatusChange,
            &body,
            by.user_id(),
        )
        .await?;
    } else if !note.is_empty() {
        timeline::db::insert(
            &mut tx,
            &current.id,
            now,
            EntryKind::Note,
            note,
            by.user_id(),
        )
        .await?;
    }
    let updated = db::find(&mut *tx, &IncidentRef::Id(current.id.clone()))
        .await?
        .ok_or_else(|| AppError::not_found("incident", current.key()))?;
    // sev1 is the most severe, so "raised" means a smaller level.
    if updated.severity < current.severity {
        let text = format!(
            "{} severity raised {} → {}: {}",
            updated.key(),
            current.severity.as_str(),
            updated.severity.as_str(),
            updated.title
        );
        notify(
            &mut tx,
            crate::notifications::Event::SeverityRaised,
            &updated,
            text,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(updated)
}

/// Queues a notification about an incident in the write transaction `conn` (incident events
/// count as the page tier).
pub async fn notify(
    conn: &mut sqlx::SqliteConnection,
    event: crate::notifications::Event,
    incident: &Incident,
    text: String,
) -> AppResult<()> {
    crate::notifications::enqueue(
        conn,
        event,
        crate::notifications::Notice {
            event: event.as_str().to_owned(),
            tier: "page".to_owned(),
            incident: Some(incident.key()),
            title: incident.title.clone(),
            severity: Some(incident.severity.as_str().to_owned()),
            service: Some(incident.service.clone()),
            text,
            path: incident.url(),
            restricted: incident.restricted,
        },
    )
    .await?;
    Ok(())
}

/// The 409 for a stale edit, carrying the incident as it is now.
pub fn conflict(current: &Incident) -> AppError {
    AppError::conflict(current.key(), current.version, current.clone())
}

/// List filters as given in a query string, shared by the list page and the API.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub team: String,
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub until: String,
    #[serde(default)]
    pub q: String,
    /// `1` (or `true`): only incidents that recur.
    #[serde(default)]
    pub recurring: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub page: String,
    #[serde(default)]
    pub per_page: String,
}

impl ListParams {
    /// Checks the filter; a date without a time selects whole days in `tz` (`until` includes
    /// its day).
    pub fn parse(&self, tz: Tz) -> Result<(db::ListFilter, db::Sort), FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut filter = db::ListFilter::default();
        match self.status.trim() {
            "" | "all" => {}
            "open" => filter.status = Some(db::StatusFilter::Open),
            other => match Status::parse(other) {
                Some(s) => filter.status = Some(db::StatusFilter::Is(s)),
                None => {
                    errors.insert(
                        "status".into(),
                        "must be open, all, or one of investigating, identified, monitoring, resolved, closed".into(),
                    );
                }
            },
        }
        if !self.severity.trim().is_empty() {
            match Severity::parse(&self.severity) {
                Some(s) => filter.severity = Some(s),
                None => {
                    errors.insert("severity".into(), Severity::field_error());
                }
            }
        }
        let non_empty = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        filter.service = non_empty(&self.service);
        filter.category = non_empty(&self.category);
        filter.team = non_empty(&self.team);
        filter.text = non_empty(&self.q).map(|t| t.chars().take(200).collect());
        match self.recurring.trim() {
            "" | "0" | "false" | "no" | "off" => {}
            "1" | "true" | "yes" | "on" => filter.recurring = true,
            _ => {
                errors.insert("recurring".into(), "must be 1 or 0".into());
            }
        }
        for (field, raw, end_of_day) in
            [("since", &self.since, false), ("until", &self.until, true)]
        {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let date_only = raw.len() == 10;
            let with_time = if date_only {
                format!("{raw}T00:00")
            } else {
                raw.to_owned()
            };
            match crate::time::parse_form_time(&with_time, tz) {
                Ok(Some(t)) => {
                    let t = if end_of_day && date_only {
                        t + chrono::Duration::days(1)
                    } else {
                        t
                    };
                    if field == "since" {
                        filter.since = Some(t);
                    } else {
                        filter.until = Some(t);
                    }
                }
                Ok(None) => {}
                Err(_) => {
                    errors.insert(
                        field.into(),
                        "must be a date like 2026-11-25 or an RFC 3339 time".into(),
                    );
                }
            }
        }
        let sort = match db::Sort::parse(self.sort.trim()) {
            Some(sort) => sort,
            None => {
                errors.insert("sort".into(), db::Sort::field_error());
                db::Sort::Newest
            }
        };
        if errors.is_empty() {
            Ok((filter, sort))
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn hm(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, hour, minute, 0)
            .single()
            .expect("valid time")
    }

    fn incident(started: DateTime<Utc>, detected: Option<DateTime<Utc>>) -> Incident {
        Incident {
            id: "i".into(),
            number: 1,
            title: "t".into(),
            summary: String::new(),
            customer_impact: String::new(),
            severity: Severity::Sev2,
            status: Status::Investigating,
            service: "s".into(),
            category: "c".into(),
            team: String::new(),
            commander_id: None,
            commander_name: None,
            started_at: started,
            detected_at: detected,
            acknowledged_at: None,
            mitigated_at: None,
            resolved_at: None,
            closed_at: None,
            exclude_from_metrics: false,
            version: 1,
            created_by: None,
            created_by_name: None,
            created_at: started,
            updated_at: started,
            restricted: false,
        }
    }

    fn entry(kind: EntryKind, occurred_at: DateTime<Utc>) -> timeline::Entry {
        timeline::Entry {
            id: format!("{kind}-{occurred_at}"),
            incident_id: "i".into(),
            occurred_at,
            kind,
            body: "b".into(),
            author_id: None,
            author_name: None,
            created_at: occurred_at,
            updated_at: occurred_at,
            version: 1,
        }
    }

    #[test]
    fn the_earliest_detection_before_detected_is_offered_and_nothing_else() {
        let entries = [
            entry(EntryKind::Note, hm(16, 1)),
            entry(EntryKind::Detection, hm(16, 5)),
            entry(EntryKind::Detection, hm(16, 3)),
        ];
        let started = hm(16, 0);
        assert_eq!(
            earlier_detection(&incident(started, Some(hm(16, 9))), &entries),
            Some(hm(16, 3))
        );
        // Detected empty: the first detection entry is offered.
        assert_eq!(
            earlier_detection(&incident(started, None), &entries),
            Some(hm(16, 3))
        );
        // Detected already at or before the earliest detection entry: nothing to offer.
        assert_eq!(
            earlier_detection(&incident(started, Some(hm(16, 3))), &entries),
            None
        );
        // A detection entry before the start cannot be Detected (it would precede Started).
        assert_eq!(
            earlier_detection(&incident(hm(16, 4), Some(hm(16, 9))), &entries),
            Some(hm(16, 5))
        );
        assert_eq!(
            earlier_detection(&incident(started, Some(hm(16, 9))), &entries[..1]),
            None
        );
    }

    #[test]
    fn list_params_select_whole_days_and_reject_nonsense() {
        let params = ListParams {
            since: "2026-11-01".into(),
            until: "2026-11-30".into(),
            status: "open".into(),
            ..ListParams::default()
        };
        let (filter, _) = params.parse(Tz::UTC).expect("valid");
        assert_eq!(
            filter.since.map(crate::db::ts).as_deref(),
            Some("2026-11-01T00:00:00.000Z")
        );
        assert_eq!(
            filter.until.map(crate::db::ts).as_deref(),
            Some("2026-12-01T00:00:00.000Z")
        );
        assert_eq!(filter.status, Some(db::StatusFilter::Open));
        let bad = ListParams {
            status: "sleeping".into(),
            since: "soon".into(),
            sort: "random".into(),
            ..ListParams::default()
        };
        let errors = bad.parse(Tz::UTC).expect_err("invalid");
        assert_eq!(errors.len(), 3);
    }

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, 0, 0)
            .single()
            .expect("valid")
    }

    fn values() -> IncidentValues {
        IncidentValues {
            title: "t".into(),
            summary: String::new(),
            customer_impact: String::new(),
            severity: Severity::Sev2,
            status: Status::Investigating,
            service: "api".into(),
            category: "deploy".into(),
            team: String::new(),
            commander_id: None,
            started_at: at(1),
            detected_at: Some(at(2)),
            acknowledged_at: None,
            mitigated_at: None,
            resolved_at: None,
            closed_at: None,
            exclude_from_metrics: false,
            restricted: false,
        }
    }

    #[test]
    fn moving_forward_stamps_each_milestone_once() {
        let mut v = values();
        v.move_to(Status::Monitoring, at(3));
        assert_eq!(
            (v.acknowledged_at, v.mitigated_at),
            (Some(at(3)), Some(at(3)))
        );
        v.move_to(Status::Resolved, at(4));
        assert_eq!(v.mitigated_at, Some(at(3)), "an earlier stamp is kept");
        assert_eq!(v.resolved_at, Some(at(4)));
        v.move_to(Status::Closed, at(5));
        assert_eq!(v.closed_at, Some(at(5)));
    }

    #[test]
    fn skipping_ahead_stamps_the_milestones_in_between() {
        let mut v = values();
        v.move_to(Status::Resolved, at(6));
        assert_eq!(v.acknowledged_at, Some(at(6)));
        assert_eq!(v.mitigated_at, Some(at(6)));
        assert_eq!(v.resolved_at, Some(at(6)));
        assert_eq!(v.closed_at, None);
    }

    #[test]
    fn reopening_clears_what_was_not_reached_again_but_keeps_the_acknowledgement() {
        let mut v = values();
        v.move_to(Status::Closed, at(5));
        v.move_to(Status::Investigating, at(7));
        assert_eq!(v.acknowledged_at, Some(at(5)));
        assert_eq!(
            (v.mitigated_at, v.resolved_at, v.closed_at),
            (None, None, None)
        );
    }

    #[test]
    fn milestones_before_the_start_are_refused() {
        let mut v = values();
        v.detected_at = Some(at(0));
        v.resolved_at = Some(at(5));
        v.closed_at = Some(at(4));
        let errors = v.check_milestones().expect_err("invalid");
        assert!(errors.contains_key("detected_at"));
        assert!(errors.contains_key("closed_at"));
    }

    #[test]
    fn input_parsing_reports_every_bad_field() {
        let input = IncidentInput {
            title: Some("   ".into()),
            severity: Some("sev9".into()),
            status: Some("done".into()),
            started_at: Some("last tuesday".into()),
            detected_at: Some(Some("2026-13-45T99:00".into())),
            ..IncidentInput::default()
        };
        let (_, errors) = input.parse(Tz::UTC);
        let fields: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            ["detected_at", "severity", "started_at", "status", "title"]
        );
    }

    #[test]
    fn empty_or_null_milestones_mean_clear() {
        let input = IncidentInput {
            resolved_at: Some(None),
            mitigated_at: Some(Some(String::new())),
            ..IncidentInput::default()
        };
        let (changes, errors) = input.parse(Tz::UTC);
        assert!(errors.is_empty());
        assert_eq!(changes.resolved_at, Some(None));
        assert_eq!(changes.mitigated_at, Some(None));
        assert_eq!(changes.detected_at, None, "absent means unchanged");
    }

    #[test]
    fn incident_refs_accept_numbers_and_ids() {
        assert_eq!(
            IncidentRef::parse("INC-42").ok(),
            Some(IncidentRef::Number(42))
        );
        assert_eq!(IncidentRef::parse("42").ok(), Some(IncidentRef::Number(42)));
        let id = "0190f3c4-7e2a-7cc0-8d1e-5f9a2b3c4d5e";
        assert_eq!(
            IncidentRef::parse(id).ok(),
            Some(IncidentRef::Id(id.into()))
        );
        assert!(IncidentRef::parse("INC-0").is_err());
        assert!(IncidentRef::parse("'; DROP TABLE incidents").is_err());
    }
}
