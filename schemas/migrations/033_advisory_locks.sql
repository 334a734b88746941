-- The daemon's writer and leadership locks are session advisory locks: any login that may run
-- pg_try_advisory_lock could take them first and hold the daemon back (standing by, storing
-- nothing) for as long as it liked - a read-only operator included. EXECUTE on the advisory-lock
-- functions is for the database's owner only. Revoking it from PUBLIC needs a superuser (the
-- functions are the bootstrap superuser's): done here when the migration runs as one, otherwise
-- by deploy/dba-setup.sql; `liandongd run` says at start when it is not done.
DO $$
DECLARE
    f regprocedure;
    owner name := (SELECT pg_get_userbyid(d.datdba) FROM pg_database d WHERE d.datname = current_database());
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE NOTICE 'advisory-lock functions stay executable by PUBLIC: a superuser runs deploy/dba-setup.sql (it revokes them)';
        RETURN;
    END IF;
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
             WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname LIKE 'pg\_%advisory%' LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, owner);
    END LOOP;
END;
$$;
