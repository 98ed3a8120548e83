-- Action items: the follow-ups an incident and its post-mortem produce, owned and dated until
-- they are done.

CREATE TABLE action_items (
    id             TEXT PRIMARY KEY,
    incident_id    TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    title          TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    owner_id       TEXT REFERENCES users (id) ON DELETE SET NULL,
    team           TEXT NOT NULL DEFAULT '',
    kind           TEXT NOT NULL CHECK (kind IN ('prevent', 'mitigate', 'detect', 'process', 'repair')),
    priority       TEXT NOT NULL CHECK (priority IN ('p1', 'p2', 'p3')),
    status         TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'done', 'wont_do')),
    wont_do_reason TEXT NOT NULL DEFAULT '',
    due_on         TEXT,
    external_url   TEXT NOT NULL DEFAULT '',
    completed_at   TEXT,
    completed_by   TEXT REFERENCES users (id) ON DELETE SET NULL,
    version        INTEGER NOT NULL DEFAULT 1,
    created_by     TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    CHECK (status <> 'wont_do' OR wont_do_reason <> '')
);
CREATE INDEX action_items_incident ON action_items (incident_id, created_at);
CREATE INDEX action_items_status_due ON action_items (status, due_on);
CREATE INDEX action_items_owner_status ON action_items (owner_id, status, due_on);
CREATE INDEX action_items_team_status ON action_items (team, status, due_on);
