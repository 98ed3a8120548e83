-- Prometheus as a snapshot source: per service, the PromQL an admin set for each golden
-- signal (NULL = not set), and the series a snapshot froze from Prometheus.
CREATE TABLE prometheus_queries (
    service     TEXT PRIMARY KEY COLLATE NOCASE,
    latency_p50 TEXT,
    latency_p90 TEXT,
    latency_p99 TEXT,
    error_rate  TEXT,
    traffic     TEXT,
    saturation  TEXT,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT REFERENCES users (id) ON DELETE SET NULL
);

-- JSON: the Prometheus URL, range, each query with its series or error, and a note when
-- Prometheus could not be asked. NULL when the service had no queries.
ALTER TABLE metric_snapshots ADD COLUMN prometheus TEXT;
