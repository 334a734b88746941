import ArgumentParser
import Foundation
import LiandongClient
import LiandongCore
import ZeroMQ

/// A minimal dispatcher console: subscribes to the task feed and prints each task on one line.
@main
struct Tail: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liandong-tail", abstract: "Print Liandong task messages as they are published.")

    @Option(help: "Feed endpoint to connect to (comma-separated: every daemon of an active/standby pair).") var connect = "tcp://127.0.0.1:7611"
    @Option(help: "Topic prefix (task.620922100 = one township and everything under it).") var prefix = "task."
    @Option(help: "Exit after this many task messages (0 = never).") var count = 0
    @Option(help: "Exit after this many seconds (0 = never).") var duration = 0.0
    @Flag(help: "Print the raw JSON body instead of a summary line.") var json = false
    @Flag(help: "Also print heartbeats (topic hb).") var heartbeats = false
    @Option(help: "Replay endpoint (liandongd's feed.replay_bind, e.g. tcp://127.0.0.1:7612): detect gaps from the heartbeat and fetch what was missed, from PostgreSQL; comma-separated for a pair, in the order of --connect.")
    var replay: String?
    @Option(help: "With --replay: the last seq already processed (0 = everything in the feed).") var since: Int64 = 0
    @Option(help: "With liandongd's security.curve: the daemon's public key (its NAME.pub file, or the 40 Z85 characters).")
    var curveServerKey: String?
    @Option(help: "With liandongd's security.curve: this client's secret key file (NAME.key of `liandongd keys generate`, mode 0600).")
    var curveKey: String?

    func run() throws {
        if let replay { return try runWithReplay(replay) }
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .sub)
        try CurveClientKeys.options(serverKey: curveServerKey, secretKeyFile: curveKey)?.apply(to: socket)
        try socket.setReceiveTimeout(milliseconds: 200)
        try socket.setLinger(milliseconds: 0)
        try socket.subscribe(prefix)
        try socket.subscribe("hb")  // liandongd beats every second: silence means a lost or refused connection
        for endpoint in Endpoint.list(connect) { try socket.connect(endpoint) }
        let started = Date()
        var seen = 0
        var lastHeard = Date()
        while (count == 0 || seen < count) && (duration == 0 || Date().timeIntervalSince(started) < duration) {
            if Date().timeIntervalSince(lastHeard) > 5 {
                // A CURVE handshake refused (this key out of the peers file for a while) is never
                // retried by libzmq: connect afresh, so a re-admitted key gets in.
                try socket.dropConnections()
                lastHeard = Date()
            }
            guard let frames = try socket.receive(), frames.count == 2 else { continue }
            lastHeard = Date()
            let topic = String(decoding: frames[0], as: UTF8.self)
            let body = String(decoding: frames[1], as: UTF8.self)
            if topic == "hb" {
                if heartbeats { print("hb \(body)") }
                continue
            }
            seen += 1
            print(json ? "\(topic) \(body)" : summary(topic: topic, body: frames[1]))
            fflush(nil)
        }
    }

    /// Gap-free mode: live messages plus whatever the heartbeat shows was missed.
    func runWithReplay(_ endpoint: String) throws {
        let context = try ZMQContext()
        let feeds = Endpoint.list(connect), replays = Endpoint.list(endpoint)
        guard !feeds.isEmpty, feeds.count == replays.count else {
            throw ValidationError("--connect and --replay must name the same number of daemons (\(feeds.count) and \(replays.count))")
        }
        let client = try FeedClient(context: context, feed: feeds[0], replay: replays[0], prefix: prefix, since: since,
                                    curve: try CurveClientKeys.options(serverKey: curveServerKey, secretKeyFile: curveKey))
        for (feed, replay) in zip(feeds, replays).dropFirst() { try client.connect(feed: feed, replay: replay) }
        let started = Date()
        var seen = 0
        do {
            for item in try client.catchUp(peerWait: min(10, duration > 0 ? duration : 10)) {
                seen += 1
                print((json ? "\(item.topic) \(item.body)" : summary(topic: item.topic, body: Array(item.body.utf8))) + " (replayed)")
            }
        } catch let error as ReplayError where error.unavailable {
            // Not fatal: the heartbeat's catch-up tries again (the daemon may be starting, or this key not yet admitted).
            FileHandle.standardError.write(Data("liandong-tail: \(error.message); live messages only until it answers\n".utf8))
        }
        while (count == 0 || seen < count) && (duration == 0 || Date().timeIntervalSince(started) < duration) {
            let left = duration == 0 ? 0.5 : min(0.5, max(0.01, duration - Date().timeIntervalSince(started)))
            for item in try client.next(timeout: left) {
                seen += 1
                let line = json ? "\(item.topic) \(item.body)" : summary(topic: item.topic, body: Array(item.body.utf8))
                print(line + (item.replayed ? " (replayed)" : ""))
            }
            fflush(nil)
        }
        FileHandle.standardError.write(Data("liandong-tail: \(client.liveCount) live, \(client.replayedCount) replayed, caught up to seq \(client.caughtUp)\n".utf8))
    }

    func summary(topic: String, body: [UInt8]) -> String {
        guard case .object(let object)? = try? JSONValue.parse(body) else { return "\(topic) (unreadable body)" }
        func text(_ value: JSONValue?) -> String {
            switch value {
            case .string(let s)?: return s
            case .number(let d)?: return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
            case .bool(let b)?: return String(b)
            default: return "-"
            }
        }
        func s(_ key: String) -> String { text(object[key]) }
        var alerts = "?", reports = "?"
        if case .object(let evidence)? = object["evidence"] {
            alerts = text(evidence["alert_count"])
            reports = text(evidence["report_count"])
        }
        let kind = (s("kind") + "/" + s("state")).padding(toLength: 26, withPad: " ", startingAt: 0)
        let overdue = object["overdue"] == .bool(true) ? " OVERDUE" : ""
        return "#\(s("seq")) \(kind) \(topic) [\(s("tier"))\(overdue)] \(s("category")) p\(s("priority")) "
            + "grid \(s("grid_code")) alerts \(alerts) reports \(reports) respond_by \(s("respond_by"))"
    }
}
