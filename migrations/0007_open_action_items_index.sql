-- The board's default view (open items, soonest due first, undated last) read straight off an
-- index over open items, instead of sorting every open item on each view.
CREATE INDEX action_items_open_due ON action_items (coalesce(due_on, '9999-12-31'), created_at)
    WHERE status IN ('open', 'in_progress');

-- A single status (done, won't do…) in the same order.
CREATE INDEX action_items_status_order
    ON action_items (status, coalesce(due_on, '9999-12-31'), created_at);
