-- Active/standby (ha.enabled): several daemons on one database, one leads. Leadership is a
-- session advisory lock held by the leader on a dedicated session; this lease says who holds it
-- and is renewed by the leader every ha.takeover_s / 10 (the database's clock). A standby that
-- finds the lock free takes it; one that finds the lease older than 0.6 x ha.takeover_s (the
-- leader is paused or hung: its sessions, and so its lock, stay open) takes the lease, ends the
-- old leader's sessions (application_name) and then takes the lock. Every session of a daemon
-- checks at connect that the lease names it, so a paused leader that wakes writes nothing.
CREATE TABLE liandong.ha_lease (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    holder     text NOT NULL,
    epoch      bigint NOT NULL,
    acquired_at timestamptz NOT NULL,
    renewed_at timestamptz NOT NULL
);
COMMENT ON TABLE liandong.ha_lease IS 'Who leads the daemons of this database (ha.enabled); one row once a daemon has led. A lease not renewed for 0.6 x ha.takeover_s is taken over by a standby.';
COMMENT ON COLUMN liandong.ha_lease.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN liandong.ha_lease.holder IS 'The leading daemon: its sessions'' application_name (liandongd/HOST/INSTANCE).';
COMMENT ON COLUMN liandong.ha_lease.epoch IS 'Increases at every change of leader.';
COMMENT ON COLUMN liandong.ha_lease.acquired_at IS 'When the holder took the lead.';
COMMENT ON COLUMN liandong.ha_lease.renewed_at IS 'The holder''s latest renewal (database time); now() - renewed_at is the lease''s age.';

CREATE TABLE liandong.ha_takeovers (
    epoch           bigint PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    holder          text NOT NULL,
    previous_holder text,
    reason          text NOT NULL CHECK (reason IN ('first', 'lock_free', 'lease_expired')),
    lease_age_s     float8
);
COMMENT ON TABLE liandong.ha_takeovers IS 'Every change of leader (ha.enabled): when, who, from whom and why. Operators measure failovers here.';
COMMENT ON COLUMN liandong.ha_takeovers.epoch IS 'The new leader''s epoch (ha_lease.epoch).';
COMMENT ON COLUMN liandong.ha_takeovers.at IS 'When the new leader took the lead.';
COMMENT ON COLUMN liandong.ha_takeovers.holder IS 'The new leader (application_name of its sessions).';
COMMENT ON COLUMN liandong.ha_takeovers.previous_holder IS 'The leader before (NULL for the first).';
COMMENT ON COLUMN liandong.ha_takeovers.reason IS 'first (no leader before), lock_free (the leader stopped, died, or lost its session) or lease_expired (the leader stopped renewing: paused or hung; its sessions were ended).';
COMMENT ON COLUMN liandong.ha_takeovers.lease_age_s IS 'Seconds since the previous leader last renewed, at the takeover.';

-- The county's machinery, not a division's: operators of the whole county read it.
ALTER TABLE liandong.ha_lease ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.ha_lease FOR SELECT TO liandong_operator
    USING ('%' IN (SELECT liandong.operator_patterns()));
ALTER TABLE liandong.ha_takeovers ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.ha_takeovers FOR SELECT TO liandong_operator
    USING ('%' IN (SELECT liandong.operator_patterns()));
GRANT SELECT ON liandong.ha_lease, liandong.ha_takeovers TO liandong_operator;
