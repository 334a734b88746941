-- Scoped operators: `liandongd operator grant ROLE --scope PREFIX` makes ROLE a read-only operator
-- (a member of liandong_operator) who sees only the rows of divisions whose code starts with
-- PREFIX, so a township's QGIS or Grafana connection sees that township. Enforced by row-level
-- security on the tables operators read, and the views run with the rights of who queries them
-- (security_invoker), so the same policies apply through every view. The daemon (the tables'
-- owner) and superusers are not subject to the policies. Rows are placed by where things
-- happened: events, incidents and tasks by their grid, a task's history and updates with their
-- task (so a township sees the whole path of its tasks, escalations to the county included),
-- feed messages by their topic; dead letters carry no division and are seen by unscoped
-- operators (scope '') only.
CREATE TABLE liandong.operator_scopes (
    role       name PRIMARY KEY,
    scope      text NOT NULL CHECK (scope ~ '^[0-9]{0,15}$'),
    granted_at timestamptz NOT NULL DEFAULT now(),
    granted_by name NOT NULL DEFAULT current_user
);
COMMENT ON TABLE liandong.operator_scopes IS 'Read-only operators and the division-code prefix each may see (liandongd operator grant/revoke/list). A login that is a member of several of these roles sees the union.';
COMMENT ON COLUMN liandong.operator_scopes.role IS 'A role granted liandong_operator: a login (grafana_620922100) or a group its logins are members of.';
COMMENT ON COLUMN liandong.operator_scopes.scope IS 'Division-code prefix: 620922100 one township and everything under it; 620922 the county; empty: everything, dead letters included.';
COMMENT ON COLUMN liandong.operator_scopes.granted_at IS 'When the scope was last set.';
COMMENT ON COLUMN liandong.operator_scopes.granted_by IS 'Who set it.';

-- Operators who could read everything before this migration keep doing so.
INSERT INTO liandong.operator_scopes (role, scope)
SELECT m.rolname, '' FROM pg_auth_members a JOIN pg_roles o ON o.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
WHERE o.rolname = 'liandong_operator' AND NOT a.admin_option  -- not the owner that grants it
ON CONFLICT DO NOTHING;

-- The LIKE patterns of the querying role's scopes ('620922100%'); none when it has none.
-- Policies call it as an uncorrelated subquery, so it runs once per query, not once per row. It reads
-- operator_scopes with the caller's rights: an operator sees its own rows there (own_scope).
CREATE FUNCTION liandong.operator_patterns() RETURNS SETOF text
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
    SELECT s.scope || '%'
    FROM liandong.operator_scopes s JOIN pg_roles r ON r.rolname = s.role  -- a dropped role matches nothing
    WHERE pg_has_role(current_user, r.oid, 'MEMBER')
$$;
COMMENT ON FUNCTION liandong.operator_patterns() IS 'LIKE patterns of the division-code prefixes the current role may see (row-level security of operators).';
REVOKE ALL ON FUNCTION liandong.operator_patterns() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION liandong.operator_patterns() TO liandong_operator;

-- Reference data and facts, by their own division or grid code (a camera outside every grid:
-- unscoped operators only).
ALTER TABLE liandong.divisions ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.divisions FOR SELECT TO liandong_operator
    USING (code LIKE ANY (SELECT liandong.operator_patterns()));
ALTER TABLE liandong.grids ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.grids FOR SELECT TO liandong_operator
    USING (grid_code LIKE ANY (SELECT liandong.operator_patterns()));
ALTER TABLE liandong.grid_workers ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.grid_workers FOR SELECT TO liandong_operator
    USING (grid_code LIKE ANY (SELECT liandong.operator_patterns()));
ALTER TABLE liandong.cameras ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.cameras FOR SELECT TO liandong_operator
    USING (coalesce(grid_code, '') LIKE ANY (SELECT liandong.operator_patterns()));
ALTER TABLE liandong.incidents ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.incidents FOR SELECT TO liandong_operator
    USING (grid_code LIKE ANY (SELECT liandong.operator_patterns()));
ALTER TABLE liandong.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.events FOR SELECT TO liandong_operator
    USING (grid_code LIKE ANY (SELECT liandong.operator_patterns()));
ALTER TABLE liandong.tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.tasks FOR SELECT TO liandong_operator
    USING (grid_code LIKE ANY (SELECT liandong.operator_patterns()));
-- With their task (the subquery is itself under the tasks policy).
ALTER TABLE liandong.task_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.task_history FOR SELECT TO liandong_operator
    USING (EXISTS (SELECT 1 FROM liandong.tasks t WHERE t.id = task_history.task_id));
ALTER TABLE liandong.task_updates ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.task_updates FOR SELECT TO liandong_operator
    USING (EXISTS (SELECT 1 FROM liandong.tasks t WHERE t.id::text = task_updates.task_id));
-- task.<division or grid code>.
ALTER TABLE liandong.feed ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.feed FOR SELECT TO liandong_operator
    USING (substr(topic, 6) LIKE ANY (SELECT liandong.operator_patterns()));
-- No division: unscoped operators only.
ALTER TABLE liandong.rejected_messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.rejected_messages FOR SELECT TO liandong_operator
    USING ('%' = ANY (SELECT liandong.operator_patterns()));

-- The views read with the querying role's rights, so the policies apply through them; an operator
-- therefore reads the tables behind them (still under the policies).
ALTER VIEW liandong.camera_reliability SET (security_invoker = true);
ALTER VIEW liandong.dead_letters SET (security_invoker = true);
ALTER VIEW liandong.division_kpis SET (security_invoker = true);
ALTER VIEW liandong.division_names SET (security_invoker = true);
ALTER VIEW liandong.event_log SET (security_invoker = true);
ALTER VIEW liandong.feed_log SET (security_invoker = true);
ALTER VIEW liandong.feed_status SET (security_invoker = true);
ALTER VIEW liandong.grid_worker_load SET (security_invoker = true);
ALTER VIEW liandong.open_incidents SET (security_invoker = true);
ALTER VIEW liandong.overdue_tasks SET (security_invoker = true);
ALTER VIEW liandong.task_timeline SET (security_invoker = true);
GRANT SELECT ON liandong.divisions, liandong.grids, liandong.grid_workers, liandong.cameras, liandong.incidents,
    liandong.events, liandong.tasks, liandong.task_history, liandong.task_updates, liandong.feed, liandong.feed_head,
    liandong.feed_published, liandong.rejected_messages TO liandong_operator;
-- An operator's own scope (and no one else's).
ALTER TABLE liandong.operator_scopes ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_scope ON liandong.operator_scopes FOR SELECT TO liandong_operator
    USING (EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = operator_scopes.role AND pg_has_role(current_user, r.oid, 'MEMBER')));
GRANT SELECT ON liandong.operator_scopes TO liandong_operator;
