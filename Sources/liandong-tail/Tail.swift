import ArgumentParser
import Foundation
import ZeroMQ

/// A minimal dispatcher console: subscribes to the task feed and prints each task on one line.
@main
struct Tail: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liandong-tail", abstract: "Print Liandong task messages as they are published.")

    @Option(help: "Feed endpoint to connect to.") var connect = "tcp://127.0.0.1:7611"
    @Option(help: "Topic prefix (task.620922100 = one township and everything under it).") var prefix = "task."
    @Option(help: "Exit after this many task messages (0 = never).") var count = 0
    @Option(help: "Exit after this many seconds (0 = never).") var duration = 0.0
    @Flag(help: "Print the raw JSON body instead of a summary line.") var json = false
    @Flag(help: "Also print heartbeats (topic hb).") var heartbeats = false

    func run() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .sub)
        try socket.setReceiveTimeout(milliseconds: 200)
        try socket.setLinger(milliseconds: 0)
        try socket.subscribe(prefix)
        if heartbeats { try socket.subscribe("hb") }
        try socket.connect(connect)
        let started = Date()
        var seen = 0
        while (count == 0 || seen < count) && (duration == 0 || Date().timeIntervalSince(started) < duration) {
            guard let frames = try socket.receive(), frames.count == 2 else { continue }
            let topic = String(decoding: frames[0], as: UTF8.self)
            let body = String(decoding: frames[1], as: UTF8.self)
            if topic == "hb" {
                print("hb \(body)")
                continue
            }
            seen += 1
            print(json ? "\(topic) \(body)" : summary(topic: topic, body: frames[1]))
            fflush(nil)
        }
    }

    func summary(topic: String, body: [UInt8]) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            return "\(topic) (unreadable body)"
        }
        func s(_ key: String) -> String { object[key].map { "\($0)" } ?? "-" }
        let evidence = object["evidence"] as? [String: Any]
        let alerts = evidence?["alert_count"].map { "\($0)" } ?? "?"
        let reports = evidence?["report_count"].map { "\($0)" } ?? "?"
        let kind = (s("kind") + "/" + s("state")).padding(toLength: 26, withPad: " ", startingAt: 0)
        let overdue = object["overdue"] as? Bool == true ? " OVERDUE" : ""
        return "#\(s("seq")) \(kind) \(topic) [\(s("tier"))\(overdue)] \(s("category")) p\(s("priority")) "
            + "grid \(s("grid_code")) alerts \(alerts) reports \(reports) respond_by \(s("respond_by"))"
    }
}
