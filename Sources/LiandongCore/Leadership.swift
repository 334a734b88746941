/// Who leads an active/standby group of daemons on one database (ha.enabled), as decisions only:
/// the service around it holds the advisory lock on a dedicated session, reads and writes the
/// lease row (liandong.ha_lease) and ends sessions; this type says what to do next.
///
/// The lock decides. It is released when the leader's session ends (the process exits or is
/// killed, the session is terminated, the host's connection is reset), so a standby that finds it
/// free takes it. A paused or hung leader keeps its session, and so the lock: the lease (renewed by
/// the leader every `tick`, aged by the database's clock) shows it. A standby that finds the lease
/// older than `leaseExpiry` takes the lease from that holder (compare-and-set on holder and epoch),
/// ends the holder's sessions - which releases the lock - and then takes the lock. A leader that
/// cannot renew, or finds the lease taken, steps down at once: it must not write again.
public struct Leadership: Sendable {
    /// Timing derived from ha.takeover_s.
    public struct Timing: Sendable, Equatable {
        public let takeover: Double
        public init(takeover: Double) { self.takeover = takeover }
        /// The leader renews the lease, and a standby looks at the lock and lease, this often.
        public var tick: Double { takeover / 10 }
        /// A lease older than this (the database's clock) means the leader is paused or hung.
        /// Detection (this + one tick) and promotion fit in `takeover`.
        public var leaseExpiry: Double { takeover * 0.6 }
        /// A leader whose last successful renewal is this old steps down - before any standby may
        /// take the lease from it (its own clock; a paused process finds this when it wakes).
        public var renewDeadline: Double { takeover * 0.5 }
    }

    /// The lease row as a daemon read it.
    public struct Lease: Sendable, Equatable {
        public let holder: String
        public let epoch: Int64
        /// Seconds since the holder last renewed (database time).
        public let age: Double
        public init(holder: String, epoch: Int64, age: Double) {
            self.holder = holder
            self.epoch = epoch
            self.age = age
        }
    }

    /// Why a daemon took the lead (liandong.ha_takeovers.reason).
    public enum Reason: String, Sendable, Equatable {
        case first, lockFree = "lock_free", leaseExpired = "lease_expired"
    }

    /// A change of leader, to be written with the lease.
    public struct Takeover: Sendable, Equatable {
        public let epoch: Int64
        /// The holder before; its sessions are ended (nil: nobody led before).
        public let previous: Lease?
        public let reason: Reason
        public init(epoch: Int64, previous: Lease?, reason: Reason) {
            self.epoch = epoch
            self.previous = previous
            self.reason = reason
        }
    }

    public enum StandbyAction: Sendable, Equatable {
        /// The lock is ours: write the lease (epoch), end the previous holder's sessions, lead.
        case lead(Takeover)
        /// The holder stopped renewing: take the lease from it (only if it still names it), end
        /// its sessions, then try the lock again at once.
        case evict(Lease)
        /// Someone leads: look again after a tick.
        case wait
    }

    public enum LeaderAction: Sendable, Equatable {
        /// Still leading: renew again after a tick.
        case stay
        /// Stop writing now (the daemon exits; its supervisor starts it again as a standby).
        case stepDown(String)
    }

    /// How a renewal went.
    public enum Renewal: Sendable, Equatable {
        case renewed
        /// The lease names another holder or epoch: someone took it.
        case taken
        /// The leadership session is gone: the lock went with it.
        case sessionLost(String)
        /// The statement failed or timed out on a live session.
        case failed(String)
    }

    public let me: String
    public let timing: Timing
    public private(set) var isLeader = false
    public private(set) var epoch: Int64 = 0
    /// The lease this standby took from a stalled holder, until it holds the lock.
    private var evicted: Lease?
    /// When the leader last renewed (its monotonic clock).
    private var renewedAt = 0.0

    public init(me: String, timing: Timing) {
        self.me = me
        self.timing = timing
    }

    /// A standby's step, after trying the lock (`gotLock`) and reading the lease (nil: no row).
    public mutating func standby(gotLock: Bool, lease: Lease?, now: Double) -> StandbyAction {
        precondition(!isLeader, "standby() called on the leader")
        if gotLock {
            let takeover: Takeover
            if let lease, lease.holder == me, let evicted {
                takeover = Takeover(epoch: lease.epoch + 1, previous: evicted, reason: .leaseExpired)
            } else if let lease {
                takeover = Takeover(epoch: lease.epoch + 1, previous: lease.holder == me ? nil : lease, reason: .lockFree)
            } else {
                takeover = Takeover(epoch: 1, previous: nil, reason: .first)
            }
            evicted = nil
            isLeader = true
            epoch = takeover.epoch
            renewedAt = now
            return .lead(takeover)
        }
        guard let lease else { return .wait }  // a leader between its lock and its lease
        if lease.holder == me {
            // Taken from a stalled holder: its sessions were ended, the lock follows shortly.
            return .wait
        }
        evicted = nil  // another daemon holds the lease (it may have evicted the same holder first)
        guard lease.age > timing.leaseExpiry else { return .wait }
        return .evict(lease)
    }

    /// After `.evict(lease)`: whether the compare-and-set took it (false: another standby did,
    /// or the holder renewed meanwhile).
    public mutating func evicted(_ lease: Lease, took: Bool) {
        evicted = took ? lease : nil
    }

    /// The leader's step before renewing: a leader whose last renewal is too old (it was paused,
    /// or renewals kept failing) steps down without asking.
    public func leaderDue(now: Double) -> LeaderAction {
        precondition(isLeader, "leaderDue() called on a standby")
        let since = now - renewedAt
        if since > timing.renewDeadline {
            return .stepDown("the lease was last renewed \(Self.seconds(since)) ago "
                + "(deadline \(Self.seconds(timing.renewDeadline))):"
                + " a standby may have taken over")
        }
        return .stay
    }

    /// The leader's step after a renewal.
    public mutating func leader(_ renewal: Renewal, now: Double) -> LeaderAction {
        precondition(isLeader, "leader() called on a standby")
        switch renewal {
        case .renewed:
            renewedAt = now
            return .stay
        case .taken:
            return .stepDown("another daemon took the lease (epoch \(epoch) is over)")
        case .sessionLost(let why):
            return .stepDown("the leadership session was lost, and the lock with it: \(why)")
        case .failed:
            return leaderDue(now: now)
        }
    }

    static func seconds(_ s: Double) -> String {
        let tenths = (s * 10).rounded()
        return "\(Int(tenths) / 10).\(Int(tenths) % 10) s"
    }
}
