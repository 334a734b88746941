-- Grid workers' positions (liandong.worker_position.v1 on topic position[.x]): where each worker
-- walked, by day, for the nearest worker on duty (task.v1 suggested_workers, from the writer's
-- memory) and patrol coverage (巡查覆盖率). Positions are personal data: their own retention
-- (retention.positions_days, 90), dropped a day partition at a time, and row-level security
-- like events.

-- Day partitions of any table partitioned by a timestamptz range (events, worker_positions):
-- liandong.<table>_YYYYMMDD, created standalone and attached (the parent is locked only in
-- SHARE UPDATE EXCLUSIVE mode, so writes go on), with the parent's statistics targets.
CREATE FUNCTION liandong.ensure_day_partitions(p_table text, p_column text, first_day date, last_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d date;
    name text;
    low timestamptz;
    high timestamptz;
    a record;
    created integer := 0;
BEGIN
    IF last_day - first_day > 4000 THEN
        RAISE EXCEPTION 'ensure_day_partitions(%, %, %): more than 4000 days', p_table, first_day, last_day;
    END IF;
    FOR d IN SELECT generate_series(first_day, last_day, interval '1 day')::date LOOP
        name := p_table || '_' || to_char(d, 'YYYYMMDD');
        CONTINUE WHEN to_regclass('liandong.' || name) IS NOT NULL;
        low := d::timestamp AT TIME ZONE 'Asia/Shanghai';
        high := (d + 1)::timestamp AT TIME ZONE 'Asia/Shanghai';
        EXECUTE format('CREATE TABLE liandong.%I (LIKE liandong.%I INCLUDING DEFAULTS INCLUDING GENERATED '
                       'INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)', name, p_table);
        -- The range as a constraint too: ATTACH then needs no scan to prove it.
        EXECUTE format('ALTER TABLE liandong.%I ADD CONSTRAINT %I CHECK (%I >= %L AND %I < %L)',
                       name, name || '_day', p_column, low, p_column, high);
        FOR a IN SELECT attname, attstattarget FROM pg_attribute
                 WHERE attrelid = ('liandong.' || p_table)::regclass AND attnum > 0 AND NOT attisdropped AND attstattarget >= 0
        LOOP
            EXECUTE format('ALTER TABLE liandong.%I ALTER COLUMN %I SET STATISTICS %s', name, a.attname, a.attstattarget);
        END LOOP;
        EXECUTE format('ALTER TABLE liandong.%I ATTACH PARTITION liandong.%I FOR VALUES FROM (%L) TO (%L)', p_table, name, low, high);
        EXECUTE format('COMMENT ON TABLE liandong.%I IS %L', name, 'Rows of liandong.' || p_table || ' of ' || d || ' (CST).');
        created := created + 1;
    END LOOP;
    RETURN created;
END;
$$;
COMMENT ON FUNCTION liandong.ensure_day_partitions(text, text, date, date) IS 'Creates the missing day partitions liandong.<p_table>_YYYYMMDD of a table range-partitioned on p_column from first_day to last_day (CST days); returns how many it created.';

CREATE OR REPLACE FUNCTION liandong.ensure_event_partitions(first_day date, last_day date) RETURNS integer
LANGUAGE sql AS $$ SELECT liandong.ensure_day_partitions('events', 'observed_at', first_day, last_day) $$;

CREATE TABLE liandong.worker_positions (
    worker_id    text NOT NULL,
    at           timestamptz NOT NULL,
    state        text NOT NULL CHECK (state IN ('on_patrol', 'on_task', 'off_duty')),
    geog         geography(Point, 4326) NOT NULL,
    source_crs   text NOT NULL CHECK (source_crs IN ('wgs84', 'gcj02', 'bd09')),
    grid_code    text NOT NULL,
    home_grid_code text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (worker_id, at)
) PARTITION BY RANGE (at);
CREATE INDEX worker_positions_grid_idx ON liandong.worker_positions (grid_code, at);
COMMENT ON TABLE liandong.worker_positions IS 'Grid workers'' positions as their app reported them (liandong.worker_position.v1), once per worker and time; partitioned by day (CST), liandong.worker_positions_YYYYMMDD; kept retention.positions_days (personal data).';
COMMENT ON COLUMN liandong.worker_positions.worker_id IS 'The grid worker (liandong.grid_workers).';
COMMENT ON COLUMN liandong.worker_positions.at IS 'When the worker was there (the partition key).';
COMMENT ON COLUMN liandong.worker_positions.state IS 'on_patrol (巡查), on_task (at a task) or off_duty.';
COMMENT ON COLUMN liandong.worker_positions.geog IS 'Position in WGS-84 after any GCJ-02/BD-09 conversion.';
COMMENT ON COLUMN liandong.worker_positions.source_crs IS 'Coordinate system the position was sent in.';
COMMENT ON COLUMN liandong.worker_positions.grid_code IS 'Grid whose polygon covers the position (where the worker was).';
COMMENT ON COLUMN liandong.worker_positions.home_grid_code IS 'The worker''s own grid when the position was stored (grid_workers).';
COMMENT ON COLUMN liandong.worker_positions.received_at IS 'When Liandong stored it.';

-- The last week, today and the week ahead.
SELECT liandong.ensure_day_partitions('worker_positions', 'at', (now() AT TIME ZONE 'Asia/Shanghai')::date - 8,
                                      (now() AT TIME ZONE 'Asia/Shanghai')::date + 7);

-- 巡查覆盖率: per grid and day (CST), what the day's patrol covered. A track is a worker's
-- consecutive on_patrol positions no more than 300 s apart (a longer silence breaks it: nothing
-- is assumed about where the worker went meanwhile); each step counts for the grid it starts in.
-- km: the steps' length; minutes: their duration; coverage_pct: the share of the grid's area within
-- 50 m of the day's tracks in it (a lone position covers its 50 m disc).
CREATE FUNCTION liandong.patrol_coverage(p_from date, p_to date)
RETURNS TABLE (grid_code text, village_code text, day date, workers bigint, positions bigint, km numeric, minutes numeric,
               coverage_pct numeric)
LANGUAGE sql STABLE AS $$
WITH p AS (
    SELECT p.worker_id, p.at, p.geog, p.grid_code, (p.at AT TIME ZONE 'Asia/Shanghai')::date AS day,
           lead(p.at) OVER w AS next_at, lead(p.geog) OVER w AS next_geog, lead(p.state) OVER w AS next_state
    FROM liandong.worker_positions p
    WHERE p.at >= p_from::timestamp AT TIME ZONE 'Asia/Shanghai' AND p.at < (p_to + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'
      AND p.state = 'on_patrol'
    WINDOW w AS (PARTITION BY p.worker_id ORDER BY p.at)
), steps AS (
    SELECT p.grid_code, p.day, p.worker_id, p.geog,
           CASE WHEN p.next_at - p.at <= interval '300 seconds'
                     AND (p.next_at AT TIME ZONE 'Asia/Shanghai')::date = p.day THEN p.next_geog END AS to_geog,
           CASE WHEN p.next_at - p.at <= interval '300 seconds'
                     AND (p.next_at AT TIME ZONE 'Asia/Shanghai')::date = p.day
                THEN extract(epoch FROM p.next_at - p.at) ELSE 0 END AS seconds
    FROM p
), per_grid AS (
    SELECT s.grid_code, s.day, count(DISTINCT s.worker_id) AS workers, count(*) AS positions,
           sum(coalesce(ST_Distance(s.geog, s.to_geog, true), 0)) AS metres, sum(s.seconds) AS seconds,
           -- The tracks in a metric projection (UTM zone 46N, EPSG:32646: Guazhou is at 95-97°E)
           -- buffered by 50 m.
           ST_Union(ST_Buffer(ST_Transform(CASE WHEN s.to_geog IS NULL THEN s.geog::geometry
                                                ELSE ST_MakeLine(s.geog::geometry, s.to_geog::geometry) END, 32646), 50, 8))
               AS covered
    FROM steps s
    GROUP BY s.grid_code, s.day
)
SELECT g.grid_code, g.village_code, x.day, x.workers, x.positions, round((x.metres / 1000)::numeric, 2),
       round((x.seconds / 60)::numeric, 1),
       round((100 * ST_Area(ST_Intersection(x.covered, ST_Transform(g.geom, 32646))) / nullif(ST_Area(ST_Transform(g.geom, 32646)), 0))::numeric, 1)
FROM per_grid x JOIN liandong.grids g ON g.grid_code = x.grid_code
$$;
COMMENT ON FUNCTION liandong.patrol_coverage(date, date) IS '巡查覆盖率 per grid patrolled on the days [p_from, p_to] (CST): workers, positions, km walked, minutes on patrol, coverage_pct (share of the grid within 50 m of the tracks). SELECT * FROM liandong.patrol_coverage(''2026-12-01'', ''2026-12-06'').';

-- Per division (grid, village, township, county) and day: grids in service, how many were
-- patrolled, km, minutes and the area-weighted coverage. Grids not patrolled count with 0.
CREATE FUNCTION liandong.patrol_coverage_rollup(p_from date, p_to date)
RETURNS TABLE (division_code text, division_name text, level text, day date, grids bigint, grids_patrolled bigint,
               km numeric, minutes numeric, coverage_pct numeric)
LANGUAGE sql STABLE AS $$
WITH days AS (
    SELECT d::date AS day FROM generate_series(p_from, least(p_to, (now() AT TIME ZONE 'Asia/Shanghai')::date), interval '1 day') AS d
), c AS (
    SELECT * FROM liandong.patrol_coverage(p_from, p_to)
), per_grid AS (
    SELECT g.grid_code, g.village_code, d.day, ST_Area(g.geom::geography) AS area, c.km, c.minutes, c.coverage_pct
    FROM days d
    JOIN liandong.grids g ON g.valid_to IS NULL OR g.valid_to > d.day::timestamp AT TIME ZONE 'Asia/Shanghai'
    LEFT JOIN c ON c.grid_code = g.grid_code AND c.day = d.day
)
SELECT v.code, v.name, v.level, p.day, count(*), count(p.km),
       coalesce(sum(p.km), 0), coalesce(sum(p.minutes), 0),
       round((sum(coalesce(p.coverage_pct, 0)::float8 * p.area) / nullif(sum(p.area), 0))::numeric, 1)
FROM per_grid p
CROSS JOIN LATERAL (SELECT unnest(ARRAY[p.grid_code, p.village_code, left(p.village_code, 9), left(p.village_code, 6)]) AS code) a
JOIN (SELECT code, name, level FROM liandong.divisions
      UNION ALL SELECT grid_code, name, 'grid' FROM liandong.grids) v ON v.code = a.code
GROUP BY v.code, v.name, v.level, p.day
$$;
COMMENT ON FUNCTION liandong.patrol_coverage_rollup(date, date) IS '巡查覆盖率 per grid, village, township and county for the days [p_from, p_to] (CST): grids in service, grids patrolled, km, minutes, coverage_pct weighted by grid area (an unpatrolled grid counts 0).';

CREATE VIEW liandong.patrol_coverage WITH (security_invoker = true) AS
SELECT * FROM liandong.patrol_coverage_rollup((now() AT TIME ZONE 'Asia/Shanghai')::date - 6, (now() AT TIME ZONE 'Asia/Shanghai')::date);
COMMENT ON VIEW liandong.patrol_coverage IS '巡查覆盖率 of the last 7 days (CST) per grid, village, township and county: grids in service, grids patrolled, km walked, minutes on patrol and coverage_pct, the share of the area within 50 m of the day''s patrol tracks (today: so far). For other days: liandong.patrol_coverage_rollup(from, to), per grid with workers and positions: liandong.patrol_coverage(from, to).';
COMMENT ON COLUMN liandong.patrol_coverage.division_code IS 'Grid, village, township or county code.';
COMMENT ON COLUMN liandong.patrol_coverage.division_name IS 'Its name.';
COMMENT ON COLUMN liandong.patrol_coverage.level IS 'grid, village, township or county.';
COMMENT ON COLUMN liandong.patrol_coverage.day IS 'Day in China Standard Time.';
COMMENT ON COLUMN liandong.patrol_coverage.grids IS 'Grids in service under it that day.';
COMMENT ON COLUMN liandong.patrol_coverage.grids_patrolled IS 'How many of them had a patrol track that day.';
COMMENT ON COLUMN liandong.patrol_coverage.km IS 'Kilometres walked on patrol (steps of a track no more than 300 s apart).';
COMMENT ON COLUMN liandong.patrol_coverage.minutes IS 'Minutes on patrol.';
COMMENT ON COLUMN liandong.patrol_coverage.coverage_pct IS 'Share of the area within 50 m of the day''s tracks, in percent (area-weighted over its grids).';

-- Patrol tracks as lines: each worker's on_patrol positions in [p_from, p_to) in time order,
-- broken where 300 s passed without one (as patrol_coverage counts them). The view: today's (a
-- QGIS layer); the assessment report: its period's.
CREATE FUNCTION liandong.patrol_track_lines(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (track_id text, worker_id text, worker_name text, grid_code text, started_in_grid_code text,
               started_at timestamptz, ended_at timestamptz, positions bigint, km numeric, geom geometry(LineString, 4326))
LANGUAGE sql STABLE AS $$
WITH x AS (
    SELECT p.worker_id, p.at, p.geog, p.grid_code,
           CASE WHEN p.at - lag(p.at) OVER (PARTITION BY p.worker_id ORDER BY p.at) <= interval '300 seconds' THEN 0 ELSE 1 END AS brk
    FROM liandong.worker_positions p
    WHERE p.state = 'on_patrol' AND p.at >= p_from AND p.at < p_to
), s AS (
    SELECT x.*, sum(x.brk) OVER (PARTITION BY x.worker_id ORDER BY x.at) AS part FROM x
)
SELECT s.worker_id || ':' || s.part, s.worker_id, w.name, w.grid_code, (array_agg(s.grid_code ORDER BY s.at))[1], min(s.at), max(s.at),
       count(*), round((ST_Length(ST_MakeLine(s.geog::geometry ORDER BY s.at)::geography) / 1000)::numeric, 2),
       ST_MakeLine(s.geog::geometry ORDER BY s.at)::geometry(LineString, 4326)
FROM s LEFT JOIN liandong.grid_workers w ON w.worker_id = s.worker_id
GROUP BY s.worker_id, s.part, w.name, w.grid_code
HAVING count(*) > 1
$$;
COMMENT ON FUNCTION liandong.patrol_track_lines(timestamptz, timestamptz) IS 'Patrol tracks between two instants: each worker''s on_patrol positions as lines, broken where 300 s passed without one (the columns of liandong.patrol_tracks).';

CREATE VIEW liandong.patrol_tracks WITH (security_invoker = true) AS
SELECT * FROM liandong.patrol_track_lines((now() AT TIME ZONE 'Asia/Shanghai')::date::timestamp AT TIME ZONE 'Asia/Shanghai', 'infinity');
COMMENT ON VIEW liandong.patrol_tracks IS 'Today''s (CST) patrol tracks: each worker''s on_patrol positions as a line, broken where 300 s passed without one (QGIS layer).';
COMMENT ON COLUMN liandong.patrol_tracks.track_id IS 'worker_id:n, the worker''s n-th track of the day (unique).';
COMMENT ON COLUMN liandong.patrol_tracks.worker_id IS 'The grid worker.';
COMMENT ON COLUMN liandong.patrol_tracks.worker_name IS 'The worker''s name (liandong.grid_workers).';
COMMENT ON COLUMN liandong.patrol_tracks.grid_code IS 'The worker''s own grid.';
COMMENT ON COLUMN liandong.patrol_tracks.started_in_grid_code IS 'The grid the track started in.';
COMMENT ON COLUMN liandong.patrol_tracks.started_at IS 'First position of the track.';
COMMENT ON COLUMN liandong.patrol_tracks.ended_at IS 'Last position of the track.';
COMMENT ON COLUMN liandong.patrol_tracks.positions IS 'Positions in it.';
COMMENT ON COLUMN liandong.patrol_tracks.km IS 'Its length in kilometres.';
COMMENT ON COLUMN liandong.patrol_tracks.geom IS 'The line, WGS-84 (SRID 4326).';

-- Reminders for grids not patrolled by workers.patrol_due: one per grid and day, published on
-- the feed (topic reminder.<village code>, schema liandong.reminder.v1) in the transaction that
-- records it here.
CREATE TABLE liandong.patrol_reminders (
    grid_code  text NOT NULL REFERENCES liandong.grids (grid_code),
    day        date NOT NULL,
    worker_id  text,
    message_id uuid NOT NULL UNIQUE,
    sent_at    timestamptz NOT NULL,
    PRIMARY KEY (grid_code, day)
);
COMMENT ON TABLE liandong.patrol_reminders IS 'One reminder per grid and day (CST) that had no patrol by workers.patrol_due: the liandong.reminder.v1 message on topic reminder.<village code>.';
COMMENT ON COLUMN liandong.patrol_reminders.grid_code IS 'The grid not patrolled.';
COMMENT ON COLUMN liandong.patrol_reminders.day IS 'The day (CST).';
COMMENT ON COLUMN liandong.patrol_reminders.worker_id IS 'The grid''s worker reminded (none registered: NULL).';
COMMENT ON COLUMN liandong.patrol_reminders.message_id IS 'message_id of the reminder on the feed.';
COMMENT ON COLUMN liandong.patrol_reminders.sent_at IS 'When it was committed to the feed.';

-- The feed carries reminders too: no task, kind reminder.
ALTER TABLE liandong.feed ALTER COLUMN task_id DROP NOT NULL;
ALTER TABLE liandong.feed DROP CONSTRAINT feed_kind_check;
ALTER TABLE liandong.feed ADD CONSTRAINT feed_kind_check
    CHECK (kind IN ('verify', 'dispatch', 'joint_dispatch', 'escalation', 'update', 'reminder'));
ALTER TABLE liandong.feed ADD CONSTRAINT feed_task_or_reminder CHECK ((task_id IS NULL) = (kind = 'reminder'));

-- Operators see positions and reminders of their scope (the feed: by the division after the
-- topic's first dot, task.<code> or reminder.<code>).
ALTER POLICY operator_scope ON liandong.feed
    USING (substr(topic, strpos(topic, '.') + 1) LIKE ANY (SELECT liandong.operator_patterns()));
ALTER TABLE liandong.worker_positions ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.worker_positions FOR SELECT TO liandong_operator
    USING (grid_code LIKE ANY (SELECT liandong.operator_patterns()));
ALTER TABLE liandong.patrol_reminders ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.patrol_reminders FOR SELECT TO liandong_operator
    USING (grid_code LIKE ANY (SELECT liandong.operator_patterns()));
GRANT SELECT ON liandong.worker_positions, liandong.patrol_reminders, liandong.patrol_coverage, liandong.patrol_tracks TO liandong_operator;
GRANT EXECUTE ON FUNCTION liandong.patrol_coverage(date, date), liandong.patrol_coverage_rollup(date, date),
    liandong.patrol_track_lines(timestamptz, timestamptz) TO liandong_operator;
