-- Indexes that make the pages opened during an incident storm cost the same whatever the
-- database holds (issue 17): each answers its query from the index alone, in the order shown.

-- Home: open incidents per severity counted from a partial index that holds only open
-- incidents and their severity (the older `incidents_open_started` made every count visit
-- each open incident's row).
CREATE INDEX incidents_open_severity ON incidents (severity)
    WHERE status IN ('investigating', 'identified', 'monitoring');

-- Home and header: a person's open action items in the order shown (overdue, then soonest
-- due, then oldest), so the first ten are read without sorting every open item they own.
CREATE INDEX action_items_open_owner ON action_items
    (owner_id, coalesce(due_on, '9999-12-31'), created_at)
    WHERE status IN ('open', 'in_progress');

-- Incident page: the newest and the oldest entries of a long timeline in display order
-- (time, then when written, then id), read from either end without sorting the timeline.
CREATE INDEX timeline_incident_order ON timeline_entries (incident_id, occurred_at, created_at, id);

-- Recurring groups by service and primary root cause (home, weekly review, the incident
-- page's banner): the incidents of the window are found by start time first, then each one's
-- primary cause from this index alone. Scanning every primary cause first (the plan before)
-- read all post-mortems ever written to count one quarter's.
CREATE INDEX root_causes_primary_incident ON root_causes (incident_id, category)
    WHERE is_primary = 1;
