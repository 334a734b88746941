-- Visible loss on the SUB path: runs of per-gateway alert seqs that never arrived.
CREATE TABLE liandong.ingest_gaps (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gateway_id  text NOT NULL,
    from_seq    bigint NOT NULL,
    to_seq      bigint NOT NULL CHECK (to_seq >= from_seq),
    missing     bigint NOT NULL GENERATED ALWAYS AS (to_seq - from_seq + 1) STORED,
    detected_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_gaps_gateway_idx ON liandong.ingest_gaps (gateway_id, detected_at);
COMMENT ON TABLE liandong.ingest_gaps IS 'Alerts lost before reaching Liandong on the PUB/SUB path: per-gateway seq runs that did not arrive within ingest.gap_grace_ms (reordering and repeats are not gaps). Gateways that must lose nothing use ingest.ack_bind.';
COMMENT ON COLUMN liandong.ingest_gaps.id IS 'Gap number.';
COMMENT ON COLUMN liandong.ingest_gaps.gateway_id IS 'Gateway whose seqs are missing.';
COMMENT ON COLUMN liandong.ingest_gaps.from_seq IS 'First missing seq.';
COMMENT ON COLUMN liandong.ingest_gaps.to_seq IS 'Last missing seq.';
COMMENT ON COLUMN liandong.ingest_gaps.missing IS 'How many messages are missing.';
COMMENT ON COLUMN liandong.ingest_gaps.detected_at IS 'When the gap was declared.';
