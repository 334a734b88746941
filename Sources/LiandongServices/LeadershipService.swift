import CoreMetrics
import Foundation
import LiandongCore
import LiandongStorage
import LibPQ
import Logging
import ServiceLifecycle
import Synchronization

/// The daemon's role, shared by its services. Without ha.enabled the daemon always leads. With it,
/// the services that bind ack, updates, replay and feed endpoints or write wait in `waitForLead`
/// until the `LeadershipService` has taken the lead; every database session they open is then
/// checked against the lease (`fence`).
public final class HARole: Sendable {
    public let enabled: Bool
    /// This daemon's name, the application_name of all its sessions (liandongd/HOST/PID-RANDOM).
    public let me: String
    private let state: Mutex<(leader: Bool, epoch: Int64)>
    /// When a live leader was last seen (wall clock): a standby keeps what arrived since
    /// ha.standby_buffer_s before it, so while nobody leads (the database is away) it keeps all.
    private let leaderSeen = Atomic<Double>(Date().timeIntervalSince1970)
    /// The leader's latest successful renewal (monotonic clock), for the watchdog.
    let renewed = Atomic<Double>(0)

    /// Always leading (ha.enabled false).
    public static func single() -> HARole { HARole(enabled: false, me: "") }

    init(enabled: Bool, me: String) {
        self.enabled = enabled
        self.me = me
        state = Mutex((!enabled, 0))
    }

    /// A name for this daemon's sessions: unique per process start, at most 63 bytes.
    public static func instanceName() -> String {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count)
        let name = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).prefix(24)
        return "liandongd/\(name)/\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
    }

    /// With ha.enabled: a standby until the leadership service promotes it.
    public static func standby() -> HARole { HARole(enabled: true, me: instanceName()) }

    public var isLeader: Bool { state.withLock { $0.leader } }
    public var epoch: Int64 { state.withLock { $0.epoch } }

    func promote(epoch: Int64) { state.withLock { $0 = (true, epoch) } }

    /// A standby saw a lease renewed within the expiry: someone leads.
    func sawLeader(at time: Double) { leaderSeen.store(time, ordering: .relaxed) }

    /// When a live leader was last seen (wall clock; the process start before any was): a standby
    /// keeps what arrived within ha.standby_buffer_s before this moment.
    public var leaderLastSeen: Double { leaderSeen.load(ordering: .relaxed) }

    /// Blocks until this daemon leads (true) or `stopped()` (false).
    func waitForLead(_ stopped: () -> Bool) -> Bool {
        while !isLeader {
            if stopped() { return false }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return true
    }

    /// Run on every session a leading service opens: refuses one opened after another daemon
    /// took the lease (see `LeaseStore.fence`).
    public func fence(_ db: PGConnection) throws {
        guard enabled else { return }
        try LeaseStore.fence(db, me: me, epoch: epoch)
    }
}

/// Holds the lead (ha.enabled): on its own session it tries the advisory lock every tick while
/// standing by, takes the lease from a leader that stopped renewing, and once leading renews the
/// lease every tick (`Leadership` decides). A leader that loses its session or its lease exits at
/// once with status 75 - it must not write again, and its supervisor starts it afresh as a
/// standby. First in the service group: at a graceful shutdown it lets go of the lock last.
public final class LeadershipService: Service, Sendable {
    let config: Config
    let role: HARole
    let logger: Logger
    let stop = StopFlag()
    let takeovers: CoreMetrics.Counter
    let leaseAge: CoreMetrics.Gauge
    /// Status of a daemon that lost the lead (EX_TEMPFAIL): restart me.
    public static let lostLeadExitStatus: Int32 = 75

    public init(config: Config, role: HARole, metrics: Metrics, logger: Logger) {
        self.config = config
        self.role = role
        self.logger = logger
        takeovers = metrics.counter("liandong_ha_takeovers_total")
        leaseAge = metrics.gauge("liandong_ha_lease_age_seconds")
    }

    public func run() async throws {
        try await runThreadService(name: "liandong-leadership", onStop: { [stop] in stop.set() }) { [self] in try loop() }
    }

    private func open() throws -> PGConnection {
        // A lost client is noticed by the server within ~5 s (the lock is released).
        let timeout = Int(Leadership.Timing(takeover: config.ha.takeoverSeconds).renewDeadline * 1000 / 2)
        var name = ""
        let db = try Sessions.open(config.databaseURL, name: "leadership", keepalive: .fast) { name = try LeaseStore.prepareSession($0, statementTimeoutMs: timeout) }
        guard name == role.me else {
            db.close()
            throw ConfigError("with ha.enabled each liandongd names its database sessions (application_name) so that a "
                + "successor can end them; database.url sets application_name=\(name): remove it")
        }
        return db
    }

    private func loop() throws {
        var leadership = Leadership(me: role.me, timing: Leadership.Timing(takeover: config.ha.takeoverSeconds))
        let tick = leadership.timing.tick
        let watchdog = startWatchdog(leadership.timing)
        defer { watchdog.set() }
        var db: PGConnection? = nil
        var announced = false
        var lastComplaint = -Double.infinity
        logger.info("standing by (ha.enabled): trying for the lead", metadata: ["ha.instance": "\(role.me)"])
        while !stop.isSet {
            let started = ProcessInfo.processInfo.systemUptime
            if leadership.isLeader {
                if case .stepDown(let why) = leadership.leaderDue(now: started) { stepDown(why) }
                let renewal: Leadership.Renewal
                do {
                    renewal = try LeaseStore.renew(db!, me: role.me, epoch: leadership.epoch) ? .renewed : .taken
                } catch let e as PQError {
                    // A renewal cut short by its statement_timeout failed; the session (and the lock) lives on.
                    renewal = e.isSessionLost || !db!.isOK ? .sessionLost("\(e)") : .failed("\(e)")
                }
                let after = ProcessInfo.processInfo.systemUptime
                if case .stepDown(let why) = leadership.leader(renewal, now: after) { stepDown(why) }
                if renewal == .renewed {
                    role.renewed.store(after, ordering: .relaxed)
                    leaseAge.record(0)
                }
                if case .failed(let why) = renewal {
                    logger.warning("lease renewal failed; retrying", metadata: ["db.error": "\(why)"])
                }
            } else {
                do {
                    if db == nil || db?.isOK == false { db = try open() }
                    let got = try LeaseStore.tryLock(db!)
                    let lease = try LeaseStore.lease(db!)
                    leaseAge.record(lease?.age ?? 0)
                    switch leadership.standby(gotLock: got, lease: lease, now: ProcessInfo.processInfo.systemUptime) {
                    case .lead(let takeover):
                        let ended: Int
                        do { ended = try LeaseStore.take(db!, takeover, me: role.me) } catch {
                            // Not leading without the lease written and the former leader's sessions ended.
                            let previous = takeover.previous?.holder ?? "-"
                            stepDown("taking the lead failed (lease, or ending \(previous)'s sessions): \(error)")
                        }
                        role.renewed.store(ProcessInfo.processInfo.systemUptime, ordering: .relaxed)
                        role.promote(epoch: takeover.epoch)
                        takeovers.increment()
                        logger.notice("leading (ha): binding ack, updates, replay and feed; writing", metadata: [
                            "ha.epoch": "\(takeover.epoch)", "ha.reason": "\(takeover.reason.rawValue)",
                            "ha.previous": "\(takeover.previous?.holder ?? "-")", "ha.sessions_ended": "\(ended)",
                        ])
                        continue
                    case .evict(let lease):
                        let took = try LeaseStore.evict(db!, lease, me: role.me, expiry: leadership.timing.leaseExpiry)
                        leadership.evicted(lease, took: took)
                        if took {
                            logger.warning("the leader stopped renewing its lease: taken from it, its sessions ended", metadata: [
                                "ha.previous": "\(lease.holder)", "ha.lease_age_s": "\(lease.age)",
                            ])
                            continue
                        }
                    case .wait:
                        if let lease, lease.age <= leadership.timing.leaseExpiry {
                            role.sawLeader(at: Date().timeIntervalSince1970 - lease.age)
                        }
                        if !announced, let lease {
                            announced = true
                            logger.info("standing by", metadata: ["ha.leader": "\(lease.holder)"])
                        }
                    }
                } catch let e as PQError {
                    // A standby rides out whatever the database says (unreachable, restarting, a
                    // statement timed out) and asks again next tick; logged once, then every 30 s.
                    if e.isSessionLost || db?.isOK == false { db = nil }
                    let now = ProcessInfo.processInfo.systemUptime
                    if now - lastComplaint >= 30 {
                        lastComplaint = now
                        logger.error("standing by: cannot read the lease, retrying every tick", metadata: ["db.error": "\(e)"])
                    }
                }
            }
            let left = tick - (ProcessInfo.processInfo.systemUptime - started)
            if left > 0 { Thread.sleep(forTimeInterval: left) }
        }
        // Graceful shutdown, after every other service: the session (and the lock) ends here.
        db?.close()
        if leadership.isLeader { logger.notice("leadership released") }
    }

    /// A renewal blocked on a connection that no longer answers (a network partition: no error
    /// comes back) cannot step down by itself: this thread ends the process when the leader's last
    /// renewal is older than the deadline. Returns the flag that stops it.
    private func startWatchdog(_ timing: Leadership.Timing) -> StopFlag {
        let done = StopFlag()
        let thread = Thread { [role, self] in
            while !done.isSet {
                Thread.sleep(forTimeInterval: timing.tick / 2)
                guard role.isLeader else { continue }
                let since = ProcessInfo.processInfo.systemUptime - role.renewed.load(ordering: .relaxed)
                if since > timing.renewDeadline {
                    stepDown("no lease renewal for \(Int(since * 1000)) ms (deadline \(Int(timing.renewDeadline * 1000)) ms): "
                        + "the database does not answer the leadership session")
                }
            }
        }
        thread.name = "liandong-ha-watchdog"
        thread.start()
        return done
    }

    /// Never returns: the process exits before any other thread can write again.
    private func stepDown(_ why: String) -> Never {
        logger.critical("lost the lead; exiting at once so as not to write (a supervisor restarts it as a standby)",
                        metadata: ["ha.reason": "\(why)", "exit.status": "\(Self.lostLeadExitStatus)"])
        fflush(nil)  // every stream: the log line above is out before the process goes
        _exit(Self.lostLeadExitStatus)
    }
}
