-- Learning across incidents: links between incidents, root-cause text in the full-text index
-- (similar incidents rank over it), and chat messages kept as an incident's evidence.

-- One row per link, read from both sides: `incident_id` is the one the link was made on
-- ("INC-7 duplicate of INC-3"); the other side shows the inverse ("duplicated by").
CREATE TABLE incident_links (
    id          TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    other_id    TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('related', 'duplicate_of', 'caused_by')),
    created_by  TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL,
    CHECK (incident_id <> other_id)
);
-- At most one link between two incidents, whichever side it was made on.
CREATE UNIQUE INDEX incident_links_pair ON incident_links (min(incident_id, other_id), max(incident_id, other_id));
CREATE INDEX incident_links_incident ON incident_links (incident_id);
CREATE INDEX incident_links_other ON incident_links (other_id);

CREATE VIRTUAL TABLE root_causes_fts USING fts5 (
    description,
    content = 'root_causes',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO root_causes_fts (root_causes_fts) VALUES ('rebuild');
CREATE TRIGGER root_causes_fts_insert AFTER INSERT ON root_causes BEGIN
    INSERT INTO root_causes_fts (rowid, description) VALUES (NEW.rowid, NEW.description);
END;
CREATE TRIGGER root_causes_fts_delete AFTER DELETE ON root_causes BEGIN
    INSERT INTO root_causes_fts (root_causes_fts, rowid, description) VALUES ('delete', OLD.rowid, OLD.description);
END;
CREATE TRIGGER root_causes_fts_update AFTER UPDATE OF description ON root_causes BEGIN
    INSERT INTO root_causes_fts (root_causes_fts, rowid, description) VALUES ('delete', OLD.rowid, OLD.description);
    INSERT INTO root_causes_fts (rowid, description) VALUES (NEW.rowid, NEW.description);
END;

-- Chat messages imported into an incident (Slack export, pasted text, CSV), masked on import.
CREATE TABLE chat_messages (
    id          TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    import_id   TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('slack', 'text', 'csv')),
    -- The message's own id in its source (Slack `ts`), so a second import skips it.
    external_id TEXT NOT NULL,
    author      TEXT NOT NULL,
    posted_at   TEXT NOT NULL,
    text        TEXT NOT NULL,
    -- The `ts` of the thread's first message when this is a reply.
    thread_ts   TEXT,
    edited      INTEGER NOT NULL DEFAULT 0,
    files       TEXT NOT NULL DEFAULT '',
    imported_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    imported_at TEXT NOT NULL,
    UNIQUE (incident_id, source, external_id)
);
CREATE INDEX chat_messages_incident ON chat_messages (incident_id, posted_at);

CREATE VIRTUAL TABLE chat_messages_fts USING fts5 (
    author, text,
    content = 'chat_messages',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER chat_messages_fts_insert AFTER INSERT ON chat_messages BEGIN
    INSERT INTO chat_messages_fts (rowid, author, text) VALUES (NEW.rowid, NEW.author, NEW.text);
END;
CREATE TRIGGER chat_messages_fts_delete AFTER DELETE ON chat_messages BEGIN
    INSERT INTO chat_messages_fts (chat_messages_fts, rowid, author, text) VALUES ('delete', OLD.rowid, OLD.author, OLD.text);
END;

-- A message promoted to a timeline entry, with its marker (the post-mortem shows it).
CREATE TABLE chat_promotions (
    entry_id   TEXT PRIMARY KEY REFERENCES timeline_entries (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
    marker     TEXT NOT NULL CHECK (marker IN ('detection', 'diagnosis', 'repair', 'decision', 'customer_communication'))
);
CREATE INDEX chat_promotions_message ON chat_promotions (message_id);
