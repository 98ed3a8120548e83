-- Hindsight watches its own writes (issue 19).
--
-- write_probe: one row /readyz rewrites to find out whether writes work again after a fault
-- (a full disk, a read-only file) without waiting for a user's write to fail or succeed.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at TEXT NOT NULL
);

-- The default self-alert: every write outcome (committed or refused) is an event of the
-- collector's service `hindsight-writes`; any refused write in the window fires this
-- ticket-tier rule. Admins can edit or disable it like any other rule.
INSERT OR IGNORE INTO alert_rules (id, name, service, signal, threshold, min_samples, for_secs,
    tier, page_severity, enabled, version, created_at, updated_at)
VALUES ('hindsight-write-failures', 'Hindsight cannot save: writes are failing',
    'hindsight-writes', 'error_rate', 0.0, 1, 0, 'ticket', 'sev2', 1, 1,
    strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
