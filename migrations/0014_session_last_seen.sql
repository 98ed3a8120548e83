-- Sessions end after an idle period as well as at expires_at: when the session last made a
-- request (updated at most about once a minute). Existing sessions count from their start.
ALTER TABLE sessions ADD COLUMN last_seen_at TEXT NOT NULL DEFAULT '';
UPDATE sessions SET last_seen_at = created_at;
