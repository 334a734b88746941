-- Grids and cameras are retired, never deleted: events, incidents and tasks keep pointing at the
-- grid they happened in. A retired grid no longer places new events by position (a report that
-- names it by grid_code still lands there); `liandongd import grids|cameras --replace` retires
-- what the file no longer holds, and re-importing a retired row brings it back.
ALTER TABLE liandong.grids ADD COLUMN valid_to timestamptz;
ALTER TABLE liandong.cameras ADD COLUMN valid_to timestamptz;
COMMENT ON COLUMN liandong.grids.valid_to IS 'When the grid was retired (an import with --replace that no longer held it); NULL while in service.';
COMMENT ON COLUMN liandong.cameras.valid_to IS 'When the camera was retired (an import with --replace that no longer held it); NULL while in service.';

CREATE FUNCTION liandong.refuse_reference_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'liandong.% rows are retired, not deleted', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation',
              HINT = 'set valid_to = now(), or re-import without the row using --replace';
END;
$$;
COMMENT ON FUNCTION liandong.refuse_reference_delete() IS 'Trigger: grids and cameras are retired (valid_to), never deleted from under the history that refers to them.';
CREATE TRIGGER grids_refuse_delete BEFORE DELETE ON liandong.grids
    FOR EACH ROW EXECUTE FUNCTION liandong.refuse_reference_delete();
CREATE TRIGGER cameras_refuse_delete BEFORE DELETE ON liandong.cameras
    FOR EACH ROW EXECUTE FUNCTION liandong.refuse_reference_delete();
