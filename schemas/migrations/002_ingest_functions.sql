-- Server-side halves of the hot path: one call stores and correlates a whole batch, one call
-- upserts its tasks, one call appends its feed messages with gap-free seqs. All run inside the
-- writer's batch transaction.

CREATE FUNCTION liandong.ingest_batch(batch jsonb)
RETURNS TABLE (idx integer, outcome text, reason text, detail text, event_id bigint, incident_id uuid)
LANGUAGE plpgsql
-- Every lookup here has an index; plans cached while a table is still small (no statistics yet)
-- must not fall back to scanning it once it has grown.
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    e   record;
    g   record;
    pt  geography;
    inc uuid;
    crs text;
    eid bigint;
BEGIN
    -- Observed-time order: late and out-of-order events correlate the same way as in-order ones.
    FOR e IN
        SELECT * FROM jsonb_to_recordset(batch) AS x(
            idx integer, source text, source_id text, gateway_id text, seq bigint, device_id text,
            worker_id text, grid_code text, category text, priority smallint, observed_at timestamptz,
            lon float8, lat float8, crs text, radius_m float8, window_s float8, payload text)
        ORDER BY x.observed_at, x.idx
    LOOP
        idx := e.idx; reason := NULL; detail := NULL; event_id := NULL; incident_id := NULL;

        IF EXISTS (SELECT 1 FROM liandong.events v WHERE v.source = e.source AND v.source_id = e.source_id) THEN
            outcome := 'duplicate';
            RETURN NEXT;
            CONTINUE;
        END IF;

        -- Position: as sent (already WGS-84), else the registered camera, else the grid.
        crs := e.crs;
        IF e.lon IS NOT NULL AND e.lat IS NOT NULL THEN
            pt := ST_SetSRID(ST_MakePoint(e.lon, e.lat), 4326)::geography;
        ELSIF e.source = 'alert' THEN
            SELECT c.geom::geography INTO pt FROM liandong.cameras c WHERE c.device_id = e.device_id;
            IF NOT FOUND THEN
                outcome := 'rejected'; reason := 'unknown_device';
                detail := format('device_id %s is not a registered camera and the alert carries no lon/lat', e.device_id);
                RETURN NEXT;
                CONTINUE;
            END IF;
            crs := 'camera';
        ELSE
            SELECT ST_PointOnSurface(gr.geom)::geography INTO pt FROM liandong.grids gr WHERE gr.grid_code = e.grid_code;
            IF NOT FOUND THEN
                outcome := 'rejected'; reason := 'unknown_grid';
                detail := format('grid_code %s is not a known grid and the report carries no lon/lat', e.grid_code);
                RETURN NEXT;
                CONTINUE;
            END IF;
            crs := 'grid';
        END IF;

        -- Grid assignment: the polygon covering the point (the sender's grid wins a boundary tie).
        SELECT gr.grid_code, gr.village_code INTO g
        FROM liandong.grids gr
        WHERE ST_Covers(gr.geom, pt::geometry)
        ORDER BY gr.grid_code IS NOT DISTINCT FROM e.grid_code DESC, gr.grid_code
        LIMIT 1;
        IF NOT FOUND THEN
            outcome := 'rejected'; reason := 'outside_area';
            detail := format('position (%s, %s) lies outside every grid', ST_X(pt::geometry), ST_Y(pt::geometry));
            RETURN NEXT;
            CONTINUE;
        END IF;

        -- Correlation: the nearest open incident of the same category with an event within
        -- radius_m metres and window_s seconds of observed time.
        -- The GiST index on (category, geog, observed_at) drives the search and returns candidates
        -- nearest first (KNN), so a dense cluster (a crowd with hundreds of alerts) costs the 64
        -- nearest, not all of them. The open check is a primary-key lookup per candidate: a join
        -- could scan every open incident for every event while statistics are stale.
        SELECT c.incident_id INTO inc
        FROM (SELECT v.id, v.incident_id, v.observed_at, v.geog <-> pt AS distance
              FROM liandong.events v
              WHERE v.category = e.category
                AND v.observed_at BETWEEN e.observed_at - make_interval(secs => e.window_s)
                                      AND e.observed_at + make_interval(secs => e.window_s)
                AND ST_DWithin(v.geog, pt, e.radius_m)
              ORDER BY v.geog <-> pt
              LIMIT 64) c
        WHERE (SELECT i.status FROM liandong.incidents i WHERE i.id = c.incident_id) = 'open'
        ORDER BY c.distance, abs(extract(epoch FROM c.observed_at - e.observed_at)), c.id
        LIMIT 1;

        IF inc IS NULL THEN
            INSERT INTO liandong.incidents (category, priority, geog, grid_code, village_code,
                                            first_observed_at, last_observed_at)
            VALUES (e.category, e.priority, pt, g.grid_code, g.village_code, e.observed_at, e.observed_at)
            RETURNING id INTO inc;
        END IF;

        INSERT INTO liandong.events (source, source_id, gateway_id, gateway_seq, device_id, worker_id, category,
                                     priority, observed_at, geog, source_crs, grid_code, village_code,
                                     incident_id, payload)
        VALUES (e.source, e.source_id, e.gateway_id, e.seq, e.device_id, e.worker_id, e.category,
                e.priority, e.observed_at, pt, crs, g.grid_code, g.village_code, inc, e.payload::jsonb)
        RETURNING id INTO eid;

        UPDATE liandong.incidents i
        SET priority          = least(i.priority, e.priority),
            first_observed_at = least(i.first_observed_at, e.observed_at),
            last_observed_at  = greatest(i.last_observed_at, e.observed_at),
            alert_count       = i.alert_count + (e.source = 'alert')::integer,
            report_count      = i.report_count + (e.source = 'report')::integer,
            updated_at        = now()
        WHERE i.id = inc;

        outcome := 'stored'; event_id := eid; incident_id := inc;
        RETURN NEXT;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION liandong.ingest_batch(jsonb) IS 'Stores a batch of validated events (deduplicated by source id), assigns grids and correlates each into an incident. Returns one outcome row per input item: stored, duplicate or rejected (with reason).';

CREATE FUNCTION liandong.upsert_tasks(items jsonb)
RETURNS void
LANGUAGE sql AS $$
    INSERT INTO liandong.tasks AS t (id, incident_id, kind, tier, division_code, grid_code, category, priority,
                                     departments, respond_by, resolve_by)
    SELECT x.id, x.incident_id, x.kind, x.tier, x.division_code, x.grid_code, x.category, x.priority,
           x.departments, x.respond_by, x.resolve_by
    FROM jsonb_to_recordset(items) AS x(id uuid, incident_id uuid, kind text, tier text, division_code text,
                                         grid_code text, category text, priority smallint, departments text[],
                                         respond_by timestamptz, resolve_by timestamptz)
    ON CONFLICT (incident_id) DO UPDATE
    SET kind = excluded.kind, priority = excluded.priority, departments = excluded.departments,
        respond_by = excluded.respond_by, resolve_by = excluded.resolve_by, updated_at = now();
$$;
COMMENT ON FUNCTION liandong.upsert_tasks(jsonb) IS 'Creates tasks, or changes the kind/priority/deadlines of an incident''s existing task (a verify task becoming joint_dispatch).';

CREATE FUNCTION liandong.append_feed(messages jsonb)
RETURNS TABLE (seq bigint, topic text, kind text, body jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n    integer := jsonb_array_length(messages);
    base bigint;
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    -- The row lock on feed_head serialises writers, so committed seqs have no holes.
    UPDATE liandong.feed_head h SET seq = h.seq + n RETURNING h.seq - n INTO base;
    RETURN QUERY
    INSERT INTO liandong.feed AS f (seq, message_id, topic, kind, task_id, body)
    SELECT base + a.ord, (a.m ->> 'message_id')::uuid, a.m ->> 'topic', a.m ->> 'kind', (a.m ->> 'task_id')::uuid,
           a.m || jsonb_build_object('seq', base + a.ord)
    FROM jsonb_array_elements(messages) WITH ORDINALITY AS a(m, ord)
    ORDER BY a.ord
    RETURNING f.seq, f.topic, f.kind, f.body;
END;
$$;
COMMENT ON FUNCTION liandong.append_feed(jsonb) IS 'Appends task messages to the feed outbox with the next gap-free seqs; returns them for publishing after commit.';
