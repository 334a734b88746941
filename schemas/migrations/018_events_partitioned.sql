-- Events range-partitioned by observed day (China Standard Time), one partition per day
-- (liandong.events_YYYYMMDD): the days being written stay small and in memory however long the
-- history, and retention drops a day's partition instead of deleting rows. Partitions are created
-- ahead by the sweeper (and on demand by the writer, for a day that has none yet) with
-- liandong.ensure_event_partitions(); retention.events_days drops whole days.
--
-- A unique constraint on a partitioned table must contain the partition key, so "one event per
-- source and id" moves to liandong.event_keys (written by the writer beside each event, in the
-- same transaction): deduplication probes one index, not one per day of history.
--
-- This migration rewrites the events table (minutes per ten million events); views that read it
-- are re-bound to the new table, keeping their grants and comments.

-- Views reading events, as defined now (re-created below on the new table).
CREATE TEMP TABLE event_views ON COMMIT DROP AS
SELECT DISTINCT v.oid::regclass::text AS view, pg_get_viewdef(v.oid) AS definition
FROM pg_depend d
JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class v ON v.oid = r.ev_class
WHERE d.refobjid = 'liandong.events'::regclass AND v.relkind = 'v';

ALTER TABLE liandong.events RENAME TO events_unpartitioned;
ALTER TABLE liandong.events_unpartitioned ALTER COLUMN id DROP IDENTITY;
ALTER INDEX liandong.events_pkey RENAME TO events_unpartitioned_pkey;
ALTER INDEX liandong.events_source_source_id_key RENAME TO events_unpartitioned_source_key;
ALTER INDEX liandong.events_correlation_idx RENAME TO events_unpartitioned_correlation_idx;
ALTER INDEX liandong.events_incident_recent_idx RENAME TO events_unpartitioned_incident_recent_idx;

CREATE SEQUENCE liandong.events_id_seq;
SELECT setval('liandong.events_id_seq', coalesce((SELECT max(id) FROM liandong.events_unpartitioned), 0) + 1, false);

CREATE TABLE liandong.events (
    id           bigint NOT NULL DEFAULT nextval('liandong.events_id_seq'),
    source       text NOT NULL CHECK (source IN ('alert', 'report')),
    source_id    text NOT NULL CHECK (source_id <> ''),
    gateway_id   text,
    gateway_seq  bigint,
    device_id    text,
    worker_id    text,
    category     text NOT NULL,
    priority     smallint NOT NULL CHECK (priority BETWEEN 1 AND 4),
    observed_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    geog         geography(Point, 4326) NOT NULL,
    source_crs   text NOT NULL CHECK (source_crs IN ('wgs84', 'gcj02', 'bd09', 'camera', 'grid')),
    grid_code    text NOT NULL,
    village_code text NOT NULL,
    county_code  text NOT NULL GENERATED ALWAYS AS (left(grid_code, 6)) STORED,
    incident_id  uuid NOT NULL,
    payload      jsonb NOT NULL,
    PRIMARY KEY (id, observed_at)
) PARTITION BY RANGE (observed_at);
ALTER SEQUENCE liandong.events_id_seq OWNED BY liandong.events.id;
CREATE INDEX events_correlation_idx ON liandong.events USING gist (category, geog, observed_at);
CREATE INDEX events_incident_recent_idx ON liandong.events (incident_id, source, observed_at DESC, id DESC);
-- The statistics targets of migration 010, for the parent and (copied by
-- ensure_event_partitions) every partition.
DO $$
DECLARE a record;
BEGIN
    FOR a IN SELECT attname, attstattarget FROM pg_attribute
             WHERE attrelid = 'liandong.events_unpartitioned'::regclass AND attnum > 0 AND NOT attisdropped
               AND attstattarget >= 0
    LOOP
        EXECUTE format('ALTER TABLE liandong.events ALTER COLUMN %I SET STATISTICS %s', a.attname, a.attstattarget);
    END LOOP;
END;
$$;

COMMENT ON TABLE liandong.events IS 'Every accepted camera alert and grid report, once (deduplicated by source and id through event_keys); partitioned by observed day (CST), one partition liandong.events_YYYYMMDD per day.';
COMMENT ON COLUMN liandong.events.id IS 'Internal event number (unique; with observed_at the primary key).';
COMMENT ON COLUMN liandong.events.source IS 'alert (camera, via gateway) or report (grid worker).';
COMMENT ON COLUMN liandong.events.source_id IS 'alert_id or report_id from the message; unique per source (see event_keys).';
COMMENT ON COLUMN liandong.events.gateway_id IS 'Publishing gateway of an alert.';
COMMENT ON COLUMN liandong.events.gateway_seq IS 'Per-gateway sequence number of an alert, when sent.';
COMMENT ON COLUMN liandong.events.device_id IS 'GB/T 28181 device id of the alarming camera channel.';
COMMENT ON COLUMN liandong.events.worker_id IS 'Grid worker who filed a report.';
COMMENT ON COLUMN liandong.events.category IS 'Incident category after the category map.';
COMMENT ON COLUMN liandong.events.priority IS 'Alert priority or report severity: 1 most urgent .. 4 least.';
COMMENT ON COLUMN liandong.events.observed_at IS 'When it was observed (what correlation uses, and the partition key), not when it arrived.';
COMMENT ON COLUMN liandong.events.received_at IS 'When Liandong stored it.';
COMMENT ON COLUMN liandong.events.geog IS 'Position in WGS-84 after any GCJ-02/BD-09 conversion.';
COMMENT ON COLUMN liandong.events.source_crs IS 'Where the position came from: wgs84/gcj02/bd09 as sent, camera (registered position) or grid (grid centre).';
COMMENT ON COLUMN liandong.events.grid_code IS 'Grid whose polygon covers the position.';
COMMENT ON COLUMN liandong.events.village_code IS 'Village of that grid.';
COMMENT ON COLUMN liandong.events.county_code IS 'Distribution key: the 6-digit county code.';
COMMENT ON COLUMN liandong.events.incident_id IS 'Incident the event was correlated into.';
COMMENT ON COLUMN liandong.events.payload IS 'The message as received (JSON).';

CREATE TABLE liandong.event_keys (
    source      text NOT NULL,
    source_id   text NOT NULL,
    observed_at timestamptz NOT NULL,
    PRIMARY KEY (source, source_id)
);
COMMENT ON COLUMN liandong.event_keys.source IS 'alert or report.';
COMMENT ON COLUMN liandong.event_keys.source_id IS 'alert_id or report_id: unique per source.';
COMMENT ON COLUMN liandong.event_keys.observed_at IS 'The event''s observed time: the day partition holding it.';
COMMENT ON TABLE liandong.event_keys IS 'One row per stored event: its source and id (unique: the deduplication key) and its observed time, which finds its day partition (JOIN liandong.events USING (source, source_id, observed_at)). Retention removes a day''s keys with its partition.';

-- The day partition of `day` (CST): created standalone and attached, which locks the parent only
-- in SHARE UPDATE EXCLUSIVE mode, so ingest goes on meanwhile.
CREATE FUNCTION liandong.ensure_event_partitions(first_day date, last_day date) RETURNS integer
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
        RAISE EXCEPTION 'ensure_event_partitions(%, %): more than 4000 days', first_day, last_day;
    END IF;
    FOR d IN SELECT generate_series(first_day, last_day, interval '1 day')::date LOOP
        name := 'events_' || to_char(d, 'YYYYMMDD');
        CONTINUE WHEN to_regclass('liandong.' || name) IS NOT NULL;
        low := d::timestamp AT TIME ZONE 'Asia/Shanghai';
        high := (d + 1)::timestamp AT TIME ZONE 'Asia/Shanghai';
        EXECUTE format('CREATE TABLE liandong.%I (LIKE liandong.events INCLUDING DEFAULTS INCLUDING GENERATED '
                       'INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)', name);
        -- The range as a constraint too: ATTACH then needs no scan to prove it.
        EXECUTE format('ALTER TABLE liandong.%I ADD CONSTRAINT %I CHECK (observed_at >= %L AND observed_at < %L)',
                       name, name || '_day', low, high);
        FOR a IN SELECT attname, attstattarget FROM pg_attribute
                 WHERE attrelid = 'liandong.events'::regclass AND attnum > 0 AND NOT attisdropped AND attstattarget >= 0
        LOOP
            EXECUTE format('ALTER TABLE liandong.%I ALTER COLUMN %I SET STATISTICS %s', name, a.attname, a.attstattarget);
        END LOOP;
        EXECUTE format('ALTER TABLE liandong.events ATTACH PARTITION liandong.%I FOR VALUES FROM (%L) TO (%L)', name, low, high);
        EXECUTE format('COMMENT ON TABLE liandong.%I IS %L', name, 'Events observed on ' || d || ' (CST).');
        created := created + 1;
    END LOOP;
    RETURN created;
END;
$$;
COMMENT ON FUNCTION liandong.ensure_event_partitions(date, date) IS 'Creates the missing day partitions of liandong.events from first_day to last_day (CST days) and returns how many it created.';

-- Day partitions: every day stored so far, and the week ahead.
SELECT liandong.ensure_event_partitions(
    least(coalesce((SELECT min(observed_at AT TIME ZONE 'Asia/Shanghai')::date FROM liandong.events_unpartitioned),
                   (now() AT TIME ZONE 'Asia/Shanghai')::date), (now() AT TIME ZONE 'Asia/Shanghai')::date - 8),
    greatest(coalesce((SELECT max(observed_at AT TIME ZONE 'Asia/Shanghai')::date FROM liandong.events_unpartitioned),
                      (now() AT TIME ZONE 'Asia/Shanghai')::date), (now() AT TIME ZONE 'Asia/Shanghai')::date + 7));

INSERT INTO liandong.events (id, source, source_id, gateway_id, gateway_seq, device_id, worker_id, category, priority,
                             observed_at, received_at, geog, source_crs, grid_code, village_code, incident_id, payload)
SELECT id, source, source_id, gateway_id, gateway_seq, device_id, worker_id, category, priority,
       observed_at, received_at, geog, source_crs, grid_code, village_code, incident_id, payload
FROM liandong.events_unpartitioned;
INSERT INTO liandong.event_keys (source, source_id, observed_at)
SELECT source, source_id, observed_at FROM liandong.events_unpartitioned;

-- Re-bind the views to the new table (same text, same columns: grants and comments stay).
DO $$
DECLARE v record;
BEGIN
    FOR v IN SELECT * FROM event_views LOOP
        EXECUTE format('CREATE OR REPLACE VIEW %s AS %s', v.view, v.definition);
    END LOOP;
END;
$$;
DROP TABLE liandong.events_unpartitioned;
