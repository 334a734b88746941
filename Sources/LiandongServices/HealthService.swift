import Foundation
import Hummingbird
import LiandongStorage
import LibPQ
import Logging
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The HTTP endpoint on metrics.bind (default 127.0.0.1:9464): GET /metrics (Prometheus text),
/// /healthz (the process is alive), /readyz (the database answers and its migrations are current;
/// 503 with the reason otherwise). Served by Hummingbird on SwiftNIO: connections concurrently, a
/// connection that has not sent a whole request within 5 s (idle, or a byte at a time) closed, at
/// most 512 at once - one slow or idle client cannot keep a liveness probe from its answer.
public final class HealthService: Service, Sendable {
    let config: Config
    let metrics: Metrics
    let expectedMigration: Int
    let logger: Logger
    let role: HARole
    let probe: ReadinessProbe
    /// The database watchdog's findings (replication, stuck statements).
    let database: DatabaseHealth

    /// A connection without a whole request for this long is closed.
    public static let requestTimeoutSeconds: Int64 = 5
    public static let maxConnections = 512
    /// /readyz answers within this many seconds whatever the database does.
    public static let readinessAnswerSeconds = 3.0

    public init(config: Config, metrics: Metrics, expectedMigration: Int, role: HARole = .single(),
                database: DatabaseHealth? = nil, logger: Logger) {
        self.role = role
        self.database = database ?? DatabaseHealth(mode: config.databaseGuard.synchronous)
        self.config = config
        self.metrics = metrics
        self.expectedMigration = expectedMigration
        self.logger = logger
        probe = ReadinessProbe()
    }

    public func run() async throws {
        guard !config.metricsBind.isEmpty else { return try await gracefulShutdown() }
        let (host, port) = try Config.metricsAddress(config.metricsBind, key: "metrics.bind")
        // Bind once ourselves first: a busy address is one line naming metrics.bind, as before.
        close(try Self.openListener(config.metricsBind))
        let router = Router()
        let metrics = self.metrics
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { [self] _, _ in
            let (ready, reason) = await probe.check(within: Self.readinessAnswerSeconds, { db in self.readiness(&db) }) {
                // The database did not answer the readiness query in time: what the watchdog knows.
                let known = self.database.readiness()
                return (false, "the database did not answer within \(Int(Self.readinessAnswerSeconds)) s"
                    + (known.map { "; " + $0.text } ?? ""))
            }
            return Response(status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain"],
                            body: .init(byteBuffer: ByteBuffer(string: reason + "\n")))
        }
        // (Hummingbird logs a request at debug level; the daemon's log.level applies.)
        let app = Application(
            router: router, server: .http1(configuration: .init(idleTimeout: .seconds(Self.requestTimeoutSeconds))),
            configuration: .init(address: .hostname(host.isEmpty || host == "*" ? "0.0.0.0" : host, port: Int(port)),
                                 serverName: "liandongd", availableConnectionsDelegate: .maximum(Self.maxConnections, logger: logger)),
            onServerRunning: { [logger, config] _ in logger.info("metrics and health listening", metadata: ["http.bind": "\(config.metricsBind)"]) },
            logger: logger)
        try await app.run()
    }

    struct BindError: Error, CustomStringConvertible {
        let key: String
        let endpoint: String
        let reason: String
        var description: String { "cannot bind \(key) \(endpoint): \(reason) (choose another address with \(key))" }
    }

    /// A listening TCP socket on "host:port" (host may be "*" or empty for all interfaces); `key`
    /// names the config key in errors (the GB/T 28181 bridge has its own).
    package static func openListener(_ endpoint: String, key: String = "metrics.bind") throws -> Int32 {
        let (host, port) = try Config.metricsAddress(endpoint, key: key)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = host.isEmpty || host == "*" ? INADDR_ANY.bigEndian : inet_addr(host)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BindError(key: key, endpoint: endpoint, reason: String(cString: strerror(errno))) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let code = errno
            let reason = (code == EADDRINUSE ? "the address is already in use" : String(cString: strerror(code))) + " (errno \(code))"
            close(fd)
            throw BindError(key: key, endpoint: endpoint, reason: reason)
        }
        return fd
    }

    /// Ready when the database answers and holds every migration this binary knows.
    func readiness(_ db: inout PGConnection?) -> (Bool, String) {
        do {
            if db == nil || db?.isOK == false { db = try Sessions.open(config.databaseURL, name: "readiness") }
            let version = try Migrator.currentVersion(db!)
            guard version >= expectedMigration else {
                return (false, "database schema at migration \(version), this liandongd needs \(expectedMigration): run liandongd migrate")
            }
            if role.enabled && !role.isLeader {
                let leader = try LeaseStore.lease(db!)?.holder ?? "nobody yet"
                return (false, "standby (ha.enabled): \(leader) leads; this daemon takes over within ha.takeover_s "
                    + "(\(config.ha.takeoverSeconds) s) of its loss")
            }
            guard !metrics.writerStandby.isOn else {
                return (false, "standby: another liandongd holds this database's writer lock; this one takes over when it stops")
            }
            if let (ready, text) = database.readiness(), !ready { return (false, text) }
            guard metrics.databaseUp.isOn else { return (false, "the writer cannot reach the database") }
            let leading = role.enabled ? "; leading (ha epoch \(role.epoch))" : ""
            if let (_, degraded) = database.readiness() { return (true, degraded + leading) }
            return (true, role.enabled ? "ready: leading (ha epoch \(role.epoch))" : "ready")
        } catch {
            db = nil
            return (false, "database unreachable: \(error)")
        }
    }
}

/// The readiness check's database session, on a thread of its own (libpq blocks; the HTTP server's
/// threads must not): one check at a time, and an answer at most a second old shared by everyone
/// asking meanwhile, so a flood of /readyz is not a flood of queries.
final class ReadinessProbe: @unchecked Sendable {
    // Safe: `db`, `last` and `waiters` are touched only on `queue`.
    private let queue = DispatchQueue(label: "liandong-readiness")
    private var db: PGConnection?
    private var last: (at: Double, answer: (Bool, String))?

    /// The answer of `body`, or of `late` when `body` has not answered within `seconds` (a
    /// database that stops answering must not stop /readyz from answering).
    func check(within seconds: Double, _ body: @escaping @Sendable (inout PGConnection?) -> (Bool, String),
               late: @escaping @Sendable () -> (Bool, String)) async -> (Bool, String) {
        await withCheckedContinuation { continuation in
            let once = FirstAnswer<(Bool, String)> { continuation.resume(returning: $0) }
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { once.give(late()) }
            queue.async { [self] in
                let now = Date().timeIntervalSince1970
                if let last, now - last.at < 1 { return once.give(last.answer) }
                let answer = body(&db)
                last = (now, answer)
                once.give(answer)
            }
        }
    }
}
