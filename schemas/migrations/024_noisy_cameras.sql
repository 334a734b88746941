-- Noisy cameras: a camera whose alerts were mostly false alarms (judged by dispatchers: the
-- incident's task resolved or marked false_alarm) over enough incidents has its alerts stored and
-- correlated but asking for no verify task of their own (a grid worker's report, or another
-- camera, joining the incident still makes the task). The sweeper keeps the figures here
-- (cameras.suppress_* in the config); `liandongd camera review` after a repair starts the
-- camera's count afresh and lifts the suppression at once.
CREATE TABLE liandong.camera_reviews (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id   text NOT NULL CHECK (device_id ~ '^[0-9]{20}$'),
    reviewed_by text NOT NULL CHECK (reviewed_by <> ''),
    comment     text NOT NULL CHECK (comment <> ''),
    reviewed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX camera_reviews_device_idx ON liandong.camera_reviews (device_id, reviewed_at DESC);
COMMENT ON TABLE liandong.camera_reviews IS 'A camera looked at (repaired, re-aimed, its analytics rule changed): incidents closed before the latest review no longer count towards its false-alarm share (liandongd camera review).';
COMMENT ON COLUMN liandong.camera_reviews.id IS 'Review number.';
COMMENT ON COLUMN liandong.camera_reviews.device_id IS 'Camera (GB/T 28181 id).';
COMMENT ON COLUMN liandong.camera_reviews.reviewed_by IS 'Who.';
COMMENT ON COLUMN liandong.camera_reviews.comment IS 'What was done (required).';
COMMENT ON COLUMN liandong.camera_reviews.reviewed_at IS 'When.';

CREATE TABLE liandong.camera_suppressions (
    device_id        text PRIMARY KEY CHECK (device_id ~ '^[0-9]{20}$'),
    judged           integer NOT NULL,
    false_alarms     integer NOT NULL,
    suppressed_since timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE liandong.camera_suppressions IS 'Per camera with judged incidents within cameras.suppress_days since its latest review: the figures and whether its alerts are suppressed (kept up to date by the sweeper).';
COMMENT ON COLUMN liandong.camera_suppressions.device_id IS 'Camera (GB/T 28181 id).';
COMMENT ON COLUMN liandong.camera_suppressions.judged IS 'Incidents with its alerts whose task was resolved or marked false_alarm (within cameras.suppress_days, after its latest review).';
COMMENT ON COLUMN liandong.camera_suppressions.false_alarms IS 'Of those, marked false_alarm.';
COMMENT ON COLUMN liandong.camera_suppressions.suppressed_since IS 'Since when its alerts ask for no verify task (NULL: they do).';
COMMENT ON COLUMN liandong.camera_suppressions.updated_at IS 'Figures computed then.';

CREATE VIEW liandong.noisy_cameras WITH (security_invoker = true) AS
SELECT s.device_id, c.name, c.grid_code, s.judged, s.false_alarms,
       round(100.0 * s.false_alarms / nullif(s.judged, 0), 1) AS false_alarm_pct,
       s.suppressed_since IS NOT NULL AS suppressed, s.suppressed_since,
       r.reviewed_at AS last_review_at, r.reviewed_by AS last_reviewed_by, r.comment AS last_review_comment, s.updated_at
FROM liandong.camera_suppressions s
LEFT JOIN liandong.cameras c ON c.device_id = s.device_id
LEFT JOIN LATERAL (SELECT * FROM liandong.camera_reviews r WHERE r.device_id = s.device_id
                   ORDER BY r.reviewed_at DESC LIMIT 1) r ON true
ORDER BY s.suppressed_since IS NULL, round(100.0 * s.false_alarms / nullif(s.judged, 0), 1) DESC NULLS LAST, s.device_id;
COMMENT ON VIEW liandong.noisy_cameras IS 'Cameras by false-alarm share of their judged incidents, suppressed ones first: whose alerts ask for no verify task, since when, and the latest review (liandongd camera review lifts a suppression).';
COMMENT ON COLUMN liandong.noisy_cameras.device_id IS 'Camera (GB/T 28181 id).';
COMMENT ON COLUMN liandong.noisy_cameras.name IS 'Camera name.';
COMMENT ON COLUMN liandong.noisy_cameras.grid_code IS 'Grid of the camera.';
COMMENT ON COLUMN liandong.noisy_cameras.judged IS 'Judged incidents with its alerts (resolved or false_alarm).';
COMMENT ON COLUMN liandong.noisy_cameras.false_alarms IS 'Of those, false alarms.';
COMMENT ON COLUMN liandong.noisy_cameras.false_alarm_pct IS 'False alarms, % of judged.';
COMMENT ON COLUMN liandong.noisy_cameras.suppressed IS 'Its alerts ask for no verify task.';
COMMENT ON COLUMN liandong.noisy_cameras.suppressed_since IS 'Since when.';
COMMENT ON COLUMN liandong.noisy_cameras.last_review_at IS 'Latest review (its count starts there).';
COMMENT ON COLUMN liandong.noisy_cameras.last_reviewed_by IS 'Who reviewed it.';
COMMENT ON COLUMN liandong.noisy_cameras.last_review_comment IS 'What was done.';
COMMENT ON COLUMN liandong.noisy_cameras.updated_at IS 'Figures computed then.';

GRANT SELECT ON liandong.camera_reviews, liandong.camera_suppressions, liandong.noisy_cameras TO liandong_operator;
