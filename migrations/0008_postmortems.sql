-- Blameless post-mortems: templates kept as data, one post-mortem per incident whose sections
-- are rows (copied from the template when it starts, so later template edits leave it alone),
-- structured root causes, a review workflow and every saved revision.

CREATE TABLE postmortem_templates (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    description TEXT NOT NULL DEFAULT '',
    -- The template used when no severity default applies. Exactly one template has it.
    is_default  INTEGER NOT NULL DEFAULT 0,
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX postmortem_templates_one_default ON postmortem_templates (is_default)
    WHERE is_default = 1;

CREATE TABLE postmortem_template_sections (
    template_id TEXT NOT NULL REFERENCES postmortem_templates (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    key         TEXT NOT NULL,
    title       TEXT NOT NULL,
    help        TEXT NOT NULL DEFAULT '',
    required    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (template_id, key)
);

-- Which template a new post-mortem of a given severity starts from.
CREATE TABLE postmortem_template_defaults (
    severity    TEXT PRIMARY KEY CHECK (severity IN ('sev1', 'sev2', 'sev3', 'sev4')),
    template_id TEXT NOT NULL REFERENCES postmortem_templates (id) ON DELETE CASCADE
);

CREATE TABLE postmortems (
    id                     TEXT PRIMARY KEY,
    incident_id            TEXT NOT NULL UNIQUE REFERENCES incidents (id) ON DELETE CASCADE,
    status                 TEXT NOT NULL CHECK (status IN ('draft', 'in_review', 'published')),
    template_id            TEXT REFERENCES postmortem_templates (id) ON DELETE SET NULL,
    template_name          TEXT NOT NULL,
    detection_method       TEXT NOT NULL DEFAULT ''
        CHECK (detection_method IN ('', 'alert', 'customer_report', 'employee', 'automated_test', 'other')),
    -- Publishing needs at least one action item or this written reason for having none.
    no_action_items_reason TEXT NOT NULL DEFAULT '',
    version                INTEGER NOT NULL DEFAULT 1,
    author_id              TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at             TEXT NOT NULL,
    updated_by             TEXT REFERENCES users (id) ON DELETE SET NULL,
    updated_at             TEXT NOT NULL,
    published_at           TEXT
);
CREATE INDEX postmortems_status_updated ON postmortems (status, updated_at);
CREATE INDEX postmortems_updated ON postmortems (updated_at);

CREATE TABLE postmortem_sections (
    postmortem_id TEXT NOT NULL REFERENCES postmortems (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    key           TEXT NOT NULL,
    title         TEXT NOT NULL,
    help          TEXT NOT NULL DEFAULT '',
    required      INTEGER NOT NULL DEFAULT 0,
    body          TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (postmortem_id, key)
);

-- Root causes are rows so the recurrence report can count them: one primary per post-mortem,
-- any number of contributing factors. `incident_id` is kept alongside for report joins.
CREATE TABLE root_causes (
    id            TEXT PRIMARY KEY,
    postmortem_id TEXT NOT NULL REFERENCES postmortems (id) ON DELETE CASCADE,
    incident_id   TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    category      TEXT NOT NULL REFERENCES categories (name) ON UPDATE CASCADE,
    description   TEXT NOT NULL DEFAULT '',
    is_primary    INTEGER NOT NULL DEFAULT 0,
    position      INTEGER NOT NULL
);
CREATE UNIQUE INDEX root_causes_one_primary ON root_causes (postmortem_id) WHERE is_primary = 1;
CREATE INDEX root_causes_postmortem ON root_causes (postmortem_id, position);
CREATE INDEX root_causes_category ON root_causes (category, is_primary, incident_id);

-- Every save keeps the whole content as JSON ({sections: [{key, title, body}], root_causes,
-- detection_method, no_action_items_reason}); nothing typed is ever lost.
CREATE TABLE postmortem_revisions (
    postmortem_id TEXT NOT NULL REFERENCES postmortems (id) ON DELETE CASCADE,
    version       INTEGER NOT NULL,
    author_id     TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at    TEXT NOT NULL,
    -- What changed, in words ("Summary, Root cause"), for the history list.
    changed       TEXT NOT NULL DEFAULT '',
    content       TEXT NOT NULL,
    PRIMARY KEY (postmortem_id, version)
);
CREATE TRIGGER postmortem_revisions_frozen BEFORE UPDATE ON postmortem_revisions BEGIN
    SELECT RAISE(ABORT, 'post-mortem revisions are never changed');
END;

CREATE TABLE postmortem_reviewers (
    postmortem_id TEXT NOT NULL REFERENCES postmortems (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state         TEXT NOT NULL CHECK (state IN ('requested', 'approved', 'changes_requested')),
    comment       TEXT NOT NULL DEFAULT '',
    requested_by  TEXT REFERENCES users (id) ON DELETE SET NULL,
    requested_at  TEXT NOT NULL,
    decided_at    TEXT,
    PRIMARY KEY (postmortem_id, user_id)
);
CREATE INDEX postmortem_reviewers_user ON postmortem_reviewers (user_id, state);

-- The workflow's own history: status moves (with reopenings) and review decisions.
CREATE TABLE postmortem_events (
    id            TEXT PRIMARY KEY,
    postmortem_id TEXT NOT NULL REFERENCES postmortems (id) ON DELETE CASCADE,
    at            TEXT NOT NULL,
    actor_id      TEXT REFERENCES users (id) ON DELETE SET NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('started', 'status', 'review_requested', 'approved', 'changes_requested')),
    from_status   TEXT,
    to_status     TEXT,
    comment       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX postmortem_events_postmortem ON postmortem_events (postmortem_id, at);

-- The default template, after the Google SRE book. Help text steers towards systems.
INSERT INTO postmortem_templates (id, name, description, is_default, created_at, updated_at) VALUES
    ('0190a000-0000-7000-8000-000000000001', 'Standard (SRE book)',
     'The full blameless post-mortem, after the Google SRE book.', 1,
     '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
INSERT INTO postmortem_template_sections (template_id, position, key, title, help, required) VALUES
    ('0190a000-0000-7000-8000-000000000001', 1, 'summary', 'Summary',
     'Two or three sentences: what happened, how long it lasted, how it was fixed.', 1),
    ('0190a000-0000-7000-8000-000000000001', 2, 'impact', 'Impact',
     'What did users see, for how long, and how many of them? Numbers beat adjectives.', 1),
    ('0190a000-0000-7000-8000-000000000001', 3, 'trigger', 'Trigger',
     'What change or event set the failure off? Describe the system change, not who made it.', 1),
    ('0190a000-0000-7000-8000-000000000001', 4, 'root_cause', 'Root cause',
     'What in the system made this failure possible? Keep asking why until you reach a condition you can change.', 1),
    ('0190a000-0000-7000-8000-000000000001', 5, 'contributing_factors', 'Contributing factors',
     'Which conditions made it worse or harder to see: missing checks, unclear runbooks, alert gaps?', 0),
    ('0190a000-0000-7000-8000-000000000001', 6, 'detection', 'Detection',
     'How did we find out, and how could the system have told us sooner?', 1),
    ('0190a000-0000-7000-8000-000000000001', 7, 'resolution', 'Resolution',
     'What stopped the impact, and what restored full service?', 1),
    ('0190a000-0000-7000-8000-000000000001', 8, 'went_well', 'What went well',
     'Which tools, practices and safeguards worked as intended?', 0),
    ('0190a000-0000-7000-8000-000000000001', 9, 'went_wrong', 'What went wrong',
     'Where did the system, tooling or process make the response harder?', 0),
    ('0190a000-0000-7000-8000-000000000001', 10, 'got_lucky', 'Where we got lucky',
     'What limited the damage by chance rather than by design?', 0),
    ('0190a000-0000-7000-8000-000000000001', 11, 'lessons', 'Lessons learned',
     'What do we now know about the system that we did not know before?', 0);

-- A short template for minor incidents; sev3 and sev4 start from it.
INSERT INTO postmortem_templates (id, name, description, is_default, created_at, updated_at) VALUES
    ('0190a000-0000-7000-8000-000000000002', 'Lightweight',
     'A short review for minor incidents.', 0,
     '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
INSERT INTO postmortem_template_sections (template_id, position, key, title, help, required) VALUES
    ('0190a000-0000-7000-8000-000000000002', 1, 'summary', 'Summary',
     'What happened and how it was fixed, in a few sentences.', 1),
    ('0190a000-0000-7000-8000-000000000002', 2, 'impact', 'Impact',
     'What did users see, and for how long?', 1),
    ('0190a000-0000-7000-8000-000000000002', 3, 'root_cause', 'Root cause',
     'What in the system made this failure possible?', 1),
    ('0190a000-0000-7000-8000-000000000002', 4, 'lessons', 'Lessons learned',
     'What would make this class of failure impossible or harmless next time?', 0);
INSERT INTO postmortem_template_defaults (severity, template_id) VALUES
    ('sev3', '0190a000-0000-7000-8000-000000000002'),
    ('sev4', '0190a000-0000-7000-8000-000000000002');
