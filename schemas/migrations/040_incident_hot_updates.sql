-- An incident's row changes with every batch that adds to it (counts, last observed time,
-- priority): under a dense storm about once an event. Its open-incidents index held
-- last_observed_at, so each of those updates wrote a new entry into both of the table's indexes;
-- without it, and with room left on each page, PostgreSQL updates the row in place (a HOT update:
-- no index entry at all). The index's readers (the writer's window load: the open incidents, by
-- category) lose nothing: open incidents are thousands, not millions.
-- Applies to pages written from now on; a VACUUM FULL or pg_repack would apply it to the rest.

DROP INDEX liandong.incidents_open_idx;
CREATE INDEX incidents_open_idx ON liandong.incidents (category) WHERE status = 'open';
COMMENT ON INDEX liandong.incidents_open_idx IS 'Open incidents by category (partial): the writer''s window load. Holds no column a growing incident changes, so those updates stay HOT.';
ALTER TABLE liandong.incidents SET (fillfactor = 70);
