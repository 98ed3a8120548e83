-- The weekly review's MTTx figures and 12-week MTTR series compute durations between
-- milestones for thousands of incidents; parsing those timestamps was most of the review's
-- time. An index on the same expressions (exactly as src/reports/db.rs writes them) stores the
-- durations once, at write time, and the figures read them straight off the index.
CREATE INDEX incidents_durations ON incidents (
    started_at, exclude_from_metrics, team,
    max(0, CAST(round((julianday(detected_at) - julianday(started_at)) * 86400000) AS INTEGER) / 1000),
    max(0, CAST(round((julianday(acknowledged_at) - julianday(detected_at)) * 86400000) AS INTEGER) / 1000),
    max(0, CAST(round((julianday(mitigated_at) - julianday(started_at)) * 86400000) AS INTEGER) / 1000),
    max(0, CAST(round((julianday(resolved_at) - julianday(started_at)) * 86400000) AS INTEGER) / 1000)
);

-- "Due this week and closed by its end" reads both dates from the index, not from 300k rows.
DROP INDEX action_items_due;
CREATE INDEX action_items_due ON action_items (due_on, completed_at) WHERE due_on IS NOT NULL;
