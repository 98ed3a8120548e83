//! Action items: the follow-ups of an incident, with an owner, a due date and a status that
//! goes `open → in_progress → done | wont_do`. Checking input and the operations the API (and,
//! later, the pages) share; every change is written to the incident's timeline.

pub mod api;
pub mod db;
pub mod progress;
pub mod web;

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::User;
use crate::db::Db;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::timeline::EntryKind;

/// What the action-item pages and API need, taken from the app state by `app.rs`.
#[derive(Clone)]
pub struct ActionItemsState {
    pub db: Db,
    /// The zone "today" (due dates, overdue) is counted in.
    pub tz: chrono_tz::Tz,
    /// Also read by the page header (its count of my open items), through `CallerState`.
    pub items: Arc<ItemCaches>,
}

/// Counts and pages of items recently read, reused until the next committed write.
#[derive(Debug)]
pub struct ItemCaches {
    pub counts: crate::db::ReadCache<i64>,
    pub pages: crate::db::ReadCache<Arc<(Vec<ActionItem>, i64)>>,
}

impl ItemCaches {
    pub fn new(max_age: std::time::Duration) -> Self {
        Self {
            counts: crate::db::ReadCache::new(max_age),
            pages: crate::db::ReadCache::new(max_age),
        }
    }

    pub async fn count(
        &self,
        db: &Db,
        viewer: &crate::visibility::Viewer,
        filter: &db::ItemFilter,
    ) -> Result<i64, AppError> {
        // Per viewer: items of restricted incidents count only for those who may see them.
        self.counts
            .get_or_load(db, format!("{filter:?}|{}", viewer.id()), || {
                db::count(&db.reader, viewer, filter)
            })
            .await
    }

    pub async fn page(
        &self,
        db: &Db,
        viewer: &crate::visibility::Viewer,
        filter: &db::ItemFilter,
        page: u32,
        per_page: u32,
    ) -> Result<Arc<(Vec<ActionItem>, i64)>, AppError> {
        let key = format!("{filter:?}|{page}|{per_page}|{}", viewer.id());
        self.pages
            .get_or_load(db, key, || async {
                db::list(&db.reader, viewer, filter, page, per_page)
                    .await
                    .map(Arc::new)
            })
            .await
    }
}

choice!(
    Kind,
    "kind",
    [
        Prevent = "prevent",
        Mitigate = "mitigate",
        Detect = "detect",
        Process = "process",
        Repair = "repair"
    ]
);
choice!(Priority, "priority", [P1 = "p1", P2 = "p2", P3 = "p3"]);
choice!(
    ItemStatus,
    "status",
    [
        Open = "open",
        InProgress = "in_progress",
        Done = "done",
        WontDo = "wont_do"
    ]
);

impl ItemStatus {
    /// How pages show it ("in progress", "won't do"); the API and forms keep `as_str`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::InProgress => "in progress",
            Self::Done => "done",
            Self::WontDo => "won't do",
        }
    }

    /// Done or won't do: nothing more to do.
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Done | Self::WontDo)
    }
}

/// An action item as stored, with names for the people it refers to.
#[derive(Debug, Clone, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct ActionItem {
    pub id: String,
    pub incident_id: String,
    pub incident_number: i64,
    pub title: String,
    pub description: String,
    pub owner_id: Option<String>,
    pub owner_name: Option<String>,
    pub owner_email: Option<String>,
    pub team: String,
    #[sqlx(try_from = "String")]
    pub kind: Kind,
    #[sqlx(try_from = "String")]
    pub priority: Priority,
    #[sqlx(try_from = "String")]
    pub status: ItemStatus,
    pub wont_do_reason: String,
    pub due_on: Option<NaiveDate>,
    pub external_url: String,
    pub completed_at: Option<chrono::DateTime<Utc>>,
    pub completed_by_name: Option<String>,
    pub version: i64,
    pub created_at: chrono::DateTime<Utc>,
    pub updated_at: chrono::DateTime<Utc>,
}

impl ActionItem {
    /// Past its due date and not closed (due dates in the past are allowed, and marked).
    /// `today` comes from [`crate::time::today`]; see [`overdue_cutoff`] for the weekly figure.
    pub fn overdue(&self, today: NaiveDate) -> bool {
        !self.status.is_closed() && self.due_on.is_some_and(|d| d < today)
    }
}

/// The one definition of a week's "overdue" figure, used by the progress page, the weekly
/// review, the home page and (for the current week) the board's Overdue filter: the items
/// still open at the cutoff and due before its day. The cutoff is the week's end (its next
/// Monday) for a finished week, and today for the current week — so the current week's
/// figure is "so far" and equals what the board lists as overdue today.
pub fn overdue_cutoff(monday: NaiveDate, today: NaiveDate) -> NaiveDate {
    (monday + chrono::Duration::weeks(1)).min(today)
}

/// How many of `items` are closed (done or won't do).
pub fn done_count(items: &[ActionItem]) -> usize {
    items.iter().filter(|i| i.status.is_closed()).count()
}

/// p1 items not closed yet: closing an incident or publishing its post-mortem with these
/// left is allowed, but said out loud.
pub fn open_p1(items: &[ActionItem]) -> Vec<&ActionItem> {
    items
        .iter()
        .filter(|i| i.priority == Priority::P1 && !i.status.is_closed())
        .collect()
}

/// Titles of the incident's open p1 items, for the warning when it is closed or its
/// post-mortem published.
pub async fn open_p1_titles(db: &Db, incident_id: &str) -> AppResult<Vec<String>> {
    let items = db::list_for_incident(&db.reader, incident_id).await?;
    Ok(open_p1(&items)
        .into_iter()
        .map(|i| i.title.clone())
        .collect())
}

/// The item `id` as `viewer` may see it, or a not-found error (also for an item of an
/// incident they may not see: it answers like a missing one).
pub async fn find(db: &Db, id: &str, viewer: &crate::visibility::Viewer) -> AppResult<ActionItem> {
    match db::find(&db.reader, id).await? {
        Some(item)
            if crate::incidents::db::visible(&db.reader, &item.incident_id, viewer).await? =>
        {
            Ok(item)
        }
        _ => Err(AppError::missing("action item")),
    }
}

/// Input from the API; `None` leaves a field as it is, `Some(None)` (JSON null) clears it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemInput {
    #[serde(default, deserialize_with = "not_null")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub owner: Option<Option<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub team: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub priority: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub due_on: Option<Option<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub external_url: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub wont_do_reason: Option<String>,
}

fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A field that may be left out but not given as `null` (only `owner` and `due_on` clear).
fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The item's fields after the input is applied and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemValues {
    pub title: String,
    pub description: String,
    pub owner_id: Option<String>,
    /// The owner's name, for the timeline note when the owner changes (not stored).
    pub owner_name: Option<String>,
    pub team: String,
    pub kind: Kind,
    pub priority: Priority,
    pub status: ItemStatus,
    pub wont_do_reason: String,
    pub due_on: Option<NaiveDate>,
    pub external_url: String,
}

impl ItemValues {
    fn from_item(item: &ActionItem) -> Self {
        Self {
            title: item.title.clone(),
            description: item.description.clone(),
            owner_id: item.owner_id.clone(),
            owner_name: item.owner_name.clone(),
            team: item.team.clone(),
            kind: item.kind,
            priority: item.priority,
            status: item.status,
            wont_do_reason: item.wont_do_reason.clone(),
            due_on: item.due_on,
            external_url: item.external_url.clone(),
        }
    }

    fn new_item() -> Self {
        Self {
            title: String::new(),
            description: String::new(),
            owner_id: None,
            owner_name: None,
            team: String::new(),
            kind: Kind::Prevent,
            priority: Priority::P2,
            status: ItemStatus::Open,
            wont_do_reason: String::new(),
            due_on: None,
            external_url: String::new(),
        }
    }
}

/// Applies `input` to `base`, checking every field and naming each problem. Owners are looked
/// up by email (or id) among enabled users.
pub async fn check(db: &Db, base: ItemValues, input: &ItemInput) -> AppResult<ItemValues> {
    let mut errors = FieldErrors::new();
    let mut v = base;
    if let Some(title) = &input.title {
        let title = title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            errors.insert("title".into(), "must be 1 to 200 characters".into());
        }
        v.title = title.to_owned();
    }
    if let Some(description) = &input.description {
        if description.chars().count() > 20_000 {
            errors.insert(
                "description".into(),
                "must be at most 20000 characters".into(),
            );
        }
        v.description = description.trim_end().to_owned();
    }
    if let Some(owner) = &input.owner {
        v.owner_name = None;
        v.owner_id = match owner.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(who) => match crate::auth::db::find_user_by_email_or_id(&db.reader, who).await? {
                // An owner kept from before (named when viewers still could be) stays.
                Some(user)
                    if !user.can_be_assigned()
                        && v.owner_id.as_deref() != Some(user.id.as_str()) =>
                {
                    errors.insert("owner".into(), user.assignment_refusal("owner"));
                    None
                }
                Some(user) => {
                    v.owner_name = Some(user.name);
                    Some(user.id)
                }
                None => {
                    errors.insert("owner".into(), format!("no user is {who}"));
                    None
                }
            },
        };
    }
    if let Some(team) = &input.team {
        match crate::catalog::parse_team(team) {
            Ok(t) => v.team = t,
            Err(_) => {
                errors.insert("team".into(), "must be at most 60 characters".into());
            }
        }
    }
    if let Some(raw) = &input.kind {
        v.kind = Kind::parse_field(raw, &mut errors).unwrap_or(v.kind);
    }
    if let Some(raw) = &input.priority {
        v.priority = Priority::parse_field(raw, &mut errors).unwrap_or(v.priority);
    }
    if let Some(due) = &input.due_on {
        v.due_on = match due.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(raw) => match crate::time::parse_date(raw) {
                Ok(d) => d,
                Err(msg) => {
                    errors.insert("due_on".into(), msg);
                    None
                }
            },
        };
    }
    if let Some(url) = &input.external_url {
        let url = url.trim();
        if !url.is_empty()
            && (!(url.starts_with("https://") || url.starts_with("http://"))
                || url.len() > 2000
                || url.contains(char::is_whitespace))
        {
            errors.insert(
                "external_url".into(),
                "must be an http(s) link to the tracker (Jira, GitHub, Linear…)".into(),
            );
        }
        v.external_url = url.to_owned();
    }
    if let Some(reason) = &input.wont_do_reason {
        v.wont_do_reason = reason.trim().chars().take(2000).collect();
    }
    if let Some(raw) = &input.status {
        v.status = ItemStatus::parse_field(raw, &mut errors).unwrap_or(v.status);
    }
    if v.status == ItemStatus::WontDo && v.wont_do_reason.is_empty() {
        errors.insert(
            "wont_do_reason".into(),
            "say why this will not be done".into(),
        );
    }
    if v.status != ItemStatus::WontDo {
        v.wont_do_reason.clear();
    }
    if errors.is_empty() {
        Ok(v)
    } else {
        Err(AppError::fields(errors))
    }
}

/// Creates an item on an incident and notes it on the timeline.
pub async fn create(
    db: &Db,
    user: &User,
    incident_id: &str,
    input: &ItemInput,
) -> AppResult<ActionItem> {
    if input.title.is_none() {
        return Err(AppError::field("title", "is required"));
    }
    let values = check(db, ItemValues::new_item(), input).await?;
    let mut tx = db.begin_write().await?;
    let id = db::insert(&mut tx, incident_id, &values, &user.id).await?;
    if let Some(owner) = &values.owner_id {
        tell_owner(&mut tx, user, incident_id, &id, owner, &values.title).await?;
    }
    let body = format!(
        "Action item added: **{}** ({}, {})",
        crate::markdown::escape(&values.title),
        values.priority.as_str(),
        values.kind.as_str()
    );
    crate::timeline::db::insert(
        &mut tx,
        incident_id,
        Utc::now(),
        EntryKind::Action,
        &body,
        Some(&user.id),
    )
    .await?;
    tx.commit().await?;
    db::find(&db.writer, &id)
        .await?
        .ok_or_else(|| AppError::Internal("action item vanished after insert".into()))
}

/// Applies a change made from `version`: a stale version is a 409 with the item as it is now.
/// Done records who and when; reopening clears it. The change is noted on the timeline.
pub async fn update(
    db: &Db,
    user: &User,
    current: &ActionItem,
    version: i64,
    input: &ItemInput,
) -> AppResult<ActionItem> {
    let values = check(db, ItemValues::from_item(current), input).await?;
    let mut tx = db.begin_write().await?;
    if !write_change(&mut tx, user, current, version, &values).await? {
        drop(tx);
        let fresh = db::find(&db.writer, &current.id)
            .await?
            .ok_or_else(|| AppError::missing("action item"))?;
        return Err(AppError::conflict("this action item", fresh.version, fresh));
    }
    tx.commit().await?;
    db::find(&db.writer, &current.id)
        .await?
        .ok_or_else(|| AppError::missing("action item"))
}

/// What a bulk change did: how many items changed, and why the others did not.
#[derive(Debug, Default)]
pub struct BulkOutcome {
    pub changed: usize,
    pub failed: Vec<String>,
}

/// Most items one bulk change touches.
pub const BULK_MAX: usize = 500;

/// The board's bulk change: `input` applied to each of the items `ids` (unknown ids are
/// skipped, an item whose change is refused is named with the reason) in one transaction, so
/// the items are read as they are written over and nothing is left half-done.
pub async fn bulk_update(
    db: &Db,
    user: &User,
    ids: &[&str],
    input: &ItemInput,
) -> AppResult<BulkOutcome> {
    let mut outcome = BulkOutcome::default();
    let mut tx = db.begin_write().await?;
    for id in ids.iter().take(BULK_MAX) {
        let Some(item) = db::find(&mut *tx, id).await? else {
            continue;
        };
        // An item of an incident the user may not see is as good as missing.
        let viewer = crate::visibility::Viewer::user(&user.id);
        if !crate::incidents::db::visible(&mut *tx, &item.incident_id, &viewer).await? {
            continue;
        }
        let values = match check(db, ItemValues::from_item(&item), input).await {
            Ok(values) => values,
            Err(AppError::Validation { message, .. }) => {
                outcome.failed.push(format!("{}: {message}", item.title));
                continue;
            }
            Err(e) => return Err(e),
        };
        if write_change(&mut tx, user, &item, item.version, &values).await? {
            outcome.changed += 1;
        } else {
            outcome
                .failed
                .push(format!("{}: changed meanwhile", item.title));
        }
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Tells a new owner, in their inbox, that the item is theirs now.
async fn tell_owner(
    conn: &mut sqlx::SqliteConnection,
    by: &User,
    incident_id: &str,
    item_id: &str,
    owner_id: &str,
    title: &str,
) -> AppResult<()> {
    let notice = crate::inbox::Notice {
        kind: crate::inbox::Kind::ItemAssigned,
        incident_id,
        text: format!("gave you the action item “{title}”"),
        link_suffix: format!("#item-{item_id}"),
    };
    crate::inbox::deliver(conn, owner_id, Some(by), &notice).await
}

/// Writes the checked `values` over `current` if it is still at `version`, and notes the
/// change on the incident's timeline; false (and nothing written) when the version is stale.
async fn write_change(
    tx: &mut crate::db::WriteTx,
    user: &User,
    current: &ActionItem,
    version: i64,
    values: &ItemValues,
) -> AppResult<bool> {
    let completed = match (current.status.is_closed(), values.status.is_closed()) {
        (false, true) => Some((Some(crate::db::ts(Utc::now())), Some(user.id.clone()))),
        (true, false) => Some((None, None)),
        _ => None,
    };
    if !db::update(tx, &current.id, version, values, completed).await? {
        return Ok(false);
    }
    let mut changes = Vec::new();
    if values.status != current.status {
        changes.push(format!(
            "status {} → {}",
            current.status.as_str(),
            values.status.as_str()
        ));
    }
    if values.owner_id != current.owner_id {
        if let Some(owner) = &values.owner_id {
            tell_owner(
                tx,
                user,
                &current.incident_id,
                &current.id,
                owner,
                &values.title,
            )
            .await?;
        }
        changes.push(match &values.owner_name {
            Some(name) => format!("owner now {}", crate::markdown::escape(name)),
            None => "owner removed".to_owned(),
        });
    }
    if values.due_on != current.due_on {
        changes.push(format!(
            "due {}",
            values
                .due_on
                .map_or_else(|| "none".to_owned(), |d| d.to_string())
        ));
    }
    if values.priority != current.priority {
        changes.push(format!(
            "priority {} → {}",
            current.priority.as_str(),
            values.priority.as_str()
        ));
    }
    if changes.is_empty() {
        changes.push("details edited".to_owned());
    }
    let mut body = format!(
        "Action item **{}**: {}",
        crate::markdown::escape(&values.title),
        changes.join(", ")
    );
    if values.status == ItemStatus::WontDo && current.status != ItemStatus::WontDo {
        body.push_str(&format!(
            " — {}",
            crate::markdown::escape(&values.wont_do_reason)
        ));
    }
    crate::timeline::db::insert(
        tx,
        &current.incident_id,
        Utc::now(),
        EntryKind::Action,
        &body,
        Some(&user.id),
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_their_own_names_only() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Priority::parse("p4"), None);
        assert_eq!(ItemStatus::parse("wont_do"), Some(ItemStatus::WontDo));
        assert!(ItemStatus::Done.is_closed() && !ItemStatus::InProgress.is_closed());
    }
}
