import ArgumentParser
import Foundation
import LiandongClient
import LiandongCore
import LibPQ
import ZeroMQ

/// Publishes realistic Sharp Eyes alerts and grid-worker reports for the demo, with known ground
/// truth: true incidents (camera alert + a worker's report nearby, in GCJ-02 as phones send),
/// camera-only alerts, serious reports alone and minor reports.
@main
struct Simulator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liandong-sim", abstract: "Publish simulated camera alerts and grid reports to liandongd.")

    @Option(help: "liandongd ingest endpoint to connect to (comma-separated: every daemon of an active/standby pair).") var connect = "tcp://127.0.0.1:7601"
    @Option(help: "libpq conninfo of the Liandong database: the cameras and grids it simulates are read from it (default: LIANDONG_DATABASE_URL, else libpq's PG* variables).")
    var database = ProcessInfo.processInfo.environment["LIANDONG_DATABASE_URL"] ?? ""
    @Option(help: "Scenarios per second.") var rate = 4.0
    @Option(help: "Seconds to run.") var duration = 20.0
    @Option(help: "Random seed.") var seed: UInt64 = 620922
    @Option(help: "Gateway id used in alert ids.") var gateway = "gw-sim"
    @Option(help: "Send over acknowledged ingest (liandongd's ingest.ack_bind, e.g. tcp://127.0.0.1:7602) instead of PUB: every message is resent until liandongd has committed it; comma-separated for a pair.")
    var ack: String?
    @Option(help: "With liandongd's security.curve: the daemon's public key (its NAME.pub file, or the 40 Z85 characters).")
    var curveServerKey: String?
    @Option(help: "With liandongd's security.curve: this client's secret key file (NAME.key of `liandongd keys generate`, mode 0600).")
    var curveKey: String?
    @Option(name: .customLong("workers"), help: "Grid workers who walk their grids and send liandong.worker_position.v1 (workers of grids with cameras first; 0: none).")
    var walkingWorkers = 0
    @Option(help: "Seconds between a walking worker's positions (the workers' app sends every 30-60 s).") var positionInterval = 30.0
    @Option(help: "Minutes of the walking workers' patrol before the run, sent first (an app uploading what it queued).")
    var patrolHistory = 0.0
    @Option(help: "With --ack: append a line per answer to this file (\"UNIX_TIME ok|duplicate|unavailable|refused ID\"), for when acknowledgements stopped and resumed.")
    var ackLog: String?

    func run() throws {
        let db: PGConnection
        do {
            db = try PGConnection(conninfo: database)
        } catch {
            throw ValidationError("cannot read the cameras and grids to simulate: give --database (the daemon's database.url) "
                + "or set LIANDONG_DATABASE_URL: \(Secrets.redact("\(error)"))")
        }
        let cameras = try db.query("""
            SELECT device_id, ST_X(geom), ST_Y(geom), grid_code FROM liandong.cameras
            WHERE grid_code IS NOT NULL ORDER BY device_id
            """).rows.map { Camera(id: $0[0]!, lon: Double($0[1]!)!, lat: Double($0[2]!)!, grid: $0[3]!) }
        guard !cameras.isEmpty else {
            throw ValidationError("no cameras inside grids in the database: import divisions, grids and cameras first")
        }
        let workers = Dictionary(uniqueKeysWithValues: try db.query(
            "SELECT grid_code, min(worker_id) FROM liandong.grid_workers GROUP BY grid_code").rows.map { ($0[0]!, $0[1]!) })

        let walkers = try Walker.load(db, count: walkingWorkers)
        let answerLog = try ackLog.map { path -> FileHandle in
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            guard let handle = FileHandle(forWritingAtPath: path) else { throw ValidationError("cannot write --ack-log \(path)") }
            return handle
        }
        /// Notes the answers heard (with --ack-log).
        func heard(_ answers: [IngestClient.Answer]) {
            guard let answerLog, !answers.isEmpty else { return }
            let now = String(format: "%.3f", Date().timeIntervalSince1970)
            let lines = answers.map { a in
                let what = a.ok ? (a.duplicate ? "duplicate" : "ok") : (IngestAnswer.isUnavailable(a.error) ? "unavailable" : "refused")
                return "\(now) \(what) \(a.id)\n"
            }
            answerLog.write(Data(lines.joined().utf8))
        }

        let curve = try CurveClientKeys.options(serverKey: curveServerKey, secretKeyFile: curveKey)
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .xpub)
        try curve?.apply(to: socket)
        try socket.setLinger(milliseconds: 5000)
        // PUB drops silently at the high-water mark; a simulator must not lose its own messages.
        try socket.setSendHighWaterMark(0)
        // Every daemon's subscription is seen (an XPUB passes on only the first of equal ones by default).
        try socket.setXPubVerbose()
        let acks = ack.map(Endpoint.list) ?? []
        let client = try acks.first.map { try IngestClient(context: context, endpoint: $0, curve: curve) }
        for endpoint in acks.dropFirst() { try client?.connect(endpoint) }
        if client == nil {
            // Each daemon subscribes (a standby too: it keeps what it receives).
            for endpoint in Endpoint.list(connect) {
                try socket.connect(endpoint)
                guard try socket.waitForSubscribers(covering: ["alert", "report"], timeoutMilliseconds: 10_000) else {
                    throw ValidationError("liandongd did not subscribe within 10 s at \(endpoint): is it running?")
                }
            }
        }
        var rng = SplitMix64(seed: seed)
        // Ids unique per run, so a second run against the same database is not all duplicates.
        let run = String(Int(Date().timeIntervalSince1970), radix: 36)
        var seq = 0
        var tally: [String: Int] = [:]
        var sent = 0
        let started = Date()
        var n = 0
        var positions = 0
        func position(_ w: Walker, at t: Double) throws {
            let id = "position:\(w.worker):\(Timestamp.formatCST(t))"
            let p = w.position(at: t)
            var body = JSONText()
            body.object {
                $0.field("at", Timestamp.formatCST(t))
                $0.field("crs", "wgs84")
                $0.field("lat", number: p.lat)
                $0.field("lon", number: p.lon)
                $0.field("schema", WorkerPosition.schema)
                $0.field("state", "on_patrol")
                $0.field("worker_id", w.worker)
            }
            positions += 1
            sent += 1
            let data = Array(body.text.utf8)
            if let client {
                try client.send(topic: "position", body: data, id: id)
                heard(try client.poll(timeout: 0))
            } else {
                try socket.send([Array("position".utf8), data])
            }
        }
        // What the walking workers' apps queued: their patrol of the last minutes, oldest first.
        let first = started.timeIntervalSince1970
        for k in stride(from: Int(patrolHistory * 60 / positionInterval), to: 0, by: -1) {
            for w in walkers { try position(w, at: first - Double(k) * positionInterval) }
        }
        var nextPositions = first
        while Date().timeIntervalSince(started) < duration {
            if !walkers.isEmpty, Date().timeIntervalSince1970 >= nextPositions {
                for w in walkers { try position(w, at: nextPositions) }
                nextPositions += positionInterval
            }
            let due = started.addingTimeInterval(Double(n) / rate)
            let wait = due.timeIntervalSinceNow
            if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            n += 1
            let camera = cameras[Int(rng.next() % UInt64(cameras.count))]
            let kind = Scenario.allCases[Int(rng.next() % UInt64(Scenario.allCases.count))]
            let now = Date().timeIntervalSince1970
            let (method, type, reportCategory) = [(5, 6, "闯入"), (5, 10, "聚集"), (5, 12, "打架")][Int(rng.next() % 3)]
            tally[kind.rawValue, default: 0] += 1
            func alert(observed: Double) throws {
                seq += 1
                let id = "\(gateway):\(run)-\(String(format: "%07d", seq))"
                let priority = 1 + Int(rng.next() % 3), confidence = 0.6 + Double(rng.next() % 40) / 100
                let positioned = rng.next() % 2 == 0
                var body = JSONText()
                body.object {
                    $0.field("alarm_method", integer: method)
                    $0.field("alarm_type", integer: type)
                    $0.field("alert_id", id)
                    $0.field("confidence", number: confidence)
                    if positioned { $0.field("crs", "wgs84") }
                    $0.field("description", "video analytics alarm (simulated)")
                    $0.field("device_id", camera.id)
                    $0.field("event_type", integer: 1)
                    $0.field("gateway_id", gateway)
                    if positioned {
                        $0.field("lat", number: camera.lat)
                        $0.field("lon", number: camera.lon)
                    }
                    $0.field("observed_at", Timestamp.formatCST(observed))
                    $0.field("priority", integer: priority)
                    $0.field("schema", "liandong.alert.v1")
                    $0.field("seq", integer: seq)
                }
                try send("alert", id: id, body)
            }
            func report(observed: Double, severity: Int, category: String, near: Bool) throws {
                let angle = Double(rng.next() % 360) * .pi / 180
                let metres = near ? Double(rng.next() % 80) : 0
                let wgs = LonLat(
                    lon: camera.lon + metres * cos(angle) / (111_320 * cos(camera.lat * .pi / 180)),
                    lat: camera.lat + metres * sin(angle) / 110_574)
                let gcj = CoordinateConverter.fromWGS84(wgs, to: .gcj02)
                let id = "r-\(gateway)-\(run)-\(n)"
                var body = JSONText()
                body.object {
                    $0.field("category", category)
                    $0.field("crs", "gcj02")
                    $0.field("description", "grid worker report (simulated)")
                    $0.field("grid_code", camera.grid)
                    $0.field("lat", number: gcj.lat)
                    $0.field("lon", number: gcj.lon)
                    $0.field("observed_at", Timestamp.formatCST(observed))
                    $0.field("report_id", id)
                    $0.field("schema", "liandong.report.v1")
                    $0.field("severity", integer: severity)
                    $0.field("worker_id", workers[camera.grid] ?? "w-unknown")
                }
                try send("report", id: id, body)
            }
            func send(_ topic: String, id: String, _ body: JSONText) throws {
                sent += 1
                let data = Array(body.text.utf8)
                if let client {
                    try client.send(topic: topic, body: data, id: id)
                    heard(try client.poll(timeout: 0))
                } else {
                    try socket.send([Array(topic.utf8), Array(data)])
                }
            }
            switch kind {
            case .joint:
                try alert(observed: now - 30 - Double(rng.next() % 90))
                try report(observed: now, severity: 2 + Int(rng.next() % 2), category: reportCategory, near: true)
            case .cameraOnly:
                try alert(observed: now)
            case .seriousReport:
                try report(observed: now, severity: 1 + Int(rng.next() % 2), category: "矛盾纠纷", near: false)
            case .minorReport:
                try report(observed: now, severity: 3 + Int(rng.next() % 2), category: "治安隐患", near: false)
            }
        }
        let summary = Scenario.allCases.map { "\($0.rawValue) \(tally[$0.rawValue] ?? 0)" }.joined(separator: ", ")
        print("liandong-sim: \(n) scenarios (\(sent) messages) in \(Int(duration)) s: \(summary)"
            + (walkers.isEmpty ? "" : "; \(walkers.count) workers walking their grids, \(positions) positions"))
        if let client {
            let deadline = Date(timeIntervalSinceNow: 60)
            while client.unanswered > 0 && Date() < deadline { heard(try client.poll(timeout: 0.2)) }
            let all = client.unanswered == 0
            print("liandong-sim: acknowledged path: \(all ? "every message committed" : "\(client.unanswered) unanswered"), "
                + "\(client.resent) resent")
            if !all { throw ExitCode(1) }
        }
    }
}

/// A grid worker walking round the inside of the grid (80 m in from its edge) at 1.2 m/s, from a
/// point of the round set by the worker id (so runs differ between workers and repeat between runs).
struct Walker {
    let worker: String
    /// The round, closed, in WGS-84.
    let route: [LonLat]
    let length: Double

    static let speed = 1.2

    static func load(_ db: PGConnection, count: Int) throws -> [Walker] {
        guard count > 0 else { return [] }
        let rows = try db.query("""
            SELECT w.worker_id, ST_AsText(ST_ExteriorRing(ST_GeometryN(coalesce(
                       nullif(ST_Buffer(g.geom::geography, -80)::geometry, 'POLYGON EMPTY'::geometry), g.geom), 1)))
            FROM liandong.grid_workers w JOIN liandong.grids g ON g.grid_code = w.grid_code AND g.valid_to IS NULL
            ORDER BY EXISTS (SELECT 1 FROM liandong.cameras c WHERE c.grid_code = g.grid_code) DESC, w.worker_id
            LIMIT $1
            """, [String(count)]).rows
        return rows.compactMap { row in
            guard let worker = row[0], let wkt = row[1] else { return nil }
            let inner = wkt.drop { $0 != "(" }.dropFirst().prefix { $0 != ")" }
            let route = inner.split(separator: ",").compactMap { pair -> LonLat? in
                let xy = pair.split(separator: " ").compactMap { Double($0) }
                return xy.count == 2 ? LonLat(lon: xy[0], lat: xy[1]) : nil
            }
            guard route.count >= 2 else { return nil }
            let length = zip(route, route.dropFirst()).map { $0.ellipsoidDistance(to: $1) }.reduce(0, +)
            return length > 0 ? Walker(worker: worker, route: route, length: length) : nil
        }
    }

    /// Where the worker is at `t`: walking the round since the epoch, offset by its id.
    func position(at t: Double) -> LonLat {
        let offset = Double(worker.unicodeScalars.reduce(0) { ($0 &* 31 &+ Int($1.value)) & 0xFFFF })
        var along = (t * Self.speed + offset).truncatingRemainder(dividingBy: length)
        for (a, b) in zip(route, route.dropFirst()) {
            let leg = a.ellipsoidDistance(to: b)
            if along <= leg, leg > 0 {
                let f = along / leg
                return LonLat(lon: a.lon + (b.lon - a.lon) * f, lat: a.lat + (b.lat - a.lat) * f)
            }
            along -= leg
        }
        return route[0]
    }
}

struct Camera {
    let id: String
    let lon, lat: Double
    let grid: String
}

enum Scenario: String, CaseIterable {
    case joint = "camera+report", cameraOnly = "camera-only", seriousReport = "serious-report",
        minorReport = "minor-report"
}

