-- Liandong base schema: reference data (divisions, grids, workers, cameras), events,
-- incidents, tasks, the feed outbox and dead letters. Applied by `liandongd migrate`.
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE SCHEMA IF NOT EXISTS liandong;
COMMENT ON SCHEMA liandong IS 'Liandong (联动): Sharp Eyes alerts and grid reports correlated into joint dispatch tasks.';

-- ---------------------------------------------------------------- reference data
CREATE TABLE liandong.divisions (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{6}([0-9]{3}([0-9]{3})?)?$'),
    name        text NOT NULL CHECK (name <> ''),
    level       text NOT NULL CHECK (level IN ('county', 'township', 'village')),
    kind        text NOT NULL,
    parent_code text REFERENCES liandong.divisions (code),
    county_code text NOT NULL GENERATED ALWAYS AS (left(code, 6)) STORED,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((level = 'county') = (parent_code IS NULL)),
    CHECK (length(code) = CASE level WHEN 'county' THEN 6 WHEN 'township' THEN 9 ELSE 12 END)
);
CREATE INDEX divisions_parent_idx ON liandong.divisions (parent_code);
COMMENT ON TABLE liandong.divisions IS 'Administrative divisions: county (6-digit code), township (9: 乡/镇/街道), village (12: 村/社区).';
COMMENT ON COLUMN liandong.divisions.code IS 'GB/T 2260 statistical division code: 6 county, 9 township, 12 village digits.';
COMMENT ON COLUMN liandong.divisions.name IS 'Official name, e.g. 渊泉镇.';
COMMENT ON COLUMN liandong.divisions.level IS 'Tier in the escalation ladder: county, township or village.';
COMMENT ON COLUMN liandong.divisions.kind IS 'Kind as imported: county, town (镇), township (乡), street (街道), village (村), community (社区).';
COMMENT ON COLUMN liandong.divisions.parent_code IS 'The division one tier up; NULL for the county.';
COMMENT ON COLUMN liandong.divisions.county_code IS 'Distribution key: the 6-digit county code this row belongs to.';
COMMENT ON COLUMN liandong.divisions.updated_at IS 'Last import that changed or confirmed this row.';

CREATE TABLE liandong.grids (
    grid_code    text PRIMARY KEY CHECK (grid_code ~ '^[0-9]{15}$'),
    name         text NOT NULL,
    village_code text NOT NULL REFERENCES liandong.divisions (code),
    geom         geometry(MultiPolygon, 4326) NOT NULL CHECK (ST_IsValid(geom)),
    county_code  text NOT NULL GENERATED ALWAYS AS (left(grid_code, 6)) STORED,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (left(grid_code, 12) = village_code)
);
CREATE INDEX grids_geom_idx ON liandong.grids USING gist (geom);
CREATE INDEX grids_village_idx ON liandong.grids (village_code);
COMMENT ON TABLE liandong.grids IS 'Basic grids (基础网格): the smallest unit, one grid worker each, under a village. Events are assigned the grid whose polygon covers them.';
COMMENT ON COLUMN liandong.grids.grid_code IS '15 digits: the 12-digit village code plus a 3-digit grid number (Liandong convention).';
COMMENT ON COLUMN liandong.grids.name IS 'Grid name as imported.';
COMMENT ON COLUMN liandong.grids.village_code IS 'The village or community the grid belongs to.';
COMMENT ON COLUMN liandong.grids.geom IS 'Grid boundary, WGS-84 (SRID 4326).';
COMMENT ON COLUMN liandong.grids.county_code IS 'Distribution key: the 6-digit county code.';
COMMENT ON COLUMN liandong.grids.updated_at IS 'Last import that changed or confirmed this row.';

CREATE TABLE liandong.grid_workers (
    worker_id   text PRIMARY KEY CHECK (worker_id <> ''),
    name        text NOT NULL,
    grid_code   text NOT NULL REFERENCES liandong.grids (grid_code),
    county_code text NOT NULL GENERATED ALWAYS AS (left(grid_code, 6)) STORED,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX grid_workers_grid_idx ON liandong.grid_workers (grid_code);
COMMENT ON TABLE liandong.grid_workers IS 'Grid workers (网格员), one per grid; receive verify tasks for their grid.';
COMMENT ON COLUMN liandong.grid_workers.worker_id IS 'Worker id as used by the grid-worker app (report.worker_id).';
COMMENT ON COLUMN liandong.grid_workers.name IS 'Worker name.';
COMMENT ON COLUMN liandong.grid_workers.grid_code IS 'The grid this worker is responsible for.';
COMMENT ON COLUMN liandong.grid_workers.county_code IS 'Distribution key: the 6-digit county code.';
COMMENT ON COLUMN liandong.grid_workers.updated_at IS 'Last import that changed or confirmed this row.';

CREATE TABLE liandong.cameras (
    device_id   text PRIMARY KEY CHECK (device_id ~ '^[0-9]{20}$'),
    name        text NOT NULL,
    geom        geometry(Point, 4326) NOT NULL,
    source_crs  text NOT NULL DEFAULT 'wgs84' CHECK (source_crs IN ('wgs84', 'gcj02', 'bd09')),
    grid_code   text REFERENCES liandong.grids (grid_code),
    county_code text NOT NULL GENERATED ALWAYS AS (left(device_id, 6)) STORED,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cameras_geom_idx ON liandong.cameras USING gist (geom);
COMMENT ON TABLE liandong.cameras IS 'Registered Sharp Eyes cameras (GB/T 28181 channels); an alert without lon/lat is placed at its camera.';
COMMENT ON COLUMN liandong.cameras.device_id IS '20-digit GB/T 28181 device id: centre code (8), industry (2), type (3), network (1), serial (6).';
COMMENT ON COLUMN liandong.cameras.name IS 'Camera name as imported.';
COMMENT ON COLUMN liandong.cameras.geom IS 'Camera position, converted to WGS-84 (SRID 4326) at import.';
COMMENT ON COLUMN liandong.cameras.source_crs IS 'Coordinate system of the imported position before conversion.';
COMMENT ON COLUMN liandong.cameras.grid_code IS 'Grid covering the camera (NULL when outside every grid).';
COMMENT ON COLUMN liandong.cameras.county_code IS 'Distribution key: the 6-digit county code (device id positions 1-6).';
COMMENT ON COLUMN liandong.cameras.updated_at IS 'Last import that changed or confirmed this row.';

-- ---------------------------------------------------------------- incidents and events
CREATE TABLE liandong.incidents (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    category          text NOT NULL,
    status            text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    priority          smallint NOT NULL CHECK (priority BETWEEN 1 AND 4),
    geog              geography(Point, 4326) NOT NULL,
    grid_code         text NOT NULL REFERENCES liandong.grids (grid_code),
    village_code      text NOT NULL REFERENCES liandong.divisions (code),
    county_code       text NOT NULL GENERATED ALWAYS AS (left(grid_code, 6)) STORED,
    first_observed_at timestamptz NOT NULL,
    last_observed_at  timestamptz NOT NULL,
    alert_count       integer NOT NULL DEFAULT 0,
    report_count      integer NOT NULL DEFAULT 0,
    opened_at         timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    closed_at         timestamptz
);
CREATE INDEX incidents_open_idx ON liandong.incidents (category, last_observed_at) WHERE status = 'open';
COMMENT ON TABLE liandong.incidents IS 'One real-world situation: camera alerts and grid reports of one category close in space and observed time.';
COMMENT ON COLUMN liandong.incidents.id IS 'Incident id (incident_id on the wire).';
COMMENT ON COLUMN liandong.incidents.category IS 'Incident category from the category map (e.g. intrusion, crowd, fire).';
COMMENT ON COLUMN liandong.incidents.status IS 'open while it accepts evidence and tasks; closed once handled.';
COMMENT ON COLUMN liandong.incidents.priority IS 'Most urgent priority/severity among its events: 1 most urgent .. 4 least.';
COMMENT ON COLUMN liandong.incidents.geog IS 'Position of the first event (WGS-84).';
COMMENT ON COLUMN liandong.incidents.grid_code IS 'Grid of the first event.';
COMMENT ON COLUMN liandong.incidents.village_code IS 'Village of that grid.';
COMMENT ON COLUMN liandong.incidents.county_code IS 'Distribution key: the 6-digit county code.';
COMMENT ON COLUMN liandong.incidents.first_observed_at IS 'Earliest observed time among its events.';
COMMENT ON COLUMN liandong.incidents.last_observed_at IS 'Latest observed time among its events.';
COMMENT ON COLUMN liandong.incidents.alert_count IS 'Camera alerts joined to it.';
COMMENT ON COLUMN liandong.incidents.report_count IS 'Grid reports joined to it.';
COMMENT ON COLUMN liandong.incidents.opened_at IS 'When Liandong opened it (arrival, not observation).';
COMMENT ON COLUMN liandong.incidents.updated_at IS 'Last time evidence or state changed.';
COMMENT ON COLUMN liandong.incidents.closed_at IS 'When it was closed.';

CREATE TABLE liandong.events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    grid_code    text NOT NULL REFERENCES liandong.grids (grid_code),
    village_code text NOT NULL REFERENCES liandong.divisions (code),
    county_code  text NOT NULL GENERATED ALWAYS AS (left(grid_code, 6)) STORED,
    incident_id  uuid NOT NULL REFERENCES liandong.incidents (id),
    payload      jsonb NOT NULL,
    UNIQUE (source, source_id)
);
CREATE INDEX events_correlation_idx ON liandong.events USING gist (category, geog, observed_at);
CREATE INDEX events_incident_idx ON liandong.events (incident_id);
COMMENT ON TABLE liandong.events IS 'Every accepted camera alert and grid report, once (deduplicated by source and id).';
COMMENT ON COLUMN liandong.events.id IS 'Internal event number.';
COMMENT ON COLUMN liandong.events.source IS 'alert (camera, via gateway) or report (grid worker).';
COMMENT ON COLUMN liandong.events.source_id IS 'alert_id or report_id from the message; unique per source.';
COMMENT ON COLUMN liandong.events.gateway_id IS 'Publishing gateway of an alert.';
COMMENT ON COLUMN liandong.events.gateway_seq IS 'Per-gateway sequence number of an alert, when sent.';
COMMENT ON COLUMN liandong.events.device_id IS 'GB/T 28181 device id of the alarming camera channel.';
COMMENT ON COLUMN liandong.events.worker_id IS 'Grid worker who filed a report.';
COMMENT ON COLUMN liandong.events.category IS 'Incident category after the category map.';
COMMENT ON COLUMN liandong.events.priority IS 'Alert priority or report severity: 1 most urgent .. 4 least.';
COMMENT ON COLUMN liandong.events.observed_at IS 'When it was observed (what correlation uses), not when it arrived.';
COMMENT ON COLUMN liandong.events.received_at IS 'When Liandong stored it.';
COMMENT ON COLUMN liandong.events.geog IS 'Position in WGS-84 after any GCJ-02/BD-09 conversion.';
COMMENT ON COLUMN liandong.events.source_crs IS 'Where the position came from: wgs84/gcj02/bd09 as sent, camera (registered position) or grid (grid centre).';
COMMENT ON COLUMN liandong.events.grid_code IS 'Grid whose polygon covers the position.';
COMMENT ON COLUMN liandong.events.village_code IS 'Village of that grid.';
COMMENT ON COLUMN liandong.events.county_code IS 'Distribution key: the 6-digit county code.';
COMMENT ON COLUMN liandong.events.incident_id IS 'Incident the event was correlated into.';
COMMENT ON COLUMN liandong.events.payload IS 'The message as received (JSON).';

-- ---------------------------------------------------------------- tasks and feed
CREATE TABLE liandong.tasks (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    incident_id   uuid NOT NULL UNIQUE REFERENCES liandong.incidents (id),
    kind          text NOT NULL CHECK (kind IN ('verify', 'dispatch', 'joint_dispatch')),
    state         text NOT NULL DEFAULT 'open',
    tier          text NOT NULL CHECK (tier IN ('village', 'township', 'county')),
    division_code text NOT NULL REFERENCES liandong.divisions (code),
    grid_code     text NOT NULL REFERENCES liandong.grids (grid_code),
    category      text NOT NULL,
    priority      smallint NOT NULL CHECK (priority BETWEEN 1 AND 4),
    departments   text[] NOT NULL DEFAULT '{}',
    respond_by    timestamptz NOT NULL,
    resolve_by    timestamptz NOT NULL,
    county_code   text NOT NULL GENERATED ALWAYS AS (left(grid_code, 6)) STORED,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_division_idx ON liandong.tasks (division_code);
COMMENT ON TABLE liandong.tasks IS 'One task per incident: verify (camera only), dispatch (serious report) or joint_dispatch (camera and report agree); a verify or dispatch task becomes joint_dispatch when both kinds of evidence arrive.';
COMMENT ON COLUMN liandong.tasks.id IS 'Task id (task_id on the wire).';
COMMENT ON COLUMN liandong.tasks.incident_id IS 'The incident; unique, so an incident never gets a second task.';
COMMENT ON COLUMN liandong.tasks.kind IS 'Current kind: verify, dispatch or joint_dispatch.';
COMMENT ON COLUMN liandong.tasks.state IS 'Lifecycle state (open until dispatchers answer).';
COMMENT ON COLUMN liandong.tasks.tier IS 'Tier of the responsible unit: village, township or county.';
COMMENT ON COLUMN liandong.tasks.division_code IS 'Responsible division; the feed topic is task.<this code> (a verify task uses its grid code).';
COMMENT ON COLUMN liandong.tasks.grid_code IS 'Grid of the incident.';
COMMENT ON COLUMN liandong.tasks.category IS 'Incident category.';
COMMENT ON COLUMN liandong.tasks.priority IS '1 most urgent .. 4 least.';
COMMENT ON COLUMN liandong.tasks.departments IS 'Departments to involve (police, urban_management, fire, ...).';
COMMENT ON COLUMN liandong.tasks.respond_by IS 'Deadline to accept, from the per-tier, per-priority SLA.';
COMMENT ON COLUMN liandong.tasks.resolve_by IS 'Deadline to resolve.';
COMMENT ON COLUMN liandong.tasks.county_code IS 'Distribution key: the 6-digit county code.';
COMMENT ON COLUMN liandong.tasks.created_at IS 'When the task was created.';
COMMENT ON COLUMN liandong.tasks.updated_at IS 'Last change.';

CREATE TABLE liandong.feed (
    seq          bigint PRIMARY KEY,
    message_id   uuid NOT NULL UNIQUE,
    topic        text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('verify', 'dispatch', 'joint_dispatch', 'escalation', 'update')),
    task_id      uuid NOT NULL REFERENCES liandong.tasks (id),
    body         jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX feed_unpublished_idx ON liandong.feed (seq) WHERE published_at IS NULL;
CREATE INDEX feed_task_idx ON liandong.feed (task_id);
COMMENT ON TABLE liandong.feed IS 'Outbox of every task message, written in the same transaction as the change it announces and published after commit. seq is global and gap-free.';
COMMENT ON COLUMN liandong.feed.seq IS 'Global, increasing, gap-free message number (seq on the wire).';
COMMENT ON COLUMN liandong.feed.message_id IS 'Message id; a republished message keeps it.';
COMMENT ON COLUMN liandong.feed.topic IS 'ZeroMQ topic: task.<division code> (a verify task: task.<grid code>).';
COMMENT ON COLUMN liandong.feed.kind IS 'verify, dispatch, joint_dispatch, escalation or update.';
COMMENT ON COLUMN liandong.feed.task_id IS 'The task announced.';
COMMENT ON COLUMN liandong.feed.body IS 'The v1 task message exactly as published.';
COMMENT ON COLUMN liandong.feed.created_at IS 'Commit time of the change.';
COMMENT ON COLUMN liandong.feed.published_at IS 'When it went out on the PUB socket (NULL: not yet).';

CREATE TABLE liandong.feed_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq       bigint NOT NULL DEFAULT 0
);
INSERT INTO liandong.feed_head DEFAULT VALUES;
COMMENT ON TABLE liandong.feed_head IS 'The last feed seq handed out. Incremented inside the writing transaction, so committed seqs have no holes.';
COMMENT ON COLUMN liandong.feed_head.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN liandong.feed_head.seq IS 'Highest feed seq committed.';

-- ---------------------------------------------------------------- dead letters
CREATE TABLE liandong.rejected_messages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    endpoint    text,
    topic       bytea,
    raw         bytea NOT NULL,
    raw_size    integer NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL
);
CREATE INDEX rejected_messages_reason_idx ON liandong.rejected_messages (reason, received_at);
COMMENT ON TABLE liandong.rejected_messages IS 'Dead letters: every message that could not be accepted, with its raw bytes and why. Nothing is silently dropped.';
COMMENT ON COLUMN liandong.rejected_messages.id IS 'Dead-letter number.';
COMMENT ON COLUMN liandong.rejected_messages.received_at IS 'When it arrived.';
COMMENT ON COLUMN liandong.rejected_messages.endpoint IS 'Socket it arrived on (ingest.sub, ...).';
COMMENT ON COLUMN liandong.rejected_messages.topic IS 'Raw topic frame, when there was one.';
COMMENT ON COLUMN liandong.rejected_messages.raw IS 'Raw body bytes (all frames after the topic, joined), truncated above ingest.max_dead_letter_bytes.';
COMMENT ON COLUMN liandong.rejected_messages.raw_size IS 'Original size of the body in bytes, before any truncation.';
COMMENT ON COLUMN liandong.rejected_messages.reason IS 'Machine-readable reason code (e.g. malformed_json, missing_field, unknown_device, outside_area).';
COMMENT ON COLUMN liandong.rejected_messages.detail IS 'Human-readable explanation.';
