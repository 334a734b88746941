-- An alert's or report's id is a duplicate only of the same sender's id. Before, one gateway that
-- sent another's id first (gw-y:000777, inside its own area) had the other's real alert answered
-- "duplicate" and never stored. The owner is the authenticated peer (security.curve), else the
-- gateway_id the message declares, else ''.
ALTER TABLE liandong.event_keys ADD COLUMN owner text NOT NULL DEFAULT '';
COMMENT ON COLUMN liandong.event_keys.owner IS 'Whose id it is: the authenticated peer that sent it (security.curve), else the gateway_id it declared, else ''''. Part of the deduplication key: one gateway cannot take another''s ids.';
ALTER TABLE liandong.event_keys DROP CONSTRAINT event_keys_pkey;
-- The owner last: retention finds a day's keys by (source, source_id) alone.
ALTER TABLE liandong.event_keys ADD PRIMARY KEY (source, source_id, owner);
COMMENT ON COLUMN liandong.event_keys.source_id IS 'alert_id or report_id: unique per source and owner.';
COMMENT ON TABLE liandong.event_keys IS 'One row per stored event: its source, id and owner (unique: the deduplication key) and its observed time, which finds its day partition (JOIN liandong.events USING (source, source_id, observed_at)). Retention removes a day''s keys with its partition.';
