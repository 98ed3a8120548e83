-- A person's inbox: what is waiting for them (a review asked of them, changes requested on or
-- approval of their post-mortem, an action item given to them, a mention). Written in the
-- same transaction as the change it is about; read by the header's badge and the inbox page.
CREATE TABLE inbox_messages (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    -- Who caused it (none for the system).
    actor_id    TEXT REFERENCES users (id) ON DELETE SET NULL,
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    -- What happened, in words, and where on the incident it points (`/postmortem`, `#item-…`).
    text        TEXT NOT NULL,
    link_suffix TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    read_at     TEXT,
    -- When it was sent by e-mail (none: not sent, or mail is not configured).
    mailed_at   TEXT
);
CREATE INDEX inbox_messages_by_user ON inbox_messages (user_id, created_at DESC);
-- The header's badge counts these on every page.
CREATE INDEX inbox_messages_unread ON inbox_messages (user_id) WHERE read_at IS NULL;
