-- The assessment over any period (the weekly or monthly report, 督导考核): the same figures as
-- division_kpis, whose rows are per day, for a whole period at once. task_assignments is each
-- hand-over of a task to a division with what became of it there; liandong.assessment(from, to)
-- aggregates the hand-overs of the days [from, to] (China Standard Time) per division.
-- Security invoker, like every view: an operator sees the figures of the divisions in scope.
CREATE VIEW liandong.task_assignments WITH (security_invoker = true) AS
WITH handovers AS (
    SELECT h.id, h.task_id, h.division_code, h.tier, h.at, h.respond_by, h.resolve_by,
           lead(h.at) OVER (PARTITION BY h.task_id ORDER BY h.at, h.id) AS handed_on_at
    FROM liandong.task_history h
    WHERE h.event IN ('created', 'escalated', 'rejected', 'upgraded')
)
SELECT a.task_id, a.division_code, a.tier, a.at, a.respond_by, a.resolve_by, a.handed_on_at,
       (SELECT min(x.at) FROM liandong.task_history x WHERE x.task_id = a.task_id AND x.event = 'accepted'
          AND x.at >= a.at AND (a.handed_on_at IS NULL OR x.at < a.handed_on_at)) AS accepted_at,
       (SELECT min(x.at) FROM liandong.task_history x WHERE x.task_id = a.task_id AND x.event = 'resolved'
          AND x.at >= a.at AND (a.handed_on_at IS NULL OR x.at < a.handed_on_at)) AS resolved_at,
       EXISTS (SELECT 1 FROM liandong.task_history x WHERE x.task_id = a.task_id AND x.event = 'false_alarm'
          AND x.at >= a.at AND (a.handed_on_at IS NULL OR x.at < a.handed_on_at)) AS false_alarm,
       EXISTS (SELECT 1 FROM liandong.task_history x WHERE x.task_id = a.task_id AND x.event IN ('escalated', 'rejected')
          AND x.from_division_code = a.division_code AND x.at >= a.at
          AND (a.handed_on_at IS NULL OR x.at <= a.handed_on_at)) AS escalated
FROM handovers a
-- An upgrade at the same division is the same hand-over; count it once.
WHERE NOT EXISTS (SELECT 1 FROM liandong.task_history p WHERE p.task_id = a.task_id AND p.id < a.id
                    AND p.event IN ('created', 'escalated', 'rejected', 'upgraded')
                    AND p.division_code = a.division_code
                    AND NOT EXISTS (SELECT 1 FROM liandong.task_history q WHERE q.task_id = a.task_id
                                      AND q.id > p.id AND q.id < a.id AND q.division_code <> a.division_code
                                      AND q.event IN ('created', 'escalated', 'rejected', 'upgraded')));
COMMENT ON VIEW liandong.task_assignments IS 'Each hand-over of a task to a division (created, upgraded, escalated or rejected to it) with what became of it there: accepted, resolved, false alarm, escalated out; the rows liandong.assessment() and division_kpis count.';
COMMENT ON COLUMN liandong.task_assignments.task_id IS 'The task.';
COMMENT ON COLUMN liandong.task_assignments.division_code IS 'The division it was handed to.';
COMMENT ON COLUMN liandong.task_assignments.tier IS 'Its tier.';
COMMENT ON COLUMN liandong.task_assignments.at IS 'When it was handed over.';
COMMENT ON COLUMN liandong.task_assignments.respond_by IS 'Response deadline of that hand-over.';
COMMENT ON COLUMN liandong.task_assignments.resolve_by IS 'Resolution deadline of that hand-over.';
COMMENT ON COLUMN liandong.task_assignments.handed_on_at IS 'When it was handed on to another division (NULL: still there, or finished there).';
COMMENT ON COLUMN liandong.task_assignments.accepted_at IS 'Accepted there, when.';
COMMENT ON COLUMN liandong.task_assignments.resolved_at IS 'Resolved there, when.';
COMMENT ON COLUMN liandong.task_assignments.false_alarm IS 'Marked false_alarm there.';
COMMENT ON COLUMN liandong.task_assignments.escalated IS 'Escalated or rejected out of there.';

-- division_kpis now counts the same rows (one definition of a hand-over's outcome; the figures
-- are unchanged).
CREATE OR REPLACE VIEW liandong.division_kpis AS
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
GROUP BY o.division_code, d.name, d.level, (o.at AT TIME ZONE 'Asia/Shanghai')::date;
ALTER VIEW liandong.division_kpis SET (security_invoker = true);

CREATE FUNCTION liandong.assessment(p_from date, p_to date)
RETURNS TABLE (division_code text, division_name text, level text, tasks_received bigint, accepted bigint,
               accepted_on_time_pct numeric, resolved bigint, resolved_on_time_pct numeric,
               median_minutes_to_accept numeric, median_minutes_to_resolve numeric, escalations bigint, false_alarms bigint)
LANGUAGE sql STABLE AS $$
    SELECT o.division_code, d.name, d.level,
           count(*),
           count(o.accepted_at),
           round(100.0 * count(*) FILTER (WHERE o.accepted_at <= o.respond_by) / count(*), 1),
           count(o.resolved_at),
           round(100.0 * count(*) FILTER (WHERE o.resolved_at <= o.resolve_by) / count(*), 1),
           round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM o.accepted_at - o.at) / 60))::numeric, 1),
           round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM o.resolved_at - o.at) / 60))::numeric, 1),
           count(*) FILTER (WHERE o.escalated),
           count(*) FILTER (WHERE o.false_alarm)
    FROM liandong.task_assignments o
    JOIN liandong.divisions d ON d.code = o.division_code
    WHERE o.at >= p_from::timestamp AT TIME ZONE 'Asia/Shanghai'
      AND o.at < (p_to + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'
    GROUP BY o.division_code, d.name, d.level
    ORDER BY o.division_code
$$;
COMMENT ON FUNCTION liandong.assessment(date, date) IS 'Assessment (督导考核) per division over the days [p_from, p_to] (China Standard Time): the figures of division_kpis for the whole period (SELECT * FROM liandong.assessment(''2026-11-23'', ''2026-11-29'')). liandongd report prints them.';
GRANT SELECT ON liandong.task_assignments TO liandong_operator;
GRANT EXECUTE ON FUNCTION liandong.assessment(date, date) TO liandong_operator;
