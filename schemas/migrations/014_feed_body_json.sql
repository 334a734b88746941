-- The feed keeps each task message as the text that was published. As jsonb, PostgreSQL stored a
-- normalised document (keys reordered, spaces added), so a message replayed to a dispatcher or
-- republished after a restart was not byte for byte the one first sent, although the column says
-- "exactly as published". json keeps the text; it also spares COPY of the feed converting every
-- ~1 KB body into jsonb (about half of that statement's time in tools/bench). Rows written before
-- this migration keep their normalised text. Rewrites the table once, at the first start after
-- the upgrade (a large feed takes a while; nothing else writes to it then).
-- For jsonb operators in your own queries: body::jsonb.
DROP FUNCTION IF EXISTS liandong.append_feed(jsonb);  -- unused since the writer appends by COPY (005)
ALTER TABLE liandong.feed ALTER COLUMN body TYPE json USING body::text::json;
ALTER TABLE liandong.feed ALTER COLUMN body SET STATISTICS 0;
COMMENT ON COLUMN liandong.feed.body IS 'The v1 task message exactly as published (json: the text itself; cast to jsonb for jsonb operators).';
