-- Migration 0002 first shipped (commit 5c920a2) without this index; commit 00f2791 appended it
-- to the already-committed file, so databases created before then never got it (and their
-- recorded 0002 checksum is repaired in src/db.rs). Same definition as in 0002; IF NOT EXISTS
-- makes it a no-op wherever 0002 already created it.
CREATE INDEX IF NOT EXISTS incidents_open_started ON incidents (started_at DESC, number DESC)
    WHERE status IN ('investigating', 'identified', 'monitoring');
