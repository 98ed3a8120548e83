-- Single sign-on with OpenID Connect, and the audit log made append-only and readable.

-- An account signed in through the provider is linked by the provider's issuer and subject
-- (`sub`), which never change, not by its e-mail address, which may. Accounts made by single
-- sign-on get password_hash '!sso' (no password matches it). `break_glass` marks the admins
-- who may still sign in with a password when local sign-in is turned off
-- (`hindsight user break-glass --email E [--off]`).
ALTER TABLE users ADD COLUMN oidc_issuer TEXT;
ALTER TABLE users ADD COLUMN oidc_subject TEXT;
ALTER TABLE users ADD COLUMN break_glass INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX users_oidc_identity ON users (oidc_issuer, oidc_subject)
    WHERE oidc_subject IS NOT NULL;

-- Sign-ins on their way to the provider and back: the state (hashed), nonce, PKCE verifier
-- and where to go afterwards stay on the server. A state is used once (the row is deleted
-- when the browser comes back) and lives ten minutes.
CREATE TABLE oidc_logins (
    state_hash    TEXT PRIMARY KEY,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);

-- The ID token a session was started with, for the provider's end-session endpoint
-- (`id_token_hint`) at sign-out.
ALTER TABLE sessions ADD COLUMN id_token TEXT;

-- The audit log is append-only: nothing in Hindsight updates or deletes its rows, and the
-- database refuses it too. (Users are never deleted, only disabled, so the `ON DELETE SET
-- NULL` of actor_id never runs; deleting a user who has audit entries is refused by this.)
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: entries cannot be changed');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: entries cannot be deleted');
END;

-- Admin › Audit filters by actor and by action, newest first.
CREATE INDEX audit_log_actor_at ON audit_log (actor_id, at);
CREATE INDEX audit_log_action_at ON audit_log (action, at);
