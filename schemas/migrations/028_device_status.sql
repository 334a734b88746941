-- Device status (GB/T 28181): liandong-gb28181 reports each device's registrations, keepalives,
-- unregistrations, keepalive timeouts and registration expiries (liandong.device_status.v1 on
-- topic status); a MANSCDP Keepalive sent straight to the ingest sockets counts as a keepalive.
-- device_status holds each device's current status, device_status_history its changes (and every
-- registration and unregistration; keepalives only when they bring a device back online). The
-- video online rate (视频在线率) of a division and day is the share of its cameras' time online.
CREATE TABLE liandong.device_status (
    device_id    text PRIMARY KEY CHECK (device_id ~ '^[0-9]{20}$'),
    status       text NOT NULL CHECK (status IN ('online', 'offline')),
    reason       text NOT NULL CHECK (reason IN ('register', 'keepalive', 'unregister', 'timeout', 'expired')),
    changed_at   timestamptz NOT NULL,
    reported_at  timestamptz NOT NULL,
    last_seen_at timestamptz
);
COMMENT ON TABLE liandong.device_status IS 'Each GB/T 28181 device (camera, NVR, alarm input) liandong-gb28181 or a gateway reported: its current status. A camera of the registry with no row here never registered: it counts as offline.';
COMMENT ON COLUMN liandong.device_status.device_id IS '20-digit GB/T 28181 device id (the registering device: a camera, or an NVR whose channels are cameras).';
COMMENT ON COLUMN liandong.device_status.status IS 'online or offline, as of the latest report.';
COMMENT ON COLUMN liandong.device_status.reason IS 'What the latest report was: register, keepalive, unregister (Expires 0), timeout (no keepalive within gb28181.keepalive_timeout_s) or expired (the registration ran out).';
COMMENT ON COLUMN liandong.device_status.changed_at IS 'When the device took its current status.';
COMMENT ON COLUMN liandong.device_status.reported_at IS 'Time of the latest report (a late report older than this does not change the status).';
COMMENT ON COLUMN liandong.device_status.last_seen_at IS 'Latest registration or keepalive (NULL: never seen online).';

CREATE TABLE liandong.device_status_history (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id text NOT NULL CHECK (device_id ~ '^[0-9]{20}$'),
    status    text NOT NULL CHECK (status IN ('online', 'offline')),
    reason    text NOT NULL CHECK (reason IN ('register', 'keepalive', 'unregister', 'timeout', 'expired')),
    at        timestamptz NOT NULL,
    UNIQUE (device_id, at, reason)
);
COMMENT ON TABLE liandong.device_status_history IS 'Status changes of each device, and every registration and unregistration, in the order they happened (a repeated report has one row): the spans camera_online_rate measures.';
COMMENT ON COLUMN liandong.device_status_history.id IS 'Row id.';
COMMENT ON COLUMN liandong.device_status_history.device_id IS '20-digit GB/T 28181 device id.';
COMMENT ON COLUMN liandong.device_status_history.status IS 'online or offline from this moment.';
COMMENT ON COLUMN liandong.device_status_history.reason IS 'register, keepalive (back online), unregister, timeout or expired.';
COMMENT ON COLUMN liandong.device_status_history.at IS 'When it happened (as the bridge saw it).';

-- Records a batch of status reports: [{device_id, status, at (epoch s), reason}]. History takes a
-- report that changes the status, and every registration and unregistration; the current row
-- follows the latest report by time. Returns nothing; a repeat has one effect.
CREATE FUNCTION liandong.record_device_status(p_reports jsonb) RETURNS void
LANGUAGE sql AS $$
    WITH x AS (
        SELECT r.device_id, r.status, r.reason, to_timestamp(r.at) AS at
        FROM jsonb_to_recordset(p_reports) AS r(device_id text, status text, reason text, at float8)
    ), prev AS (
        SELECT d.device_id, d.status, d.reported_at FROM liandong.device_status d
        WHERE d.device_id IN (SELECT device_id FROM x)
    ), history AS (
        INSERT INTO liandong.device_status_history (device_id, status, reason, at)
        SELECT y.device_id, y.status, y.reason, y.at
        FROM (SELECT x.*, p.reported_at,
                     -- The status before this report: the batch's previous one for the device, else the stored one.
                     CASE WHEN lag(x.status) OVER w IS NULL THEN p.status ELSE lag(x.status) OVER w END AS before
              FROM x LEFT JOIN prev p ON p.device_id = x.device_id
              WINDOW w AS (PARTITION BY x.device_id ORDER BY x.at)) y
        WHERE y.reason IN ('register', 'unregister') OR y.before IS DISTINCT FROM y.status OR y.at < y.reported_at
        ON CONFLICT (device_id, at, reason) DO NOTHING
    ), latest AS (
        SELECT DISTINCT ON (device_id) device_id, status, reason, at FROM x ORDER BY device_id, at DESC
    ), seen AS (
        SELECT device_id, max(at) AS at FROM x WHERE status = 'online' GROUP BY device_id
    )
    INSERT INTO liandong.device_status AS d (device_id, status, reason, changed_at, reported_at, last_seen_at)
    SELECT l.device_id, l.status, l.reason, l.at, l.at, s.at FROM latest l LEFT JOIN seen s USING (device_id)
    ON CONFLICT (device_id) DO UPDATE SET
        status       = CASE WHEN excluded.reported_at >= d.reported_at THEN excluded.status ELSE d.status END,
        reason       = CASE WHEN excluded.reported_at >= d.reported_at THEN excluded.reason ELSE d.reason END,
        changed_at   = CASE WHEN excluded.reported_at >= d.reported_at AND excluded.status <> d.status
                            THEN excluded.changed_at ELSE d.changed_at END,
        reported_at  = greatest(d.reported_at, excluded.reported_at),
        last_seen_at = greatest(d.last_seen_at, excluded.last_seen_at)
$$;
COMMENT ON FUNCTION liandong.record_device_status(jsonb) IS 'Records status reports [{device_id, status, at (Unix s), reason}] into device_status and its history (the writer calls it in the batch transaction; a repeated report has one effect).';

-- Devices online whose last registration or keepalive is older than p_timeout_s go offline
-- (reason timeout, at last_seen + timeout): the daemon's sweeper does this too, so a county whose
-- bridge is down does not count its cameras online. Returns how many went offline.
CREATE FUNCTION liandong.expire_device_status(p_timeout_s float8) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    SELECT count(*) INTO n FROM liandong.device_status
    WHERE status = 'online' AND last_seen_at < now() - make_interval(secs => p_timeout_s);
    IF n > 0 THEN
        PERFORM liandong.record_device_status(jsonb_agg(jsonb_build_object(
            'device_id', device_id, 'status', 'offline', 'reason', 'timeout',
            'at', extract(epoch FROM last_seen_at) + p_timeout_s) ORDER BY device_id))
        FROM liandong.device_status
        WHERE status = 'online' AND last_seen_at < now() - make_interval(secs => p_timeout_s);
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION liandong.expire_device_status(float8) IS 'Marks offline (reason timeout) every online device not seen for p_timeout_s seconds (the sweeper runs it with gb28181.keepalive_timeout_s); returns how many.';

-- 视频在线率: per division (county, township, village) and day (China Standard Time, up to
-- now for today), the cameras of the registry in service that day and the share of their time
-- online; a camera never reported counts as offline all day. The function computes the days
-- asked for (the report and Grafana ask for a period); the view, every day since the first
-- report (400 at most).
CREATE FUNCTION liandong.camera_online_rate(p_from date, p_to date)
RETURNS TABLE (division_code text, division_name text, level text, day date, cameras bigint, cameras_online bigint, online_pct numeric)
LANGUAGE sql STABLE AS $$
WITH days AS (
    SELECT day::date AS day,
           day::timestamp AT TIME ZONE 'Asia/Shanghai' AS day_start,
           least((day::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai', now()) AS day_end
    FROM generate_series(p_from, least(p_to, (now() AT TIME ZONE 'Asia/Shanghai')::date), interval '1 day') AS day
), history AS (
    -- The period's rows, and each camera's last row before it (its status when the period began).
    SELECT h.id, h.device_id, h.status, h.at FROM liandong.device_status_history h
    WHERE h.at >= p_from::timestamp AT TIME ZONE 'Asia/Shanghai' AND h.at < (p_to + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'
    UNION ALL
    SELECT b.id, b.device_id, b.status, b.at FROM liandong.cameras c
    CROSS JOIN LATERAL (SELECT x.id, x.device_id, x.status, x.at FROM liandong.device_status_history x
                        WHERE x.device_id = c.device_id AND x.at < p_from::timestamp AT TIME ZONE 'Asia/Shanghai'
                        ORDER BY x.at DESC, x.id DESC LIMIT 1) b
), spans AS (
    SELECT h.device_id, h.status, h.at AS from_at,
           coalesce(lead(h.at) OVER (PARTITION BY h.device_id ORDER BY h.at, h.id), now()) AS to_at
    FROM history h
), online AS (
    SELECT s.device_id, greatest(s.from_at, p_from::timestamp AT TIME ZONE 'Asia/Shanghai') AS from_at, s.to_at
    FROM spans s
    WHERE s.status = 'online' AND s.to_at > p_from::timestamp AT TIME ZONE 'Asia/Shanghai'
), cameras AS (
    SELECT c.device_id, coalesce(g.village_code, c.county_code) AS division_code, c.valid_to
    FROM liandong.cameras c LEFT JOIN liandong.grids g ON g.grid_code = c.grid_code
), online_days AS (
    -- Each online span cut into the days (China Standard Time) it covers: one row per camera and
    -- day it was online (joining every span to every day instead took 50 s for a year of a county).
    SELECT s.device_id, d::date AS day,
           sum(extract(epoch FROM least(s.to_at, (d::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai')
                                  - greatest(s.from_at, d::date::timestamp AT TIME ZONE 'Asia/Shanghai'))) AS online_s
    FROM online s
    CROSS JOIN LATERAL generate_series((s.from_at AT TIME ZONE 'Asia/Shanghai')::date,
                                       least((s.to_at AT TIME ZONE 'Asia/Shanghai')::date, p_to), interval '1 day') AS d
    GROUP BY s.device_id, d::date
), per_camera AS (
    SELECT d.day, c.device_id, c.division_code, coalesce(o.online_s, 0) AS online_s,
           extract(epoch FROM d.day_end - d.day_start) AS day_s
    FROM days d
    JOIN cameras c ON c.valid_to IS NULL OR c.valid_to > d.day_start
    LEFT JOIN online_days o ON o.device_id = c.device_id AND o.day = d.day
)
SELECT v.code, v.name, v.level, p.day,
       count(*),
       count(*) FILTER (WHERE p.online_s > 0),
       round((100 * sum(p.online_s) / nullif(sum(p.day_s), 0))::numeric, 1)
-- The village, its township and its county by equality (a hash join), not by prefix.
FROM per_camera p
CROSS JOIN LATERAL (SELECT DISTINCT unnest(ARRAY[p.division_code, left(p.division_code, 9), left(p.division_code, 6)]) AS code) a
JOIN liandong.divisions v ON v.code = a.code
GROUP BY v.code, v.name, v.level, p.day
$$;
COMMENT ON FUNCTION liandong.camera_online_rate(date, date) IS '视频在线率 per division for the days [p_from, p_to] (China Standard Time): SELECT * FROM liandong.camera_online_rate(''2026-11-23'', ''2026-11-29''). Cheaper than the view for a period.';

CREATE VIEW liandong.camera_online_rate WITH (security_invoker = true) AS
SELECT * FROM liandong.camera_online_rate(
    (greatest(coalesce((SELECT min(at) FROM liandong.device_status_history), now()), now() - interval '400 days')
        AT TIME ZONE 'Asia/Shanghai')::date,
    (now() AT TIME ZONE 'Asia/Shanghai')::date);
COMMENT ON VIEW liandong.camera_online_rate IS '视频在线率 per division and day (China Standard Time): cameras of the registry in service, how many were online at some time, and online_pct, the share of their time online (today: up to now). A camera that never registered counts as offline. Every day since the first report; for a period, liandong.camera_online_rate(from, to) is cheaper.';
COMMENT ON COLUMN liandong.camera_online_rate.division_code IS 'County, township or village code.';
COMMENT ON COLUMN liandong.camera_online_rate.division_name IS 'Its name.';
COMMENT ON COLUMN liandong.camera_online_rate.level IS 'county, township or village.';
COMMENT ON COLUMN liandong.camera_online_rate.day IS 'Day in China Standard Time.';
COMMENT ON COLUMN liandong.camera_online_rate.cameras IS 'Cameras of the registry under the division in service that day (placed by their grid; without a grid, at the county).';
COMMENT ON COLUMN liandong.camera_online_rate.cameras_online IS 'How many of them were online at some time that day.';
COMMENT ON COLUMN liandong.camera_online_rate.online_pct IS 'Share of their time online that day, in percent (the assessment figure 视频在线率).';

-- division_kpis gains the day's camera figures (NULL where the division has no camera).
CREATE OR REPLACE VIEW liandong.division_kpis AS
SELECT k.*, r.cameras, r.online_pct AS camera_online_pct
FROM (
    SELECT o.division_code, d.name AS division_name, d.level,
           (o.at AT TIME ZONE 'Asia/Shanghai')::date AS day,
           count(*) AS tasks_received,
           count(o.accepted_at) AS accepted,
           round(100.0 * count(*) FILTER (WHERE o.accepted_at <= o.respond_by) / count(*), 1) AS accepted_on_time_pct,
           count(o.resolved_at) AS resolved,
           round(100.0 * count(*) FILTER (WHERE o.resolved_at <= o.resolve_by) / count(*), 1) AS resolved_on_time_pct,
           round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM o.accepted_at - o.at) / 60))::numeric, 1)
               AS median_minutes_to_accept,
           round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM o.resolved_at - o.at) / 60))::numeric, 1)
               AS median_minutes_to_resolve,
           count(*) FILTER (WHERE o.escalated) AS escalations,
           count(*) FILTER (WHERE o.false_alarm) AS false_alarms
    FROM liandong.task_assignments o
    JOIN liandong.divisions d ON d.code = o.division_code
    GROUP BY o.division_code, d.name, d.level, (o.at AT TIME ZONE 'Asia/Shanghai')::date
) k
LEFT JOIN liandong.camera_online_rate r ON r.division_code = k.division_code AND r.day = k.day;
ALTER VIEW liandong.division_kpis SET (security_invoker = true);
COMMENT ON COLUMN liandong.division_kpis.cameras IS 'Cameras of the registry under the division that day (camera_online_rate).';
COMMENT ON COLUMN liandong.division_kpis.camera_online_pct IS '视频在线率 of the division that day, in percent (camera_online_rate.online_pct).';

-- Scoped operators see the status of the cameras they see (an NVR, not a camera of the registry,
-- is seen by unscoped operators only).
ALTER TABLE liandong.device_status ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.device_status FOR SELECT TO liandong_operator
    USING (EXISTS (SELECT 1 FROM liandong.cameras c WHERE c.device_id = device_status.device_id)
           OR '%' IN (SELECT liandong.operator_patterns()));
ALTER TABLE liandong.device_status_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.device_status_history FOR SELECT TO liandong_operator
    USING (EXISTS (SELECT 1 FROM liandong.cameras c WHERE c.device_id = device_status_history.device_id)
           OR '%' IN (SELECT liandong.operator_patterns()));
GRANT SELECT ON liandong.device_status, liandong.device_status_history, liandong.camera_online_rate TO liandong_operator;
GRANT EXECUTE ON FUNCTION liandong.camera_online_rate(date, date) TO liandong_operator;
