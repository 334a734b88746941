import Foundation
import LiandongCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// liandong-console as a child process on a free loopback port, in front of a test daemon, with a
/// users file written by its own `user add`.
final class ConsoleProcess {
    static let password = "s3cret-值班-pass"
    let port: Int
    let logURL: URL
    let usersFile: String
    let environment: [String: String]
    private var process = Process()

    /// `users`: (name, role, scope) each, all with `password`.
    init(daemon: DaemonProcess, users: [(String, String, String)], environment extra: [String: String] = [:]) throws {
        port = try freePort()
        let id = UUID().uuidString.prefix(8)
        logURL = URL(fileURLWithPath: "\(Scratch.directory)/ld-console-\(id).log")
        usersFile = "\(Scratch.directory)/ld-console-users-\(id)"
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("LIANDONG_") }
        env["LIANDONG_CONSOLE_BIND"] = "127.0.0.1:\(port)"
        env["LIANDONG_CONSOLE_FEED"] = daemon.feed
        env["LIANDONG_CONSOLE_REPLAY"] = daemon.replay
        env["LIANDONG_CONSOLE_UPDATES"] = daemon.updates
        env["LIANDONG_CONSOLE_USERS_FILE"] = usersFile
        env["LIANDONG_DATABASE_URL"] = daemon.database
        for (k, v) in extra { env[k] = v }
        environment = env
        for (name, role, scope) in users {
            let added = try Self.run(env, ["user", "add", name, "--role", role, "--scope", scope], input: Self.password + "\n")
            guard added.status == 0 else { throw TestFailure("user add \(name) failed: \(added.output)") }
        }
        process.executableURL = URL(fileURLWithPath: DaemonProcess.binaries + "/liandong-console")
        process.environment = env
        let log = try FileHandle(forWritingTo: logURL)
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try waitUntil(timeout: 15, "liandong-console to answer /healthz") {
            guard process.isRunning else { throw TestFailure("liandong-console exited: \(self.log)") }
            return (try? http(port: port, "GET", "/healthz").status) == 200
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        expectNoPlantedSecret(log, from: "liandong-console")
        #expect(!log.contains(Self.password), "the console's log holds a user's password")
        try? FileManager.default.removeItem(atPath: usersFile)
        try? FileManager.default.removeItem(at: logURL)
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }
    var base: String { "http://127.0.0.1:\(port)" }

    func stop() -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Runs liandong-console with `arguments` in this console's environment.
    static func run(_ env: [String: String], _ arguments: [String], input: String = "") throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: DaemonProcess.binaries + "/liandong-console")
        p.arguments = arguments
        p.environment = env
        let stdin = Pipe(), out = Pipe()
        p.standardInput = stdin
        p.standardOutput = out
        p.standardError = out
        try p.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Logs in over HTTP; the session and csrf cookies.
    func login(_ user: String, password: String = ConsoleProcess.password) throws -> (session: String, csrf: String) {
        let answer = try http(port: port, "POST", "/login", headers: ["Content-Type": "application/x-www-form-urlencoded"],
                              body: Array(Open311Process.form(["user": user, "password": password]).utf8))
        guard answer.status == 303 else { throw TestFailure("login \(user): \(answer.status) \(answer.body.prefix(200))") }
        let cookies = answer.setCookies
        guard let session = cookies["liandong_session"], let csrf = cookies["csrf"] else { throw TestFailure("login \(user): no cookies") }
        return (session, csrf)
    }

    func get(_ path: String, as login: (session: String, csrf: String)?) throws -> HTTPAnswer {
        try http(port: port, "GET", path, headers: login.map { ["Cookie": "liandong_session=\($0.session); csrf=\($0.csrf)"] } ?? [:])
    }

    func act(_ task: String, _ action: String, note: String? = nil, as login: (session: String, csrf: String), csrf: String? = nil) throws -> HTTPAnswer {
        var body: [String: Any] = ["action": action]
        if let note { body["note"] = note }
        return try http(port: port, "POST", "/api/tasks/\(task)/actions",
                        headers: ["Cookie": "liandong_session=\(login.session); csrf=\(login.csrf)", "Content-Type": "application/json",
                                  "X-CSRF-Token": csrf ?? login.csrf],
                        body: Array(try JSONSerialization.data(withJSONObject: body)))
    }
}

extension HTTPAnswer {
    /// Set-Cookie values by name (the helper keeps one header of each name: the console sends them
    /// joined in one header line per cookie, so every line is read from the raw head).
    var setCookies: [String: String] {
        var out: [String: String] = [:]
        for line in rawSetCookies {
            let pair = line.split(separator: ";").first ?? ""
            if let eq = pair.firstIndex(of: "=") { out[String(pair[..<eq]).trimmingCharacters(in: .whitespaces)] = String(pair[pair.index(after: eq)...]) }
        }
        return out
    }

    var object: [String: Any] {
        get throws {
            guard let o = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
                throw TestFailure("not a JSON object: \(body.prefix(300))")
            }
            return o
        }
    }
}
