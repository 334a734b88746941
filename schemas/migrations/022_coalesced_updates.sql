-- Coalesced updates (Alertmanager's group_interval): within correlation.update_interval_s of a
-- task's last message, new evidence makes no message of its own; the task owes one update at the
-- end of the interval, with the counts of then. What is owed lives here, not only in the
-- writer's memory, so a restart sends it too (the sweeper sends due updates).
ALTER TABLE liandong.tasks
    ADD COLUMN counts_sent_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN update_due_at timestamptz;
CREATE INDEX tasks_update_due_idx ON liandong.tasks (update_due_at) WHERE update_due_at IS NOT NULL;
COMMENT ON COLUMN liandong.tasks.counts_sent_at IS 'When the last message about it went out (every message carries the incident''s evidence counts): updates are coalesced within correlation.update_interval_s of it.';
COMMENT ON COLUMN liandong.tasks.update_due_at IS 'An evidence update held back by coalescing is owed then (NULL: none); the sweeper sends it with the counts of then.';
COMMENT ON INDEX liandong.tasks_update_due_idx IS 'Tasks owing a coalesced update, by when (the sweeper).';
