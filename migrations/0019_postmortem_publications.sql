-- What a published post-mortem showed when it was published: the incident's timeline, action
-- items and snapshots are live tables that keep changing, so publishing keeps a copy of them;
-- the published page and its export read this copy, and later changes show as "since
-- publishing" beside it. One row per post-mortem: publishing again replaces it.
CREATE TABLE postmortem_publications (
    postmortem_id TEXT PRIMARY KEY REFERENCES postmortems (id) ON DELETE CASCADE,
    -- The post-mortem's version once published.
    version       INTEGER NOT NULL,
    published_at  TEXT NOT NULL,
    -- JSON arrays: the timeline entries and action items as they were, and the snapshot ids
    -- (snapshots never change once taken).
    timeline      TEXT NOT NULL,
    action_items  TEXT NOT NULL,
    snapshot_ids  TEXT NOT NULL
);
