-- What a DBA (a superuser) does once per cluster and database before `liandongd migrate` can run
-- as the database's owner, without cluster superpowers:
--   psql -U postgres -v db=liandong -v owner=liandong -f deploy/dba-setup.sql
-- It needs: SUPERUSER (CREATE EXTENSION postgis; postgis is not a trusted extension) and
-- CREATEROLE (the cluster-wide role liandong_operator). Safe to run again.
\set ON_ERROR_STOP on

-- The login role that owns the database and runs `liandongd migrate` and `liandongd run`
-- (give it a password or a pg_hba rule of your choice).
SELECT format('CREATE ROLE %I LOGIN', :'owner')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec

-- Operators (psql, Grafana, QGIS) are granted this role: read-only, scoped by row-level security.
DO $$
BEGIN
    CREATE ROLE liandong_operator NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- there already (another database of the cluster, or a run at the same moment)
END
$$;
-- The owner makes operators (`liandongd operator grant ROLE --scope PREFIX`): it may grant this role.
SELECT format('GRANT liandong_operator TO %I WITH ADMIN OPTION', :'owner') \gexec
-- The daemon reads whether its commits wait for a synchronous standby (database.synchronous):
-- how many are attached (pg_stat_replication's sync_state) needs pg_monitor.
SELECT format('GRANT pg_monitor TO %I', :'owner') \gexec
COMMENT ON ROLE liandong_operator IS 'Read-only operators (psql, Grafana, QGIS): the views and tables of schema liandong, each under row-level security to its scope in liandong.operator_scopes. Make one with liandongd operator grant ROLE --scope PREFIX.';

\connect :db
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- The daemon's writer and leadership locks are session advisory locks: a login that may take them
-- first (any login, by default: EXECUTE is PUBLIC's) could hold the daemon back. In this database
-- only the owner may (the daemon checks at start and says so when this was not done).
SELECT format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', p.oid::regprocedure)
FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname LIKE 'pg\_%advisory%' \gexec
SELECT format('GRANT EXECUTE ON FUNCTION %s TO %I', p.oid::regprocedure, :'owner')
FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname LIKE 'pg\_%advisory%' \gexec
