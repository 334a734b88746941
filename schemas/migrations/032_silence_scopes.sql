-- Silences under row-level security like the rest: an operator sees the silences that concern its
-- divisions - those of a division within or above its scope, those of a camera prefix matching a
-- camera it sees, and those of a category everywhere (they silence its divisions too); county-wide
-- operators see all.
ALTER TABLE liandong.silences ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.silences FOR SELECT TO liandong_operator
    USING ('%' = ANY (SELECT liandong.operator_patterns())
           OR (device_prefix = '' AND division_prefix = '')
           OR (division_prefix <> '' AND (division_prefix LIKE ANY (SELECT liandong.operator_patterns())
                                          OR EXISTS (SELECT 1 FROM liandong.operator_patterns() p
                                                     WHERE p LIKE silences.division_prefix || '%')))
           OR (division_prefix = '' AND device_prefix <> ''
               AND EXISTS (SELECT 1 FROM liandong.cameras c WHERE c.device_id LIKE silences.device_prefix || '%')));
