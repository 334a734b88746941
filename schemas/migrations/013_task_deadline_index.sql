-- The sweeper asks every second which tasks are due. tasks_due_idx (respond_by, resolve_by) gave
-- the order but not the answer: the query walked every unfinished task and filtered, 17 ms a
-- second with 40,000 open tasks (tools/bench, pg_stat_statements), on the cores the writer needs.
-- Now each part of "due" is a range on its own index, so a sweep reads only what is due:
--   not overdue: the next deadline (respond_by while open, else resolve_by, whichever comes
--   first) has passed;
--   overdue at county: the last announcement is older than the re-announce interval.
CREATE INDEX tasks_next_deadline_idx ON liandong.tasks
    ((CASE WHEN state = 'open' THEN least(respond_by, resolve_by) ELSE resolve_by END))
    WHERE NOT overdue AND state NOT IN ('resolved', 'false_alarm');
CREATE INDEX tasks_reannounce_idx ON liandong.tasks (last_announced_at)
    WHERE overdue AND state NOT IN ('resolved', 'false_alarm');
DROP INDEX liandong.tasks_due_idx;
COMMENT ON INDEX liandong.tasks_next_deadline_idx IS 'Unfinished, not overdue tasks by their next deadline: which are due (the sweeper).';
COMMENT ON INDEX liandong.tasks_reannounce_idx IS 'Overdue unfinished tasks by last announcement: which to re-announce (the sweeper).';
