-- The publisher records how far the feed went out at most ten times a second (and at once when it
-- drains), not after every batch: in a storm that was ~470 UPDATEs a second of this one row, each a
-- commit, competing with the writer (issue 31). What the comments promise is unchanged at rest; in a
-- burst the last tenth of a second's messages can be out already and not yet recorded.
COMMENT ON TABLE liandong.feed_published IS 'How far the feed has gone out on the PUB socket: every feed row with seq <= seq was published (rows above it are republished at start). Recorded at most ten times a second: rows just above it may be out already.';
COMMENT ON VIEW liandong.feed_status IS 'The task feed: highest seq committed, highest published (strictly in seq order) and since when, and how many wait (0 at rest, up to a tenth of a second''s messages in a burst - recorded ten times a second at most; republished at start).';
