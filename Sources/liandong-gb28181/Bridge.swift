import ArgumentParser
import Foundation
import LiandongClient
import LiandongCore
import LiandongServices
import LibPQ
import Logging
import ServiceLifecycle
import Synchronization
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// liandong-gb28181: the SIP user-agent server GB/T 28181 cameras and NVRs (or an upstream
/// platform) register with. Alarms and keepalives go to liandongd over its acknowledged ingest
/// path and are answered 200 only once liandongd has committed them.
@main
struct BridgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liandong-gb28181",
        abstract: "GB/T 28181 SIP bridge: cameras and NVRs register here; their alarms and keepalives reach liandongd.",
        discussion: """
            Reads the gb28181 section of the liandongd config file (sip_bind, server_id, realm, password or
            passwords_file, daemon_ack, keepalive_timeout_s, catalog_interval_s, arm_on_register, alarm_subscribe_s, metrics_bind); LIANDONG_GB28181_<KEY> variables override it.
            """)

    @Option(help: "Config file (YAML); the gb28181 section is read.") var config: String?
    @Option(help: "With liandongd's security.curve: the daemon's public key (its NAME.pub file, or the 40 Z85 characters).")
    var curveServerKey: String?
    @Option(help: "With liandongd's security.curve: this bridge's secret key file (a gateway key of `liandongd keys generate`).")
    var curveKey: String?

    func run() async throws {
        let settings: Config.GB28181
        let fullConfig: Config
        let passwords: [String: String]
        let known: Set<String>?
        do {
            fullConfig = try Config.load(path: config)
            settings = fullConfig.gb28181
            passwords = try Self.loadPasswords(settings.passwordsFile)
            known = try Self.loadDevices(settings.devicesFile)
        } catch let error as ConfigError {
            throw ValidationError(error.message)
        }
        // Logs like liandongd's (log.level, log.format): one line per event, dotted metadata, no secret.
        let logSettings = LogSettings(level: Logger.Level(rawValue: fullConfig.logLevel) ?? .info, json: fullConfig.logFormat == "json")
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, settings: logSettings) }
        let logger = Logger(label: "liandong-gb28181")
        guard !settings.password.isEmpty || !passwords.isEmpty else {
            throw ValidationError("gb28181.password or gb28181.passwords_file is required: devices register with an MD5 Digest password "
                + "(set LIANDONG_GB28181_PASSWORD, or gb28181.password in the config file)")
        }
        var bridgeSettings = GB28181Bridge.Settings(serverID: settings.serverID, realm: settings.realm,
                                                    keepaliveTimeout: settings.keepaliveTimeoutSeconds, passwords: passwords,
                                                    defaultPassword: settings.password)
        bridgeSettings.catalogInterval = settings.catalogIntervalSeconds
        bridgeSettings.armOnRegister = settings.armOnRegister
        bridgeSettings.alarmSubscribe = settings.alarmSubscribeSeconds
        // A database that does not answer must not hang the start.
        if ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"] == nil { setenv("PGCONNECT_TIMEOUT", "5", 1) }
        // Who may use the shared password: the devices file, and the camera registry of the
        // config's database.url (read now and every minute; the last good list is kept).
        let registry = CameraRegistry(conninfo: fullConfig.databaseURL, listed: known, serverID: settings.serverID)
        bridgeSettings.knownDevices = registry.current
        let bridge = GB28181Bridge(settings: bridgeSettings, nonceSecret: Self.randomSecret())
        if !settings.password.isEmpty && bridgeSettings.knownDevices == nil {
            logger.warning("""
                any 20-digit device id may register with the shared password (gb28181.password), as neither \
                gb28181.devices_file nor the camera registry (database.url) could be read
                """)
        }
        let loop = try BridgeLoop(bridge: bridge, settings: settings, logger: logger,
                                  curve: try CurveClientKeys.options(serverKey: curveServerKey, secretKeyFile: curveKey))
        loop.registry = registry
        registry.start()
        // A parent may have started us with signals blocked (the mask is inherited): unblock the two we stop on.
        var mask = sigset_t()
        sigemptyset(&mask)
        for sig in [SIGTERM, SIGINT] { sigaddset(&mask, sig) }
        pthread_sigmask(SIG_UNBLOCK, &mask, nil)
        // The daemon's lifetime model: SIGTERM or SIGINT is a graceful shutdown, in which the loop
        // finishes what liandongd has not answered yet (up to 5 s) and saves its state.
        var configuration = ServiceGroupConfiguration(services: [.init(service: BridgeService(loop: loop), serviceName: "bridge")],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(15)
        try await ServiceGroup(configuration: configuration).run()
    }

    /// One device id a line; # starts a comment. nil when no file is configured.
    static func loadDevices(_ path: String) throws -> Set<String>? {
        guard !path.isEmpty else { return nil }
        let text: String
        do {
            text = try ConfiguredFile(setting: "gb28181.devices_file", path: path, secret: false).read()
        } catch let error as CurveKeyError {
            throw ConfigError(error.message)
        }
        var out = Set<String>()
        for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)?
                .trimmingCharacters(in: .whitespaces) ?? ""
            guard !line.isEmpty else { continue }
            guard DeviceID(line) != nil else {
                throw ConfigError("gb28181.devices_file \(path) line \(n + 1): \"\(line.prefix(40))\" is not a 20-digit GB/T 28181 device id")
            }
            out.insert(line)
        }
        return out
    }

    /// "DEVICE_ID PASSWORD" per line; # starts a comment. Must not be readable by others.
    static func loadPasswords(_ path: String) throws -> [String: String] {
        guard !path.isEmpty else { return [:] }
        let text: String
        do {
            text = try ConfiguredFile(setting: "gb28181.passwords_file", path: path, secret: true).read()
        } catch let error as CurveKeyError {
            throw ConfigError(error.message)
        }
        var out: [String: String] = [:]
        for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first?.trimmingCharacters(in: .whitespaces) ?? ""
            guard !line.isEmpty else { continue }
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count == 2, DeviceID(String(parts[0])) != nil else {
                throw ConfigError("gb28181.passwords_file \(path) line \(n + 1): expected \"DEVICE_ID PASSWORD\" with a 20-digit device id")
            }
            out[String(parts[0])] = String(parts[1])
        }
        return out
    }

    static func randomSecret() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(g.next(), radix: 16) }.joined()
    }
}

/// The bridge's loop as a service of the group: on its own thread, stopped by a graceful shutdown.
final class BridgeService: Service, Sendable {
    /// Handed over once, to the thread that runs it.
    private let loop: Mutex<BridgeLoop?>
    private let stop: StopFlag

    init(loop: sending BridgeLoop) {
        stop = loop.stop
        self.loop = Mutex(loop)
    }

    func run() async throws {
        try await runThreadService(name: "liandong-gb28181", onStop: { [stop] in stop.set() }) { [self] in
            guard let loop = self.loop.withLock({ $0.take() }) else { return }
            try loop.run()
        }
    }
}

/// The one thread of the bridge: SIP sockets, liandongd's DEALER and the metrics listener in one
/// poll; the pure `GB28181Bridge` decides, this carries out.
final class BridgeLoop {
    var bridge: GB28181Bridge
    var registry: CameraRegistry?
    private var registryGeneration = 0
    let settings: Config.GB28181
    let context: ZMQContext
    let client: IngestClient
    let sockets: SIPSockets
    let metrics: BridgeMetrics
    let metricsFD: Int32?

    let logger: Logger
    /// Set by a graceful shutdown (SIGTERM, SIGINT).
    let stop = StopFlag()

    init(bridge: GB28181Bridge, settings: Config.GB28181, logger: Logger, curve: CurveClientKeys?) throws {
        self.bridge = bridge
        self.logger = logger
        self.settings = settings
        context = try ZMQContext()
        client = try IngestClient(context: context, endpoint: settings.daemonAcks[0], retryAfter: 2, curve: curve)
        for endpoint in settings.daemonAcks.dropFirst() { try client.connect(endpoint) }
        do {
            sockets = try SIPSockets(binds: settings.sipBind.compactMap(SIPEndpoint.init))
        } catch {
            throw ValidationError("gb28181.sip_bind: \(error)")
        }
        metrics = BridgeMetrics()
        if settings.metricsBind.isEmpty {
            metricsFD = nil
        } else {
            let fd = try HealthService.openListener(settings.metricsBind, key: "gb28181.metrics_bind")
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            metricsFD = fd
        }
    }

    /// Registrations survive a restart in gb28181.state_path (relative: in the working directory,
    /// the unit's /var/lib/liandong): after a restart devices need not register again.
    var stateFile: String { settings.statePath }
    /// Where releases before gb28181.state_path kept them (read once when the state file is absent).
    static let formerFile = "liandong-gb28181.registrations"
    var savedChanges = 0

    func restoreRegistrations() {
        var from = stateFile
        if !FileManager.default.fileExists(atPath: from), FileManager.default.fileExists(atPath: Self.formerFile) { from = Self.formerFile }
        guard let data = FileManager.default.contents(atPath: from) else { return }
        do {
            let saved = try JSONDecoder().decode([String: GB28181Bridge.Registration].self, from: data)
            let n = bridge.restore(saved, now: Date().timeIntervalSince1970)
            logger.notice("restored \(n) registration(s) of \(saved.count) from \(from) (the others had expired)",
                          metadata: ["gb28181.state_path": "\(from)", "gb28181.restored": "\(n)", "gb28181.saved": "\(saved.count)"])
        } catch {
            logger.warning("ignoring \(from): \(error) (devices register again)", metadata: ["gb28181.state_path": "\(from)"])
        }
        savedChanges = bridge.registrationChanges
        if from == Self.formerFile { savedChanges -= 1 }  // written to the state file at the next tick
    }

    /// Writes the registrations when they changed (atomically: a crash leaves the old file or the new).
    func saveRegistrations() {
        guard bridge.registrationChanges != savedChanges else { return }
        savedChanges = bridge.registrationChanges
        do {
            try JSONEncoder().encode(bridge.registrations).write(to: URL(fileURLWithPath: stateFile), options: .atomic)
            try? FileManager.default.removeItem(atPath: Self.formerFile)
        } catch {
            logger.error("""
                cannot save gb28181.state_path \(stateFile) in \(FileManager.default.currentDirectoryPath): \(error) \
                (registrations are kept in memory; after a restart devices register again)
                """, metadata: ["gb28181.state_path": "\(stateFile)"])
        }
    }

    func run() throws {
        logger.info("""
            listening on \(settings.sipBind.joined(separator: ", ")) as \(settings.serverID) (realm \(settings.realm)); \
            forwarding to \(settings.daemonAck); metrics on \(settings.metricsBind.isEmpty ? "(none)" : settings.metricsBind)
            """,
                    metadata: ["sip.bind": "\(settings.sipBind.joined(separator: ","))", "gb28181.server_id": "\(settings.serverID)",
                               "zmq.connect": "\(settings.daemonAck)", "http.bind": "\(settings.metricsBind)"])
        restoreRegistrations()
        var nextTick = 0.0
        while !stop.isSet {
            let set = sockets.pollSet()
            var items: [ZMQPollItem] = [client.pollItem] + set.map { .fd($0.fd, writable: $0.writable) }
            if let metricsFD { items.append(.fd(metricsFD)) }
            let http = Array(httpConnections.keys)
            items += http.map { .fd($0) }
            let events: [ZMQPoll.Events]
            do {
                events = try ZMQPoll.wait(items, timeoutMilliseconds: 100)
            } catch let error as ZMQError where error.isInterrupted {
                continue
            }
            let now = Date().timeIntervalSince1970
            for (i, entry) in set.enumerated() {
                let e = events[i + 1]
                switch entry.source {
                case .udp(let index) where e.readable:
                    sockets.readDatagrams(index) { bytes, peer in datagram(bytes, from: peer, now: now) }
                case .listener(let index) where e.readable: sockets.accept(index)
                case .connection(let id):
                    if e.writable { sockets.flush(id) }
                    if e.readable || e.failed {
                        sockets.read(id, { message, peer in apply(bridge.receive(message, from: peer, now: now)) },
                                     malformed: { error, peer in
                                         metrics.malformed.increment()
                                         logger.notice("unreadable SIP from \(peer): \(error); connection closed",
                                                       metadata: ["sip.peer": "\(peer)"])
                                     })
                    }
                default: break
                }
            }
            let httpBase = 1 + set.count + (metricsFD == nil ? 0 : 1)
            if let metricsFD, events[httpBase - 1].readable { acceptHTTP(metricsFD, now: now) }
            for (i, fd) in http.enumerated() where events[httpBase + i].readable || events[httpBase + i].failed { readHTTP(fd) }
            for (fd, c) in httpConnections where now - c.since > 2 {  // a client that never finishes its request
                close(fd)
                httpConnections[fd] = nil
            }
            // liandongd's answers (and resends of what it has not answered).
            for answer in try client.poll(timeout: 0) {
                apply(bridge.acknowledged(id: answer.id, ok: answer.ok, error: answer.error, now: Date().timeIntervalSince1970))
                if !answer.ok {
                    logger.warning("liandongd refused \(answer.id): \(answer.error ?? "")", metadata: ["gb28181.message_id": "\(answer.id)"])
                }
            }
            for seconds in bridge.takeAnswerSeconds() { metrics.answerSeconds.record(seconds) }
            if now >= nextTick {
                if let registry, registry.generation != registryGeneration {
                    registryGeneration = registry.generation
                    bridge.setKnownDevices(registry.current)
                }
                for command in registry?.takeCommands() ?? [] {
                    logger.info("operator's \(command.arm ? "arm" : "disarm") of device \(command.device)",
                                metadata: ["gb28181.device_id": "\(command.device)"])
                    apply(bridge.operatorGuard(command.device, arm: command.arm, now: now))
                }
                apply(bridge.tick(now: now))
                // Idle TCP connections: 10 s for one no registered device uses, keepalive_timeout_s otherwise.
                sockets.expireIdle(registered: Set(bridge.registrations.values.filter { $0.peer.transport == .tcp }.map(\.peer.connection)),
                                   idleRegistered: settings.keepaliveTimeoutSeconds)
                metrics.tcpClosed(perAddress: sockets.refusedPerAddress, idle: sockets.closedIdle)
                saveRegistrations()
                metrics.update(bridge, unanswered: client.unanswered, connections: sockets.connections.count)
                nextTick = now + 0.2
            }
        }
        saveRegistrations()
        logger.info("stopping: \(client.unanswered) message(s) not yet answered by liandongd; waiting up to 5 s",
                    metadata: ["gb28181.unanswered": "\(client.unanswered)"])
        _ = try client.flush(timeout: 5)
        for answer in try client.poll(timeout: 0) {
            apply(bridge.acknowledged(id: answer.id, ok: answer.ok, error: answer.error, now: Date().timeIntervalSince1970))
        }
        logger.info("stopped (\(client.unanswered) unanswered; devices retransmit what was not answered)",
                    metadata: ["gb28181.unanswered": "\(client.unanswered)"])
    }

    func datagram(_ bytes: [UInt8], from peer: SIPPeer, now: Double) {
        // A lone CRLF (keep-alive ping, RFC 5626) is not a message.
        if bytes.allSatisfy({ $0 == 13 || $0 == 10 }) { return }
        do {
            apply(bridge.receive(try SIPParser.parse(datagram: bytes), from: peer, now: now))
        } catch {
            metrics.malformed.increment()
            logger.notice("unreadable SIP datagram from \(peer): \(error)", metadata: ["sip.peer": "\(peer)"])
        }
    }

    func apply(_ actions: [BridgeAction]) {
        for action in actions {
            switch action {
            case .send(let message, let peer): sockets.send(message.serialized(), to: peer)
            case .notice(let text, let metadata): logger.notice("\(text)", metadata: metadata.mapValues { .string($0) })
            case .forward(let topic, let body, let id):
                do {
                    try client.send(topic: topic, body: body, id: id)
                } catch {
                    logger.warning("cannot hand \(id) to liandongd: \(error) (kept; resent)", metadata: ["gb28181.message_id": "\(id)"])
                }
            }
        }
    }

    /// /metrics and /healthz connections being read: never a blocking read on the SIP thread (a
    /// slow or stuck scraper must not hold up devices' messages).
    var httpConnections: [Int32: (request: [UInt8], since: Double)] = [:]

    func acceptHTTP(_ listener: Int32, now: Double) {
        while httpConnections.count < 16 {
            let conn = accept(listener, nil, nil)
            guard conn >= 0 else { return }
            _ = fcntl(conn, F_SETFL, fcntl(conn, F_GETFL) | O_NONBLOCK)
            httpConnections[conn] = ([], now)
        }
    }

    func readHTTP(_ fd: Int32) {
        guard var c = httpConnections[fd] else { return }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
        if n > 0 { c.request += buffer[..<n] }
        let complete = c.request.count >= 4 && (0...(c.request.count - 4)).contains { c.request[$0..<($0 + 4)] == [13, 10, 13, 10] }
        guard n <= 0 || complete || c.request.count > 8192 else {
            httpConnections[fd] = c
            return
        }
        httpConnections[fd] = nil
        defer { close(fd) }
        guard !c.request.isEmpty else { return }
        let request = String(decoding: c.request, as: UTF8.self)
        let path = request.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
        let (status, body): (String, String)
        switch path {
        case "/metrics":
            metrics.update(bridge, unanswered: client.unanswered, connections: sockets.connections.count)
            status = "200 OK"
            body = metrics.metrics.render()
        case "/healthz": (status, body) = ("200 OK", "ok\n")
        default: (status, body) = ("404 Not Found", "not found: /metrics, /healthz\n")
        }
        let response = "HTTP/1.1 \(status)\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        _ = Array(response.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }
}

/// What the bridge reads from the config's database.url, on a thread of its own: the devices
/// that may register with the shared gb28181.password (those of gb28181.devices_file, the cameras
/// of liandong.cameras and the devices whose catalogs listed channels, read at start and every
/// minute, the last list read kept while the database is away; nil when neither the file nor the
/// database could ever be read), and operators' arm/disarm commands (liandong.device_commands,
/// taken every 2 s).
final class CameraRegistry: Sendable {
    let conninfo: String
    let listed: Set<String>?
    let serverID: String
    private let state: Mutex<(cameras: Set<String>?, generation: Int, commands: [(device: String, arm: Bool)])>

    init(conninfo: String, listed: Set<String>?, serverID: String) {
        self.conninfo = conninfo
        self.listed = listed
        self.serverID = serverID
        let db = try? PGConnection(conninfo: conninfo)
        state = Mutex((db.flatMap(Self.read), 0, []))
    }

    var generation: Int { state.withLock { $0.generation } }

    var current: Set<String>? {
        let registry = state.withLock { $0.cameras }
        switch (listed, registry) {
        case (nil, nil): return nil
        case (let l?, nil): return l
        case (nil, let r?): return r
        case (let l?, let r?): return l.union(r)
        }
    }

    /// Commands taken since the last call.
    func takeCommands() -> [(device: String, arm: Bool)] {
        state.withLock { state in
            defer { state.commands = [] }
            return state.commands
        }
    }

    func start() {
        let thread = Thread { [self] in
            var db: PGConnection?
            var readAt = Date().timeIntervalSince1970
            while true {
                Thread.sleep(forTimeInterval: 2)
                if db == nil { db = try? PGConnection(conninfo: conninfo) }
                guard let connection = db else { continue }
                do {
                    let taken = try Self.takeCommands(connection, serverID: serverID)
                    if !taken.isEmpty { state.withLock { $0.commands += taken } }
                } catch {
                    db = nil
                    continue
                }
                let now = Date().timeIntervalSince1970
                guard now - readAt >= 60 else { continue }
                readAt = now
                guard let fresh = Self.read(connection) else {
                    db = nil
                    continue
                }
                state.withLock {
                    if fresh != $0.cameras {
                        $0.cameras = fresh
                        $0.generation += 1
                    }
                }
            }
        }
        thread.name = "gb28181-registry"
        thread.start()
    }

    static func read(_ db: PGConnection) -> Set<String>? {
        guard let rows = try? db.query("""
            SELECT device_id FROM liandong.cameras WHERE valid_to IS NULL
            UNION SELECT device_id FROM liandong.device_channels WHERE gone_at IS NULL
            UNION SELECT parent_id FROM liandong.device_channels WHERE gone_at IS NULL AND parent_id IS NOT NULL
            """) else { return nil }
        return Set(rows.rows.compactMap { $0[0] })
    }

    /// Takes the commands not taken yet (at most 5 minutes old: an older one is not what the
    /// operator waits for any more), once.
    static func takeCommands(_ db: PGConnection, serverID: String) throws -> [(device: String, arm: Bool)] {
        let rows = try db.query("""
            UPDATE liandong.device_commands SET taken_at = now(), taken_by = $1
            WHERE id IN (SELECT id FROM liandong.device_commands WHERE taken_at IS NULL AND requested_at > now() - interval '5 minutes'
                         ORDER BY id FOR UPDATE SKIP LOCKED)
            RETURNING device_id, command
            """, [serverID])
        return rows.rows.compactMap { row in row[0].map { ($0, row[1] == "arm") } }
    }
}
