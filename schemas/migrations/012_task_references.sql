-- Tasks and their history no longer check their references row by row either (see migration 006
-- for events, incidents and feed). Measured on 10,000 rows: inserting tasks took 345 ms with their
-- three foreign keys and 134 ms without; task_history 292 ms and 86 ms: the checks (a locking
-- lookup per reference per row) were two thirds of writing these rows, about 15 % of PostgreSQL's
-- time per event on the hot path (tools/bench). Their producers take every reference from rows
-- that exist: the writer from incidents it holds and the grid map (division codes are prefixes of
-- the grid's village code, and the import refuses divisions whose parents are not their
-- prefixes), the update receiver and the sweeper from the task row they lock. Deleting or
-- re-keying a referenced grid, division, incident or task is still refused, by the guard triggers,
-- which now also look at tasks and task_history. task_history.update_id keeps its foreign key
-- (written only with a dispatcher's update).
ALTER TABLE liandong.tasks DROP CONSTRAINT tasks_division_code_fkey;
ALTER TABLE liandong.tasks DROP CONSTRAINT tasks_grid_code_fkey;
ALTER TABLE liandong.tasks DROP CONSTRAINT tasks_incident_id_fkey;
ALTER TABLE liandong.task_history DROP CONSTRAINT task_history_task_id_fkey;
ALTER TABLE liandong.task_history DROP CONSTRAINT task_history_division_code_fkey;
ALTER TABLE liandong.task_history DROP CONSTRAINT task_history_from_division_code_fkey;

CREATE OR REPLACE FUNCTION liandong.refuse_orphaning() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    referenced boolean;
BEGIN
    IF TG_TABLE_NAME = 'grids' THEN
        referenced := EXISTS (SELECT 1 FROM liandong.incidents WHERE grid_code = OLD.grid_code)
                   OR EXISTS (SELECT 1 FROM liandong.events WHERE grid_code = OLD.grid_code)
                   OR EXISTS (SELECT 1 FROM liandong.tasks WHERE grid_code = OLD.grid_code);
    ELSIF TG_TABLE_NAME = 'divisions' THEN
        referenced := EXISTS (SELECT 1 FROM liandong.incidents WHERE village_code = OLD.code)
                   OR EXISTS (SELECT 1 FROM liandong.events WHERE village_code = OLD.code)
                   OR EXISTS (SELECT 1 FROM liandong.tasks WHERE division_code = OLD.code)
                   OR EXISTS (SELECT 1 FROM liandong.task_history WHERE division_code = OLD.code)
                   OR EXISTS (SELECT 1 FROM liandong.task_history WHERE from_division_code = OLD.code);
    ELSIF TG_TABLE_NAME = 'incidents' THEN
        referenced := EXISTS (SELECT 1 FROM liandong.events WHERE incident_id = OLD.id)
                   OR EXISTS (SELECT 1 FROM liandong.tasks WHERE incident_id = OLD.id);
    ELSE  -- tasks
        referenced := EXISTS (SELECT 1 FROM liandong.feed WHERE task_id = OLD.id)
                   OR EXISTS (SELECT 1 FROM liandong.task_history WHERE task_id = OLD.id);
    END IF;
    IF referenced THEN
        RAISE EXCEPTION 'liandong.% row is referenced by stored events, incidents, tasks, task history or feed messages', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END;
$$;
COMMENT ON FUNCTION liandong.refuse_orphaning() IS 'Refuses deleting (or re-keying) a grid, division, incident or task that stored events, incidents, tasks, task history or feed messages refer to: the parent-side half of the references the hot-path tables no longer check per row.';
