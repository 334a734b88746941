import ArgumentParser
import Foundation
import Hummingbird
import LiandongClient
import LiandongCore
import LiandongServices
import LiandongStorage
import Logging
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// liandong-console: the duty officer's console - the live queue of open tasks with countdowns,
/// an offline map of the user's scope, today's figures and four actions - as a web page served by
/// the console itself. A client of liandongd's contracts: the feed and replay for what is live,
/// PostgreSQL as an operator for snapshots, the updates socket for actions.
@main
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liandong-console",
        abstract: "The duty officer's console: live task queue with countdowns, an offline map and four actions, in a browser.",
        usage: """
            liandong-console --config FILE
            liandong-console --config FILE user add NAME --role viewer|dispatcher --scope DIVISION_CODE  (password on standard input)
            liandong-console --config FILE user list
            liandong-console --config FILE user remove NAME
            """,
        discussion: """
            Reads the console section of the liandongd config file (bind, database_url, feed, replay, updates, users_file);
            LIANDONG_CONSOLE_<KEY> variables override it. Open http://BIND/console and log in. See deploy/OPERATIONS.md.
            """)

    @Option(help: "Config file (YAML); the console section is read.") var config: String?
    @Option(help: "With user add: viewer (sees) or dispatcher (also acts).") var role: String?
    @Option(help: "With user add: the division code whose tasks the user sees (6, 9 or 12 digits).") var scope: String?
    @Option(help: "With liandongd's security.curve: the daemon's public key (its NAME.pub file, or the 40 Z85 characters).")
    var curveServerKey: String?
    @Option(help: "With liandongd's security.curve: the console's secret key file (a dispatcher key of `liandongd keys generate`).")
    var curveKey: String?
    @Argument(help: "Nothing to serve; `user add NAME`, `user list` or `user remove NAME` to manage users.") var words: [String] = []

    func run() async throws {
        let full: Config
        do { full = try Config.load(path: config) } catch let error as ConfigError { throw ValidationError(error.message) }
        let settings = full.console
        guard !settings.usersFile.isEmpty else {
            throw ValidationError("console.users_file is required: where the console's users are kept (mode 0600; `user add` creates it)")
        }
        switch words.first {
        case nil: break
        case "user"?:
            try UserCommands(file: settings.usersFile).run(Array(words.dropFirst()), role: role, scope: scope)
            return
        default:
            throw ValidationError("unknown command \(words.joined(separator: " ")): give none to serve, or user add|list|remove")
        }
        let users: [ConsoleUsers.User]
        do { users = try UserCommands(file: settings.usersFile).load() } catch let error as ConfigError { throw ValidationError(error.message) }
        guard !users.isEmpty else {
            throw ValidationError("console.users_file \(settings.usersFile) lists no user: add one with `liandong-console --config FILE user add NAME --role dispatcher --scope CODE`")
        }
        let logSettings = LogSettings(level: Logger.Level(rawValue: full.logLevel) ?? .info, json: full.logFormat == "json")
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, settings: logSettings) }
        let logger = Logger(label: "liandong-console")
        if ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"] == nil { setenv("PGCONNECT_TIMEOUT", "5", 1) }
        let conninfo = settings.databaseURL.isEmpty ? full.databaseURL : settings.databaseURL
        let reader = ReadSessions(conninfo: conninfo, name: "console", logger: logger)
        // Live from the feed's head now: what came before is in the snapshot each page loads.
        let head: Int64
        do {
            head = try await reader.read(passing: ConfigError.self) { db in try ConsoleStore.head(db) }
        } catch let error as ReadSessions.Unavailable {
            throw ValidationError("cannot read the feed's head from the database (console.database_url): \(error.message)")
        }
        let curve = try CurveClientKeys.options(serverKey: curveServerKey, secretKeyFile: curveKey)
        let feed = LiveFeed(feed: settings.feed, replay: settings.replay, curve: curve, since: head, logger: logger)
        let updates = try UpdateSender(endpoints: settings.updates, curve: curve)
        let api = ConsoleAPI(users: users, reader: reader, feed: feed, updates: updates, logger: logger)
        let threads = [ThreadService(name: "liandong-console-updates", logger: logger, run: updates.run, stop: updates.stop),
                       ThreadService(name: "liandong-console-feed", logger: logger, run: feed.run, stop: feed.stop)]
        try await HTTPFront.run(router: api.router(), bind: settings.bind, key: "console.bind", serverName: "liandong-console",
                                idleTimeoutSeconds: 120, threads: threads, shutdownSeconds: 10, logger: logger) {
            logger.info("console listening", metadata: ["http.bind": "\(settings.bind)", "console.users": "\(users.count)",
                                                        "console.feed": "\(settings.feed)", "console.since_seq": "\(head)"])
        }
    }
}

/// `user add|list|remove`: the users file, written whole to a temporary file and renamed (mode 0600).
struct UserCommands {
    let file: String

    func load() throws -> [ConsoleUsers.User] {
        let text: String
        do {
            text = try ConfiguredFile(setting: "console.users_file", path: file, secret: true).read()
        } catch let error as CurveKeyError {
            throw ConfigError(error.message)
        }
        do { return try ConsoleUsers.parse(text, file: "console.users_file \(file)") } catch { throw ConfigError(error.message) }
    }

    func run(_ words: [String], role: String?, scope: String?) throws {
        var text = ""
        if FileManager.default.fileExists(atPath: file) {
            do { _ = try load() } catch let error as ConfigError { throw ValidationError(error.message) }
            text = try String(contentsOfFile: file, encoding: .utf8)
        }
        switch (words.first, words.count) {
        case ("add"?, 2):
            let name = words[1]
            if let p = ConsoleUsers.nameProblem(name) { throw ValidationError(p) }
            guard let role = role.flatMap(ConsoleUsers.Role.init(rawValue:)) else { throw ValidationError("--role viewer or --role dispatcher") }
            guard let scope, ConsoleUsers.scopeProblem(scope) == nil else {
                throw ValidationError("--scope: " + (ConsoleUsers.scopeProblem(scope ?? "") ?? ""))
            }
            let password = readPassword()
            guard password.count >= 8 else { throw ValidationError("the password (on standard input) needs at least 8 characters") }
            let user = ConsoleUsers.User(name: name, role: role, scope: scope, hash: try Passwords.hash(password))
            try write(ConsoleUsers.adding(user, to: text))
            print("\(name): \(role.rawValue) of \(scope), in \(file)")
        case ("list"?, 1):
            for u in try ConsoleUsers.parse(text, file: file) { print("\(u.name)\t\(u.role.rawValue)\t\(u.scope)") }
        case ("remove"?, 2):
            let kept = text.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { $0.split(separator: " ").first.map(String.init) != words[1] }
            guard kept.count < text.split(separator: "\n", omittingEmptySubsequences: false).count else {
                throw ValidationError("no user \(words[1]) in \(file)")
            }
            try write(kept.joined(separator: "\n"))
            print("\(words[1]) removed from \(file)")
        default:
            throw ValidationError("user add NAME --role viewer|dispatcher --scope CODE, user list, or user remove NAME")
        }
    }

    /// The password: standard input's first line (typed at a terminal without echo).
    private func readPassword() -> String {
        if isatty(0) == 1 {
            var old = termios()
            tcgetattr(0, &old)
            var quiet = old
            quiet.c_lflag &= ~tcflag_t(ECHO)
            FileHandle.standardError.write(Data("password: ".utf8))
            tcsetattr(0, TCSANOW, &quiet)
            defer {
                tcsetattr(0, TCSANOW, &old)
                FileHandle.standardError.write(Data("\n".utf8))
            }
            return readLine(strippingNewline: true) ?? ""
        }
        return readLine(strippingNewline: true) ?? ""
    }

    private func write(_ text: String) throws {
        let temporary = file + ".new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw ValidationError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        fchmod(fd, 0o600)
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
        guard written == bytes.count, rename(temporary, file) == 0 else {
            throw ValidationError("cannot write \(file): \(String(cString: strerror(errno)))")
        }
    }
}
