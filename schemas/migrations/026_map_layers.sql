-- Map layers for QGIS (deploy/liandong.qgs) and anyone drawing maps: villages and townships as
-- the union of their current grids, and overdue tasks at their incidents. Security invoker: an
-- operator sees the areas and tasks of its scope.
CREATE VIEW liandong.village_areas WITH (security_invoker = true) AS
SELECT v.code, v.name, v.parent_code AS township_code, t.name AS township_name, count(*) AS grids,
       ST_Multi(ST_Union(g.geom))::geometry(MultiPolygon, 4326) AS geom
FROM liandong.divisions v
JOIN liandong.grids g ON g.village_code = v.code AND g.valid_to IS NULL
LEFT JOIN liandong.divisions t ON t.code = v.parent_code
GROUP BY v.code, v.name, v.parent_code, t.name;
COMMENT ON VIEW liandong.village_areas IS 'Each village (community) as the union of its current grids (QGIS layer).';
COMMENT ON COLUMN liandong.village_areas.code IS 'Village code (12 digits).';
COMMENT ON COLUMN liandong.village_areas.name IS 'Village name.';
COMMENT ON COLUMN liandong.village_areas.township_code IS 'Its township.';
COMMENT ON COLUMN liandong.village_areas.township_name IS 'Township name.';
COMMENT ON COLUMN liandong.village_areas.grids IS 'Current grids in it.';
COMMENT ON COLUMN liandong.village_areas.geom IS 'Union of its grids, WGS-84 (SRID 4326).';

CREATE VIEW liandong.township_areas WITH (security_invoker = true) AS
SELECT t.code, t.name, count(*) AS grids, ST_Multi(ST_Union(g.geom))::geometry(MultiPolygon, 4326) AS geom
FROM liandong.divisions t
JOIN liandong.grids g ON left(g.grid_code, 9) = t.code AND g.valid_to IS NULL
WHERE t.level = 'township'
GROUP BY t.code, t.name;
COMMENT ON VIEW liandong.township_areas IS 'Each township as the union of its current grids (QGIS layer).';
COMMENT ON COLUMN liandong.township_areas.code IS 'Township code (9 digits).';
COMMENT ON COLUMN liandong.township_areas.name IS 'Township name.';
COMMENT ON COLUMN liandong.township_areas.grids IS 'Current grids in it.';
COMMENT ON COLUMN liandong.township_areas.geom IS 'Union of its grids, WGS-84 (SRID 4326).';

CREATE VIEW liandong.overdue_task_points WITH (security_invoker = true) AS
SELECT o.task_id, o.kind, o.state, o.tier, o.division_code, o.division_name, o.category, o.priority, o.missed,
       o.minutes_late, o.escalations, o.overdue, t.grid_code, i.geog::geometry(Point, 4326) AS geom
FROM liandong.overdue_tasks o
JOIN liandong.tasks t ON t.id = o.task_id
JOIN liandong.incidents i ON i.id = t.incident_id;
COMMENT ON VIEW liandong.overdue_task_points IS 'Overdue tasks (liandong.overdue_tasks) at their incidents (QGIS layer).';
COMMENT ON COLUMN liandong.overdue_task_points.task_id IS 'Task id.';
COMMENT ON COLUMN liandong.overdue_task_points.kind IS 'verify, dispatch or joint_dispatch.';
COMMENT ON COLUMN liandong.overdue_task_points.state IS 'open, accepted or in_progress.';
COMMENT ON COLUMN liandong.overdue_task_points.tier IS 'Tier holding it now.';
COMMENT ON COLUMN liandong.overdue_task_points.division_code IS 'Division holding it now.';
COMMENT ON COLUMN liandong.overdue_task_points.division_name IS 'Its name.';
COMMENT ON COLUMN liandong.overdue_task_points.category IS 'Incident category.';
COMMENT ON COLUMN liandong.overdue_task_points.priority IS '1 most urgent .. 4 least.';
COMMENT ON COLUMN liandong.overdue_task_points.missed IS 'respond or resolve: the deadline missed.';
COMMENT ON COLUMN liandong.overdue_task_points.minutes_late IS 'Minutes past it.';
COMMENT ON COLUMN liandong.overdue_task_points.escalations IS 'Tiers climbed so far.';
COMMENT ON COLUMN liandong.overdue_task_points.overdue IS 'Marked overdue at the county.';
COMMENT ON COLUMN liandong.overdue_task_points.grid_code IS 'Grid of the incident.';
COMMENT ON COLUMN liandong.overdue_task_points.geom IS 'The incident''s position, WGS-84 (SRID 4326).';

GRANT SELECT ON liandong.village_areas, liandong.township_areas, liandong.overdue_task_points TO liandong_operator;

-- Operators' tools (liandongd report, run as an operator login) check that the schema is the one
-- they know before reading it.
GRANT SELECT ON liandong.schema_migrations TO liandong_operator;
