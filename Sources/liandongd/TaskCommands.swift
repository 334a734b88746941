import ArgumentParser
import Foundation
import LiandongClient
import LiandongCore
import LiandongServices
import LiandongStorage
import ZeroMQ

/// `liandongd task show|close|reassign`: explain a task, and act on a stuck one as an operator.
struct TaskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task", abstract: "Explain a task (its timeline, evidence, deadlines, who did what) or act on a stuck one.",
        subcommands: [Show.self, Close.self, Reassign.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A task's timeline, evidence, deadlines, messages and who did what.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The task id (task_id of its messages).") var id: String

        func run() async throws {
            try await reportingErrors {
                for line in try Explainer(db: try options.currentDatabase()).task(id) { print(line) }
            }
        }
    }

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Close an unfinished task (resolved, or --false-alarm) through the running daemon, as a dispatcher's update would.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The task id.") var id: String
        @Option(help: "Why (recorded in the task's history and sent to its dispatcher).") var reason: String
        @Option(help: "Who acts (recorded as the actor).") var by: String
        @Flag(help: "Close it as a false alarm instead of resolved.") var falseAlarm = false
        @Option(help: "The daemon's updates socket (default: updates.bind of the config, on this host).") var updates: String?

        func run() async throws {
            try await reportingErrors {
                try OperatorUpdate(options: options, updates: updates)
                    .send(taskID: id, action: falseAlarm ? .falseAlarm : .resolve, actor: by, note: reason, divisionCode: nil)
            }
        }
    }

    struct Reassign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move an unfinished task to another division of its county (open there, that tier's deadlines), through the running daemon.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The task id.") var id: String
        @Option(help: "The division that takes it (12 digits a village, 9 a township, 6 the county).") var to: String
        @Option(help: "Why (recorded in the task's history and sent to both divisions' dispatchers).") var reason: String
        @Option(help: "Who acts (recorded as the actor).") var by: String
        @Option(help: "The daemon's updates socket (default: updates.bind of the config, on this host).") var updates: String?

        func run() async throws {
            try await reportingErrors {
                try OperatorUpdate(options: options, updates: updates)
                    .send(taskID: id, action: .reassign, actor: by, note: reason, divisionCode: to)
            }
        }
    }
}

/// `liandongd event why ID`.
struct EventCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "event", abstract: "Explain an event: where it was placed, which incident and task, or why it made no task.",
        subcommands: [Why.self])

    struct Why: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Where an alert or report was placed, its incident and task, or why it made none (silence, inhibition, suppressed camera, coalesced, dead letter).")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The alert_id or report_id as the gateway sent it (or the event number).") var id: String

        func run() async throws {
            try await reportingErrors {
                for line in try Explainer(db: try options.currentDatabase()).event(id) { print(line) }
            }
        }
    }
}

/// An operator's action sent to the daemon's updates socket: the same path, planner and record as
/// a dispatcher's update (task_updates, task_history with the actor, a task message). With
/// security.curve it speaks with the daemon's own key (security.secret_key_file).
struct OperatorUpdate {
    let endpoints: [String]
    let curve: CurveClientKeys?

    init(options: CommonOptions, updates: String?) throws {
        let config = try options.loadConfig()
        // Bound on every interface or a wildcard: reach it on this host.
        endpoints = Endpoint.list(updates ?? config.updatesBind).map {
            $0.replacingOccurrences(of: "://*:", with: "://127.0.0.1:").replacingOccurrences(of: "://0.0.0.0:", with: "://127.0.0.1:")
        }
        guard !endpoints.isEmpty else { throw ValidationError("no updates endpoint: set updates.bind or give --updates") }
        if config.security.curve {
            let secret = try CurveKeyFiles.readSecret(config.security.secretKeyFile, setting: "security.secret_key_file")
            curve = try CurveClientKeys(serverKey: try ZMQCurve.publicKey(of: secret), secretKey: secret)
        } else {
            curve = nil
        }
    }

    func send(taskID: String, action: TaskAction, actor: String, note: String, divisionCode: String?) throws {
        guard !note.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--reason: say why") }
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .dealer)
        try curve?.apply(to: socket)
        try socket.setLinger(milliseconds: 0)
        try socket.setImmediate()
        try socket.setSendTimeout(milliseconds: 10_000)
        try socket.setReceiveTimeout(milliseconds: 15_000)
        for endpoint in endpoints { try socket.connect(endpoint) }
        let updateID = "operator-\(UUID().uuidString.lowercased())"
        do {
            try socket.send([TaskUpdate.encode(updateID: updateID, taskID: taskID, action: action, actor: actor,
                                               at: Date().timeIntervalSince1970, note: note, divisionCode: divisionCode)])
        } catch let error as ZMQError where error.isTimeout {
            throw ValidationError("no daemon answers on \(endpoints.joined(separator: ", ")) (the leader binds updates.bind): is liandongd running?")
        }
        guard let frames = try socket.receive(), let answer = TaskUpdateAnswer(json: frames.last ?? []) else {
            throw ValidationError("no answer from \(endpoints.joined(separator: ", ")) within 15 s")
        }
        guard answer.ok else { throw ValidationError("refused: \(answer.error ?? "?")") }
        let what = switch action {
        case .reassign: "reassigned to \(divisionCode ?? "")"
        case .falseAlarm: "closed as a false alarm"
        default: "closed (resolved)"
        }
        print("task \(taskID) \(what) by \(actor) (update \(updateID)); liandongd task show \(taskID)")
    }
}
