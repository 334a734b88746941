-- The writer keeps grids, cameras and grid workers in memory and must notice an import. Reading
-- count(*) and max(updated_at) of the three tables cost tens of milliseconds at a province's
-- scale (76,700 grids); a counter bumped by a statement trigger costs one row read.
CREATE TABLE liandong.reference_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint NOT NULL DEFAULT 0
);
INSERT INTO liandong.reference_version DEFAULT VALUES;
COMMENT ON TABLE liandong.reference_version IS 'Bumped by every statement that changes grids, cameras or grid_workers; the writer reloads its in-memory copy when it changes.';
COMMENT ON COLUMN liandong.reference_version.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN liandong.reference_version.version IS 'Changes counter.';

CREATE FUNCTION liandong.bump_reference_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE liandong.reference_version SET version = version + 1;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION liandong.bump_reference_version() IS 'Statement trigger: records that reference data changed.';

CREATE TRIGGER grids_bump_reference_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON liandong.grids
    FOR EACH STATEMENT EXECUTE FUNCTION liandong.bump_reference_version();
CREATE TRIGGER cameras_bump_reference_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON liandong.cameras
    FOR EACH STATEMENT EXECUTE FUNCTION liandong.bump_reference_version();
CREATE TRIGGER grid_workers_bump_reference_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON liandong.grid_workers
    FOR EACH STATEMENT EXECUTE FUNCTION liandong.bump_reference_version();
