-- Outgoing webhooks are signed with HMAC-SHA256 over timestamp and body, each destination
-- with its own secret (shown once when it is made). Destinations from before this get a
-- random secret nobody has seen: an admin shows a new one with "New signing secret".
ALTER TABLE webhook_destinations ADD COLUMN secret TEXT NOT NULL DEFAULT '';
UPDATE webhook_destinations SET secret = 'whsec_' || lower(hex(randomblob(32)));

-- The deliveries page shows a status or a fixed phrase, never the remote's answer or the
-- transport's error text: rewrite what older versions kept.
UPDATE webhook_deliveries
SET last_error = CASE
    WHEN last_error = '' THEN ''
    WHEN last_status IS NOT NULL THEN 'answered ' || last_status
    ELSE 'no answer'
END;
