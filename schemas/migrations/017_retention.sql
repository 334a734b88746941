-- Day-2 data lifecycle: the sweeper removes, in batches, events received more than
-- retention.events_days ago, published feed messages older than retention.feed_days, the history
-- of finished tasks older than retention.task_history_days and dead letters older than
-- retention.dead_letter_days. It finds the boundary by a binary search on each table's key (ids
-- and seqs grow with insertion time), so no index is added to the tables ingest writes: a BRIN
-- index on each cost the write stage 6-14 % (tools/bench). Stored dead-letter bytes are capped
-- per hour (retention.dead_letter_bytes_per_hour) through dead_letter_hours, so junk traffic
-- cannot fill the disk: beyond the cap a dead letter keeps its row, size, reason and detail, not
-- its bytes.
CREATE TABLE liandong.dead_letter_hours (
    hour  timestamptz PRIMARY KEY,
    bytes bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE liandong.dead_letter_hours IS 'Raw bytes of dead letters stored per clock hour, against retention.dead_letter_bytes_per_hour (kept two days).';
COMMENT ON COLUMN liandong.dead_letter_hours.hour IS 'Start of the hour.';
COMMENT ON COLUMN liandong.dead_letter_hours.bytes IS 'Raw bytes stored in rejected_messages during that hour.';
