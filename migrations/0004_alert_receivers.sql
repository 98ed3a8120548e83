-- Alerts received from Alertmanager and Grafana: which group an alert belongs to, where it came
-- from, and a log of what each receiver got, for the integrations page.

ALTER TABLE alert_events ADD COLUMN group_key TEXT NOT NULL DEFAULT '';
ALTER TABLE alert_events ADD COLUMN generator_url TEXT NOT NULL DEFAULT '';
-- Alertmanager retries deliveries: the same alert (fingerprint and start) is stored once.
CREATE UNIQUE INDEX alert_events_external ON alert_events (source, fingerprint, started_at)
    WHERE source <> 'rule';
CREATE INDEX alert_events_group ON alert_events (source, group_key, ended_at);

CREATE TABLE integration_payloads (
    id          TEXT PRIMARY KEY,
    receiver    TEXT NOT NULL CHECK (receiver IN ('alertmanager', 'grafana')),
    received_at TEXT NOT NULL,
    status      INTEGER NOT NULL,
    outcome     TEXT NOT NULL DEFAULT '',
    payload     TEXT NOT NULL
);
CREATE INDEX integration_payloads_received ON integration_payloads (receiver, received_at);
