-- The incident list filtered by service and severity (the filter a team keeps open during an
-- incident: "sev1 on checkout") in list order from one index: the page's rows are its first
-- entries and the match count is a count of one index range. Before, the count read every
-- incident of the service to test its severity (10,000 rows, 11 ms, at 100k incidents).
CREATE INDEX incidents_service_severity_started ON incidents (service, severity, started_at);
