-- What an operator needs to explain a task or an event (liandongd task show, event why) and to act
-- on a stuck task (liandongd task close|reassign):
-- - events.muted_by: why an event asked for no task message (the writer records the decision it
--   made: which silence, the inhibiting camera, a suppressed camera);
-- - rejected_messages.grid_code: the grid a dead letter concerns, where its body names a known
--   camera, grid or worker, so a scoped operator sees the dead letters of its own divisions;
-- - task_history.event 'reassigned': an operator moved a task to another division.

ALTER TABLE liandong.events ADD COLUMN muted_by text;
COMMENT ON COLUMN liandong.events.muted_by IS 'Why this event asked for no task message, as the writer decided it: silence:<id> (liandong.silences), inhibited:<device> (its camera''s video-lost or tamper alarm within correlation.inhibit_s), suppressed (a noisy camera, liandong.noisy_cameras); NULL: it could (its incident''s task, or why none: liandongd event why).';
-- Partitions made from now on copy the comment (LIKE ... INCLUDING COMMENTS); the existing ones get it here.
DO $$
DECLARE part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'liandong.events'::regclass LOOP
        EXECUTE format('COMMENT ON COLUMN %s.muted_by IS %L', part,
                       col_description('liandong.events'::regclass,
                                       (SELECT attnum FROM pg_attribute WHERE attrelid = 'liandong.events'::regclass AND attname = 'muted_by')));
    END LOOP;
END;
$$;

ALTER TABLE liandong.rejected_messages ADD COLUMN grid_code text;
COMMENT ON COLUMN liandong.rejected_messages.grid_code IS 'The grid the dead letter concerns, when its body names a known camera (device_id), grid (grid_code) or worker (worker_id); NULL otherwise. Scoped operators see the dead letters of their divisions by it.';

CREATE FUNCTION liandong.dead_letter_grid(raw bytea) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
DECLARE
    body jsonb;
    code text;
BEGIN
    IF raw IS NULL OR length(raw) > 1048576 THEN
        RETURN NULL;
    END IF;
    BEGIN
        body := convert_from(raw, 'UTF8')::jsonb;
    EXCEPTION WHEN others THEN
        RETURN NULL;  -- not JSON (or not UTF-8): nothing to place it by
    END;
    IF jsonb_typeof(body) <> 'object' THEN
        RETURN NULL;
    END IF;
    SELECT g.grid_code INTO code FROM liandong.grids g WHERE g.grid_code = body->>'grid_code';
    IF code IS NULL THEN
        SELECT c.grid_code INTO code FROM liandong.cameras c WHERE c.device_id = body->>'device_id';
    END IF;
    IF code IS NULL THEN
        SELECT w.grid_code INTO code FROM liandong.grid_workers w WHERE w.worker_id = body->>'worker_id';
    END IF;
    RETURN code;
END;
$$;
COMMENT ON FUNCTION liandong.dead_letter_grid(bytea) IS 'The grid a dead letter''s body names (a known grid_code, a registered camera''s grid, a worker''s grid), or NULL. Never fails.';

CREATE FUNCTION liandong.place_dead_letter() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    NEW.grid_code := coalesce(NEW.grid_code, liandong.dead_letter_grid(NEW.raw));
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION liandong.place_dead_letter() IS 'Fills rejected_messages.grid_code from the body, whoever inserts the dead letter.';
CREATE TRIGGER rejected_messages_place BEFORE INSERT ON liandong.rejected_messages
    FOR EACH ROW EXECUTE FUNCTION liandong.place_dead_letter();

DROP POLICY operator_scope ON liandong.rejected_messages;
CREATE POLICY operator_scope ON liandong.rejected_messages FOR SELECT TO liandong_operator
    USING ('%' = ANY (SELECT liandong.operator_patterns())
           OR grid_code LIKE ANY (SELECT liandong.operator_patterns()));

CREATE OR REPLACE VIEW liandong.dead_letters AS
SELECT id, received_at, endpoint, liandong.raw_text(topic) AS topic, reason, detail, raw_size,
       liandong.raw_text(raw) AS body, grid_code
FROM liandong.rejected_messages;
ALTER VIEW liandong.dead_letters SET (security_invoker = true);
COMMENT ON COLUMN liandong.dead_letters.grid_code IS 'The grid it concerns, when its body names a known camera, grid or worker (a scoped operator sees these of its divisions).';

ALTER TABLE liandong.task_history DROP CONSTRAINT task_history_event_check;
ALTER TABLE liandong.task_history ADD CONSTRAINT task_history_event_check
    CHECK (event IN ('created', 'upgraded', 'accepted', 'started', 'resolved', 'false_alarm', 'rejected', 'escalated',
                     'overdue', 'reannounced', 'reassigned'));
COMMENT ON COLUMN liandong.task_history.event IS 'What happened: created, upgraded, accepted, started, resolved, false_alarm, rejected, escalated, overdue, reannounced, reassigned (an operator moved it to another division: liandongd task reassign).';

-- A task an operator reassigned is handed to the new division like an escalated one (the
-- assessment counts it there); it is not "escalated out" of the old one (not its failure).
CREATE OR REPLACE VIEW liandong.task_assignments WITH (security_invoker = true) AS
WITH handovers AS (
    SELECT h.id, h.task_id, h.division_code, h.tier, h.at, h.respond_by, h.resolve_by,
           lead(h.at) OVER (PARTITION BY h.task_id ORDER BY h.at, h.id) AS handed_on_at
    FROM liandong.task_history h
    WHERE h.event IN ('created', 'escalated', 'rejected', 'upgraded', 'reassigned')
)
SELECT a.task_id, a.division_code, a.tier, a.at, a.respond_by, a.resolve_by, a.handed_on_at,
       (SELECT min(x.at) FROM liandong.task_history x WHERE x.task_id = a.task_id AND x.event = 'accepted'
          AND x.at >= a.at AND (a.handed_on_at IS NULL OR x.at < a.handed_on_at)) AS accepted_at,
       (SELECT min(x.at) FROM liandong.task_history x WHERE x.task_id = a.task_id AND x.event = 'resolved'
          AND x.at >= a.at AND (a.handed_on_at IS NULL OR x.at < a.handed_on_at)) AS resolved_at,
       EXISTS (SELECT 1 FROM liandong.task_history x WHERE x.task_id = a.task_id AND x.event = 'false_alarm'
          AND x.at >= a.at AND (a.handed_on_at IS NULL OR x.at < a.handed_on_at)) AS false_alarm,
       EXISTS (SELECT 1 FROM liandong.task_history x WHERE x.task_id = a.task_id AND x.event IN ('escalated', 'rejected')
          AND x.from_division_code = a.division_code AND x.at >= a.at
          AND (a.handed_on_at IS NULL OR x.at <= a.handed_on_at)) AS escalated
FROM handovers a
-- An upgrade at the same division is the same hand-over; count it once.
WHERE NOT EXISTS (SELECT 1 FROM liandong.task_history p WHERE p.task_id = a.task_id AND p.id < a.id
                    AND p.event IN ('created', 'escalated', 'rejected', 'upgraded', 'reassigned')
                    AND p.division_code = a.division_code
                    AND NOT EXISTS (SELECT 1 FROM liandong.task_history q WHERE q.task_id = a.task_id
                                      AND q.id > p.id AND q.id < a.id AND q.division_code <> a.division_code
                                      AND q.event IN ('created', 'escalated', 'rejected', 'upgraded', 'reassigned')));
COMMENT ON VIEW liandong.task_assignments IS 'Each hand-over of a task to a division (created, upgraded, escalated, rejected or reassigned to it) with what became of it there: accepted, resolved, false alarm, escalated out; the rows liandong.assessment() and division_kpis count.';
