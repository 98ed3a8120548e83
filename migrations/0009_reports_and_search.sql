-- Reports and search: full-text indexes over timeline entries, post-mortem sections and action
-- items (external content, kept in sync by triggers like incidents_fts), and the indexes the
-- weekly review and recurrence detection read.

CREATE VIRTUAL TABLE timeline_fts USING fts5 (
    body,
    content = 'timeline_entries', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO timeline_fts (timeline_fts) VALUES ('rebuild');
CREATE TRIGGER timeline_fts_insert AFTER INSERT ON timeline_entries BEGIN
    INSERT INTO timeline_fts (rowid, body) VALUES (NEW.rowid, NEW.body);
END;
CREATE TRIGGER timeline_fts_delete AFTER DELETE ON timeline_entries BEGIN
    INSERT INTO timeline_fts (timeline_fts, rowid, body) VALUES ('delete', OLD.rowid, OLD.body);
END;
CREATE TRIGGER timeline_fts_update AFTER UPDATE OF body ON timeline_entries BEGIN
    INSERT INTO timeline_fts (timeline_fts, rowid, body) VALUES ('delete', OLD.rowid, OLD.body);
    INSERT INTO timeline_fts (rowid, body) VALUES (NEW.rowid, NEW.body);
END;

CREATE VIRTUAL TABLE postmortem_sections_fts USING fts5 (
    title, body,
    content = 'postmortem_sections', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO postmortem_sections_fts (postmortem_sections_fts) VALUES ('rebuild');
CREATE TRIGGER postmortem_sections_fts_insert AFTER INSERT ON postmortem_sections BEGIN
    INSERT INTO postmortem_sections_fts (rowid, title, body) VALUES (NEW.rowid, NEW.title, NEW.body);
END;
CREATE TRIGGER postmortem_sections_fts_delete AFTER DELETE ON postmortem_sections BEGIN
    INSERT INTO postmortem_sections_fts (postmortem_sections_fts, rowid, title, body)
    VALUES ('delete', OLD.rowid, OLD.title, OLD.body);
END;
CREATE TRIGGER postmortem_sections_fts_update AFTER UPDATE OF title, body ON postmortem_sections BEGIN
    INSERT INTO postmortem_sections_fts (postmortem_sections_fts, rowid, title, body)
    VALUES ('delete', OLD.rowid, OLD.title, OLD.body);
    INSERT INTO postmortem_sections_fts (rowid, title, body) VALUES (NEW.rowid, NEW.title, NEW.body);
END;

CREATE VIRTUAL TABLE action_items_fts USING fts5 (
    title, description,
    content = 'action_items', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO action_items_fts (action_items_fts) VALUES ('rebuild');
CREATE TRIGGER action_items_fts_insert AFTER INSERT ON action_items BEGIN
    INSERT INTO action_items_fts (rowid, title, description) VALUES (NEW.rowid, NEW.title, NEW.description);
END;
CREATE TRIGGER action_items_fts_delete AFTER DELETE ON action_items BEGIN
    INSERT INTO action_items_fts (action_items_fts, rowid, title, description)
    VALUES ('delete', OLD.rowid, OLD.title, OLD.description);
END;
CREATE TRIGGER action_items_fts_update AFTER UPDATE OF title, description ON action_items BEGIN
    INSERT INTO action_items_fts (action_items_fts, rowid, title, description)
    VALUES ('delete', OLD.rowid, OLD.title, OLD.description);
    INSERT INTO action_items_fts (rowid, title, description) VALUES (NEW.rowid, NEW.title, NEW.description);
END;

-- The weekly review counts items opened and closed within a week.
CREATE INDEX action_items_created ON action_items (created_at);
CREATE INDEX action_items_completed ON action_items (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX action_items_due ON action_items (due_on) WHERE due_on IS NOT NULL;
-- Recurrence by service and primary root cause: the primary causes of a category.
CREATE INDEX root_causes_primary ON root_causes (category, incident_id) WHERE is_primary = 1;
CREATE INDEX root_causes_incident ON root_causes (incident_id) WHERE is_primary = 1;
-- The weekly review reads a window of incidents by start time: this index covers every
-- column it needs for counts, MTTx and recurring categories, so it never visits the table.
CREATE INDEX incidents_report ON incidents (started_at, team, category, service,
    exclude_from_metrics, detected_at, acknowledged_at, mitigated_at, resolved_at, number);
