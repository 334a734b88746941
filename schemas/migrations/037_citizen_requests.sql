-- Residents' requests (市民诉求) filed through liandong-open311 (Open311 GeoReport v2): each is an
-- event of source 'report' (liandong.citizen_request.v1) that correlates and climbs like any
-- report; what Open311 says about it besides lives here. Who filed it is kept apart, readable by
-- county-wide operators only. A resident's rating of 1-2 reopens the task (task_history 'reopened').

ALTER TABLE liandong.task_history DROP CONSTRAINT task_history_event_check;
ALTER TABLE liandong.task_history ADD CONSTRAINT task_history_event_check
    CHECK (event IN ('created', 'upgraded', 'accepted', 'started', 'resolved', 'false_alarm', 'rejected', 'escalated',
                     'overdue', 'reannounced', 'reassigned', 'reopened'));
COMMENT ON COLUMN liandong.task_history.event IS 'What happened: created, upgraded, accepted, started, resolved, false_alarm, rejected, escalated, overdue, reannounced, reassigned (an operator moved it to another division: liandongd task reassign), reopened (a resident rated the outcome 1 or 2: liandong.citizen_feedback).';

CREATE TABLE liandong.citizen_requests (
    service_request_id text PRIMARY KEY CHECK (service_request_id <> ''),
    owner              text NOT NULL,
    app                text NOT NULL,
    service_code       text NOT NULL,
    category           text NOT NULL,
    incident_id        uuid NOT NULL REFERENCES liandong.incidents (id),
    grid_code          text NOT NULL,
    village_code       text NOT NULL,
    geog               geography(Point, 4326) NOT NULL,
    source_crs         text NOT NULL CHECK (source_crs IN ('wgs84', 'gcj02', 'bd09')),
    description        text,
    address_string     text,
    media_url          text,
    requested_at       timestamptz NOT NULL,
    received_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX citizen_requests_incident ON liandong.citizen_requests (incident_id);
CREATE INDEX citizen_requests_requested ON liandong.citizen_requests (requested_at);
COMMENT ON TABLE liandong.citizen_requests IS 'Residents'' requests (Open311 service requests, liandong.citizen_request.v1): each is also an event (source report, source_id = service_request_id) of incident_id; GET requests reads their status through liandong.citizen_request_status.';
COMMENT ON COLUMN liandong.citizen_requests.service_request_id IS 'The Open311 service_request_id (liandong-open311 makes it; a retried POST with the same Idempotency-Key gets the same one).';
COMMENT ON COLUMN liandong.citizen_requests.owner IS 'Who sent it to liandongd (the authenticated peer, else its gateway_id): the owner of the event''s id.';
COMMENT ON COLUMN liandong.citizen_requests.app IS 'The resident''s app that filed it (open311.api_keys_file name): only it may rate it.';
COMMENT ON COLUMN liandong.citizen_requests.service_code IS 'Open311 service_code (open311.services).';
COMMENT ON COLUMN liandong.citizen_requests.category IS 'The incident category of its service.';
COMMENT ON COLUMN liandong.citizen_requests.incident_id IS 'The incident its event joined or opened: its task is the request''s.';
COMMENT ON COLUMN liandong.citizen_requests.geog IS 'Where, WGS-84 (converted from source_crs).';
COMMENT ON COLUMN liandong.citizen_requests.source_crs IS 'The coordinate system the app sent (Open311 extension crs; mini-programs send gcj02).';
COMMENT ON COLUMN liandong.citizen_requests.requested_at IS 'When the resident filed it (Open311 requested_datetime).';
COMMENT ON COLUMN liandong.citizen_requests.grid_code IS 'The grid it lies in (its event''s).';
COMMENT ON COLUMN liandong.citizen_requests.village_code IS 'The grid''s village: the task starts there or above.';
COMMENT ON COLUMN liandong.citizen_requests.description IS 'What the resident wrote (Open311 description).';
COMMENT ON COLUMN liandong.citizen_requests.address_string IS 'The address the resident gave (Open311 address_string; not used for placing).';
COMMENT ON COLUMN liandong.citizen_requests.media_url IS 'A photo or video the app stored (Open311 media_url, http or https).';
COMMENT ON COLUMN liandong.citizen_requests.received_at IS 'When liandongd committed it.';

CREATE TABLE liandong.citizen_contacts (
    service_request_id text PRIMARY KEY REFERENCES liandong.citizen_requests (service_request_id),
    first_name text,
    last_name  text,
    email      text,
    phone      text,
    device_id  text,
    account_id text
);
COMMENT ON COLUMN liandong.citizen_contacts.service_request_id IS 'The request.';
COMMENT ON COLUMN liandong.citizen_contacts.first_name IS 'Open311 first_name.';
COMMENT ON COLUMN liandong.citizen_contacts.last_name IS 'Open311 last_name.';
COMMENT ON COLUMN liandong.citizen_contacts.email IS 'Open311 email.';
COMMENT ON COLUMN liandong.citizen_contacts.phone IS 'Open311 phone.';
COMMENT ON COLUMN liandong.citizen_contacts.device_id IS 'Open311 device_id: the resident''s phone as the app knows it.';
COMMENT ON COLUMN liandong.citizen_contacts.account_id IS 'Open311 account_id: the resident''s account in the app (a mini-program''s openid).';
COMMENT ON TABLE liandong.citizen_contacts IS 'Who filed a resident''s request (Open311 first_name, last_name, email, phone, device_id, account_id): readable by county-wide operators only (scope of 6 digits or less), never on the task feed or in an Open311 answer.';

CREATE TABLE liandong.citizen_feedback (
    feedback_id        text PRIMARY KEY CHECK (feedback_id <> ''),
    service_request_id text NOT NULL REFERENCES liandong.citizen_requests (service_request_id),
    app                text NOT NULL,
    rating             smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment            text,
    at                 timestamptz NOT NULL,
    task_id            uuid REFERENCES liandong.tasks (id),
    division_code      text REFERENCES liandong.divisions (code),
    received_at        timestamptz NOT NULL DEFAULT now(),
    handled_at         timestamptz,
    outcome            text CHECK (outcome IN ('reopened', 'not_finished', 'no_task'))
);
CREATE INDEX citizen_feedback_request ON liandong.citizen_feedback (service_request_id);
CREATE INDEX citizen_feedback_pending ON liandong.citizen_feedback (received_at) WHERE rating <= 2 AND handled_at IS NULL;
COMMENT ON TABLE liandong.citizen_feedback IS 'Residents'' ratings of their requests'' outcome (结果反馈、满意度: POST requests/{id}/feedback, liandong.citizen_feedback.v1). A rating of 1 or 2 reopens the finished task at the tier that closed it (the sweeper; outcome).';
COMMENT ON COLUMN liandong.citizen_feedback.feedback_id IS 'Its id (liandong-open311 makes it; a retried rating with the same Idempotency-Key has the same one).';
COMMENT ON COLUMN liandong.citizen_feedback.service_request_id IS 'The request rated.';
COMMENT ON COLUMN liandong.citizen_feedback.app IS 'The app that sent it (the one that filed the request).';
COMMENT ON COLUMN liandong.citizen_feedback.comment IS 'What the resident wrote with the rating.';
COMMENT ON COLUMN liandong.citizen_feedback.at IS 'When the resident rated it.';
COMMENT ON COLUMN liandong.citizen_feedback.received_at IS 'When liandongd committed it.';
COMMENT ON COLUMN liandong.citizen_feedback.rating IS '1 very dissatisfied ... 5 very satisfied.';
COMMENT ON COLUMN liandong.citizen_feedback.task_id IS 'The request''s task when the rating came.';
COMMENT ON COLUMN liandong.citizen_feedback.division_code IS 'The division that held the task when the rating came (whose satisfaction it counts in).';
COMMENT ON COLUMN liandong.citizen_feedback.handled_at IS 'A rating of 1-2: when the sweeper acted on it (NULL: not yet).';
COMMENT ON COLUMN liandong.citizen_feedback.outcome IS 'reopened (the task is open again), not_finished (the task was still being worked on: nothing to reopen), no_task.';

-- The rows of a batch's requests: [{id, owner, app, service_code, category, incident, grid, village,
-- lon, lat, crs, description, address, media_url, at_s, contact: {...}|null}].
CREATE FUNCTION liandong.record_citizen_requests(p jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO liandong.citizen_requests (service_request_id, owner, app, service_code, category, incident_id, grid_code,
                                           village_code, geog, source_crs, description, address_string, media_url, requested_at)
    SELECT x.id, x.owner, x.app, x.service_code, x.category, x.incident, x.grid, x.village,
           ST_SetSRID(ST_MakePoint(x.lon, x.lat), 4326)::geography, x.crs, x.description, x.address, x.media_url, to_timestamp(x.at_s)
    FROM jsonb_to_recordset(p) AS x(id text, owner text, app text, service_code text, category text, incident uuid, grid text,
                                    village text, lon float8, lat float8, crs text, description text, address text,
                                    media_url text, at_s float8);
    INSERT INTO liandong.citizen_contacts (service_request_id, first_name, last_name, email, phone, device_id, account_id)
    SELECT x.id, c.first_name, c.last_name, c.email, c.phone, c.device_id, c.account_id
    FROM jsonb_to_recordset(p) AS x(id text, contact jsonb),
         jsonb_to_record(x.contact) AS c(first_name text, last_name text, email text, phone text, device_id text, account_id text)
    WHERE x.contact IS NOT NULL AND jsonb_typeof(x.contact) = 'object';
$$;
COMMENT ON FUNCTION liandong.record_citizen_requests(jsonb) IS 'Records a batch''s residents'' requests and their contacts (the writer, in the batch''s transaction).';

-- [{feedback_id, request_id, app, rating, comment, at_s}]: a rating of a request this app did not
-- file, or that is not stored, records nothing (liandong-open311 checks both before it sends).
CREATE FUNCTION liandong.record_citizen_feedback(p jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO liandong.citizen_feedback (feedback_id, service_request_id, app, rating, comment, at, task_id, division_code)
    SELECT x.feedback_id, r.service_request_id, x.app, x.rating, x.comment, to_timestamp(x.at_s), t.id, t.division_code
    FROM jsonb_to_recordset(p) AS x(feedback_id text, request_id text, app text, rating smallint, comment text, at_s float8)
    JOIN liandong.citizen_requests r ON r.service_request_id = x.request_id AND r.app = x.app
    LEFT JOIN liandong.tasks t ON t.incident_id = r.incident_id
    ON CONFLICT (feedback_id) DO NOTHING;
$$;
COMMENT ON FUNCTION liandong.record_citizen_feedback(jsonb) IS 'Records residents'' ratings (the writer, in the batch''s transaction).';

-- What a resident sees of a request (GET requests): open or closed, the note of the step that
-- closed or rejected it, the division that holds it now and its current deadline.
CREATE VIEW liandong.citizen_request_status WITH (security_invoker = true) AS
SELECT r.service_request_id, r.app, r.service_code, r.description, r.address_string, r.media_url, r.requested_at,
       ST_Y(r.geog::geometry) AS lat, ST_X(r.geog::geometry) AS lon, r.grid_code,
       CASE WHEN t.state IN ('resolved', 'false_alarm') THEN 'closed' ELSE 'open' END AS status,
       t.state AS task_state,
       (SELECT h.note FROM liandong.task_history h
         WHERE h.task_id = t.id AND h.event IN ('resolved', 'false_alarm', 'rejected', 'reopened') AND h.note IS NOT NULL
         ORDER BY h.at DESC, h.id DESC LIMIT 1) AS status_notes,
       coalesce(t.division_code, r.village_code) AS division_code,
       d.name AS agency_responsible,
       CASE WHEN t.state IN ('resolved', 'false_alarm') THEN NULL
            WHEN t.state = 'open' THEN t.respond_by ELSE t.resolve_by END AS expected_at,
       greatest(r.received_at, t.updated_at) AS updated_at
FROM liandong.citizen_requests r
LEFT JOIN liandong.tasks t ON t.incident_id = r.incident_id
LEFT JOIN liandong.divisions d ON d.code = coalesce(t.division_code, r.village_code);
COMMENT ON COLUMN liandong.citizen_request_status.service_request_id IS 'The Open311 service_request_id.';
COMMENT ON COLUMN liandong.citizen_request_status.app IS 'The app that filed it (GET requests answers an app only its own).';
COMMENT ON COLUMN liandong.citizen_request_status.service_code IS 'Open311 service_code.';
COMMENT ON COLUMN liandong.citizen_request_status.description IS 'What the resident wrote.';
COMMENT ON COLUMN liandong.citizen_request_status.address_string IS 'The address the resident gave (Open311 address).';
COMMENT ON COLUMN liandong.citizen_request_status.media_url IS 'Open311 media_url.';
COMMENT ON COLUMN liandong.citizen_request_status.requested_at IS 'Open311 requested_datetime.';
COMMENT ON COLUMN liandong.citizen_request_status.lat IS 'Latitude, WGS-84 (Open311 lat).';
COMMENT ON COLUMN liandong.citizen_request_status.lon IS 'Longitude, WGS-84 (Open311 long).';
COMMENT ON COLUMN liandong.citizen_request_status.grid_code IS 'The grid it lies in (scoped operators see their own).';
COMMENT ON COLUMN liandong.citizen_request_status.status IS 'open, or closed once its task is resolved or false_alarm (Open311 status).';
COMMENT ON COLUMN liandong.citizen_request_status.task_state IS 'Its task''s state (NULL: no task).';
COMMENT ON COLUMN liandong.citizen_request_status.status_notes IS 'The note of the step that closed, rejected or reopened its task (Open311 status_notes).';
COMMENT ON COLUMN liandong.citizen_request_status.division_code IS 'The division that holds its task now (its village before it has one).';
COMMENT ON COLUMN liandong.citizen_request_status.agency_responsible IS 'That division''s name (Open311 agency_responsible).';
COMMENT ON COLUMN liandong.citizen_request_status.expected_at IS 'Its current deadline: respond_by while open, then resolve_by; NULL once closed (Open311 expected_datetime).';
COMMENT ON COLUMN liandong.citizen_request_status.updated_at IS 'When it or its task last changed (Open311 updated_datetime).';
COMMENT ON VIEW liandong.citizen_request_status IS 'Residents'' requests as Open311 GET requests answers them: status open/closed, status_notes (the dispatcher''s note on resolve, false_alarm or reject, or the reopening), agency_responsible (the division that holds the task now: it climbs village -> township -> county), expected_at (respond_by while open, then resolve_by), updated_at.';

-- Per division: residents' requests handed to it, answered (accepted or resolved) within the
-- response deadline, ratings and mean satisfaction - division_kpis per day, and for a period.
CREATE VIEW liandong.citizen_kpis WITH (security_invoker = true) AS
WITH handed AS (
    SELECT o.division_code, (o.at AT TIME ZONE 'Asia/Shanghai')::date AS day,
           count(*) AS citizen_requests,
           count(*) FILTER (WHERE least(o.accepted_at, o.resolved_at) <= o.respond_by) AS answered_on_time
    FROM liandong.task_assignments o
    JOIN liandong.tasks t ON t.id = o.task_id
    WHERE EXISTS (SELECT 1 FROM liandong.citizen_requests r WHERE r.incident_id = t.incident_id)
    GROUP BY 1, 2
), rated AS (
    SELECT f.division_code, (f.at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*) AS ratings,
           sum(f.rating) AS rating_sum, count(*) FILTER (WHERE f.rating <= 2) AS low_ratings,
           count(*) FILTER (WHERE f.outcome = 'reopened') AS reopened
    FROM liandong.citizen_feedback f
    WHERE f.division_code IS NOT NULL
    GROUP BY 1, 2
)
SELECT coalesce(h.division_code, r.division_code) AS division_code, coalesce(h.day, r.day) AS day,
       coalesce(h.citizen_requests, 0) AS citizen_requests, coalesce(h.answered_on_time, 0) AS answered_on_time,
       round(100.0 * h.answered_on_time / nullif(h.citizen_requests, 0), 1) AS answered_on_time_pct,
       coalesce(r.ratings, 0) AS ratings, coalesce(r.rating_sum, 0) AS rating_sum,
       round(r.rating_sum::numeric / nullif(r.ratings, 0), 2) AS satisfaction,
       coalesce(r.low_ratings, 0) AS low_ratings, coalesce(r.reopened, 0) AS reopened
FROM handed h FULL JOIN rated r ON r.division_code = h.division_code AND r.day = h.day;
COMMENT ON COLUMN liandong.citizen_kpis.division_code IS 'The division.';
COMMENT ON COLUMN liandong.citizen_kpis.day IS 'The day, China Standard Time.';
COMMENT ON COLUMN liandong.citizen_kpis.citizen_requests IS 'Hand-overs of residents'' requests'' tasks to it (like division_kpis.tasks_received).';
COMMENT ON COLUMN liandong.citizen_kpis.answered_on_time IS 'Of those, accepted or resolved within the hand-over''s response deadline.';
COMMENT ON COLUMN liandong.citizen_kpis.answered_on_time_pct IS 'answered_on_time in percent of citizen_requests.';
COMMENT ON COLUMN liandong.citizen_kpis.ratings IS 'Ratings given that day while it held the task.';
COMMENT ON COLUMN liandong.citizen_kpis.rating_sum IS 'Their sum (for means over several days).';
COMMENT ON COLUMN liandong.citizen_kpis.satisfaction IS 'Mean rating, 1-5 (满意度).';
COMMENT ON COLUMN liandong.citizen_kpis.low_ratings IS 'Ratings of 1 or 2.';
COMMENT ON COLUMN liandong.citizen_kpis.reopened IS 'Tasks reopened by those ratings.';
COMMENT ON VIEW liandong.citizen_kpis IS 'Residents'' requests per division and day (China Standard Time): handed to it (citizen_requests, counted like division_kpis.tasks_received), answered (accepted or resolved) within the response deadline, ratings given while it held the task, mean satisfaction (1-5), ratings of 1-2 and the reopenings they caused.';

-- division_kpis gains the residents' figures (columns appended; the others are unchanged).
CREATE OR REPLACE VIEW liandong.division_kpis AS
SELECT k.*, r.cameras, r.online_pct AS camera_online_pct, c.citizen_requests,
       c.answered_on_time_pct AS citizen_answered_on_time_pct, c.satisfaction AS citizen_satisfaction
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
LEFT JOIN liandong.camera_online_rate r ON r.division_code = k.division_code AND r.day = k.day
LEFT JOIN liandong.citizen_kpis c ON c.division_code = k.division_code AND c.day = k.day;
ALTER VIEW liandong.division_kpis SET (security_invoker = true);
COMMENT ON COLUMN liandong.division_kpis.citizen_requests IS 'Residents'' requests handed to it that day (liandong.citizen_kpis).';
COMMENT ON COLUMN liandong.division_kpis.citizen_answered_on_time_pct IS 'Of those, % accepted or resolved within the response deadline.';
COMMENT ON COLUMN liandong.division_kpis.citizen_satisfaction IS 'Mean rating (1-5) residents gave that day while it held their task.';

-- For a period (the assessment report's residents' section).
CREATE FUNCTION liandong.citizen_assessment(p_from date, p_to date)
RETURNS TABLE (division_code text, division_name text, level text, citizen_requests bigint, answered_on_time_pct numeric,
               ratings bigint, satisfaction numeric, low_ratings bigint, reopened bigint)
LANGUAGE sql STABLE AS $$
    SELECT c.division_code, d.name, d.level, sum(c.citizen_requests)::bigint,
           round(100.0 * sum(c.answered_on_time) / nullif(sum(c.citizen_requests), 0), 1),
           sum(c.ratings)::bigint, round(sum(c.rating_sum)::numeric / nullif(sum(c.ratings), 0), 2),
           sum(c.low_ratings)::bigint, sum(c.reopened)::bigint
    FROM liandong.citizen_kpis c JOIN liandong.divisions d ON d.code = c.division_code
    WHERE c.day BETWEEN p_from AND p_to
    GROUP BY c.division_code, d.name, d.level
    ORDER BY c.division_code
$$;
COMMENT ON FUNCTION liandong.citizen_assessment(date, date) IS 'Residents'' requests per division over the days [p_from, p_to] (China Standard Time): requests handed to it, % answered on time, ratings, mean satisfaction, low ratings, reopenings (liandongd report prints them).';

ALTER TABLE liandong.citizen_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.citizen_requests FOR SELECT TO liandong_operator
    USING (grid_code LIKE ANY (SELECT liandong.operator_patterns()));
ALTER TABLE liandong.citizen_feedback ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.citizen_feedback FOR SELECT TO liandong_operator
    USING (EXISTS (SELECT 1 FROM liandong.citizen_requests r WHERE r.service_request_id = citizen_feedback.service_request_id));
-- County-wide operators only: a scope of at most 6 digits ('620922%', or '%' for everything).
ALTER TABLE liandong.citizen_contacts ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.citizen_contacts FOR SELECT TO liandong_operator
    USING (EXISTS (SELECT 1 FROM liandong.citizen_requests r
                   WHERE r.service_request_id = citizen_contacts.service_request_id
                     AND r.grid_code LIKE ANY (SELECT p FROM liandong.operator_patterns() p WHERE length(p) <= 7)));
GRANT SELECT ON liandong.citizen_requests, liandong.citizen_contacts, liandong.citizen_feedback,
    liandong.citizen_request_status, liandong.citizen_kpis TO liandong_operator;
GRANT EXECUTE ON FUNCTION liandong.citizen_assessment(date, date) TO liandong_operator;
