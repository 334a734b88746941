-- Silences (maintenance windows, like Alertmanager's): a camera being repaired, a township's
-- cameras during a drill, a category during a known event. Matching events are stored and
-- correlated as always, but make no task message; they are counted in
-- liandong_events_silenced_total. Managed with `liandongd silence add|list|expire`. A change
-- bumps reference_version, so the writer reloads its in-memory copy at once.
CREATE TABLE liandong.silences (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_prefix   text NOT NULL DEFAULT '' CHECK (device_prefix ~ '^[0-9]{0,20}$'),
    division_prefix text NOT NULL DEFAULT '' CHECK (division_prefix ~ '^[0-9]{0,15}$'),
    category        text CHECK (category <> ''),
    starts_at       timestamptz NOT NULL DEFAULT now(),
    ends_at         timestamptz NOT NULL,
    created_by      text NOT NULL CHECK (created_by <> ''),
    comment         text NOT NULL CHECK (comment <> ''),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expired_at      timestamptz,
    CHECK (ends_at > starts_at),
    -- A silence of everything would make the centre deaf: at least one matcher.
    CHECK (device_prefix <> '' OR division_prefix <> '' OR category IS NOT NULL)
);
CREATE INDEX silences_ends_idx ON liandong.silences (ends_at);
COMMENT ON TABLE liandong.silences IS 'Maintenance windows: events matching every given matcher, observed between starts_at and ends_at, are stored and correlated but make no task message (liandongd silence add|list|expire).';
COMMENT ON COLUMN liandong.silences.id IS 'Silence number (liandongd silence expire ID).';
COMMENT ON COLUMN liandong.silences.device_prefix IS 'GB/T 28181 device-id prefix of the alerts it covers ('''' any; reports have no device and match only when it is empty).';
COMMENT ON COLUMN liandong.silences.division_prefix IS 'Division-code prefix of the grid the events were placed in ('''' any).';
COMMENT ON COLUMN liandong.silences.category IS 'Category it covers (NULL any).';
COMMENT ON COLUMN liandong.silences.starts_at IS 'From (observed time of the events).';
COMMENT ON COLUMN liandong.silences.ends_at IS 'Until (exclusive); liandongd silence expire sets it to now.';
COMMENT ON COLUMN liandong.silences.created_by IS 'Who asked for it.';
COMMENT ON COLUMN liandong.silences.comment IS 'Why (required).';
COMMENT ON COLUMN liandong.silences.created_at IS 'When it was added.';
COMMENT ON COLUMN liandong.silences.expired_at IS 'When it was ended early, if it was.';
CREATE TRIGGER silences_bump_reference_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON liandong.silences
    FOR EACH STATEMENT EXECUTE FUNCTION liandong.bump_reference_version();

-- Operators read them (no division of their own: a silence concerns whoever it matches).
GRANT SELECT ON liandong.silences TO liandong_operator;
