-- What the operator guide's queries need, as views liandong_operator may read (it reads views,
-- never tables), and dead letters shown as text whatever their bytes: convert_from(raw, 'UTF8')
-- fails on a 0x00 byte or any invalid sequence, which is exactly what dead letters hold.
CREATE FUNCTION liandong.raw_text(raw bytea) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN convert_from(raw, 'UTF8');
EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character OR invalid_parameter_value THEN
    RETURN encode(raw, 'escape');
END;
$$;
COMMENT ON FUNCTION liandong.raw_text(bytea) IS 'Bytes as text: UTF-8 when they are valid UTF-8 without NUL, else PostgreSQL''s escape format (\000, \377 for bytes that are not text). Never fails.';

CREATE VIEW liandong.dead_letters AS
SELECT id, received_at, endpoint, liandong.raw_text(topic) AS topic, reason, detail, raw_size,
       liandong.raw_text(raw) AS body
FROM liandong.rejected_messages;
COMMENT ON VIEW liandong.dead_letters IS 'Dead letters (rejected_messages) readable by operators: topic and body as text, binary bytes escaped.';
COMMENT ON COLUMN liandong.dead_letters.id IS 'Dead-letter number.';
COMMENT ON COLUMN liandong.dead_letters.received_at IS 'When it arrived.';
COMMENT ON COLUMN liandong.dead_letters.endpoint IS 'Socket it arrived on (ingest.sub, ingest.ack).';
COMMENT ON COLUMN liandong.dead_letters.topic IS 'Topic frame as text (escaped when not UTF-8).';
COMMENT ON COLUMN liandong.dead_letters.reason IS 'Reason code (see deploy/OPERATIONS.md).';
COMMENT ON COLUMN liandong.dead_letters.detail IS 'What exactly was wrong.';
COMMENT ON COLUMN liandong.dead_letters.raw_size IS 'Size of the message as received, in bytes.';
COMMENT ON COLUMN liandong.dead_letters.body IS 'The kept bytes as text (escaped when not UTF-8; at most ingest.max_dead_letter_bytes).';

CREATE VIEW liandong.event_log AS
SELECT e.id, e.source, e.source_id, e.gateway_id, e.device_id, e.worker_id, e.category, e.priority,
       e.observed_at, e.received_at, e.grid_code, e.village_code, left(e.village_code, 9) AS township_code,
       e.county_code, e.incident_id, e.geog::geometry AS geom
FROM liandong.events e;
COMMENT ON VIEW liandong.event_log IS 'Accepted events without their payload, with the township code (QGIS: geom is the event point, EPSG:4326).';
COMMENT ON COLUMN liandong.event_log.id IS 'Internal event number.';
COMMENT ON COLUMN liandong.event_log.source IS 'alert or report.';
COMMENT ON COLUMN liandong.event_log.source_id IS 'alert_id or report_id.';
COMMENT ON COLUMN liandong.event_log.gateway_id IS 'Publishing gateway of an alert.';
COMMENT ON COLUMN liandong.event_log.device_id IS 'Camera of an alert.';
COMMENT ON COLUMN liandong.event_log.worker_id IS 'Grid worker of a report.';
COMMENT ON COLUMN liandong.event_log.category IS 'Incident category.';
COMMENT ON COLUMN liandong.event_log.priority IS '1 (most urgent) ... 4.';
COMMENT ON COLUMN liandong.event_log.observed_at IS 'When it happened (observed time).';
COMMENT ON COLUMN liandong.event_log.received_at IS 'When liandongd received it.';
COMMENT ON COLUMN liandong.event_log.grid_code IS 'Grid it happened in.';
COMMENT ON COLUMN liandong.event_log.village_code IS 'Village of the grid.';
COMMENT ON COLUMN liandong.event_log.township_code IS 'Township of the village (first 9 digits).';
COMMENT ON COLUMN liandong.event_log.county_code IS 'County (first 6 digits).';
COMMENT ON COLUMN liandong.event_log.incident_id IS 'Incident it belongs to.';
COMMENT ON COLUMN liandong.event_log.geom IS 'Position, WGS-84 (EPSG:4326).';

CREATE VIEW liandong.task_timeline AS
SELECT h.task_id, h.id AS step, h.at, h.event, h.tier, h.division_code, d.name AS division_name,
       h.from_division_code, h.respond_by, h.resolve_by, h.actor, h.note
FROM liandong.task_history h
JOIN liandong.divisions d ON d.code = h.division_code;
COMMENT ON VIEW liandong.task_timeline IS 'Every step of every task (created, upgraded, accepted, escalated, ...), for the story of one task: WHERE task_id = ... ORDER BY step.';
COMMENT ON COLUMN liandong.task_timeline.task_id IS 'The task.';
COMMENT ON COLUMN liandong.task_timeline.step IS 'Order of the steps (increasing).';
COMMENT ON COLUMN liandong.task_timeline.at IS 'When it happened.';
COMMENT ON COLUMN liandong.task_timeline.event IS 'created, upgraded, accepted, started, resolved, false_alarm, rejected, escalated, overdue, reannounced.';
COMMENT ON COLUMN liandong.task_timeline.tier IS 'Tier holding the task after the step.';
COMMENT ON COLUMN liandong.task_timeline.division_code IS 'Division holding the task after the step.';
COMMENT ON COLUMN liandong.task_timeline.division_name IS 'Its name.';
COMMENT ON COLUMN liandong.task_timeline.from_division_code IS 'Division it came from (escalations).';
COMMENT ON COLUMN liandong.task_timeline.respond_by IS 'Response deadline after the step.';
COMMENT ON COLUMN liandong.task_timeline.resolve_by IS 'Resolution deadline after the step.';
COMMENT ON COLUMN liandong.task_timeline.actor IS 'Who acted (dispatcher, or liandong for the daemon''s own steps).';
COMMENT ON COLUMN liandong.task_timeline.note IS 'The dispatcher''s note.';

CREATE VIEW liandong.feed_status AS
SELECT h.seq AS committed_head, p.seq AS published_seq, p.published_at, h.seq - p.seq AS unpublished
FROM liandong.feed_head h CROSS JOIN liandong.feed_published p;
COMMENT ON VIEW liandong.feed_status IS 'The task feed: highest seq committed, highest published (strictly in seq order) and since when, and how many wait (normally 0; republished at start).';
COMMENT ON COLUMN liandong.feed_status.committed_head IS 'Highest seq committed to liandong.feed.';
COMMENT ON COLUMN liandong.feed_status.published_seq IS 'Highest seq published on the feed socket.';
COMMENT ON COLUMN liandong.feed_status.published_at IS 'When it was published.';
COMMENT ON COLUMN liandong.feed_status.unpublished IS 'Messages committed but not yet published.';

CREATE VIEW liandong.feed_log AS
SELECT seq, topic, kind, created_at FROM liandong.feed;
COMMENT ON VIEW liandong.feed_log IS 'Task feed messages without their bodies: what was published, on which topic, when.';
COMMENT ON COLUMN liandong.feed_log.seq IS 'Global feed sequence number.';
COMMENT ON COLUMN liandong.feed_log.topic IS 'Topic: task.<division code> (a verify task at the village: its grid code).';
COMMENT ON COLUMN liandong.feed_log.kind IS 'verify, joint_dispatch, dispatch, escalation, update.';
COMMENT ON COLUMN liandong.feed_log.created_at IS 'When it was committed.';

GRANT SELECT ON liandong.dead_letters, liandong.event_log, liandong.task_timeline, liandong.feed_status,
    liandong.feed_log TO liandong_operator;
GRANT EXECUTE ON FUNCTION liandong.raw_text(bytea) TO liandong_operator;

CREATE VIEW liandong.division_names AS
SELECT code, name, level, kind, parent_code FROM liandong.divisions;
COMMENT ON VIEW liandong.division_names IS 'Divisions (county, townships, villages) by code, for joins in operators'' queries.';
COMMENT ON COLUMN liandong.division_names.code IS 'Division code (6, 9 or 12 digits).';
COMMENT ON COLUMN liandong.division_names.name IS 'Official name.';
COMMENT ON COLUMN liandong.division_names.level IS 'county, township or village.';
COMMENT ON COLUMN liandong.division_names.kind IS 'Kind as imported (town, township, street, village, community, ...).';
COMMENT ON COLUMN liandong.division_names.parent_code IS 'The division one tier up.';
GRANT SELECT ON liandong.division_names TO liandong_operator;
