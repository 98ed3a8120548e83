//! What the incident page shows of an incident the same to every viewer (`IncidentRecord`),
//! kept per incident in `IncidentsState::records`; the page (`web.rs`) reads and renders it.

use std::sync::{Arc, OnceLock};

use crate::auth::User;
use crate::timeline::Entry;

/// The gap in a long timeline between its first and its newest entries.
#[derive(Debug, Clone)]
pub struct TimelineGap {
    /// Entries not shown.
    pub hidden: i64,
    /// The `?entries=` value that shows `TIMELINE_MORE` more, and how many that is.
    pub more: i64,
    pub more_count: i64,
    pub total: i64,
}

/// A timeline entry with its rendered body; the one being edited carries its form values.
#[derive(Clone)]
pub struct EntryView {
    pub entry: Entry,
    pub html: String,
    pub edit_form: Option<EntryFormView>,
}

/// Values of a timeline entry form (new or being edited), kept when a save fails.
#[derive(Debug, Clone, Default)]
pub struct EntryFormView {
    pub occurred_at: String,
    pub kind: String,
    pub body: String,
    pub version: String,
}

/// What the incident page shows of an incident that is the same for every viewer: its
/// timeline (rendered), snapshots with their charts, action items, people, chat evidence and
/// post-mortem state. The default view's record is kept per incident
/// (`IncidentsState::records`) until a write that may have changed the incident: during an
/// incident storm dozens of people refresh the same page between writes, and reading it took
/// about fifteen queries.
pub struct IncidentRecord {
    pub entries: Arc<Vec<EntryView>>,
    pub oldest: Arc<Vec<EntryView>>,
    pub gap: Option<TimelineGap>,
    pub earlier_detection: Option<chrono::DateTime<chrono::Utc>>,
    pub snapshots: Arc<Vec<crate::signals::chart::SnapshotView>>,
    pub items: Vec<crate::action_items::ActionItem>,
    pub participants: Vec<super::db::Participant>,
    pub evidence: Vec<crate::evidence::db::Message>,
    pub markers: std::collections::HashMap<String, crate::evidence::Marker>,
    pub postmortem: Option<(String, i64, i64)>,
    /// Everyone who can sign in, for the participants field its commander and admins see
    /// (changing a user is a write that makes every record stale).
    pub everyone: Vec<User>,
    /// The timeline as HTML, for readers (`[0]`) and for those who may edit it (`[1]`): made
    /// by the first view that needs it. A long timeline was most of the page's rendering, and
    /// dozens of people refresh the same incident between two of its writes.
    pub rendered: [OnceLock<Arc<RenderedTimeline>>; 2],
}

/// A timeline's entries as the incident page lists them.
#[derive(Debug, Default)]
pub struct RenderedTimeline {
    /// The first entries of a long timeline (before the gap).
    pub oldest: String,
    /// The newest entries, or all of a short timeline.
    pub entries: String,
}

impl IncidentRecord {
    /// The timeline as `can_write` readers see it, rendered by `render` the first time.
    pub fn rendered<E>(
        &self,
        can_write: bool,
        render: impl FnOnce() -> Result<RenderedTimeline, E>,
    ) -> Result<Arc<RenderedTimeline>, E> {
        let cell = &self.rendered[usize::from(can_write)];
        if let Some(done) = cell.get() {
            return Ok(Arc::clone(done));
        }
        let done = Arc::new(render()?);
        // Two first views may both render; either result is the same.
        Ok(Arc::clone(cell.get_or_init(|| done)))
    }
}
