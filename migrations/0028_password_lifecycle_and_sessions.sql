-- Password lifecycle and "your sessions".

-- What a person sees of their sessions: a public id (random, not the cookie's secret nor its
-- hash, so nothing shown on a page can be replayed or matched against the sessions table's
-- key), and where the session was started from. Sessions started before this migration get a
-- public id now; their address and browser are not known.
ALTER TABLE sessions ADD COLUMN public_id TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN client_addr TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
UPDATE sessions SET public_id = lower(hex(randomblob(12))) WHERE public_id = '';
CREATE UNIQUE INDEX sessions_public_id ON sessions (public_id);

-- One-time password reset links made by an admin (`/reset/{secret}`), like the setup link:
-- only the secret's SHA-256 is stored, a link lives 24 hours and works once. Making a new
-- link for a user ends their older unused ones.
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE INDEX password_resets_user ON password_resets (user_id);
