import Foundation
import LiandongCore

extension Config {
    /// console.*: liandong-console, the duty officer's console (a client of the feed, replay and
    /// updates sockets and of PostgreSQL as a scoped operator). liandongd check-config validates
    /// the section like gb28181 and open311, so one config file serves every program.
    public struct Console: Sendable, Equatable {
        static let keys: Set<String> = ["bind", "database_url", "feed", "replay", "updates", "users_file"]

        /// console.bind: HOST:PORT of its HTTP server.
        public var bind = "127.0.0.1:8088"
        /// console.database_url: snapshots, read as an operator ("": database.url).
        public var databaseURL = ""
        /// console.feed, replay, updates: the daemons' feed.bind, feed.replay_bind and updates.bind
        /// (lists: every daemon of a pair).
        public var feed = ["tcp://127.0.0.1:7611"]
        public var replay = ["tcp://127.0.0.1:7612"]
        public var updates = ["tcp://127.0.0.1:7621"]
        /// console.users_file: the console's users and their salted password hashes (mode 0600).
        public var usersFile = ""
        public init() {}

        mutating func read(_ o: ConfigNode) throws {
            try o.checkKeys(Self.keys)
            bind = try o.string("bind") ?? bind
            _ = try Config.metricsAddress(bind, key: "console.bind")
            databaseURL = try o.string("database_url") ?? databaseURL
            for (key, value) in [("feed", \Console.feed), ("replay", \Console.replay), ("updates", \Console.updates)] {
                guard let list = try o.stringList(key) else { continue }
                let endpoints = list.flatMap(Endpoint.list)
                guard !endpoints.isEmpty else { throw ConfigError("config key console.\(key) names no endpoint") }
                for endpoint in endpoints {
                    if let problem = Endpoint.problem(endpoint, binding: false) { throw ConfigError("config key console.\(key): \(problem)") }
                }
                self[keyPath: value] = endpoints
            }
            usersFile = try o.string("users_file") ?? usersFile
        }

        /// check-config's lines.
        var effective: [(String, String)] {
            [("console.bind", bind),
             ("console.database_url", databaseURL.isEmpty ? "(database.url)"
                : Config.shown(conninfo: databaseURL)),
             ("console.feed", feed.joined(separator: ", ")), ("console.replay", replay.joined(separator: ", ")),
             ("console.updates", updates.joined(separator: ", ")), ("console.users_file", usersFile.isEmpty ? "(none)" : usersFile)]
        }
    }
}
