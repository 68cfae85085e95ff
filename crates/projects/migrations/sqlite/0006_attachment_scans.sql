-- Malware scans of attachments (SQLite), docs/SECURITY.md UP-5. status: quarantined (stored, not
-- yet scanned: not downloadable), available, rejected (malware found, object deleted). scan
-- says what was done: none (no scanner configured: never scanned), pending, clean, infected;
-- threat names what the scanner found. Rows from before scanning existed stay downloadable
-- and honestly unscanned.

ALTER TABLE attachments ADD COLUMN status TEXT NOT NULL DEFAULT 'available'
    CHECK (status IN ('quarantined', 'available', 'rejected'));
ALTER TABLE attachments ADD COLUMN scan TEXT NOT NULL DEFAULT 'none'
    CHECK (scan IN ('none', 'pending', 'clean', 'infected'));
ALTER TABLE attachments ADD COLUMN threat TEXT;

-- The scanner's queue: rows still quarantined, in id order.
CREATE INDEX attachments_quarantined ON attachments (id) WHERE status = 'quarantined';
