-- GB/T 28181 devices as the platform knows them (liandong.device_info.v1, topic device): what a
-- device says of itself (DeviceInfo), how and when it registered, whether it is armed and
-- subscribed; operators' arm/disarm commands for liandong-gb28181; alarms placed by a channel
-- record the channel's device; catalog NOTIFYs change single channels; 视频在线率 counts a camera
-- that is a channel online only while the channel says ON and its device is online.

CREATE TABLE liandong.devices (
    device_id                 text PRIMARY KEY CHECK (device_id ~ '^[0-9]{20}$'),
    name                      text,
    manufacturer              text,
    model                     text,
    firmware                  text,
    channel_count             integer CHECK (channel_count >= 0),
    info_at                   timestamptz,
    transport                 text CHECK (transport IN ('udp', 'tcp')),
    registered_from           text,
    registered_at             timestamptz,
    expires_at                timestamptz,
    guard                     text CHECK (guard IN ('armed', 'disarmed', 'refused', 'unanswered', 'unreachable')),
    guard_detail              text,
    guard_at                  timestamptz,
    alarm_subscription        text CHECK (alarm_subscription IN ('active', 'refused', 'ended')),
    alarm_subscription_until  timestamptz,
    catalog_subscription      text CHECK (catalog_subscription IN ('active', 'refused', 'ended')),
    catalog_subscription_until timestamptz,
    subscription_detail       text,
    subscription_at           timestamptz,
    updated_at                timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE liandong.devices IS 'Each GB/T 28181 device that registered with liandong-gb28181: what it says of itself (DeviceInfo), how and when it registered, whether the platform armed it and holds its subscriptions. Its online status is liandong.device_status; its channels liandong.device_channels.';
COMMENT ON COLUMN liandong.devices.device_id IS '20-digit GB/T 28181 id of the registering device (a camera, an NVR, a platform).';
COMMENT ON COLUMN liandong.devices.name IS 'DeviceName from its DeviceInfo answer.';
COMMENT ON COLUMN liandong.devices.manufacturer IS 'Manufacturer from its DeviceInfo answer.';
COMMENT ON COLUMN liandong.devices.model IS 'Model from its DeviceInfo answer.';
COMMENT ON COLUMN liandong.devices.firmware IS 'Firmware from its DeviceInfo answer.';
COMMENT ON COLUMN liandong.devices.channel_count IS 'Channel: how many channels it says it has (its catalog lists them: device_channels).';
COMMENT ON COLUMN liandong.devices.info_at IS 'When its latest DeviceInfo answer came.';
COMMENT ON COLUMN liandong.devices.transport IS 'udp or tcp: how it registered.';
COMMENT ON COLUMN liandong.devices.registered_from IS 'The address (host:port) its latest REGISTER came from: requests in its name from elsewhere are refused.';
COMMENT ON COLUMN liandong.devices.registered_at IS 'When it last registered (or refreshed its registration).';
COMMENT ON COLUMN liandong.devices.expires_at IS 'When that registration runs out unless refreshed.';
COMMENT ON COLUMN liandong.devices.guard IS 'armed (it answered SetGuard OK), disarmed (ResetGuard OK), refused (an error or a 4xx/5xx to the command: not asked again until it registers anew), unanswered (no answer within 32 s), unreachable (an operator''s command for a device not registered).';
COMMENT ON COLUMN liandong.devices.guard_detail IS 'What the device answered, in words (e.g. "501 Not Implemented", "Result ERROR").';
COMMENT ON COLUMN liandong.devices.guard_at IS 'When guard took its value.';
COMMENT ON COLUMN liandong.devices.alarm_subscription IS 'active (the device accepted the platform''s alarm SUBSCRIBE until alarm_subscription_until), refused (a 4xx/5xx), ended (the device terminated it).';
COMMENT ON COLUMN liandong.devices.alarm_subscription_until IS 'When the accepted alarm subscription expires (the bridge refreshes it before).';
COMMENT ON COLUMN liandong.devices.catalog_subscription IS 'active, refused or ended: the subscription to catalog changes (NOTIFY with channel status).';
COMMENT ON COLUMN liandong.devices.catalog_subscription_until IS 'When the accepted catalog subscription expires.';
COMMENT ON COLUMN liandong.devices.subscription_detail IS 'What the device answered to the latest SUBSCRIBE, in words.';
COMMENT ON COLUMN liandong.devices.subscription_at IS 'When a subscription''s state last changed.';
COMMENT ON COLUMN liandong.devices.updated_at IS 'When the row last changed.';

-- Records one device fact (the writer calls it in the batch transaction; a repeat, or a fact
-- older than what is stored, changes nothing).
CREATE FUNCTION liandong.record_device_info(p jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_device text := p->>'device_id';
    v_at timestamptz := to_timestamp((p->>'at_s')::float8);
    v_event text := p->'subscription'->>'event';
BEGIN
    INSERT INTO liandong.devices (device_id, updated_at) VALUES (v_device, now()) ON CONFLICT DO NOTHING;
    IF p ? 'registration' THEN
        UPDATE liandong.devices SET transport = p->'registration'->>'transport', registered_from = p->'registration'->>'from',
               registered_at = v_at, expires_at = to_timestamp((p->'registration'->>'expires_s')::float8), updated_at = now()
        WHERE device_id = v_device AND (registered_at IS NULL OR registered_at < v_at);
    END IF;
    IF p ? 'info' THEN
        UPDATE liandong.devices SET name = p->'info'->>'name', manufacturer = p->'info'->>'manufacturer',
               model = p->'info'->>'model', firmware = p->'info'->>'firmware',
               channel_count = (p->'info'->>'channels')::integer, info_at = v_at, updated_at = now()
        WHERE device_id = v_device AND (info_at IS NULL OR info_at < v_at);
    END IF;
    IF p ? 'guard' THEN
        UPDATE liandong.devices SET guard = p->'guard'->>'state', guard_detail = p->'guard'->>'detail', guard_at = v_at, updated_at = now()
        WHERE device_id = v_device AND (guard_at IS NULL OR guard_at < v_at);
    END IF;
    IF v_event = 'alarm' THEN
        UPDATE liandong.devices SET alarm_subscription = p->'subscription'->>'state',
               alarm_subscription_until = to_timestamp((p->'subscription'->>'until_s')::float8),
               subscription_detail = p->'subscription'->>'detail', subscription_at = v_at, updated_at = now()
        WHERE device_id = v_device AND (subscription_at IS NULL OR subscription_at <= v_at);
    ELSIF v_event = 'catalog' THEN
        UPDATE liandong.devices SET catalog_subscription = p->'subscription'->>'state',
               catalog_subscription_until = to_timestamp((p->'subscription'->>'until_s')::float8),
               subscription_detail = p->'subscription'->>'detail', subscription_at = v_at, updated_at = now()
        WHERE device_id = v_device AND (subscription_at IS NULL OR subscription_at <= v_at);
    END IF;
END
$$;
COMMENT ON FUNCTION liandong.record_device_info(jsonb) IS 'Records one device fact {device_id, at_s, registration: {transport, from, expires_s} | info: {name, manufacturer, model, firmware, channels} | guard: {state, detail} | subscription: {event alarm|catalog, state, until_s, detail}} into liandong.devices.';

-- Operators' commands for liandong-gb28181 (liandongd device arm|disarm): the bridge takes each
-- once (taken_at), sends DeviceControl GuardCmd, and the device's answer lands in devices.guard.
CREATE TABLE liandong.device_commands (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id    text NOT NULL CHECK (device_id ~ '^[0-9]{20}$'),
    command      text NOT NULL CHECK (command IN ('arm', 'disarm')),
    requested_by text NOT NULL DEFAULT current_user,
    requested_at timestamptz NOT NULL DEFAULT now(),
    taken_at     timestamptz,
    taken_by     text
);
CREATE INDEX device_commands_waiting_idx ON liandong.device_commands (requested_at) WHERE taken_at IS NULL;
COMMENT ON TABLE liandong.device_commands IS 'Arm/disarm commands of operators (liandongd device arm|disarm) for liandong-gb28181, which takes each once and sends DeviceControl GuardCmd SetGuard or ResetGuard; the device''s answer is devices.guard. A command not taken within 5 minutes is not sent.';
COMMENT ON COLUMN liandong.device_commands.id IS 'Row id.';
COMMENT ON COLUMN liandong.device_commands.device_id IS 'The device to arm or disarm.';
COMMENT ON COLUMN liandong.device_commands.command IS 'arm (SetGuard) or disarm (ResetGuard).';
COMMENT ON COLUMN liandong.device_commands.requested_by IS 'The database role that asked.';
COMMENT ON COLUMN liandong.device_commands.requested_at IS 'When it was asked.';
COMMENT ON COLUMN liandong.device_commands.taken_at IS 'When a bridge took it (NULL: not yet).';
COMMENT ON COLUMN liandong.device_commands.taken_by IS 'The bridge that took it (its gb28181.server_id).';

-- An event placed by a channel records the channel's device (an NVR, a platform).
ALTER TABLE liandong.events ADD COLUMN parent_device_id text;
COMMENT ON COLUMN liandong.events.parent_device_id IS 'When device_id is a channel of a GB/T 28181 catalog: the device that lists it (an NVR, a platform); NULL otherwise.';
-- (Its name depends on the table's history: events_source_crs_check, or ...1 after the move to partitions.)
DO $$
DECLARE c text;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'liandong.events'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%source_crs%' LOOP
        EXECUTE format('ALTER TABLE liandong.events DROP CONSTRAINT %I', c);
    END LOOP;
END
$$;
ALTER TABLE liandong.events ADD CONSTRAINT events_source_crs_check
    CHECK (source_crs IN ('wgs84', 'gcj02', 'bd09', 'camera', 'grid', 'channel'));
COMMENT ON COLUMN liandong.events.source_crs IS 'Where its position came from: wgs84, gcj02 or bd09 (sent, converted to WGS-84), camera (the registered camera''s position), channel (the catalog position of the channel it names, a camera not in the registry), grid (a point inside the report''s grid).';
-- Partitions made from now on copy the comments (LIKE ... INCLUDING COMMENTS); the existing ones get them here.
DO $$
DECLARE part regclass;
DECLARE col text;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'liandong.events'::regclass LOOP
        FOREACH col IN ARRAY ARRAY['parent_device_id', 'source_crs'] LOOP
            EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', part, col,
                           col_description('liandong.events'::regclass,
                                           (SELECT attnum FROM pg_attribute WHERE attrelid = 'liandong.events'::regclass AND attname = col)));
        END LOOP;
    END LOOP;
END;
$$;

-- Catalog changes by NOTIFY: a channel item may carry its Event. ON, OFF, VLOST, DEFECT change
-- only its status (VLOST and DEFECT are OFF); DEL marks it gone; ADD, UPDATE or none: all fields.
-- A change that moves a channel, adds one or marks one gone bumps reference_version (the writer
-- places alarms by channel).
CREATE OR REPLACE FUNCTION liandong.record_device_catalog(p_catalog jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_device text := p_catalog->>'device_id';
    v_at timestamptz := to_timestamp((p_catalog->>'at_s')::float8);
    v_moved integer;
    v_gone integer := 0;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS catalog_listed (
        channel_id text PRIMARY KEY, name text, manufacturer text, model text, civil_code text, address text,
        parent_id text, status text, longitude float8, latitude float8, event text) ON COMMIT DROP;
    TRUNCATE catalog_listed;
    INSERT INTO catalog_listed
    SELECT c.channel_id, c.name, c.manufacturer, c.model, c.civil_code, c.address, c.parent_id,
           CASE WHEN c.event IN ('OFF', 'VLOST', 'DEFECT') THEN 'OFF' WHEN c.event = 'ON' THEN 'ON' ELSE c.status END,
           c.lon, c.lat, coalesce(c.event, 'UPDATE')
    FROM jsonb_to_recordset(p_catalog->'channels') AS c(channel_id text, name text, manufacturer text, model text, civil_code text,
                                                     address text, parent_id text, status text, lon float8, lat float8, event text);
    -- What moves the writer's placing: a channel new, back, moved or gone.
    SELECT count(*) INTO v_moved FROM catalog_listed l
    LEFT JOIN liandong.device_channels d ON d.device_id = v_device AND d.channel_id = l.channel_id
    WHERE l.event <> 'DEL' AND (d.channel_id IS NULL OR d.gone_at IS NOT NULL
           OR (l.event IN ('ADD', 'UPDATE') AND (d.longitude, d.latitude) IS DISTINCT FROM (l.longitude, l.latitude)))
      AND (d.updated_at IS NULL OR d.updated_at < v_at);
    -- History first, against what is stored (an older catalog arriving late changes nothing).
    INSERT INTO liandong.device_channel_history (device_id, channel_id, at, change, status)
    SELECT v_device, l.channel_id, v_at,
           CASE WHEN d.channel_id IS NULL THEN 'listed' WHEN d.gone_at IS NOT NULL THEN 'back' ELSE 'status' END, l.status
    FROM catalog_listed l
    LEFT JOIN liandong.device_channels d ON d.device_id = v_device AND d.channel_id = l.channel_id
    WHERE l.event <> 'DEL' AND (d.channel_id IS NULL OR d.gone_at IS NOT NULL OR d.status IS DISTINCT FROM l.status)
      AND (d.updated_at IS NULL OR d.updated_at < v_at)
    ON CONFLICT DO NOTHING;
    -- Gone: what a complete catalog no longer lists, and what a NOTIFY deletes.
    INSERT INTO liandong.device_channel_history (device_id, channel_id, at, change, status)
    SELECT d.device_id, d.channel_id, v_at, 'gone', d.status
    FROM liandong.device_channels d
    WHERE d.device_id = v_device AND d.gone_at IS NULL AND d.updated_at < v_at
      AND CASE WHEN (p_catalog->>'complete')::boolean
               THEN NOT EXISTS (SELECT 1 FROM catalog_listed l WHERE l.channel_id = d.channel_id AND l.event <> 'DEL')
               ELSE EXISTS (SELECT 1 FROM catalog_listed l WHERE l.channel_id = d.channel_id AND l.event = 'DEL') END
    ON CONFLICT DO NOTHING;
    UPDATE liandong.device_channels d SET gone_at = v_at, updated_at = v_at
    WHERE d.device_id = v_device AND d.gone_at IS NULL AND d.updated_at < v_at
      AND CASE WHEN (p_catalog->>'complete')::boolean
               THEN NOT EXISTS (SELECT 1 FROM catalog_listed l WHERE l.channel_id = d.channel_id AND l.event <> 'DEL')
               ELSE EXISTS (SELECT 1 FROM catalog_listed l WHERE l.channel_id = d.channel_id AND l.event = 'DEL') END;
    GET DIAGNOSTICS v_gone = ROW_COUNT;
    -- A status change alone keeps what the device said of the channel before.
    INSERT INTO liandong.device_channels AS d (device_id, channel_id, name, manufacturer, model, civil_code, address, parent_id,
                                               status, longitude, latitude, updated_at, gone_at)
    SELECT v_device, l.channel_id, l.name, l.manufacturer, l.model, l.civil_code, l.address, l.parent_id, l.status,
           l.longitude, l.latitude, v_at, NULL
    FROM catalog_listed l WHERE l.event IN ('ADD', 'UPDATE')
    ON CONFLICT (device_id, channel_id) DO UPDATE SET
        name = excluded.name, manufacturer = excluded.manufacturer, model = excluded.model, civil_code = excluded.civil_code,
        address = excluded.address, parent_id = excluded.parent_id, status = excluded.status, longitude = excluded.longitude,
        latitude = excluded.latitude, updated_at = excluded.updated_at, gone_at = NULL
    WHERE d.updated_at < excluded.updated_at;
    INSERT INTO liandong.device_channels AS d (device_id, channel_id, status, updated_at, gone_at)
    SELECT v_device, l.channel_id, l.status, v_at, NULL
    FROM catalog_listed l WHERE l.event IN ('ON', 'OFF', 'VLOST', 'DEFECT')
    ON CONFLICT (device_id, channel_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at, gone_at = NULL
    WHERE d.updated_at < excluded.updated_at;
    IF v_moved + v_gone > 0 THEN
        UPDATE liandong.reference_version SET version = version + 1;
    END IF;
END
$$;
COMMENT ON FUNCTION liandong.record_device_catalog(jsonb) IS 'Records one device catalog {device_id, at_s (Unix s), complete, channels: [{channel_id, name, manufacturer, model, civil_code, address, parent_id, status, lon, lat, event}]} into device_channels and its history. event (from a catalog NOTIFY): ON, OFF, VLOST, DEFECT change the status only, DEL marks the channel gone, ADD/UPDATE/absent set every field.';

-- 视频在线率 by the channel rule: a camera of the registry that is a channel of a device (and
-- has no status of its own) is online while its device is online and the channel says ON (or
-- says nothing); its timeline is derived from both histories and read like a camera's own.
CREATE FUNCTION liandong.camera_status_history(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (id bigint, device_id text, status text, at timestamptz)
LANGUAGE sql STABLE AS $$
WITH channel_cameras AS (
    SELECT DISTINCT ON (ch.channel_id) ch.channel_id, ch.device_id AS parent
    FROM liandong.device_channels ch
    JOIN liandong.cameras c ON c.device_id = ch.channel_id
    WHERE NOT EXISTS (SELECT 1 FROM liandong.device_status s WHERE s.device_id = ch.channel_id)
    ORDER BY ch.channel_id, ch.gone_at NULLS FIRST, ch.updated_at DESC
), timeline AS (
    SELECT cc.channel_id, h.at, h.id AS ord, h.status = 'online' AS device_up, NULL::boolean AS channel_on
    FROM channel_cameras cc JOIN liandong.device_status_history h ON h.device_id = cc.parent
    WHERE h.at < p_to
    UNION ALL
    SELECT cc.channel_id, x.at, 0, NULL, x.change <> 'gone' AND coalesce(x.status, 'ON') = 'ON'
    FROM channel_cameras cc JOIN liandong.device_channel_history x ON x.device_id = cc.parent AND x.channel_id = cc.channel_id
    WHERE x.at < p_to
), grouped AS (
    SELECT t.*, count(t.device_up) OVER w AS dg, count(t.channel_on) OVER w AS cg
    FROM timeline t WINDOW w AS (PARTITION BY t.channel_id ORDER BY t.at, t.ord ROWS UNBOUNDED PRECEDING)
), states AS (
    -- The device's latest status and the channel's latest word at each step (none yet: offline; a
    -- channel that never said: ON).
    SELECT g.channel_id, g.at, g.ord,
           coalesce(first_value(g.device_up) OVER (PARTITION BY g.channel_id, g.dg ORDER BY g.at, g.ord), false)
           AND coalesce(first_value(g.channel_on) OVER (PARTITION BY g.channel_id, g.cg ORDER BY g.at, g.ord), true) AS up
    FROM grouped g
), changes AS (
    SELECT s.*, lag(s.up) OVER (PARTITION BY s.channel_id ORDER BY s.at, s.ord) AS before FROM states s
), channel_rows AS (
    SELECT -row_number() OVER (ORDER BY c.channel_id, c.at, c.ord) AS id, c.channel_id AS device_id,
           CASE WHEN c.up THEN 'online' ELSE 'offline' END AS status, c.at
    FROM changes c WHERE c.before IS DISTINCT FROM c.up
)
SELECT r.* FROM channel_rows r WHERE r.at >= p_from
UNION ALL
(SELECT DISTINCT ON (r.device_id) r.* FROM channel_rows r WHERE r.at < p_from ORDER BY r.device_id, r.at DESC, r.id DESC)
UNION ALL
-- Every other device as it reported: the period's rows, and each camera's last row before it.
(SELECT h.id, h.device_id, h.status, h.at FROM liandong.device_status_history h
 WHERE h.at >= p_from AND h.at < p_to AND NOT EXISTS (SELECT 1 FROM channel_cameras cc WHERE cc.channel_id = h.device_id))
UNION ALL
SELECT b.id, b.device_id, b.status, b.at FROM liandong.cameras c
CROSS JOIN LATERAL (SELECT x.id, x.device_id, x.status, x.at FROM liandong.device_status_history x
                    WHERE x.device_id = c.device_id AND x.at < p_from
                    ORDER BY x.at DESC, x.id DESC LIMIT 1) b
WHERE NOT EXISTS (SELECT 1 FROM channel_cameras cc WHERE cc.channel_id = c.device_id)
$$;
COMMENT ON FUNCTION liandong.camera_status_history(timestamptz, timestamptz) IS 'Status changes in [p_from, p_to) of every device, and each camera''s last change before p_from (its status when the period began); a camera that is a catalog channel (and reports no status of its own) is online only while its device is online and the channel says ON: what camera_online_rate measures.';

CREATE OR REPLACE FUNCTION liandong.camera_online_rate(p_from date, p_to date)
RETURNS TABLE (division_code text, division_name text, level text, day date, cameras bigint, cameras_online bigint, online_pct numeric)
LANGUAGE sql STABLE AS $$
WITH days AS (
    SELECT day::date AS day,
           day::timestamp AT TIME ZONE 'Asia/Shanghai' AS day_start,
           least((day::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai', now()) AS day_end
    FROM generate_series(p_from, least(p_to, (now() AT TIME ZONE 'Asia/Shanghai')::date), interval '1 day') AS day
), history AS (
    -- The period's rows, and each camera's last row before it (its status when the period began).
    SELECT * FROM liandong.camera_status_history(p_from::timestamp AT TIME ZONE 'Asia/Shanghai',
                                                 (p_to + 1)::timestamp AT TIME ZONE 'Asia/Shanghai')
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
FROM per_camera p
CROSS JOIN LATERAL (SELECT DISTINCT unnest(ARRAY[p.division_code, left(p.division_code, 9), left(p.division_code, 6)]) AS code) a
JOIN liandong.divisions v ON v.code = a.code
GROUP BY v.code, v.name, v.level, p.day
$$;
COMMENT ON FUNCTION liandong.camera_online_rate(date, date) IS '视频在线率 per division for the days [p_from, p_to] (China Standard Time): SELECT * FROM liandong.camera_online_rate(''2026-11-23'', ''2026-11-29''). A camera that is a catalog channel is online while its device is online and the channel says ON. Cheaper than the view for a period.';

ALTER TABLE liandong.devices ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.devices FOR SELECT TO liandong_operator
    USING (EXISTS (SELECT 1 FROM liandong.cameras c WHERE c.device_id = devices.device_id)
           OR '%' IN (SELECT liandong.operator_patterns()));
ALTER TABLE liandong.device_commands ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.device_commands FOR SELECT TO liandong_operator
    USING ('%' IN (SELECT liandong.operator_patterns()));
GRANT SELECT ON liandong.devices, liandong.device_commands TO liandong_operator;
GRANT EXECUTE ON FUNCTION liandong.camera_status_history(timestamptz, timestamptz) TO liandong_operator;
