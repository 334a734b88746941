-- Day-2 data lifecycle: the sweeper removes, in batches, events older than retention.events_days
-- (observed time), published feed messages older than retention.feed_days, the history of
-- finished tasks older than retention.task_history_days and dead letters older than
-- retention.dead_letter_days. BRIN indexes find the old rows of these append-mostly tables for
-- a few pages of index (a B-tree on events.observed_at would cost every insert). Stored
-- dead-letter bytes are capped per hour (retention.dead_letter_bytes_per_hour) through
-- dead_letter_hours, so junk traffic cannot fill the disk: beyond the cap a dead letter keeps its
-- row, size, reason and detail, not its bytes.
CREATE INDEX events_observed_brin ON liandong.events USING brin (observed_at);
CREATE INDEX feed_created_brin ON liandong.feed USING brin (created_at);
CREATE INDEX task_history_at_brin ON liandong.task_history USING brin (at);
CREATE INDEX rejected_messages_received_brin ON liandong.rejected_messages USING brin (received_at);

CREATE TABLE liandong.dead_letter_hours (
    hour  timestamptz PRIMARY KEY,
    bytes bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE liandong.dead_letter_hours IS 'Raw bytes of dead letters stored per clock hour, against retention.dead_letter_bytes_per_hour (kept two days).';
COMMENT ON COLUMN liandong.dead_letter_hours.hour IS 'Start of the hour.';
COMMENT ON COLUMN liandong.dead_letter_hours.bytes IS 'Raw bytes stored in rejected_messages during that hour.';
