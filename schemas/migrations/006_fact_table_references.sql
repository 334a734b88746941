-- The append-only fact tables written on the hot path (events, incidents, feed) no longer check
-- their references row by row: foreign-key triggers were about a third of PostgreSQL's time per
-- batch (BENCHMARKS.md). The writer is the only producer of these rows and takes every reference
-- from the tables it points to (grids and villages from the loaded grid map, incidents it created
-- or read in the same transaction, tasks it created or read). The other direction - a referenced
-- row disappearing - is still refused by the database, by the guard triggers below, so an
-- operator's DELETE cannot orphan stored evidence. Tasks and task history keep their foreign keys.
ALTER TABLE liandong.events DROP CONSTRAINT events_grid_code_fkey;
ALTER TABLE liandong.events DROP CONSTRAINT events_village_code_fkey;
ALTER TABLE liandong.events DROP CONSTRAINT events_incident_id_fkey;
ALTER TABLE liandong.incidents DROP CONSTRAINT incidents_grid_code_fkey;
ALTER TABLE liandong.incidents DROP CONSTRAINT incidents_village_code_fkey;
ALTER TABLE liandong.feed DROP CONSTRAINT feed_task_id_fkey;

CREATE FUNCTION liandong.refuse_orphaning() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    referenced boolean;
BEGIN
    IF TG_TABLE_NAME = 'grids' THEN
        referenced := EXISTS (SELECT 1 FROM liandong.incidents WHERE grid_code = OLD.grid_code)
                   OR EXISTS (SELECT 1 FROM liandong.events WHERE grid_code = OLD.grid_code);
    ELSIF TG_TABLE_NAME = 'divisions' THEN
        referenced := EXISTS (SELECT 1 FROM liandong.incidents WHERE village_code = OLD.code)
                   OR EXISTS (SELECT 1 FROM liandong.events WHERE village_code = OLD.code);
    ELSIF TG_TABLE_NAME = 'incidents' THEN
        referenced := EXISTS (SELECT 1 FROM liandong.events WHERE incident_id = OLD.id);
    ELSE  -- tasks
        referenced := EXISTS (SELECT 1 FROM liandong.feed WHERE task_id = OLD.id);
    END IF;
    IF referenced THEN
        RAISE EXCEPTION 'liandong.% row is referenced by stored events, incidents or feed messages', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END;
$$;
COMMENT ON FUNCTION liandong.refuse_orphaning() IS 'Refuses deleting (or re-keying) a grid, division, incident or task that stored events, incidents or feed messages refer to: the parent-side half of the references the hot-path tables no longer check per row.';

CREATE TRIGGER grids_refuse_orphaning BEFORE DELETE OR UPDATE OF grid_code ON liandong.grids
    FOR EACH ROW EXECUTE FUNCTION liandong.refuse_orphaning();
CREATE TRIGGER divisions_refuse_orphaning BEFORE DELETE OR UPDATE OF code ON liandong.divisions
    FOR EACH ROW EXECUTE FUNCTION liandong.refuse_orphaning();
CREATE TRIGGER incidents_refuse_orphaning BEFORE DELETE OR UPDATE OF id ON liandong.incidents
    FOR EACH ROW EXECUTE FUNCTION liandong.refuse_orphaning();
CREATE TRIGGER tasks_refuse_orphaning BEFORE DELETE OR UPDATE OF id ON liandong.tasks
    FOR EACH ROW EXECUTE FUNCTION liandong.refuse_orphaning();
