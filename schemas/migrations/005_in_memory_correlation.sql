-- Correlation moved into the writer (an in-memory window of recent events of open incidents, see
-- README "How a batch is written"); events and incidents are now written with COPY. The per-event
-- server-side function is no longer called.
DROP FUNCTION liandong.ingest_batch(jsonb);
