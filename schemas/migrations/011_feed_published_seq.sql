-- The publisher sends the feed strictly in seq order, so "published" is one number: everything up
-- to it went out. It used to mark each row (feed.published_at): a second write of every ~1 KB feed
-- row, never HOT (feed_unpublished_idx depends on the column), a dead row version per message
-- for autovacuum, and 8-10 µs of PostgreSQL time per event (tools/bench, pg_stat_statements). Now
-- the publisher advances one row here after each send; at start it republishes what is above it
-- (same seq and message_id; dispatchers deduplicate by message_id).
CREATE TABLE liandong.feed_published (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq          bigint NOT NULL DEFAULT 0,
    published_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE liandong.feed_published IS 'How far the feed has gone out on the PUB socket: every feed row with seq <= seq was published (rows above it are republished at start).';
COMMENT ON COLUMN liandong.feed_published.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN liandong.feed_published.seq IS 'Highest feed seq published; the feed is published strictly in seq order.';
COMMENT ON COLUMN liandong.feed_published.published_at IS 'When seq last advanced.';

-- Published through the last row before the first unpublished one (or everything).
INSERT INTO liandong.feed_published (seq)
SELECT coalesce((SELECT min(seq) - 1 FROM liandong.feed WHERE published_at IS NULL), (SELECT seq FROM liandong.feed_head));

DROP INDEX liandong.feed_unpublished_idx;
ALTER TABLE liandong.feed DROP COLUMN published_at;
