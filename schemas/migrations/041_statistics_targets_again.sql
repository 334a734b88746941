-- Migration 010 gave every column of the tables the writer fills a statistics target of 20 (0 for
-- the JSON documents) because ANALYZE of them runs on the cores ingest needs. Columns added since
-- (events.muted_by and parent_device_id, incidents.related_incident_ids, tasks.counts_sent_at and
-- update_due_at, task_history.peer) kept the default, 100 - and ANALYZE samples 300 rows per unit
-- of the largest target in the table, so each of those columns alone brought back the 30,000-row
-- sample: after a dense storm the sweeper's ANALYZE of the day's events took 0.45-0.6 s of CPU, of
-- incidents 0.2-0.3 s, each a 30-60 ms step in new alerts' latency (issue 31). event_keys and
-- worker_positions, filled as fast, get the same. A test (HotPathTests) keeps every column of
-- these tables at 20 or 0, so a column added later cannot bring it back unseen.
-- On a partitioned table ALTER ... SET STATISTICS reaches every partition; new partitions copy the
-- parent's targets (ensure_day_partitions).
DO $$
BEGIN
    EXECUTE coalesce((
        SELECT string_agg(format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS 20', a.attrelid::regclass, a.attname), '; ')
        FROM pg_attribute a
        WHERE a.attrelid IN ('liandong.events'::regclass, 'liandong.incidents'::regclass, 'liandong.tasks'::regclass,
                             'liandong.task_history'::regclass, 'liandong.feed'::regclass, 'liandong.event_keys'::regclass,
                             'liandong.worker_positions'::regclass)
          AND a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget < 0), 'SELECT 1');
END;
$$;
