-- At start the daemon seeds its per-gateway seq-gap tracker with the highest seq stored for each
-- gateway. Computing that from events was a full scan of the largest table on every start; the
-- writer now keeps it here, in the same transaction as the events.
CREATE TABLE liandong.gateway_seqs (
    gateway_id  text PRIMARY KEY,
    highest_seq bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE liandong.gateway_seqs IS 'Highest gateway_seq stored per gateway (SUB-path loss across a restart shows as a gap from here).';
COMMENT ON COLUMN liandong.gateway_seqs.gateway_id IS 'Publishing gateway (events.gateway_id).';
COMMENT ON COLUMN liandong.gateway_seqs.highest_seq IS 'Highest events.gateway_seq stored for it.';
COMMENT ON COLUMN liandong.gateway_seqs.updated_at IS 'Last batch that raised it.';

INSERT INTO liandong.gateway_seqs (gateway_id, highest_seq)
SELECT gateway_id, max(gateway_seq) FROM liandong.events
WHERE gateway_id IS NOT NULL AND gateway_seq IS NOT NULL
GROUP BY gateway_id;
