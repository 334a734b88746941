-- Bounded incidents: no two events of one incident farther apart than the category's
-- max_span_m, its observed times within max_duration_s. An event that would break a bound goes
-- to the nearest incident it fits, or opens one; an incident opened so names the incidents it
-- could not join (a crowd drifting along a street becomes a chain of linked incidents, each with
-- its own task, and the dispatcher sees where it came from).
ALTER TABLE liandong.incidents ADD COLUMN related_incident_ids uuid[] NOT NULL DEFAULT '{}';
COMMENT ON COLUMN liandong.incidents.related_incident_ids IS 'Incidents its first event was within reach of but could not join without breaking their max_span_m or max_duration_s (nearest first); task messages carry them as related_incident_ids.';
