import Foundation
import LibPQ
import LiandongCore
import LiandongStorage
import Logging
import ServiceLifecycle
import ZeroMQ

/// Checks what an operator can get wrong before any socket opens: the database is reachable,
/// PostGIS is installed, and the schema is migrated.
/// Returns what is wrong but does not stop the daemon (logged at start as errors).
public func preflight(config: Config, migrator: Migrator) throws -> [String] {
    let db = try openDatabase(config.databaseURL)
    try migrator.checkCurrent(db)
    var warnings: [String] = []
    // Any login that may take the writer or leadership lock first can hold the daemon back.
    if try OperatorAccess.publicMayTakeAdvisoryLocks(db) {
        warnings.append("every login of this database may take advisory locks, the daemon's writer and leadership locks "
            + "included: a read-only operator could hold it back. A superuser runs deploy/dba-setup.sql again (it revokes "
            + "EXECUTE on the advisory-lock functions from PUBLIC and grants it to the database's owner)")
    }
    return warnings
}

/// Connects, turning a libpq failure into an error that names the config key to fix.
public func openDatabase(_ conninfo: String) throws -> PGConnection {
    do {
        return try Sessions.open(conninfo)
    } catch let error as PQError {
        throw ConfigError("cannot connect to the database (database.url or LIANDONG_DATABASE_URL, "
            + "or the PG* environment when empty): \(error.message)")
    }
}

/// Builds the daemon's service group. Shutdown runs in reverse order: ingest stops reading first,
/// the writer drains and commits what was received, the update receiver and the sweeper stop, and
/// the publisher sends everything committed.
/// `reloadFrom`: SIGHUP reloads this config file (and the environment) and the peers file.
public func makeServiceGroup(config: Config, expectedMigration: Int, logger: Logger,
                             reloadFrom configPath: String?, logSettings: LogSettings) throws -> ServiceGroup {
    let context = try ZMQContext()
    // ha.enabled: every session of this daemon carries its name, so that a successor can end
    // them (libpq reads PGAPPNAME for each connection; set before any service connects).
    let role = config.ha.enabled ? HARole.standby() : HARole.single()
    if role.enabled { setenv("PGAPPNAME", role.me, 1) }
    // Loss on the SUB path across a restart shows as a gap: start from the highest stored seqs
    // (read when the ingest starts to lead).
    let url = config.databaseURL
    let seeds: @Sendable () throws -> [String: Int64] = {
        try EventStore.gatewaySeqs(try openDatabase(url))
    }
    let gaps = BoundedQueue<SeqGap>(capacity: 100_000)
    let metrics = Metrics()
    let trust = try TrustBoundary.load(config, metrics: metrics, logger: logger)
    if trust == nil {
        // Served as zeros without CURVE too, so dashboards and alerts need no special case.
        _ = metrics.counters("liandong_auth_failures_total", by: "reason", known: TrustBoundary.Failure.allCases.map(\.rawValue))
    }
    // Bound before any socket of the context exists; stops after all of them.
    let zap = try trust.map { try ZapService(context: context, boundary: $0, logger: logger) }
    let reload = ReloadService(path: configPath, running: config, settings: logSettings, trust: trust, logger: logger)
    metrics.gauge("liandong_build_info", [("schema", String(expectedMigration)), ("version", LiandongVersion.current),
                                           ("zmq", ZMQContext.version)]).record(1)
    // Served without ha.enabled too (a lone daemon leads), so dashboards and alerts need no special case.
    metrics.gauge("liandong_ha_leader") { role.isLeader ? 1 : 0 }
    if !role.enabled { _ = metrics.counter("liandong_ha_takeovers_total") }
    let inbound = BoundedQueue<Inbound>(capacity: config.queueCapacity)
    let outbound = BoundedQueue<FeedMessage>(capacity: 5_000)
    metrics.gauge("liandong_ingest_queue_depth") { Double(inbound.count) }
    let publisher = PublisherService(context: context, config: config, input: outbound, trust: trust, role: role, metrics: metrics,
                                     logger: logger)
    let ackEndpoint = "inproc://liandong-acks"
    let spill = config.spillPath.isEmpty ? nil : try SpillFile(path: config.spillPath, maxBytes: config.spillMaxBytes)
    if let spill {
        metrics.gauge("liandong_spill_pending_bytes") { Double(spill.pendingBytes) }
        if !spill.isEmpty {
            logger.notice("messages spilled by a previous run will be written first",
                          metadata: ["spill.path": "\(spill.path)", "spill.bytes": "\(spill.pendingBytes)"])
        }
    }
    // What the database watchdog finds: read by the writer (require: whether it may write) and /readyz.
    let database = DatabaseHealth(mode: config.databaseGuard.synchronous)
    let watch = DatabaseWatch(config: config, health: database, metrics: metrics, logger: logger)
    let writer = WriterService(context: context, ackEndpoint: ackEndpoint, config: config, input: inbound,
                               output: outbound, spill: spill, gaps: gaps, role: role, database: database, metrics: metrics,
                               logger: logger)
    let ingest = IngestService(context: context, config: config, queue: inbound, ackEndpoint: ackEndpoint, spill: spill,
                               gaps: gaps, seeds: seeds, trust: trust, role: role, metrics: metrics, logger: logger)
    let updates = UpdateService(context: context, config: config, output: outbound, trust: trust, role: role, metrics: metrics,
                                logger: logger)
    let sweeper = SweeperService(config: config, output: outbound, role: role, metrics: metrics, logger: logger)
    let health = HealthService(config: config, metrics: metrics, expectedMigration: expectedMigration, role: role, database: database,
                               logger: logger)
    let replay = ReplayService(context: context, config: config, trust: trust, role: role, logger: logger)
    // First in the group: at a graceful shutdown the lead is let go after everything is written.
    let leadership = role.enabled ? LeadershipService(config: config, role: role, metrics: metrics, logger: logger) : nil
    var configuration = ServiceGroupConfiguration(
        services: (leadership.map { [.init(service: $0, serviceName: "leadership")] } ?? [])
            + (zap.map { [.init(service: $0, serviceName: "zap")] } ?? []) + [
            .init(service: reload, serviceName: "reload"),
            .init(service: watch, serviceName: "database-watch"),
            .init(service: health, serviceName: "health"),
            .init(service: publisher, serviceName: "publisher"),
            .init(service: replay, serviceName: "replay"),
            .init(service: sweeper, serviceName: "sweeper"),
            .init(service: updates, serviceName: "updates"),
            .init(service: writer, serviceName: "writer"),
            .init(service: ingest, serviceName: "ingest"),
            .init(service: ShutdownNoticeService(logger: logger, database: database), serviceName: "shutdown-notice"),
        ],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger)
    configuration.maximumGracefulShutdownDuration = .seconds(30)
    return ServiceGroup(configuration: configuration)
}
