import Foundation
import LiandongStorage
import LibPQ
import Logging
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 endpoint on metrics.bind (default 127.0.0.1:9464): GET /metrics (Prometheus
/// text), /healthz (the process is alive), /readyz (the database answers and its migrations are
/// current; 503 with the reason otherwise). One connection at a time, closed after each answer.
public final class HealthService: Service, Sendable {
    let config: Config
    let metrics: Metrics
    let expectedMigration: Int
    let logger: Logger
    let stop = StopFlag()
    let role: HARole

    public init(config: Config, metrics: Metrics, expectedMigration: Int, role: HARole = .single(), logger: Logger) {
        self.role = role
        self.config = config
        self.metrics = metrics
        self.expectedMigration = expectedMigration
        self.logger = logger
    }

    public func run() async throws {
        guard !config.metricsBind.isEmpty else { return try await gracefulShutdown() }
        try await runThreadService(name: "liandong-health", onStop: { [stop] in stop.set() }) { [self] in try loop() }
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

    private func loop() throws {
        let fd = try Self.openListener(config.metricsBind)
        defer { close(fd) }
        logger.info("metrics and health listening", metadata: ["http.bind": "\(config.metricsBind)"])
        // The readiness check's connection, on this thread only.
        var db: PGConnection? = nil
        while !stop.isSet {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 200) > 0 else { continue }
            let client = accept(fd, nil, nil)
            guard client >= 0 else { continue }
            serve(client, &db)
            close(client)
        }
    }

    private func serve(_ client: Int32, _ db: inout PGConnection?) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while request.count < 16_384 {
            let n = read(client, &buffer, buffer.count)
            if n <= 0 { break }
            request += buffer[0..<n]
            if request.count >= 4 && request.suffix(4) == Array("\r\n\r\n".utf8) { break }
            if String(decoding: request, as: UTF8.self).contains("\r\n\r\n") { break }
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
        let (status, body, type): (String, String, String)
        if line.count < 2 || line[0] != "GET" {
            (status, body, type) = ("405 Method Not Allowed", "GET only\n", "text/plain")
        } else {
            switch line[1].split(separator: "?").first.map(String.init) ?? "" {
            case "/metrics": (status, body, type) = ("200 OK", metrics.render(), "text/plain; version=0.0.4")
            case "/healthz": (status, body, type) = ("200 OK", "ok\n", "text/plain")
            case "/readyz":
                let (ready, reason) = readiness(&db)
                (status, body, type) = (ready ? "200 OK" : "503 Service Unavailable", reason + "\n", "text/plain")
            default: (status, body, type) = ("404 Not Found", "try /metrics, /healthz or /readyz\n", "text/plain")
            }
        }
        let bytes = Array(body.utf8)
        let response = Array("HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(bytes.count)\r\nConnection: close\r\n\r\n".utf8) + bytes
        var sent = 0
        while sent < response.count {
            let n = response[sent...].withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            sent += n
        }
    }

    /// Ready when the database answers and holds every migration this binary knows.
    func readiness(_ db: inout PGConnection?) -> (Bool, String) {
        do {
            if db == nil || db?.isOK == false { db = try PGConnection(conninfo: config.databaseURL) }
            let version = Int(try db!.query("SELECT coalesce(max(version), 0) FROM liandong.schema_migrations").scalar ?? "0") ?? 0
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
            guard metrics.databaseUp.isOn else { return (false, "the writer cannot reach the database") }
            return (true, role.enabled ? "ready: leading (ha epoch \(role.epoch))" : "ready")
        } catch {
            db = nil
            return (false, "database unreachable: \(error)")
        }
    }
}
