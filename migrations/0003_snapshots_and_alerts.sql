-- Frozen metric snapshots attached to incidents, alert rules with severity tiers, and every
-- firing and resolution of an alert.

CREATE TABLE metric_snapshots (
    id            TEXT PRIMARY KEY,
    incident_id   TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    service       TEXT NOT NULL,
    taken_at      TEXT NOT NULL,
    trigger       TEXT NOT NULL CHECK (trigger IN ('manual', 'incident_open', 'alert')),
    window_events INTEGER NOT NULL,
    window_secs   INTEGER NOT NULL,
    count         INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    error_rate    REAL NOT NULL,
    rate_per_s    REAL NOT NULL,
    latency_min   REAL,
    latency_mean  REAL,
    latency_p50   REAL,
    latency_p90   REAL,
    latency_p95   REAL,
    latency_p99   REAL,
    latency_max   REAL,
    saturation    REAL,
    -- The whole window report (per-interval series, sparse histogram) as JSON.
    report        TEXT NOT NULL,
    taken_by      TEXT REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX metric_snapshots_incident ON metric_snapshots (incident_id, taken_at);
CREATE INDEX metric_snapshots_service ON metric_snapshots (service, taken_at);

-- A snapshot records what the numbers were; it is never changed afterwards.
CREATE TRIGGER metric_snapshots_frozen BEFORE UPDATE ON metric_snapshots BEGIN
    SELECT RAISE(ABORT, 'metric snapshots are frozen and cannot be modified');
END;

CREATE TABLE alert_rules (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    service       TEXT NOT NULL,
    signal        TEXT NOT NULL CHECK (signal IN ('p50', 'p95', 'p99', 'avg', 'error_rate', 'saturation', 'traffic')),
    threshold     REAL NOT NULL,
    min_samples   INTEGER NOT NULL DEFAULT 20,
    for_secs      INTEGER NOT NULL DEFAULT 60,
    tier          TEXT NOT NULL CHECK (tier IN ('page', 'ticket', 'log')),
    page_severity TEXT NOT NULL DEFAULT 'sev2' CHECK (page_severity IN ('sev1', 'sev2', 'sev3', 'sev4')),
    enabled       INTEGER NOT NULL DEFAULT 1,
    version       INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE alert_events (
    id          TEXT PRIMARY KEY,
    rule_id     TEXT REFERENCES alert_rules (id) ON DELETE SET NULL,
    source      TEXT NOT NULL DEFAULT 'rule' CHECK (source IN ('rule', 'alertmanager', 'grafana')),
    name        TEXT NOT NULL,
    service     TEXT NOT NULL,
    tier        TEXT NOT NULL CHECK (tier IN ('page', 'ticket', 'log')),
    signal      TEXT NOT NULL DEFAULT '',
    threshold   REAL,
    value       REAL,
    fingerprint TEXT NOT NULL DEFAULT '',
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    incident_id TEXT REFERENCES incidents (id) ON DELETE SET NULL
);
CREATE INDEX alert_events_started ON alert_events (started_at);
CREATE INDEX alert_events_open ON alert_events (ended_at) WHERE ended_at IS NULL;
CREATE INDEX alert_events_rule ON alert_events (rule_id, started_at);
