import Foundation
import Testing
import LibPQ
import LiandongClient
import LiandongCore
import ZeroMQ

/// A real `liandongd run` process on its own database and ipc:// endpoints, driven with real
/// ZeroMQ sockets and real signals.
final class DaemonProcess {
    let database: String
    let ingest: String
    let feed: String
    let updates: String
    let ack: String
    let replay: String
    /// 127.0.0.1 port of /metrics, /healthz, /readyz.
    let metricsPort: Int
    var process = Process()
    private var environment: [String: String] = [:]
    let logURL: URL
    let context: ZMQContext
    private(set) var gateway: ZMQSocket!

    static let binaries = ProcessInfo.processInfo.environment["LIANDONG_TEST_BIN"]
        ?? TestDatabase.repository.appendingPathComponent(".build/debug").path

    /// With `gatewayBinds` the gateway binds its PUB and the daemon connects to it
    /// (ingest.connect, ingest.bind empty) instead of the other way round.
    let gatewayBinds: Bool
    let arguments: [String]
    /// With security.curve: the test gateway's keys.
    let gatewayCurve: CurveClientKeys?

    init(database: String, environment extra: [String: String] = [:], unsetting: Set<String> = [], arguments: [String] = [],
         gatewayBinds: Bool = false, gatewayCurve: CurveClientKeys? = nil, start: Bool = true) throws {
        self.gatewayBinds = gatewayBinds
        self.gatewayCurve = gatewayCurve
        self.database = database
        self.arguments = arguments
        let id = UUID().uuidString.prefix(8)
        ingest = "ipc://\(Scratch.directory)/ld-\(id)-ingest"
        feed = "ipc://\(Scratch.directory)/ld-\(id)-feed"
        updates = "ipc://\(Scratch.directory)/ld-\(id)-updates"
        ack = "ipc://\(Scratch.directory)/ld-\(id)-ack"
        replay = "ipc://\(Scratch.directory)/ld-\(id)-replay"
        metricsPort = try freePort()
        logURL = URL(fileURLWithPath: "\(Scratch.directory)/ld-\(id).log")
        context = try ZMQContext()
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("LIANDONG_") }
        env["LIANDONG_DATABASE_URL"] = database
        env["LIANDONG_INGEST_BIND"] = gatewayBinds ? "" : ingest
        if gatewayBinds { env["LIANDONG_INGEST_CONNECT"] = ingest }
        env["LIANDONG_FEED_BIND"] = feed
        env["LIANDONG_UPDATES_BIND"] = updates
        env["LIANDONG_INGEST_ACK_BIND"] = ack
        env["LIANDONG_FEED_REPLAY_BIND"] = replay
        env["LIANDONG_METRICS_BIND"] = "127.0.0.1:\(metricsPort)"
        env["LIANDONG_INGEST_SPILL_PATH"] = "\(Scratch.directory)/ld-\(id).spill"
        env["LIANDONG_INGEST_BATCH_MS"] = "5"
        env["LIANDONG_LOG_LEVEL"] = "info"
        // No patrol reminders (after 18:00 CST every grid of a test would get one) unless asked for.
        env["LIANDONG_WORKERS_PATROL_DUE"] = ""
        for (k, v) in extra { env[k] = v }
        for k in unsetting { env[k] = nil }
        environment = env
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        configureProcess()
        if start { try launch() }
    }

    private func configureProcess() {
        process.executableURL = URL(fileURLWithPath: Self.binaries + "/liandongd")
        process.arguments = ["run", "--migrations", TestDatabase.migrations] + arguments
        process.environment = environment
        if let log = try? FileHandle(forWritingTo: logURL) {
            log.seekToEndOfFile()
            process.standardOutput = log
            process.standardError = log
        }
    }

    /// kill -9, then a new process on the same database and endpoints (the gateway socket and
    /// any client sockets reconnect by themselves).
    func crashAndRestart() throws {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try restart()
    }

    /// A new process on the same database and endpoints, after this one exited.
    func restart() throws {
        precondition(!process.isRunning, "restart() after the process exited")
        process = Process()
        configureProcess()
        try process.run()
        // The gateway's XPUB sees the new subscription once the new daemon is up.
        guard try gateway.waitForSubscribers(covering: ["alert", "report"], timeoutMilliseconds: 15_000) else {
            throw TestFailure("restarted liandongd did not subscribe; log:\n\(log)")
        }
        try waitForHTTP()
    }

    /// The SUB socket subscribes before the HTTP listener is up: a test that reads /metrics right
    /// after a start must not meet a refused connection. (Not when a test moved metrics.bind.)
    private func waitForHTTP() throws {
        guard environment["LIANDONG_METRICS_BIND"] == "127.0.0.1:\(metricsPort)" else { return }
        try waitUntil(timeout: 15, "liandongd's HTTP listener") {
            guard process.isRunning else { return true }  // an exit is the test's to see
            return (try? httpGet(port: metricsPort, "/healthz"))?.status == 200
        }
    }

    /// Starts the process and connects a gateway, returning once the daemon has subscribed.
    func launch() throws {
        let socket = try ZMQSocket(context: context, type: .xpub)
        try gatewayCurve?.apply(to: socket)
        try socket.setLinger(milliseconds: 1000)
        try socket.setXPubVerbose()
        if gatewayBinds { try socket.bind(ingest) }
        try process.run()
        if !gatewayBinds { try socket.connect(ingest) }
        guard try socket.waitForSubscribers(covering: ["alert", "report"], timeoutMilliseconds: 15_000) else {
            throw TestFailure("liandongd did not subscribe; log:\n\(log)")
        }
        gateway = socket
        try waitForHTTP()
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// The value of one series on /metrics, by its exact name and labels
    /// (`liandong_events_late_total`, `liandong_writer_seconds_total{phase="wait"}`); 0 when absent.
    func metric(_ series: String) throws -> Double {
        Self.metric(series, in: try httpGet(port: metricsPort, "/metrics").body)
    }

    static func metric(_ series: String, in text: String) -> Double {
        let line = text.split(separator: "\n").first { $0.hasPrefix(series + " ") }
        return line.flatMap { Double($0.dropFirst(series.count + 1)) } ?? 0
    }

    /// Like `waitUntil`, but a timeout carries the end of the daemon's log, so a failure on a CI
    /// machine says what the daemon was doing.
    func waitUntil(timeout: TimeInterval = 10, _ what: String, _ condition: () throws -> Bool) throws {
        do {
            try LiandongIntegrationTests.waitUntil(timeout: timeout, what, condition)
        } catch let failure as TestFailure {
            let tail = log.split(separator: "\n", omittingEmptySubsequences: false).suffix(40).joined(separator: "\n")
            throw TestFailure("\(failure); liandongd log (last 40 lines):\n\(tail)")
        }
    }

    func send(_ topic: String, _ body: String) throws {
        try gateway.send([Array(topic.utf8), Array(body.utf8)])
    }

    func send(frames: [[UInt8]]) throws { try gateway.send(frames) }

    /// `count` alerts on the SUB path on a 25 x 15 m lattice centred on `centre`, observed within the
    /// last ten minutes, ids `<id>-<i>`.
    func sendAlerts(around centre: LonLat, count: Int, id: String, now: Double, extra: [String: Any] = [:]) throws {
        for i in 0..<count {
            let p = offset(centre, east: Double(i % 50) * 25 - 600, north: Double(i / 50 - count / 100) * 15)
            try send("alert", Wire.alert(id: "\(id)-\(i)", at: now - Double(i % 600), position: p, extra: extra))
        }
    }

    /// Waits until `count` messages arrived on the SUB path and none waits in memory any more (what
    /// the daemon holds is written or spilled), and `also` holds for the metrics text.
    func waitUntilReceived(_ count: Int, timeout: TimeInterval = 20, _ what: String, also: (String) -> Bool = { _ in true }) throws {
        try waitUntil(timeout: timeout, what) {
            let text = try httpGet(port: metricsPort, "/metrics").body
            return Self.metric("liandong_events_received_total{path=\"sub\"}", in: text) == Double(count)
                && Self.metric("liandong_ingest_queue_depth", in: text) == 0 && also(text)
        }
    }

    /// For changes the writer picks up within a second (silences, suppressions, reviews): sends a
    /// probe (`send(n)`, n = 1, 2, ...) and watches half a second for `effective`, until it holds.
    func probe(timeout: TimeInterval = 15, _ what: String, send: (Int) throws -> Void, until effective: () throws -> Bool) throws {
        var n = 0
        try waitUntil(timeout: timeout, what) {
            n += 1
            try send(n)
            return try (0..<25).contains { _ in
                usleep(20_000)
                return try effective()
            }
        }
    }

    /// Sends SIGTERM (or another signal) and waits for the exit status.
    func stop(signal: Int32 = SIGTERM, timeout: TimeInterval = 60) throws -> Int32 {
        kill(process.processIdentifier, signal)
        try waitUntil(timeout: timeout, "liandongd to exit") { !process.isRunning }
        return process.terminationStatus
    }

    /// A SUB socket on the feed that has seen a heartbeat, so no task can slip past it.
    func subscribeFeed(prefix: String = "task.", curve: CurveClientKeys? = nil) throws -> ZMQSocket {
        try subscribeFeed(prefixes: [prefix], curve: curve)
    }

    func subscribeFeed(prefixes: [String], curve: CurveClientKeys? = nil) throws -> ZMQSocket {
        let socket = try ZMQSocket(context: context, type: .sub)
        try curve?.apply(to: socket)
        try socket.setReceiveTimeout(milliseconds: 100)
        try socket.setLinger(milliseconds: 0)
        for prefix in prefixes { try socket.subscribe(prefix) }
        try socket.subscribe("hb")
        try socket.connect(feed)
        try waitUntil(timeout: 10, "a feed heartbeat") {
            guard let frames = try socket.receive() else { return false }
            return frames.first == Array("hb".utf8)
        }
        return socket
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        expectNoPlantedSecret(log, from: "liandongd run")
        try? FileManager.default.removeItem(at: logURL)
        if let spill = environment["LIANDONG_INGEST_SPILL_PATH"] {
            try? FileManager.default.removeItem(atPath: spill)
            try? FileManager.default.removeItem(atPath: spill + ".offset")
        }
    }
}

/// Receives task messages (skipping heartbeats) until `count` arrived or the deadline passes.
func receiveTasks(_ socket: ZMQSocket, count: Int, timeout: TimeInterval = 10) throws -> [(topic: String, body: [String: Any])] {
    var out: [(String, [String: Any])] = []
    try waitUntil(timeout: timeout, "\(count) task messages") {
        if let frames = try socket.receive(), frames.count == 2, frames[0] != Array("hb".utf8) {
            let body = try JSONSerialization.jsonObject(with: Data(frames[1])) as! [String: Any]
            out.append((String(decoding: frames[0], as: UTF8.self), body))
        }
        return out.count >= count
    }
    return out.map { (topic: $0.0, body: $0.1) }
}

/// Builders of v1 messages for tests.
enum Wire {
    static func alert(id: String, device: String = "62092200001320000004", method: Int = 5, type: Int = 6,
                      priority: Int = 2, at: Double, position: LonLat? = nil, crs: String = "wgs84",
                      extra: [String: Any] = [:]) -> String {
        var body: [String: Any] = [
            "schema": "liandong.alert.v1", "alert_id": id, "gateway_id": "gw-test", "device_id": device,
            "alarm_method": method, "alarm_type": type, "priority": priority, "observed_at": Timestamp.formatCST(at),
        ]
        if let position {
            body["lon"] = position.lon
            body["lat"] = position.lat
            body["crs"] = crs
        }
        for (k, v) in extra { body[k] = v }
        return json(body)
    }

    static func report(id: String, category: String = "闯入", severity: Int = 2, at: Double, position: LonLat?,
                       crs: String = "wgs84", grid: String? = nil, extra: [String: Any] = [:]) -> String {
        var body: [String: Any] = [
            "schema": "liandong.report.v1", "report_id": id, "worker_id": "w-test", "category": category,
            "severity": severity, "observed_at": Timestamp.formatCST(at),
        ]
        if let position {
            body["lon"] = position.lon
            body["lat"] = position.lat
            body["crs"] = crs
        }
        if let grid { body["grid_code"] = grid }
        for (k, v) in extra { body[k] = v }
        return json(body)
    }

    static func json(_ object: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }
}

/// Moves a point `metres` east and `north` metres north.
func offset(_ p: LonLat, east: Double = 0, north: Double = 0) -> LonLat {
    LonLat(lon: p.lon + east / (111_320 * cos(p.lat * .pi / 180)), lat: p.lat + north / 110_574)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = loopbackAddress()
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withSockaddr(&addr) { bind(fd, $0, len) }
    _ = withSockaddr(&addr) { getsockname(fd, $0, &len) }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// 127.0.0.1:port as a socket address.
func loopbackAddress(port: Int = 0, host: String = "127.0.0.1") -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr(host)
    addr.sin_port = UInt16(port).bigEndian
    return addr
}

/// Calls `body` with `addr` as the `sockaddr` pointer the socket calls take.
func withSockaddr<R>(_ addr: inout sockaddr_in, _ body: (UnsafeMutablePointer<sockaddr>) -> R) -> R {
    withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1, body) }
}

/// GET http://127.0.0.1:port/path; returns the status code and body.
func httpGet(port: Int, _ path: String) throws -> (status: Int, body: String) {
    let answer = try http(port: port, "GET", path)
    return (answer.status, answer.body)
}
