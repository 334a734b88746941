-- GB/T 28181 catalogs: the channels an NVR or a platform lists in its answer to liandong-gb28181's
-- Catalog query (liandong.device_catalog.v1, topic catalog), with the history of their status.
-- A channel no longer listed is marked gone, never deleted.

CREATE TABLE liandong.device_channels (
    device_id    text NOT NULL CHECK (device_id ~ '^[0-9]{20}$'),
    channel_id   text NOT NULL CHECK (channel_id ~ '^[0-9]{20}$'),
    name         text,
    manufacturer text,
    model        text,
    civil_code   text,
    address      text,
    parent_id    text,
    status       text CHECK (status IN ('ON', 'OFF')),
    longitude    double precision CHECK (longitude BETWEEN -180 AND 180),
    latitude     double precision CHECK (latitude BETWEEN -90 AND 90),
    updated_at   timestamptz NOT NULL,
    gone_at      timestamptz,
    PRIMARY KEY (device_id, channel_id),
    CHECK ((longitude IS NULL) = (latitude IS NULL))
);
CREATE INDEX device_channels_channel_idx ON liandong.device_channels (channel_id);
COMMENT ON TABLE liandong.device_channels IS 'Every channel a GB/T 28181 device (an NVR, a platform) listed in its Catalog: one row per device and channel, updated by each catalog; a channel a complete catalog no longer lists keeps its row with gone_at set.';
COMMENT ON COLUMN liandong.device_channels.device_id IS 'The device that listed it (20-digit GB/T 28181 id).';
COMMENT ON COLUMN liandong.device_channels.channel_id IS 'The channel (its alarms name it as DeviceID): 20-digit id.';
COMMENT ON COLUMN liandong.device_channels.name IS 'Name as the device gives it (often the camera''s place).';
COMMENT ON COLUMN liandong.device_channels.manufacturer IS 'Manufacturer as the device gives it.';
COMMENT ON COLUMN liandong.device_channels.model IS 'Model as the device gives it.';
COMMENT ON COLUMN liandong.device_channels.address IS 'Address as the device gives it.';
COMMENT ON COLUMN liandong.device_channels.latitude IS 'Latitude (WGS-84) when the device gives a position that is not zero.';
COMMENT ON COLUMN liandong.device_channels.civil_code IS 'CivilCode as the device gives it (an administrative division code, often the county).';
COMMENT ON COLUMN liandong.device_channels.parent_id IS 'ParentID: the device or the group the channel hangs under (the last element of a path).';
COMMENT ON COLUMN liandong.device_channels.status IS 'ON or OFF as the device says in its latest catalog (NULL: it did not say). A channel is online only when it says ON and its device is online.';
COMMENT ON COLUMN liandong.device_channels.longitude IS 'Longitude (WGS-84) when the device gives a position that is not zero.';
COMMENT ON COLUMN liandong.device_channels.updated_at IS 'When the latest catalog listing it was complete (or its time ran out).';
COMMENT ON COLUMN liandong.device_channels.gone_at IS 'When a complete catalog of its device first no longer listed it (NULL: listed).';

CREATE TABLE liandong.device_channel_history (
    device_id  text NOT NULL,
    channel_id text NOT NULL,
    at         timestamptz NOT NULL,
    change     text NOT NULL CHECK (change IN ('listed', 'status', 'gone', 'back')),
    status     text CHECK (status IN ('ON', 'OFF')),
    PRIMARY KEY (device_id, channel_id, at, change)
);
COMMENT ON COLUMN liandong.device_channel_history.device_id IS 'The device whose catalog it was.';
COMMENT ON COLUMN liandong.device_channel_history.channel_id IS 'The channel.';
COMMENT ON COLUMN liandong.device_channel_history.at IS 'When the catalog that showed the change was complete (or its time ran out).';
COMMENT ON COLUMN liandong.device_channel_history.change IS 'listed (first seen), status (ON/OFF changed), gone (no longer listed by a complete catalog), back (listed again after gone).';
COMMENT ON COLUMN liandong.device_channel_history.status IS 'ON or OFF as listed then (the last known status for gone).';
COMMENT ON TABLE liandong.device_channel_history IS 'Each change of a catalog channel: listed (first seen), status (ON/OFF changed), gone (no longer listed by a complete catalog), back (listed again).';

-- Records one catalog (the writer calls it in the batch transaction; a repeated catalog has one effect).
CREATE FUNCTION liandong.record_device_catalog(p_catalog jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_device text := p_catalog->>'device_id';
    v_at timestamptz := to_timestamp((p_catalog->>'at_s')::float8);
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS catalog_listed (
        channel_id text PRIMARY KEY, name text, manufacturer text, model text, civil_code text, address text,
        parent_id text, status text, longitude float8, latitude float8) ON COMMIT DROP;
    TRUNCATE catalog_listed;
    INSERT INTO catalog_listed
    SELECT c.channel_id, c.name, c.manufacturer, c.model, c.civil_code, c.address, c.parent_id, c.status, c.lon, c.lat
    FROM jsonb_to_recordset(p_catalog->'channels') AS c(channel_id text, name text, manufacturer text, model text, civil_code text,
                                                     address text, parent_id text, status text, lon float8, lat float8);
    -- History first, against what is stored (an older catalog arriving late changes nothing).
    INSERT INTO liandong.device_channel_history (device_id, channel_id, at, change, status)
    SELECT v_device, l.channel_id, v_at,
           CASE WHEN d.channel_id IS NULL THEN 'listed' WHEN d.gone_at IS NOT NULL THEN 'back' ELSE 'status' END, l.status
    FROM catalog_listed l
    LEFT JOIN liandong.device_channels d ON d.device_id = v_device AND d.channel_id = l.channel_id
    WHERE (d.channel_id IS NULL OR d.gone_at IS NOT NULL OR d.status IS DISTINCT FROM l.status)
      AND (d.updated_at IS NULL OR d.updated_at < v_at)
    ON CONFLICT DO NOTHING;
    IF (p_catalog->>'complete')::boolean THEN
        INSERT INTO liandong.device_channel_history (device_id, channel_id, at, change, status)
        SELECT d.device_id, d.channel_id, v_at, 'gone', d.status
        FROM liandong.device_channels d
        WHERE d.device_id = v_device AND d.gone_at IS NULL AND d.updated_at < v_at
          AND NOT EXISTS (SELECT 1 FROM catalog_listed l WHERE l.channel_id = d.channel_id)
        ON CONFLICT DO NOTHING;
        UPDATE liandong.device_channels d SET gone_at = v_at
        WHERE d.device_id = v_device AND d.gone_at IS NULL AND d.updated_at < v_at
          AND NOT EXISTS (SELECT 1 FROM catalog_listed l WHERE l.channel_id = d.channel_id);
    END IF;
    INSERT INTO liandong.device_channels AS d (device_id, channel_id, name, manufacturer, model, civil_code, address, parent_id,
                                               status, longitude, latitude, updated_at, gone_at)
    SELECT v_device, l.channel_id, l.name, l.manufacturer, l.model, l.civil_code, l.address, l.parent_id, l.status,
           l.longitude, l.latitude, v_at, NULL
    FROM catalog_listed l
    ON CONFLICT (device_id, channel_id) DO UPDATE SET
        name = excluded.name, manufacturer = excluded.manufacturer, model = excluded.model, civil_code = excluded.civil_code,
        address = excluded.address, parent_id = excluded.parent_id, status = excluded.status, longitude = excluded.longitude,
        latitude = excluded.latitude, updated_at = excluded.updated_at, gone_at = NULL
    WHERE d.updated_at < excluded.updated_at;
END
$$;
COMMENT ON FUNCTION liandong.record_device_catalog(jsonb) IS 'Records one device catalog {device_id, at_s (Unix s), complete, channels: [{channel_id, name, manufacturer, model, civil_code, address, parent_id, status, lon, lat}]} into device_channels and its history.';

CREATE VIEW liandong.channels_without_camera AS
SELECT d.device_id, d.channel_id, d.name, d.status, d.longitude, d.latitude, d.civil_code, d.address, d.updated_at,
       (SELECT g.grid_code FROM liandong.grids g
        WHERE d.longitude IS NOT NULL AND g.valid_to IS NULL
          AND ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(d.longitude, d.latitude), 4326)) LIMIT 1) AS grid_code
FROM liandong.device_channels d
WHERE d.gone_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM liandong.cameras c WHERE c.device_id = d.channel_id AND c.valid_to IS NULL);
COMMENT ON VIEW liandong.channels_without_camera IS 'Catalog channels (not gone) that are not cameras of the registry, with the grid their position lies in (NULL: no position, or outside every grid): what liandongd camera sync --from-catalog would add.';

COMMENT ON COLUMN liandong.channels_without_camera.device_id IS 'The device that lists the channel.';
COMMENT ON COLUMN liandong.channels_without_camera.channel_id IS 'The channel, not a camera of liandong.cameras.';
COMMENT ON COLUMN liandong.channels_without_camera.name IS 'Its name as the device gives it.';
COMMENT ON COLUMN liandong.channels_without_camera.status IS 'ON or OFF as the device says.';
COMMENT ON COLUMN liandong.channels_without_camera.longitude IS 'Its longitude (WGS-84), when the device gives one.';
COMMENT ON COLUMN liandong.channels_without_camera.latitude IS 'Its latitude (WGS-84), when the device gives one.';
COMMENT ON COLUMN liandong.channels_without_camera.civil_code IS 'CivilCode as the device gives it.';
COMMENT ON COLUMN liandong.channels_without_camera.address IS 'Address as the device gives it.';
COMMENT ON COLUMN liandong.channels_without_camera.updated_at IS 'When its latest catalog was complete.';
COMMENT ON COLUMN liandong.channels_without_camera.grid_code IS 'The grid its position lies in (NULL: no position, or outside every grid): where camera sync would put it.';

ALTER TABLE liandong.device_channels ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.device_channels FOR SELECT TO liandong_operator
    USING (EXISTS (SELECT 1 FROM liandong.cameras c WHERE c.device_id = device_channels.channel_id)
           OR '%' IN (SELECT liandong.operator_patterns()));
ALTER TABLE liandong.device_channel_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.device_channel_history FOR SELECT TO liandong_operator
    USING (EXISTS (SELECT 1 FROM liandong.cameras c WHERE c.device_id = device_channel_history.channel_id)
           OR '%' IN (SELECT liandong.operator_patterns()));
GRANT SELECT ON liandong.device_channels, liandong.device_channel_history, liandong.channels_without_camera TO liandong_operator;
