-- The incident list orders by (started_at, number); indexes that end in both let SQLite read
-- a page straight off the index instead of sorting every matching row.
DROP INDEX incidents_started;
DROP INDEX incidents_status_started;
DROP INDEX incidents_severity_started;
DROP INDEX incidents_service_started;
DROP INDEX incidents_category_started;
DROP INDEX incidents_team_started;
CREATE INDEX incidents_started ON incidents (started_at DESC, number DESC);
CREATE INDEX incidents_status_started ON incidents (status, started_at DESC, number DESC);
CREATE INDEX incidents_severity_started ON incidents (severity, started_at DESC, number DESC);
CREATE INDEX incidents_service_started ON incidents (service, started_at DESC, number DESC);
CREATE INDEX incidents_category_started ON incidents (category, started_at DESC, number DESC);
CREATE INDEX incidents_team_started ON incidents (team, started_at DESC, number DESC);
CREATE INDEX incidents_updated ON incidents (updated_at DESC);

-- Full-text index over incident titles and summaries (external content: the text lives in
-- incidents only), kept in sync by triggers.
CREATE VIRTUAL TABLE incidents_fts USING fts5 (
    title, summary,
    content = 'incidents', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO incidents_fts (incidents_fts) VALUES ('rebuild');
CREATE TRIGGER incidents_fts_insert AFTER INSERT ON incidents BEGIN
    INSERT INTO incidents_fts (rowid, title, summary) VALUES (NEW.rowid, NEW.title, NEW.summary);
END;
CREATE TRIGGER incidents_fts_delete AFTER DELETE ON incidents BEGIN
    INSERT INTO incidents_fts (incidents_fts, rowid, title, summary)
    VALUES ('delete', OLD.rowid, OLD.title, OLD.summary);
END;
CREATE TRIGGER incidents_fts_update AFTER UPDATE OF title, summary ON incidents BEGIN
    INSERT INTO incidents_fts (incidents_fts, rowid, title, summary)
    VALUES ('delete', OLD.rowid, OLD.title, OLD.summary);
    INSERT INTO incidents_fts (rowid, title, summary) VALUES (NEW.rowid, NEW.title, NEW.summary);
END;

-- "Open" incidents (not resolved or closed) are the list people look at most; a partial index
-- keeps that view a straight index read whether few or many incidents are open.
CREATE INDEX incidents_open_started ON incidents (started_at DESC, number DESC)
    WHERE status IN ('investigating', 'identified', 'monitoring');
