-- The duty officer's console (liandong-console) acts through the updates socket like any
-- dispatcher, with two more actions of liandong.task_update.v1: `note` (recorded, the task is
-- as it was: task_history 'noted') and `escalate` (督办 by hand: one tier up with a reason,
-- recorded as 'escalated' naming the officer as actor).

ALTER TABLE liandong.task_history DROP CONSTRAINT task_history_event_check;
ALTER TABLE liandong.task_history ADD CONSTRAINT task_history_event_check
    CHECK (event IN ('created', 'upgraded', 'accepted', 'started', 'resolved', 'false_alarm', 'rejected', 'escalated',
                     'overdue', 'reannounced', 'reassigned', 'reopened', 'noted'));
COMMENT ON COLUMN liandong.task_history.event IS 'What happened: created, upgraded, accepted, started, resolved, false_alarm, rejected, escalated (a deadline missed, actor liandong; or 督办 by hand, actor the officer, reason in note), overdue, reannounced, reassigned (an operator moved it to another division: liandongd task reassign), reopened (a resident rated the outcome 1 or 2: liandong.citizen_feedback), noted (a dispatcher''s note; the task is unchanged).';
