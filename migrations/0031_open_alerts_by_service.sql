-- The service page names the newest 20 alerts firing on the service and counts the rest. The
-- only index on open alerts was by `ended_at`, so each view read every open alert, joined its
-- incident and sorted them, to keep 20: a storm's alert group holds a thousand, and the page
-- fell to 3.5% of /healthz while it was refreshed. This index is in that order per service
-- (`ended_at`, always NULL here, is in it so that the count reads the index alone).
CREATE INDEX alert_events_open_service ON alert_events (service, started_at, ended_at)
    WHERE ended_at IS NULL;
