-- Unsaved edits of a post-mortem, one per person: the editor keeps what is being typed here
-- every few seconds, so a closed tab or a lost connection loses nothing; saving the
-- post-mortem (or discarding the draft) removes it.
CREATE TABLE postmortem_drafts (
    postmortem_id TEXT NOT NULL REFERENCES postmortems (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The version the edit page was loaded at, so saving a restored draft still detects
    -- changes made by others in between.
    base_version  INTEGER NOT NULL,
    -- The edit form as typed: a JSON array of [name, value] pairs.
    form          TEXT NOT NULL,
    saved_at      TEXT NOT NULL,
    PRIMARY KEY (postmortem_id, user_id)
);
