import ArgumentParser
import Foundation
import LiandongClient
import LiandongCore
import ZeroMQ

/// A simulated dispatcher for the demo: watches the task feed and, for each new task, accepts and
/// later resolves it, calls a verify task a false alarm, or leaves it unanswered so that it climbs
/// village -> township -> county. Every answer comes back from liandongd's updates socket.
@main
struct SimulatedDispatcher: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liandong-dispatcher", abstract: "Answer Liandong tasks like a (somewhat slow) dispatcher.")

    @Option(help: "Feed endpoint (comma-separated: every daemon of an active/standby pair).") var feed = "tcp://127.0.0.1:7611"
    @Option(help: "Updates endpoint (comma-separated: every daemon of a pair; the leader answers).") var updates = "tcp://127.0.0.1:7621"
    @Option(help: "Seconds to run.") var duration = 30.0
    @Option(help: "Share of new tasks left unanswered (they escalate).") var ignore = 0.35
    @Option(help: "Random seed.") var seed: UInt64 = 7
    @Option(help: "Topic prefix to answer (task.620922100: one township; a scoped dispatcher key needs its own).") var prefix = "task."
    @Option(help: "With liandongd's security.curve: the daemon's public key (its NAME.pub file, or the 40 Z85 characters).")
    var curveServerKey: String?
    @Option(help: "With liandongd's security.curve: this client's secret key file (NAME.key of `liandongd keys generate`, mode 0600).")
    var curveKey: String?

    struct Planned {
        let at: Date
        let task: String
        let action: TaskAction
        let note: String?
    }

    func run() throws {
        let curve = try CurveClientKeys.options(serverKey: curveServerKey, secretKeyFile: curveKey)
        let context = try ZMQContext()
        let sub = try ZMQSocket(context: context, type: .sub)
        try curve?.apply(to: sub)
        try sub.setReceiveTimeout(milliseconds: 100)
        try sub.setLinger(milliseconds: 0)
        try sub.subscribe(prefix)
        for endpoint in Endpoint.list(feed) { try sub.connect(endpoint) }
        let dealer = try ZMQSocket(context: context, type: .dealer)
        try curve?.apply(to: dealer)
        try dealer.setReceiveTimeout(milliseconds: 5000)
        try dealer.setLinger(milliseconds: 0)
        try dealer.setImmediate()  // only to a daemon that is up: a standby binds updates when it leads
        for endpoint in Endpoint.list(updates) { try dealer.connect(endpoint) }
        var state = seed
        func random() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        var plan: [Planned] = []
        var seen = Set<String>()
        var counts: [String: Int] = [:]
        let started = Date()
        var n = 0
        while Date().timeIntervalSince(started) < duration {
            if let frames = try sub.receive(), frames.count == 2,
                case .object(let body)? = try? JSONValue.parse(frames[1]),
                let task = body["task_id"]?.stringValue, let kind = body["kind"]?.stringValue
            {
                let tier = body["tier"]?.stringValue ?? "?"
                let fresh = ["verify", "dispatch", "joint_dispatch"].contains(kind) && !seen.contains(task + kind)
                let escalated = kind == "escalation" && body["overdue"] == .bool(false)
                if fresh || escalated {
                    seen.insert(task + kind)
                    let r = random()
                    let now = Date()
                    if r < ignore {
                        counts["left unanswered", default: 0] += 1
                    } else if kind == "verify" && r < ignore + 0.15 {
                        plan.append(Planned(at: now + 1 + 2 * random(), task: task, action: .falseAlarm, note: "nothing there"))
                    } else {
                        plan.append(Planned(at: now + 1 + 2 * random(), task: task, action: .accept, note: nil))
                        plan.append(Planned(at: now + 4 + 4 * random(), task: task, action: .resolve, note: "handled at \(tier)"))
                    }
                }
            }
            let due = plan.filter { $0.at <= Date() }
            plan.removeAll { $0.at <= Date() }
            for p in due {
                n += 1
                let id = "sim-\(seed)-\(n)"
                let update = TaskUpdate.encode(updateID: id, taskID: p.task, action: p.action, actor: "demo-dispatcher",
                                               at: Date().timeIntervalSince1970, note: p.note)
                guard let answer = try ask(dealer, update, id: id) else {
                    counts["unanswered", default: 0] += 1
                    continue
                }
                counts[answer.ok ? p.action.rawValue : "refused", default: 0] += 1
                print("  dispatcher: \(p.action.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0)) \(p.task.prefix(8)) -> "
                    + (answer.ok ? "ok" : "refused: \(answer.error ?? "")"))
                fflush(nil)
            }
        }
        print("liandong-dispatcher: " + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    }

    /// Sends an update and waits for its answer; unanswered for 5 s (it went to a daemon that died
    /// or froze: with --updates naming every daemon of a pair the resend reaches the one that leads),
    /// sends it again with the same update_id (one effect), three times at most. Answers to an
    /// earlier attempt are skipped.
    func ask(_ dealer: ZMQSocket, _ update: [UInt8], id: String) throws -> TaskUpdateAnswer? {
        for _ in 0..<3 {
            try dealer.send([update])
            while let reply = try dealer.receive() {
                guard let answer = TaskUpdateAnswer(json: reply.last ?? []) else { continue }
                if answer.updateID == nil || answer.updateID == id { return answer }
            }
        }
        return nil
    }
}
