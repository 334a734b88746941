-- Task lifecycle: dispatcher updates, escalation village -> township -> county with every hop
-- recorded, incident closure, and the assessment (督导考核) views operators query.

ALTER TABLE liandong.tasks
    ADD CONSTRAINT tasks_state_check CHECK (state IN ('open', 'accepted', 'in_progress', 'resolved', 'false_alarm')),
    ADD COLUMN overdue boolean NOT NULL DEFAULT false,
    ADD COLUMN overdue_since timestamptz,
    ADD COLUMN last_announced_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN escalations integer NOT NULL DEFAULT 0,
    ADD COLUMN closed_at timestamptz;
CREATE INDEX tasks_due_idx ON liandong.tasks (respond_by, resolve_by) WHERE state NOT IN ('resolved', 'false_alarm');
COMMENT ON COLUMN liandong.tasks.state IS 'open (waiting to be accepted), accepted, in_progress, resolved or false_alarm.';
COMMENT ON COLUMN liandong.tasks.overdue IS 'True once the task missed a deadline at the county tier (督办 overdue); re-announced periodically.';
COMMENT ON COLUMN liandong.tasks.overdue_since IS 'When it became overdue at the county.';
COMMENT ON COLUMN liandong.tasks.last_announced_at IS 'Last time a message about it went out (for overdue re-announcement).';
COMMENT ON COLUMN liandong.tasks.escalations IS 'Tiers climbed so far (missed deadlines and rejections).';
COMMENT ON COLUMN liandong.tasks.closed_at IS 'When it was resolved or marked false_alarm.';

ALTER TABLE liandong.incidents
    ADD COLUMN resolution text CHECK (resolution IN ('resolved', 'false_alarm'));
COMMENT ON COLUMN liandong.incidents.resolution IS 'How a closed incident ended: resolved or false_alarm (counts against its cameras).';

CREATE TABLE liandong.task_updates (
    update_id   text PRIMARY KEY CHECK (update_id <> ''),
    task_id     text NOT NULL,
    action      text NOT NULL,
    actor       text,
    at          timestamptz,
    note        text,
    ok          boolean NOT NULL,
    error       text,
    received_at timestamptz NOT NULL DEFAULT now(),
    body        jsonb NOT NULL
);
CREATE INDEX task_updates_task_idx ON liandong.task_updates (task_id, received_at);
COMMENT ON TABLE liandong.task_updates IS 'Every task_update received on the updates socket, accepted or refused, with the answer given; the same update_id gets the same answer again.';
COMMENT ON COLUMN liandong.task_updates.update_id IS 'The dispatcher''s id of the update; unique.';
COMMENT ON COLUMN liandong.task_updates.task_id IS 'Task it is about, as sent (may name no task).';
COMMENT ON COLUMN liandong.task_updates.action IS 'accept, start, resolve, false_alarm or reject (as sent).';
COMMENT ON COLUMN liandong.task_updates.actor IS 'Who acted (dispatcher or unit id).';
COMMENT ON COLUMN liandong.task_updates.at IS 'When the actor says it happened.';
COMMENT ON COLUMN liandong.task_updates.note IS 'Free text; the reason of a reject.';
COMMENT ON COLUMN liandong.task_updates.ok IS 'Whether it was applied.';
COMMENT ON COLUMN liandong.task_updates.error IS 'Why it was refused.';
COMMENT ON COLUMN liandong.task_updates.received_at IS 'When Liandong received and committed it.';
COMMENT ON COLUMN liandong.task_updates.body IS 'The message as received.';

CREATE TABLE liandong.task_history (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id            uuid NOT NULL REFERENCES liandong.tasks (id),
    at                 timestamptz NOT NULL DEFAULT now(),
    event              text NOT NULL CHECK (event IN ('created', 'upgraded', 'accepted', 'started', 'resolved',
                                                      'false_alarm', 'rejected', 'escalated', 'overdue', 'reannounced')),
    tier               text NOT NULL CHECK (tier IN ('village', 'township', 'county')),
    division_code      text NOT NULL REFERENCES liandong.divisions (code),
    from_division_code text REFERENCES liandong.divisions (code),
    respond_by         timestamptz,
    resolve_by         timestamptz,
    actor              text,
    note               text,
    update_id          text REFERENCES liandong.task_updates (update_id),
    county_code        text NOT NULL GENERATED ALWAYS AS (left(division_code, 6)) STORED
);
CREATE INDEX task_history_task_idx ON liandong.task_history (task_id, at);
CREATE INDEX task_history_division_idx ON liandong.task_history (division_code, at);
COMMENT ON TABLE liandong.task_history IS 'Every step of every task: created at a division, upgraded, accepted, started, resolved, false_alarm, rejected/escalated to the next tier (each hop), overdue and re-announced at the county.';
COMMENT ON COLUMN liandong.task_history.id IS 'Step number.';
COMMENT ON COLUMN liandong.task_history.task_id IS 'The task.';
COMMENT ON COLUMN liandong.task_history.at IS 'When the step was committed.';
COMMENT ON COLUMN liandong.task_history.event IS 'What happened.';
COMMENT ON COLUMN liandong.task_history.tier IS 'Tier responsible after the step.';
COMMENT ON COLUMN liandong.task_history.division_code IS 'Division responsible after the step (for created/escalated: the receiving division).';
COMMENT ON COLUMN liandong.task_history.from_division_code IS 'For escalated/rejected: the division it came from.';
COMMENT ON COLUMN liandong.task_history.respond_by IS 'Deadline to accept set by this step (created, upgraded, escalated).';
COMMENT ON COLUMN liandong.task_history.resolve_by IS 'Deadline to resolve set by this step.';
COMMENT ON COLUMN liandong.task_history.actor IS 'Who acted (a dispatcher, or liandong for deadlines).';
COMMENT ON COLUMN liandong.task_history.note IS 'Reason or remark.';
COMMENT ON COLUMN liandong.task_history.update_id IS 'The task_update that caused it, if any.';
COMMENT ON COLUMN liandong.task_history.county_code IS 'Distribution key: the 6-digit county code.';

INSERT INTO liandong.task_history (task_id, at, event, tier, division_code, respond_by, resolve_by, actor)
SELECT id, created_at, 'created', tier, division_code, respond_by, resolve_by, 'liandong' FROM liandong.tasks;

-- Tasks created or changed by the writer now also record their history. An upgrade is a new
-- dispatch: open again, at its (possibly higher) tier, with new deadlines.
CREATE OR REPLACE FUNCTION liandong.upsert_tasks(items jsonb)
RETURNS void
LANGUAGE sql AS $$
    WITH x AS (
        SELECT * FROM jsonb_to_recordset(items) AS x(id uuid, incident_id uuid, kind text, tier text, division_code text,
                                                    grid_code text, category text, priority smallint, departments text[],
                                                    respond_by timestamptz, resolve_by timestamptz)
    ), up AS (
        INSERT INTO liandong.tasks AS t (id, incident_id, kind, tier, division_code, grid_code, category, priority,
                                         departments, respond_by, resolve_by)
        SELECT x.id, x.incident_id, x.kind, x.tier, x.division_code, x.grid_code, x.category, x.priority,
               x.departments, x.respond_by, x.resolve_by
        FROM x
        ON CONFLICT (incident_id) DO UPDATE
        SET kind = excluded.kind, priority = excluded.priority, departments = excluded.departments,
            tier = excluded.tier, division_code = excluded.division_code,
            respond_by = excluded.respond_by, resolve_by = excluded.resolve_by,
            state = 'open', overdue = false, overdue_since = NULL, last_announced_at = now(), updated_at = now()
        RETURNING t.id, (xmax = 0) AS created, t.tier, t.division_code, t.respond_by, t.resolve_by
    )
    INSERT INTO liandong.task_history (task_id, event, tier, division_code, respond_by, resolve_by, actor)
    SELECT up.id, CASE WHEN up.created THEN 'created' ELSE 'upgraded' END, up.tier, up.division_code,
           up.respond_by, up.resolve_by, 'liandong'
    FROM up;
$$;
COMMENT ON FUNCTION liandong.upsert_tasks(jsonb) IS 'Creates tasks, or upgrades an incident''s existing task (verify/dispatch -> joint_dispatch: new kind, tier, division and deadlines), recording the step in task_history.';

-- ---------------------------------------------------------------- assessment views

CREATE VIEW liandong.open_incidents AS
SELECT i.id AS incident_id, i.category, i.priority, i.grid_code, g.name AS grid_name,
       i.village_code, v.name AS village_name, left(i.village_code, 9) AS township_code, tw.name AS township_name,
       i.alert_count, i.report_count, i.first_observed_at, i.last_observed_at, i.opened_at,
       t.id AS task_id, t.kind AS task_kind, t.state AS task_state, t.tier, t.division_code,
       t.respond_by, t.resolve_by, t.overdue, i.geog::geometry AS geom
FROM liandong.incidents i
JOIN liandong.grids g ON g.grid_code = i.grid_code
JOIN liandong.divisions v ON v.code = i.village_code
JOIN liandong.divisions tw ON tw.code = left(i.village_code, 9)
LEFT JOIN liandong.tasks t ON t.incident_id = i.id
WHERE i.status = 'open';
COMMENT ON VIEW liandong.open_incidents IS 'Incidents still open, with their grid, village, township and task (QGIS: geom is the incident point, EPSG:4326).';

CREATE VIEW liandong.overdue_tasks AS
SELECT t.id AS task_id, t.incident_id, t.kind, t.state, t.tier, t.division_code, d.name AS division_name,
       t.category, t.priority, t.respond_by, t.resolve_by, t.escalations, t.overdue, t.overdue_since,
       CASE WHEN t.state = 'open' AND t.respond_by < now() THEN 'respond' ELSE 'resolve' END AS missed,
       round(extract(epoch FROM now() - CASE WHEN t.state = 'open' AND t.respond_by < now() THEN t.respond_by
                                             ELSE t.resolve_by END) / 60)::integer AS minutes_late
FROM liandong.tasks t
JOIN liandong.divisions d ON d.code = t.division_code
WHERE t.state NOT IN ('resolved', 'false_alarm')
  AND (t.overdue OR (t.state = 'open' AND t.respond_by < now()) OR t.resolve_by < now());
COMMENT ON VIEW liandong.overdue_tasks IS 'Unfinished tasks past a deadline (respond_by while open, resolve_by otherwise) or marked overdue at the county.';

CREATE VIEW liandong.division_kpis AS
WITH assignments AS (
    -- Each time a task was handed to a division (created there, upgraded there, or escalated to it),
    -- until the next hand-over.
    SELECT h.id, h.task_id, h.division_code, h.tier, h.at, h.respond_by, h.resolve_by,
           lead(h.at) OVER (PARTITION BY h.task_id ORDER BY h.at, h.id) AS handed_on_at
    FROM liandong.task_history h
    WHERE h.event IN ('created', 'escalated', 'rejected', 'upgraded')
), outcomes AS (
    SELECT a.*,
           (SELECT min(x.at) FROM liandong.task_history x WHERE x.task_id = a.task_id AND x.event = 'accepted'
              AND x.at >= a.at AND (a.handed_on_at IS NULL OR x.at < a.handed_on_at)) AS accepted_at,
           (SELECT min(x.at) FROM liandong.task_history x WHERE x.task_id = a.task_id AND x.event = 'resolved'
              AND x.at >= a.at AND (a.handed_on_at IS NULL OR x.at < a.handed_on_at)) AS resolved_at,
           EXISTS (SELECT 1 FROM liandong.task_history x WHERE x.task_id = a.task_id AND x.event = 'false_alarm'
              AND x.at >= a.at AND (a.handed_on_at IS NULL OR x.at < a.handed_on_at)) AS false_alarm,
           EXISTS (SELECT 1 FROM liandong.task_history x WHERE x.task_id = a.task_id AND x.event IN ('escalated', 'rejected')
              AND x.from_division_code = a.division_code AND x.at >= a.at
              AND (a.handed_on_at IS NULL OR x.at <= a.handed_on_at)) AS escalated
    FROM assignments a
    -- An upgrade at the same division is the same hand-over; count it once.
    WHERE NOT EXISTS (SELECT 1 FROM liandong.task_history p WHERE p.task_id = a.task_id AND p.id < a.id
                        AND p.event IN ('created', 'escalated', 'rejected', 'upgraded')
                        AND p.division_code = a.division_code
                        AND NOT EXISTS (SELECT 1 FROM liandong.task_history q WHERE q.task_id = a.task_id
                                          AND q.id > p.id AND q.id < a.id AND q.division_code <> a.division_code
                                          AND q.event IN ('created', 'escalated', 'rejected', 'upgraded')))
)
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
FROM outcomes o
JOIN liandong.divisions d ON d.code = o.division_code
GROUP BY o.division_code, d.name, d.level, (o.at AT TIME ZONE 'Asia/Shanghai')::date;
COMMENT ON VIEW liandong.division_kpis IS 'Assessment (督导考核) per division and day (China Standard Time) of the tasks it received: accepted/resolved on time (% of received, before that hand-over''s deadlines), median minutes to accept and to resolve, escalations out of it, false alarms.';

CREATE VIEW liandong.camera_reliability AS
SELECT c.device_id, c.name, c.grid_code,
       count(e.id) AS alerts,
       count(e.id) FILTER (WHERE i.report_count > 0 OR i.resolution = 'resolved') AS confirmed,
       count(e.id) FILTER (WHERE i.resolution = 'false_alarm') AS false_alarms,
       round(100.0 * count(e.id) FILTER (WHERE i.resolution = 'false_alarm') / nullif(count(e.id), 0), 1) AS false_alarm_pct,
       max(e.observed_at) AS last_alert_at
FROM liandong.cameras c
LEFT JOIN liandong.events e ON e.source = 'alert' AND e.device_id = c.device_id
LEFT JOIN liandong.incidents i ON i.id = e.incident_id
GROUP BY c.device_id, c.name, c.grid_code;
COMMENT ON VIEW liandong.camera_reliability IS 'Per camera: alerts, confirmed (a report agreed or the incident was resolved), false alarms (the incident was closed as false_alarm) and their share; candidates for cameras.demote in the config.';

CREATE VIEW liandong.grid_worker_load AS
SELECT w.worker_id, w.name, w.grid_code, g.village_code,
       (SELECT count(*) FROM liandong.tasks t WHERE t.grid_code = w.grid_code AND t.kind = 'verify'
          AND t.state NOT IN ('resolved', 'false_alarm')) AS open_verify_tasks,
       (SELECT count(*) FROM liandong.tasks t WHERE t.grid_code = w.grid_code
          AND t.state NOT IN ('resolved', 'false_alarm')) AS open_tasks_in_grid,
       (SELECT count(*) FROM liandong.events e WHERE e.source = 'report' AND e.worker_id = w.worker_id
          AND e.observed_at > now() - interval '7 days') AS reports_last_7_days,
       (SELECT count(*) FROM liandong.tasks t WHERE t.grid_code = w.grid_code AND t.state = 'resolved'
          AND t.closed_at > now() - interval '7 days') AS resolved_in_grid_last_7_days
FROM liandong.grid_workers w
JOIN liandong.grids g ON g.grid_code = w.grid_code;
COMMENT ON VIEW liandong.grid_worker_load IS 'Per grid worker: open verify tasks and open tasks in the grid, reports filed and tasks resolved in the grid over the last 7 days.';


-- Columns of the views, for operators reading \d+ in psql.
COMMENT ON COLUMN liandong.open_incidents.incident_id IS 'Incident id.';
COMMENT ON COLUMN liandong.open_incidents.category IS 'Incident category.';
COMMENT ON COLUMN liandong.open_incidents.priority IS '1 most urgent .. 4 least.';
COMMENT ON COLUMN liandong.open_incidents.grid_code IS 'Grid of the incident.';
COMMENT ON COLUMN liandong.open_incidents.grid_name IS 'Grid name.';
COMMENT ON COLUMN liandong.open_incidents.village_code IS 'Village or community code.';
COMMENT ON COLUMN liandong.open_incidents.village_name IS 'Village or community name.';
COMMENT ON COLUMN liandong.open_incidents.township_code IS 'Township (乡/镇/街道) code.';
COMMENT ON COLUMN liandong.open_incidents.township_name IS 'Township name.';
COMMENT ON COLUMN liandong.open_incidents.alert_count IS 'Camera alerts joined.';
COMMENT ON COLUMN liandong.open_incidents.report_count IS 'Grid reports joined.';
COMMENT ON COLUMN liandong.open_incidents.first_observed_at IS 'Earliest observed time.';
COMMENT ON COLUMN liandong.open_incidents.last_observed_at IS 'Latest observed time.';
COMMENT ON COLUMN liandong.open_incidents.opened_at IS 'When Liandong opened it.';
COMMENT ON COLUMN liandong.open_incidents.task_id IS 'Its task, if any (minor reports alone have none).';
COMMENT ON COLUMN liandong.open_incidents.task_kind IS 'verify, dispatch or joint_dispatch.';
COMMENT ON COLUMN liandong.open_incidents.task_state IS 'open, accepted or in_progress.';
COMMENT ON COLUMN liandong.open_incidents.tier IS 'Tier responsible now.';
COMMENT ON COLUMN liandong.open_incidents.division_code IS 'Division responsible now.';
COMMENT ON COLUMN liandong.open_incidents.respond_by IS 'Deadline to accept.';
COMMENT ON COLUMN liandong.open_incidents.resolve_by IS 'Deadline to resolve.';
COMMENT ON COLUMN liandong.open_incidents.overdue IS 'Missed a deadline at the county.';
COMMENT ON COLUMN liandong.open_incidents.geom IS 'Incident point, WGS-84 (EPSG:4326), for QGIS.';
COMMENT ON COLUMN liandong.overdue_tasks.task_id IS 'Task id.';
COMMENT ON COLUMN liandong.overdue_tasks.incident_id IS 'Its incident.';
COMMENT ON COLUMN liandong.overdue_tasks.kind IS 'verify, dispatch or joint_dispatch.';
COMMENT ON COLUMN liandong.overdue_tasks.state IS 'open, accepted or in_progress.';
COMMENT ON COLUMN liandong.overdue_tasks.tier IS 'Tier responsible now.';
COMMENT ON COLUMN liandong.overdue_tasks.division_code IS 'Division responsible now.';
COMMENT ON COLUMN liandong.overdue_tasks.division_name IS 'Its name.';
COMMENT ON COLUMN liandong.overdue_tasks.category IS 'Incident category.';
COMMENT ON COLUMN liandong.overdue_tasks.priority IS '1 most urgent .. 4 least.';
COMMENT ON COLUMN liandong.overdue_tasks.respond_by IS 'Deadline to accept.';
COMMENT ON COLUMN liandong.overdue_tasks.resolve_by IS 'Deadline to resolve.';
COMMENT ON COLUMN liandong.overdue_tasks.escalations IS 'Tiers climbed so far.';
COMMENT ON COLUMN liandong.overdue_tasks.overdue IS 'Marked overdue at the county.';
COMMENT ON COLUMN liandong.overdue_tasks.overdue_since IS 'Since when.';
COMMENT ON COLUMN liandong.overdue_tasks.missed IS 'Which deadline is missed: respond or resolve.';
COMMENT ON COLUMN liandong.overdue_tasks.minutes_late IS 'Minutes past that deadline.';
COMMENT ON COLUMN liandong.division_kpis.division_code IS 'Division that received tasks.';
COMMENT ON COLUMN liandong.division_kpis.division_name IS 'Its name.';
COMMENT ON COLUMN liandong.division_kpis.level IS 'county, township or village.';
COMMENT ON COLUMN liandong.division_kpis.day IS 'Day (China Standard Time) the tasks were received.';
COMMENT ON COLUMN liandong.division_kpis.tasks_received IS 'Tasks handed to the division that day (created there or escalated to it).';
COMMENT ON COLUMN liandong.division_kpis.accepted IS 'Of those, accepted while it was responsible.';
COMMENT ON COLUMN liandong.division_kpis.accepted_on_time_pct IS 'Percent of received tasks accepted before respond_by.';
COMMENT ON COLUMN liandong.division_kpis.resolved IS 'Of those, resolved while it was responsible.';
COMMENT ON COLUMN liandong.division_kpis.resolved_on_time_pct IS 'Percent of received tasks resolved before resolve_by.';
COMMENT ON COLUMN liandong.division_kpis.median_minutes_to_accept IS 'Median minutes from hand-over to accept.';
COMMENT ON COLUMN liandong.division_kpis.median_minutes_to_resolve IS 'Median minutes from hand-over to resolve.';
COMMENT ON COLUMN liandong.division_kpis.escalations IS 'Tasks that left it one tier up (missed deadline or reject).';
COMMENT ON COLUMN liandong.division_kpis.false_alarms IS 'Tasks it closed as false_alarm.';
COMMENT ON COLUMN liandong.camera_reliability.device_id IS 'Camera (GB/T 28181 id).';
COMMENT ON COLUMN liandong.camera_reliability.name IS 'Camera name.';
COMMENT ON COLUMN liandong.camera_reliability.grid_code IS 'Grid of the camera.';
COMMENT ON COLUMN liandong.camera_reliability.alerts IS 'Alerts stored from it.';
COMMENT ON COLUMN liandong.camera_reliability.confirmed IS 'Alerts whose incident a report confirmed or that was resolved.';
COMMENT ON COLUMN liandong.camera_reliability.false_alarms IS 'Alerts whose incident was closed as false_alarm.';
COMMENT ON COLUMN liandong.camera_reliability.false_alarm_pct IS 'false_alarms as a percentage of alerts.';
COMMENT ON COLUMN liandong.camera_reliability.last_alert_at IS 'Observed time of its latest alert.';
COMMENT ON COLUMN liandong.grid_worker_load.worker_id IS 'Grid worker.';
COMMENT ON COLUMN liandong.grid_worker_load.name IS 'Name.';
COMMENT ON COLUMN liandong.grid_worker_load.grid_code IS 'Their grid.';
COMMENT ON COLUMN liandong.grid_worker_load.village_code IS 'Village of the grid.';
COMMENT ON COLUMN liandong.grid_worker_load.open_verify_tasks IS 'Verify tasks open in the grid.';
COMMENT ON COLUMN liandong.grid_worker_load.open_tasks_in_grid IS 'All tasks open in the grid.';
COMMENT ON COLUMN liandong.grid_worker_load.reports_last_7_days IS 'Reports the worker filed in the last 7 days.';
COMMENT ON COLUMN liandong.grid_worker_load.resolved_in_grid_last_7_days IS 'Tasks in the grid resolved in the last 7 days.';

-- ---------------------------------------------------------------- operator role
-- Roles are cluster-wide and creating one needs CREATEROLE: where the migrating role (the
-- database owner) may not, a DBA creates it first (deploy/dba-setup.sql). Amended after release
-- (the role was created unconditionally); Migrator.amended accepts the first text's checksum.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'liandong_operator') THEN
        CREATE ROLE liandong_operator NOLOGIN;
        COMMENT ON ROLE liandong_operator IS 'Operators (psql, Grafana): may read the assessment views in schema liandong and nothing else. GRANT liandong_operator TO a login role.';
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another database of the cluster created it meanwhile
END
$$;
GRANT USAGE ON SCHEMA liandong TO liandong_operator;
GRANT SELECT ON liandong.open_incidents, liandong.overdue_tasks, liandong.division_kpis, liandong.camera_reliability,
    liandong.grid_worker_load TO liandong_operator;
