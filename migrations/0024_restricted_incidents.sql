-- Restricted incidents: only admins, the commander and the people added by name see them.
ALTER TABLE incidents ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0;
-- Only the restricted ones: lists subtract those a viewer may not see from their totals.
CREATE INDEX incidents_restricted ON incidents (status) WHERE restricted = 1;

-- The people added to an incident by name, with who added them and when. The commander is
-- always one of those who may see it, without a row here.
CREATE TABLE incident_participants (
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_by    TEXT REFERENCES users (id) ON DELETE SET NULL,
    added_at    TEXT NOT NULL,
    PRIMARY KEY (incident_id, user_id)
) WITHOUT ROWID;
CREATE INDEX incident_participants_user ON incident_participants (user_id, incident_id);

-- Who may see each restricted incident: the one rule every query applies
-- (`i.restricted = 0 OR EXISTS (SELECT 1 FROM incident_access x WHERE x.incident_id = i.id
-- AND x.user_id = ?viewer)`, see src/visibility.rs). Admins see every one; a disabled
-- account signs nobody in, so it needs no case here.
CREATE VIEW incident_access (incident_id, user_id) AS
    SELECT id, commander_id FROM incidents WHERE restricted = 1 AND commander_id IS NOT NULL
    UNION ALL
    SELECT p.incident_id, p.user_id FROM incident_participants p
    UNION ALL
    SELECT i.id, u.id FROM incidents i JOIN users u ON u.role = 'admin' WHERE i.restricted = 1;

-- A webhook destination receives a restricted incident's title and link only when marked so;
-- otherwise it is told "a restricted incident was opened" and nothing more.
ALTER TABLE webhook_destinations ADD COLUMN restricted_details INTEGER NOT NULL DEFAULT 0;
