import Foundation
import LiandongCore

extension Config {
    /// open311.*: liandong-open311, the Open311 GeoReport v2 endpoint residents' apps file,
    /// follow and rate requests through (liandongd check-config validates it like gb28181).
    public struct Open311: Sendable, Equatable {
        static let keys: Set<String> = ["bind", "base_path", "jurisdiction_id", "api_keys_file", "daemon_ack", "database_url", "services",
                                        "answer_timeout_s"]

        /// open311.bind: HOST:PORT of the HTTP server (put it behind a TLS reverse proxy).
        public var bind = "127.0.0.1:8311"
        /// open311.base_path: every endpoint is under it (services.json, requests.xml, ...).
        public var basePath = "/open311/v2"
        /// open311.jurisdiction_id: the county code (service_request_ids start with it).
        public var jurisdictionID = "620922"
        /// open311.api_keys_file: `NAME SHA256-HEX-OF-KEY PER_MINUTE` a line, `#` comments; mode 0600.
        public var apiKeysFile = ""
        /// open311.daemon_ack: liandongd's ingest.ack_bind (comma-separated: every daemon of a pair).
        public var daemonAck = "tcp://127.0.0.1:7602"
        public var daemonAcks: [String] { Endpoint.list(daemonAck) }
        /// open311.database_url: where GET requests read status (an operator role of the county's scope is enough).
        public var databaseURL = ""
        /// open311.services: service_code -> category, name, description, group, keywords, severity
        /// (given, they replace the defaults).
        public var services = LiandongCore.Open311.Service.defaults
        /// open311.answer_timeout_s: a POST waits this long for liandongd's commit, then answers 503
        /// (the app retries with the same Idempotency-Key).
        public var answerTimeoutSeconds = 10.0
        public init() {}

        mutating func read(_ o: ConfigNode) throws {
            try o.checkKeys(Self.keys)
            bind = try o.string("bind") ?? bind
            _ = try Config.metricsAddress(bind, key: "open311.bind")
            basePath = try o.string("base_path") ?? basePath
            guard basePath.hasPrefix("/"), !basePath.hasSuffix("/"), !basePath.contains(" ") else {
                throw ConfigError("config key open311.base_path must start with / and not end with one, e.g. /open311/v2")
            }
            jurisdictionID = try o.string("jurisdiction_id") ?? jurisdictionID
            guard !jurisdictionID.isEmpty, jurisdictionID.utf8.count <= 32,
                  jurisdictionID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_") }) else {
                throw ConfigError("config key open311.jurisdiction_id must be 1-32 letters, digits, dots or underscores (the county code: 620922)")
            }
            apiKeysFile = try o.string("api_keys_file") ?? apiKeysFile
            daemonAck = try o.string("daemon_ack") ?? daemonAck
            guard !daemonAcks.isEmpty else { throw ConfigError("config key open311.daemon_ack names no endpoint: liandongd's ingest.ack_bind") }
            for endpoint in daemonAcks {
                if let problem = Endpoint.problem(endpoint, binding: false) { throw ConfigError("config key open311.daemon_ack: \(problem)") }
            }
            databaseURL = try o.string("database_url") ?? databaseURL
            answerTimeoutSeconds = try o.double("answer_timeout_s", 1...120) ?? answerTimeoutSeconds
            if let s = try o.child("services") {
                services = try s.keys().map { code in
                    guard let node = try s.child(code) else { throw ConfigError("config key open311.services.\(code) must be a mapping") }
                    try node.checkKeys(["category", "name", "description", "group", "keywords", "severity"])
                    guard code.utf8.count <= 64, code.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
                        throw ConfigError("open311.services: service code \"\(code.prefix(64))\" must be letters, digits, _ or - (at most 64)")
                    }
                    guard let category = try node.string("category"), !category.isEmpty else {
                        throw ConfigError("config key open311.services.\(code).category is required: the incident category it files")
                    }
                    return LiandongCore.Open311.Service(
                        code: code, name: try node.string("name") ?? code, description: try node.string("description") ?? "",
                        category: category, group: try node.string("group") ?? "", keywords: try node.stringList("keywords") ?? [],
                        severity: try node.int("severity", 1...4) ?? 3)
                }
                guard !services.isEmpty else { throw ConfigError("config key open311.services lists no service") }
            }
        }

        /// check-config's lines.
        var effective: [(String, String)] {
            [("open311.bind", bind), ("open311.base_path", basePath), ("open311.jurisdiction_id", jurisdictionID),
             ("open311.api_keys_file", apiKeysFile.isEmpty ? "(none: liandong-open311 refuses to start)" : apiKeysFile),
             ("open311.daemon_ack", daemonAck),
             ("open311.database_url", databaseURL.isEmpty ? "(database.url)"
                : Config.shown(conninfo: databaseURL)),
             ("open311.answer_timeout_s", "\(answerTimeoutSeconds)"),
             ("open311.services", services.map { "\($0.code) -> \($0.category) (severity \($0.severity))" }.joined(separator: ", "))]
        }
    }
}
