-- Insights and the weekly review delivered.
--
-- Insights ask "was this incident opened by an alert?" for every incident of a range; without
-- this index that is a scan of all firings per incident.
CREATE INDEX alert_events_incident ON alert_events (incident_id) WHERE incident_id IS NOT NULL;

-- Who gets the weekly review, when (a weekday and hour in an IANA zone) and where (e-mail
-- addresses and/or a webhook destination). `team` NULL means all teams.
CREATE TABLE review_subscriptions (
    id                     TEXT PRIMARY KEY,
    team                   TEXT,
    -- ISO weekday: 1 = Monday … 7 = Sunday.
    weekday                INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    hour                   INTEGER NOT NULL CHECK (hour BETWEEN 0 AND 23),
    timezone               TEXT NOT NULL,
    -- Newline-separated addresses.
    emails                 TEXT NOT NULL DEFAULT '',
    webhook_destination_id TEXT REFERENCES webhook_destinations (id) ON DELETE SET NULL,
    -- The next scheduled delivery (UTC); the scheduler moves it past now after each one, so
    -- a server that was down sends a missed one once, not once per missed week.
    next_due_at            TEXT NOT NULL,
    created_by             TEXT REFERENCES users (id) ON DELETE SET NULL,
    -- No CHECK that a target is left: deleting a webhook destination sets it NULL here, and
    -- the log then says the subscription has nowhere to go.
    created_at             TEXT NOT NULL
);
CREATE INDEX review_subscriptions_due ON review_subscriptions (next_due_at);

-- Every delivery of a review to one target, with its attempts and outcome.
CREATE TABLE review_deliveries (
    id              TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES review_subscriptions (id) ON DELETE CASCADE,
    week            TEXT NOT NULL,
    trigger         TEXT NOT NULL CHECK (trigger IN ('schedule', 'test')),
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    target          TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    next_attempt_at TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT
);
CREATE INDEX review_deliveries_due ON review_deliveries (status, next_attempt_at);
CREATE INDEX review_deliveries_subscription ON review_deliveries (subscription_id, created_at);
