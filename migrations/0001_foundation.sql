-- Foundation schema: accounts, managed lists, incidents and their timelines.
-- Ids are UUIDv7 text; times are UTC RFC 3339 text (sortable as text).

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'responder', 'admin')),
    password_hash TEXT NOT NULL,
    disabled_at   TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- Server-side sessions; the cookie holds a random secret, the table only its SHA-256.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'write', 'ingest')),
    token_hash   TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);

-- One-time links that let the first admin be created in the browser.
CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);

CREATE TABLE audit_log (
    id       TEXT PRIMARY KEY,
    at       TEXT NOT NULL,
    actor_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE services (
    name       TEXT PRIMARY KEY COLLATE NOCASE,
    team       TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);

CREATE TABLE categories (
    name       TEXT PRIMARY KEY COLLATE NOCASE,
    created_at TEXT NOT NULL
);
INSERT INTO categories (name, created_at) VALUES
    ('deploy', '2026-01-01T00:00:00Z'),
    ('config change', '2026-01-01T00:00:00Z'),
    ('capacity', '2026-01-01T00:00:00Z'),
    ('dependency', '2026-01-01T00:00:00Z'),
    ('infrastructure', '2026-01-01T00:00:00Z'),
    ('code defect', '2026-01-01T00:00:00Z'),
    ('data', '2026-01-01T00:00:00Z'),
    ('security', '2026-01-01T00:00:00Z'),
    ('process', '2026-01-01T00:00:00Z'),
    ('unknown', '2026-01-01T00:00:00Z');

CREATE TABLE incidents (
    id                   TEXT PRIMARY KEY,
    number               INTEGER NOT NULL UNIQUE,
    title                TEXT NOT NULL,
    summary              TEXT NOT NULL DEFAULT '',
    customer_impact      TEXT NOT NULL DEFAULT '',
    severity             TEXT NOT NULL CHECK (severity IN ('sev1', 'sev2', 'sev3', 'sev4')),
    status               TEXT NOT NULL CHECK (status IN ('investigating', 'identified', 'monitoring', 'resolved', 'closed')),
    service              TEXT NOT NULL REFERENCES services (name) ON UPDATE CASCADE,
    category             TEXT NOT NULL REFERENCES categories (name) ON UPDATE CASCADE,
    team                 TEXT NOT NULL DEFAULT '',
    commander_id         TEXT REFERENCES users (id) ON DELETE SET NULL,
    started_at           TEXT NOT NULL,
    detected_at          TEXT,
    acknowledged_at      TEXT,
    mitigated_at         TEXT,
    resolved_at          TEXT,
    closed_at            TEXT,
    exclude_from_metrics INTEGER NOT NULL DEFAULT 0,
    version              INTEGER NOT NULL DEFAULT 1,
    created_by           TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at           TEXT NOT NULL,
    updated_by           TEXT REFERENCES users (id) ON DELETE SET NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX incidents_started ON incidents (started_at DESC);
CREATE INDEX incidents_status_started ON incidents (status, started_at DESC);
CREATE INDEX incidents_severity_started ON incidents (severity, started_at DESC);
CREATE INDEX incidents_service_started ON incidents (service, started_at DESC);
CREATE INDEX incidents_category_started ON incidents (category, started_at DESC);
CREATE INDEX incidents_team_started ON incidents (team, started_at DESC);

-- Totals per status, kept by triggers, so the unfiltered list never counts 100k rows.
CREATE TABLE incident_counts (
    status TEXT PRIMARY KEY,
    n      INTEGER NOT NULL
);
INSERT INTO incident_counts (status, n) VALUES
    ('investigating', 0), ('identified', 0), ('monitoring', 0), ('resolved', 0), ('closed', 0);
CREATE TRIGGER incident_counts_insert AFTER INSERT ON incidents BEGIN
    UPDATE incident_counts SET n = n + 1 WHERE status = NEW.status;
END;
CREATE TRIGGER incident_counts_delete AFTER DELETE ON incidents BEGIN
    UPDATE incident_counts SET n = n - 1 WHERE status = OLD.status;
END;
CREATE TRIGGER incident_counts_update AFTER UPDATE OF status ON incidents
WHEN OLD.status <> NEW.status BEGIN
    UPDATE incident_counts SET n = n - 1 WHERE status = OLD.status;
    UPDATE incident_counts SET n = n + 1 WHERE status = NEW.status;
END;

CREATE TABLE timeline_entries (
    id          TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    occurred_at TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('detection', 'escalation', 'action', 'communication', 'mitigation',
                                              'resolution', 'note', 'status_change', 'alert', 'snapshot')),
    body        TEXT NOT NULL,
    author_id   TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX timeline_incident_time ON timeline_entries (incident_id, occurred_at, created_at);
