import Foundation
import LiandongClient
import LibPQ
import LiandongCore
import LiandongStorage
import Yams

/// A configuration mistake, phrased for the operator who has to fix it.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The daemon's configuration: a YAML file, then `LIANDONG_<SECTION>_<KEY>` environment variables
/// on top (e.g. LIANDONG_DATABASE_URL, LIANDONG_INGEST_BATCH_SIZE, LIANDONG_SLA_VILLAGE_RESPOND_MINUTES
/// with a comma-separated list). Every key has a default; deploy/liandong.example.yaml documents them.
public struct Config: Sendable {
    /// database.url: any libpq conninfo or URI; empty means the PG* environment, as with psql.
    public var databaseURL = ""
    /// database.synchronous and database.stuck_s: whether acknowledgements must be replicated,
    /// and how long a statement may wait before it is reported (see `DatabaseWatch`).
    public var databaseGuard = DatabaseGuard()
    /// ingest.bind: endpoint the SUB socket binds ("" for none). Default tcp://*:7601.
    public var ingestBind = "tcp://*:7601"
    /// ingest.ack_bind: ROUTER for acknowledged ingest ("" for none). Default tcp://*:7602.
    public var ingestAckBind = "tcp://*:7602"
    /// ingest.connect: endpoints the SUB socket connects to (gateways that bind their PUB).
    public var ingestConnect: [String] = []
    /// ingest.batch_size: most events per database transaction (a storm's backlog is written in
    /// batches this large: the per-incident work of a batch is shared by more events).
    public var batchSize = 1_000
    /// ingest.batch_ms: longest wait, in milliseconds, for a batch to fill.
    public var batchMilliseconds = 2
    /// ingest.queue_capacity: messages held between the socket and the writer; the reader
    /// blocks when it is full (and libzmq's high-water mark applies upstream).
    public var queueCapacity = 5_000
    /// ingest.max_body_bytes, max_future_s, max_age_s: validation limits.
    public var limits = IngestLimits()
    /// ingest.gap_grace_ms: how long a missing per-gateway seq may be late before it is a gap.
    public var gapGraceMilliseconds = 5000
    /// ingest.spill_path: append-only file for messages received while the queue is full (database
    /// away); relative paths are relative to the working directory. "" disables spilling.
    public var spillPath = "liandong.spill"
    /// ingest.spill_max_bytes: largest spill; beyond it the reader waits (backpressure).
    public var spillMaxBytes = 1 << 30
    /// ingest.max_dead_letter_bytes: raw bytes kept per rejected message.
    public var maxDeadLetterBytes = 65_536
    /// feed.bind: endpoint of the task feed PUB socket. Default tcp://*:7611.
    public var feedBind = "tcp://*:7611"
    /// feed.replay_bind: ROUTER answering replay requests. Default tcp://*:7612.
    public var replayBind = "tcp://*:7612"
    /// updates.bind: ROUTER for task_update messages from dispatchers. Default tcp://*:7621.
    public var updatesBind = "tcp://*:7621"
    /// escalation.sweep_ms: how often deadlines are checked.
    public var sweepMilliseconds = 1000
    /// escalation.reannounce_minutes: how often an overdue county task is announced again.
    public var reannounceMinutes = 30.0
    /// metrics.bind: HTTP host:port for /metrics, /healthz, /readyz ("" for none). Default 127.0.0.1:9464.
    public var metricsBind = "127.0.0.1:9464"
    /// log.level: trace, debug, info, notice, warning, error, critical. SIGHUP applies a change.
    public var logLevel = "info"
    /// log.format: text (one line per event) or json (one JSON object per line).
    public var logFormat = "text"
    /// correlation.* and sla.*: the rules.
    public var rules = Rules()
    /// cameras.suppress_*: when a camera's alerts stop asking for verify tasks of their own.
    public var cameraSuppression = CameraSuppression()

    public struct CameraSuppression: Sendable, Equatable {
        /// cameras.suppress_false_alarm_pct: suppressed at or above this share of false alarms
        /// among its judged incidents (90; 0 turns suppression off).
        public var falseAlarmPercent = 90.0
        /// cameras.suppress_min_judged: ... over at least this many judged incidents (20).
        public var minJudged = 20
        /// cameras.suppress_days: incidents closed within this many days count (30).
        public var days = 30
        /// cameras.suppress_check_s: how often the sweeper recomputes the figures (60).
        public var checkSeconds = 60.0
    }

    /// retention.*: how long stored data is kept (days; 0 keeps for ever) and the hourly cap on
    /// stored dead-letter bytes.
    public var retention = Retention()

    public struct Retention: Sendable, Equatable {
        /// retention.events_days: events observed longer ago are removed (400).
        public var eventsDays = 400
        /// retention.feed_days: published feed messages (replay) kept this long (90).
        public var feedDays = 90
        /// retention.task_history_days: history of finished tasks kept this long (400).
        public var taskHistoryDays = 400
        /// retention.positions_days: grid workers' positions (personal data) kept this long (90).
        public var positionsDays = 90
        /// retention.dead_letter_days: dead letters kept this long (30).
        public var deadLetterDays = 30
        /// retention.dead_letter_bytes_per_hour: raw bytes of dead letters stored per hour (64 MiB);
        /// beyond it a dead letter keeps its row but not its bytes.
        public var deadLetterBytesPerHour = 64 << 20
        public init() {}
    }

    /// security.*: CURVE on every ZeroMQ socket, the daemon's key and its peers.
    public var security = Security()

    public struct Security: Sendable, Equatable {
        /// security.curve: every ZeroMQ socket is a CURVE server; peers are authenticated by their
        /// key (security.peers_file) and authorised by role and scope (false).
        public var curve = false
        /// security.secret_key_file: the daemon's CURVE secret key (Z85, mode 0600), as written by
        /// `liandongd keys generate`. Relative paths are relative to the working directory.
        public var secretKeyFile = ""
        /// security.peers_file: YAML list of peers (name, public_key, role, scope); SIGHUP reloads it.
        public var peersFile = ""
        public init() {}
    }

    /// workers.*: grid workers' positions (workers.presence_s is `rules.workerPresenceSeconds`).
    public var workers = Workers()

    public struct Workers: Sendable, Equatable {
        /// workers.patrol_due: a grid with no patrol by this time of day (CST, "HH:MM") gets one
        /// reminder (liandong.reminder.v1 on topic reminder.<village code>); "" sends none ("18:00").
        public var patrolDueMinutes: Int? = 18 * 60
        public init() {}
    }

    /// ha.*: an active/standby pair (or more) on one database.
    public var ha = HA()

    public struct HA: Sendable, Equatable {
        /// ha.enabled: one daemon leads (an advisory lock on a dedicated session); the others stand
        /// by with only their SUB ingest bound, keeping the last standby_buffer_s (false).
        public var enabled = false
        /// ha.standby_buffer_s: what a standby keeps of the SUB messages, replayed when it leads (30).
        public var standbyBufferSeconds = 30.0
        /// ha.takeover_s: a standby leads within this long of the leader's death or pause (5).
        public var takeoverSeconds = 5.0
        public init() {}
    }

    /// gb28181.*: liandong-gb28181, the SIP bridge for cameras and NVRs (the daemon reads
    /// keepalive_timeout_s: it times out devices itself, so a bridge that is down does not leave
    /// its cameras online).
    public var gb28181 = GB28181()

    /// open311.*: liandong-open311, the Open311 GeoReport v2 endpoint for residents' apps
    /// (Config+Open311.swift).
    public var open311 = Open311()
    /// console.*: liandong-console, the duty officer's console (Config+Console.swift).
    public var console = Console()

    public init() {}

    /// Loads `path` (nil: defaults only) and applies the environment.
    public static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> Config
    {
        var tree: [String: ConfigValue] = [:]
        if let path {
            let text: String
            do {
                text = try ConfiguredFile(setting: "--config", path: path, secret: false).read()
            } catch let error as CurveKeyError {
                throw ConfigError(error.message)
            }
            let loaded: Node?
            do {
                loaded = try Yams.compose(yaml: text)
            } catch {
                throw ConfigError("config file \(path) is not valid YAML: \(Self.yamlProblem(error))")
            }
            if let loaded {
                guard case .mapping(let map) = try ConfigValue(loaded, at: "") else {
                    throw ConfigError("config file \(path) must be a mapping of sections (database, ingest, feed, ...)")
                }
                tree = map
            }
        }
        let fromEnvironment = try applyEnvironment(environment, to: &tree)
        do {
            return try Config(tree: tree)
        } catch let error as ConfigError {
            // A value set by the environment: name the variable, which is what the operator must fix.
            let key = fromEnvironment.keys.filter { key in [" ", ":", ",", ")"].contains { error.message.contains(key + $0) } }
                .max { $0.count < $1.count }
            guard let key, let variable = fromEnvironment[key] else { throw error }
            throw ConfigError(error.message + " (set by the environment variable \(variable))")
        }
    }

    /// What is wrong with a YAML text, by line and column, never quoting the text itself: Yams's own
    /// description carries the offending line (or, for a duplicated key, the whole mapping), and a
    /// config file holds the database password.
    static func yamlProblem(_ error: Error) -> String {
        guard let error = error as? YamlError else { return "it could not be parsed" }
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let within = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return "line \(mark.line), column \(mark.column): \(problem)\(within)"
        case .reader(let problem, let offset, _, _):
            return "\(problem)" + (offset.map { " at byte \($0)" } ?? "")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return "the key \(duplicates.sorted().map { "\"\($0)\"" }.joined(separator: ", ")) appears twice in the mapping at line "
                + "\(context.mark.line) (a YAML mapping takes each key once: merge the two into one)"
        case .dataCouldNotBeDecoded:
            return "it is not UTF-8 text"
        default:
            return "it could not be parsed"
        }
    }

    static let sections: [String: Set<String>] = [
        "database": ["url", "synchronous", "stuck_s"],
        "ingest": ["bind", "ack_bind", "connect", "batch_size", "batch_ms", "queue_capacity", "max_body_bytes", "max_future_s",
                   "max_age_s", "max_dead_letter_bytes", "spill_path", "spill_max_bytes", "gap_grace_ms"],
        "feed": ["bind", "replay_bind"],
        "updates": ["bind"],
        "escalation": ["sweep_ms", "reannounce_minutes"],
        "routing": ["start_tier", "default_departments", "categories"],
        "calendar": ["enabled", "days", "hours", "tiers", "always_priority"],
        "cameras": ["demote", "suppress_false_alarm_pct", "suppress_min_judged", "suppress_days", "suppress_check_s"],
        "log": ["level", "format"],
        "metrics": ["bind"],
        "correlation": ["dispatch_severity", "inhibit_s", "update_interval_s", "default", "categories", "alarm_categories", "report_categories",
                        "unmapped_alarm_category"],
        "sla": ["village", "township", "county"],
        "security": ["curve", "secret_key_file", "peers_file"],
        "retention": ["events_days", "feed_days", "task_history_days", "dead_letter_days", "dead_letter_bytes_per_hour", "positions_days"],
        "workers": ["presence_s", "patrol_due"],
        "ha": ["enabled", "standby_buffer_s", "takeover_s"],
        "gb28181": ["sip_bind", "server_id", "realm", "password", "passwords_file", "devices_file", "daemon_ack", "keepalive_timeout_s", "catalog_interval_s",
                    "arm_on_register", "alarm_subscribe_s", "metrics_bind", "state_path"],
        "open311": Open311.keys,
        "console": Console.keys,
    ]

    /// Environment variables of the project's own scripts and tests, not config keys.
    static let toolVariablePrefixes = ["LIANDONG_TEST_", "LIANDONG_PG_", "LIANDONG_BENCH_", "LIANDONG_DEMO_"]

    /// LIANDONG_<SECTION>_<KEY>: the section is the first word; SLA keys take a tier
    /// (LIANDONG_SLA_TOWNSHIP_RESOLVE_MINUTES). Values are strings; lists are comma-separated.
    /// A LIANDONG_ variable that names no section is refused (a misspelt LIANDONG_DATABSE_URL
    /// would otherwise leave the daemon on another database), except the tools' own variables.
    /// Returns the config keys set this way with the variable that set each.
    @discardableResult
    static func applyEnvironment(_ environment: [String: String], to tree: inout [String: ConfigValue]) throws -> [String: String] {
        var applied: [String: String] = [:]
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("LIANDONG_") {
            if toolVariablePrefixes.contains(where: name.hasPrefix) { continue }
            let rest = name.dropFirst("LIANDONG_".count).lowercased()
            guard let section = sections.keys.first(where: { rest.hasPrefix($0 + "_") }) else {
                throw ConfigError("environment variable \(name) names no config section: LIANDONG_<SECTION>_<KEY> with a section of "
                    + sections.keys.sorted().joined(separator: ", ") + " (unset it, or fix its spelling)")
            }
            let key = String(rest.dropFirst(section.count + 1))
            var sectionMap = tree[section]?.mapping ?? [:]
            if section == "sla" {
                guard let tier = Tier.allCases.first(where: { key.hasPrefix($0.rawValue + "_") }) else {
                    throw ConfigError("environment variable \(name): expected LIANDONG_SLA_<VILLAGE|TOWNSHIP|COUNTY>_<KEY>")
                }
                var tierMap = sectionMap[tier.rawValue]?.mapping ?? [:]
                let tierKey = String(key.dropFirst(tier.rawValue.count + 1))
                tierMap[tierKey] = .scalar(value)
                sectionMap[tier.rawValue] = .mapping(tierMap)
                applied["sla.\(tier.rawValue).\(tierKey)"] = name
            } else {
                guard sections[section]!.contains(key) else {
                    throw ConfigError("environment variable \(name) names no config key: \(section) has "
                        + sections[section]!.sorted().joined(separator: ", "))
                }
                sectionMap[key] = .scalar(value)
                applied["\(section).\(key)"] = name
            }
            tree[section] = .mapping(sectionMap)
        }
        return applied
    }

    init(tree: [String: ConfigValue]) throws {
        let root = ConfigNode(path: "", value: tree)
        try root.checkKeys(Set(Self.sections.keys))
        if let db = try root.child("database") {
            try db.checkKeys(Self.sections["database"]!)
            databaseURL = try db.string("url") ?? databaseURL
            if let mode = try db.string("synchronous") {
                guard let parsed = DatabaseGuard.Synchronous(rawValue: mode) else {
                    throw ConfigError("config key database.synchronous: \"\(mode)\" is not off, warn or require")
                }
                databaseGuard.synchronous = parsed
            }
            databaseGuard.stuckSeconds = try db.double("stuck_s", 1...3600) ?? databaseGuard.stuckSeconds
        }
        if let ingest = try root.child("ingest") {
            try ingest.checkKeys(Self.sections["ingest"]!)
            ingestBind = try ingest.string("bind") ?? ingestBind
            ingestAckBind = try ingest.string("ack_bind") ?? ingestAckBind
            ingestConnect = try ingest.stringList("connect") ?? ingestConnect
            batchSize = try ingest.int("batch_size", 1...100_000) ?? batchSize
            batchMilliseconds = try ingest.int("batch_ms", 0...60_000) ?? batchMilliseconds
            queueCapacity = try ingest.int("queue_capacity", 1...10_000_000) ?? queueCapacity
            limits.maxBodyBytes = try ingest.int("max_body_bytes", 256...64 << 20) ?? limits.maxBodyBytes
            limits.maxFutureSeconds = try ingest.double("max_future_s", 0...86_400 * 365) ?? limits.maxFutureSeconds
            limits.maxAgeSeconds = try ingest.double("max_age_s", 0...86_400 * 3650) ?? limits.maxAgeSeconds
            maxDeadLetterBytes = try ingest.int("max_dead_letter_bytes", 0...64 << 20) ?? maxDeadLetterBytes
            spillPath = try ingest.string("spill_path") ?? spillPath
            gapGraceMilliseconds = try ingest.int("gap_grace_ms", 0...3_600_000) ?? gapGraceMilliseconds
            spillMaxBytes = try ingest.int("spill_max_bytes", 1 << 20...Int.max) ?? spillMaxBytes
        }
        if let feed = try root.child("feed") {
            try feed.checkKeys(Self.sections["feed"]!)
            feedBind = try feed.string("bind") ?? feedBind
            replayBind = try feed.string("replay_bind") ?? replayBind
        }
        if let updates = try root.child("updates") {
            try updates.checkKeys(Self.sections["updates"]!)
            updatesBind = try updates.string("bind") ?? updatesBind
        }
        if let e = try root.child("escalation") {
            try e.checkKeys(Self.sections["escalation"]!)
            sweepMilliseconds = try e.int("sweep_ms", 10...3_600_000) ?? sweepMilliseconds
            reannounceMinutes = try e.double("reannounce_minutes", 0.01...10_080) ?? reannounceMinutes
        }
        if let r = try root.child("routing") {
            try r.checkKeys(Self.sections["routing"]!)
            if let tiers = try r.tierList("start_tier") {
                // Every category without a start tier of its own: the built-in ones too, except
                // those with their own (fire, device_fault), and any the config gives one below.
                for (name, route) in Rules.defaultRoutes where route.startTiers == rules.defaultRoute.startTiers {
                    rules.routes[name]?.startTiers = tiers
                }
                rules.defaultRoute.startTiers = tiers
            }
            if let d = try r.stringList("default_departments") { rules.defaultRoute.departments = d }
            if let cats = try r.child("categories") {
                for key in try cats.keys() {
                    let node = try cats.child(key)!
                    try node.checkKeys(["departments", "start_tier"])
                    var route = rules.routes[key] ?? rules.defaultRoute
                    if let d = try node.stringList("departments") { route.departments = d }
                    if let t = try node.tierList("start_tier") { route.startTiers = t }
                    rules.routes[key] = route
                }
            }
        }
        if let c = try root.child("calendar") {
            try c.checkKeys(Self.sections["calendar"]!)
            if try c.bool("enabled") ?? false {
                var calendar = WorkingCalendar()
                if let days = try c.stringList("days") {
                    let parsed = days.compactMap(Int.init)
                    guard parsed.count == days.count, parsed.allSatisfy((1...7).contains) else {
                        throw ConfigError("config key calendar.days: ISO weekdays 1 (Monday) ... 7 (Sunday)")
                    }
                    calendar.days = Set(parsed)
                }
                if let hours = try c.stringList("hours") {
                    let parsed = hours.compactMap(WorkingCalendar.period)
                    guard parsed.count == hours.count, !parsed.isEmpty else {
                        throw ConfigError("config key calendar.hours: periods like \"08:30-12:00\"")
                    }
                    calendar.periods = parsed.sorted { $0.lowerBound < $1.lowerBound }
                }
                if let tiers = try c.stringList("tiers") {
                    let parsed = tiers.compactMap(Tier.init(rawValue:))
                    guard parsed.count == tiers.count else {
                        throw ConfigError("config key calendar.tiers: a list of village, township, county")
                    }
                    calendar.tiers = Set(parsed)
                }
                calendar.alwaysPriority = try c.int("always_priority", 0...4) ?? calendar.alwaysPriority
                rules.calendar = calendar
            }
        }
        if let cams = try root.child("cameras") {
            try cams.checkKeys(Self.sections["cameras"]!)
            if let demote = try cams.child("demote") {
                for key in try demote.keys() {
                    guard DeviceID(key) != nil else {
                        throw ConfigError("config key cameras.demote.\(key): not a 20-digit GB/T 28181 device id")
                    }
                    rules.cameraDemotion[key] = try demote.int(key, 0...3)
                }
            }
            cameraSuppression.falseAlarmPercent = try cams.double("suppress_false_alarm_pct", 0...100) ?? cameraSuppression.falseAlarmPercent
            cameraSuppression.minJudged = try cams.int("suppress_min_judged", 1...1_000_000) ?? cameraSuppression.minJudged
            cameraSuppression.days = try cams.int("suppress_days", 1...3650) ?? cameraSuppression.days
            cameraSuppression.checkSeconds = try cams.double("suppress_check_s", 1...86_400) ?? cameraSuppression.checkSeconds
        }
        if let w = try root.child("workers") {
            try w.checkKeys(Self.sections["workers"]!)
            rules.workerPresenceSeconds = try w.double("presence_s", 10...86_400) ?? rules.workerPresenceSeconds
            if let due = try w.string("patrol_due") {
                if due.isEmpty {
                    workers.patrolDueMinutes = nil
                } else {
                    let parts = due.split(separator: ":", omittingEmptySubsequences: false)
                    guard parts.count == 2, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCII) }),
                          let h = Int(parts[0]), let m = Int(parts[1]), (0...23).contains(h), (0...59).contains(m) else {
                        throw ConfigError("config key workers.patrol_due: \"\(due)\" is not a time of day HH:MM (China Standard Time), e.g. \"18:00\"; \"\" sends no reminder")
                    }
                    workers.patrolDueMinutes = h * 60 + m
                }
            }
        }
        if let m = try root.child("metrics") {
            try m.checkKeys(Self.sections["metrics"]!)
            metricsBind = try m.string("bind") ?? metricsBind
        }
        if let log = try root.child("log") {
            try log.checkKeys(Self.sections["log"]!)
            logLevel = try log.string("level") ?? logLevel
            let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
            guard levels.contains(logLevel) else {
                throw ConfigError("config key log.level: \"\(logLevel)\" is not one of \(levels.joined(separator: ", "))")
            }
            logFormat = try log.string("format") ?? logFormat
            guard ["text", "json"].contains(logFormat) else {
                throw ConfigError("config key log.format: \"\(logFormat)\" is not text or json")
            }
        }
        if let c = try root.child("correlation") {
            try c.checkKeys(Self.sections["correlation"]!)
            rules.dispatchSeverity = try c.int("dispatch_severity", 1...4) ?? rules.dispatchSeverity
            rules.inhibitSeconds = try c.double("inhibit_s", 0...86_400) ?? rules.inhibitSeconds
            rules.updateIntervalSeconds = try c.double("update_interval_s", 0...3600) ?? rules.updateIntervalSeconds
            rules.unmappedAlarmCategory = try c.string("unmapped_alarm_category") ?? rules.unmappedAlarmCategory
            if let d = try c.child("default") {
                rules.defaultCategory = try Self.categoryRule(d, base: rules.defaultCategory, path: "correlation.default")
            }
            if let cats = try c.child("categories") {
                for key in try cats.keys() {
                    let node = try cats.child(key)!
                    rules.categories[key] = try Self.categoryRule(node, base: rules.categories[key] ?? rules.defaultCategory,
                                                                  path: "correlation.categories.\(key)")
                }
            }
            if let map = try c.child("alarm_categories") {
                for key in try map.keys() {
                    let parts = key.split(separator: "/", omittingEmptySubsequences: false)
                    guard (1...2).contains(parts.count), parts.allSatisfy({ Int($0) != nil }) else {
                        throw ConfigError("config key correlation.alarm_categories.\(key): keys are \"method/type\" or \"method\", e.g. \"5/6\"")
                    }
                    rules.alarmCategories[key] = try map.string(key)
                }
            }
            if let map = try c.child("report_categories") {
                for key in try map.keys() { rules.reportCategories[key.lowercased()] = try map.string(key) }
            }
        }
        if let sla = try root.child("sla") {
            try sla.checkKeys(Self.sections["sla"]!)
            for tier in Tier.allCases {
                guard let node = try sla.child(tier.rawValue) else { continue }
                try node.checkKeys(["respond_minutes", "resolve_minutes"])
                let base = rules.sla(for: tier)
                let respond = try node.doubleList("respond_minutes", count: 4) ?? base.respondMinutes
                let resolve = try node.doubleList("resolve_minutes", count: 4) ?? base.resolveMinutes
                rules.sla[tier] = SLA(respondMinutes: respond, resolveMinutes: resolve)
            }
        }
        if let r = try root.child("retention") {
            try r.checkKeys(Self.sections["retention"]!)
            retention.eventsDays = try r.int("events_days", 0...36_500) ?? retention.eventsDays
            retention.feedDays = try r.int("feed_days", 0...36_500) ?? retention.feedDays
            retention.taskHistoryDays = try r.int("task_history_days", 0...36_500) ?? retention.taskHistoryDays
            retention.deadLetterDays = try r.int("dead_letter_days", 0...36_500) ?? retention.deadLetterDays
            retention.positionsDays = try r.int("positions_days", 0...36_500) ?? retention.positionsDays
            retention.deadLetterBytesPerHour = try r.int("dead_letter_bytes_per_hour", 0...Int.max) ?? retention.deadLetterBytesPerHour
        }
        if let sec = try root.child("security") {
            try sec.checkKeys(Self.sections["security"]!)
            security.curve = try sec.bool("curve") ?? security.curve
            security.secretKeyFile = try sec.string("secret_key_file") ?? security.secretKeyFile
            security.peersFile = try sec.string("peers_file") ?? security.peersFile
        }
        if let h = try root.child("ha") {
            try h.checkKeys(Self.sections["ha"]!)
            ha.enabled = try h.bool("enabled") ?? ha.enabled
            ha.standbyBufferSeconds = try h.double("standby_buffer_s", 0...3600) ?? ha.standbyBufferSeconds
            ha.takeoverSeconds = try h.double("takeover_s", 1...600) ?? ha.takeoverSeconds
        }
        if let g = try root.child("gb28181") {
            try g.checkKeys(Self.sections["gb28181"]!)
            gb28181.sipBind = try (g.stringList("sip_bind") ?? gb28181.sipBind).flatMap(Endpoint.list)
            let id = try g.string("server_id")
            gb28181.serverID = id ?? gb28181.serverID
            gb28181.realm = try g.string("realm") ?? (id.map { String($0.prefix(10)) } ?? gb28181.realm)
            gb28181.password = try g.string("password") ?? gb28181.password
            gb28181.passwordsFile = try g.string("passwords_file") ?? gb28181.passwordsFile
            gb28181.devicesFile = try g.string("devices_file") ?? gb28181.devicesFile
            gb28181.statePath = try g.string("state_path") ?? gb28181.statePath
            guard !gb28181.statePath.isEmpty else { throw ConfigError("config key gb28181.state_path must name a file") }
            gb28181.daemonAck = try g.string("daemon_ack") ?? gb28181.daemonAck
            gb28181.keepaliveTimeoutSeconds = try g.double("keepalive_timeout_s", 1...86_400) ?? gb28181.keepaliveTimeoutSeconds
            gb28181.catalogIntervalSeconds = try g.double("catalog_interval_s", 0...604_800) ?? gb28181.catalogIntervalSeconds
            gb28181.armOnRegister = try g.bool("arm_on_register") ?? gb28181.armOnRegister
            let subscribe = try g.double("alarm_subscribe_s", 0...86_400) ?? gb28181.alarmSubscribeSeconds
            guard subscribe == 0 || subscribe >= 60 else {
                throw ConfigError("config key gb28181.alarm_subscribe_s must be 0 (no subscriptions) or at least 60 seconds, got \(subscribe)")
            }
            gb28181.alarmSubscribeSeconds = subscribe
            gb28181.metricsBind = try g.string("metrics_bind") ?? gb28181.metricsBind
        }
        try Self.checkGB28181(gb28181)
        if let o = try root.child("open311") { try open311.read(o) }
        if let c = try root.child("console") { try console.read(c) }
        if security.curve {
            for (key, value) in [("security.secret_key_file", security.secretKeyFile), ("security.peers_file", security.peersFile)]
            where value.isEmpty {
                throw ConfigError("security.curve is true but \(key) is empty: "
                    + "create the keys with `liandongd keys generate NAME --dir DIR` and name the files")
            }
        }
        if ingestBind.isEmpty && ingestConnect.isEmpty && ingestAckBind.isEmpty {
            throw ConfigError("ingest.bind, ingest.ack_bind and ingest.connect are all empty: the daemon would receive nothing")
        }
        try checkEndpoints()
        try checkCategories()
        do {
            _ = try PGConnection.parseConninfo(databaseURL)
        } catch let error as PQError {
            throw ConfigError("config key database.url (or LIANDONG_DATABASE_URL) is not a libpq conninfo or URI: \(error.message)")
        }
    }

    /// Every ZeroMQ endpoint and metrics.bind, by the key that sets it.
    private func checkEndpoints() throws {
        var binds = [("ingest.bind", ingestBind), ("ingest.ack_bind", ingestAckBind)].filter { !$0.1.isEmpty }
        binds += [("feed.bind", feedBind), ("feed.replay_bind", replayBind), ("updates.bind", updatesBind)]
        for (key, endpoint) in binds {
            if let problem = Endpoint.problem(endpoint, binding: true) { throw ConfigError("config key \(key): \(problem)") }
        }
        for endpoint in ingestConnect {
            if let problem = Endpoint.problem(endpoint, binding: false) { throw ConfigError("config key ingest.connect: \(problem)") }
        }
        var seen: [String: String] = [:]
        for (key, endpoint) in binds {
            if let other = seen[endpoint] { throw ConfigError("config keys \(other) and \(key) both bind \(endpoint)") }
            seen[endpoint] = key
        }
        if !metricsBind.isEmpty { _ = try Self.metricsAddress(metricsBind) }
    }

    /// metrics.bind "host:port" (host an IPv4 address, or * / empty for every interface).
    package static func metricsAddress(_ endpoint: String, key: String = "metrics.bind") throws -> (host: String, port: UInt16) {
        guard let colon = endpoint.lastIndex(of: ":"), let port = UInt16(endpoint[endpoint.index(after: colon)...]), port > 0 else {
            throw ConfigError("config key \(key): \"\(endpoint)\" must be host:port, e.g. 127.0.0.1:9464")
        }
        let host = String(endpoint[..<colon])
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        let ipv4 = octets.count == 4 && octets.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) && Int($0)! <= 255 }
        guard host.isEmpty || host == "*" || ipv4 else {
            throw ConfigError("config key \(key): host \"\(host)\" must be an IPv4 address (or * for every interface)")
        }
        return (host, port)
    }

    /// Categories the config names in routing and in the category maps must exist: built in,
    /// "other" (the default rule), or given a rule under correlation.categories. A misspelt name
    /// would otherwise make a new category that no event ever reaches, or one with default rules.
    private func checkCategories() throws {
        let known = Set(Rules.defaultCategories.keys).union(rules.categories.keys).union(["other"])
        func check(_ name: String, _ key: String) throws {
            guard known.contains(name) else {
                throw ConfigError("config key \(key): no category \"\(name)\" (known: \(known.sorted().joined(separator: ", "))); "
                    + "a new category needs an entry under correlation.categories, e.g. \(name): {radius_m: 300}")
            }
        }
        for name in rules.routes.keys.sorted() { try check(name, "routing.categories.\(name)") }
        for (code, name) in rules.alarmCategories.sorted(by: { $0.key < $1.key }) { try check(name, "correlation.alarm_categories.\(code)") }
        for (report, name) in rules.reportCategories.sorted(by: { $0.key < $1.key }) { try check(name, "correlation.report_categories.\(report)") }
        try check(rules.unmappedAlarmCategory, "correlation.unmapped_alarm_category")
    }

    private static func categoryRule(_ node: ConfigNode, base: CategoryRule, path: String) throws -> CategoryRule {
        try node.checkKeys(["radius_m", "window_s", "max_span_m", "max_duration_s"])
        let radiusGiven = try node.double("radius_m", 1...100_000), windowGiven = try node.double("window_s", 1...30 * 86_400)
        let radius = radiusGiven ?? base.radiusMeters, window = windowGiven ?? base.windowSeconds
        // Bounds not given follow a radius or window given here (2 x radius, 4 x window).
        let span = try node.double("max_span_m", 0...1_000_000) ?? (radiusGiven == nil ? base.maxSpanMeters : nil)
        let duration = try node.double("max_duration_s", 0...365 * 86_400) ?? (windowGiven == nil ? base.maxDurationSeconds : nil)
        if let span, span > 0, span < radius {
            throw ConfigError("config key \(path).max_span_m = \(span) is below radius_m = \(radius): two events within the "
                + "radius could not join (0 turns the bound off)")
        }
        if let duration, duration > 0, duration < window {
            throw ConfigError("config key \(path).max_duration_s = \(duration) is below window_s = \(window): two events within "
                + "the window could not join (0 turns the bound off)")
        }
        return CategoryRule(radiusMeters: radius, windowSeconds: window, maxSpanMeters: span, maxDurationSeconds: duration)
    }
}
