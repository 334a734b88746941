import ArgumentParser
import Foundation
import LiandongClient
import LiandongCore
import LiandongServices
import LiandongStorage
import LibPQ
import Logging
import ServiceLifecycle
import ZeroMQ

@main
struct Liandongd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liandongd",
        abstract: "Liandong (联动): correlates Sharp Eyes camera alerts and grid-worker reports into dispatch tasks.",
        version: LiandongVersion.current,
        subcommands: [Run.self, Migrate.self, Import.self, CheckConfig.self, Keys.self, Operator.self, Silence.self, Camera.self, Report.self, City.self,
                      TaskCommand.self, EventCommand.self, DeviceCommand.self])
}

/// Options every subcommand shares.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "YAML config file (every key can be overridden by LIANDONG_<SECTION>_<KEY>).")
    var config: String?

    @Option(name: .long, help: "Directory of numbered SQL migrations (default: schemas/migrations, found automatically).")
    var migrations: String?

    func validate() throws {
        if let config, !FileManager.default.fileExists(atPath: config) {
            throw ValidationError("config file \(config) does not exist")
        }
    }

    func loadConfig() throws -> Config { try Config.load(path: config) }

    /// The configured database, refused unless its schema is exactly this release's.
    func currentDatabase() throws -> PGConnection {
        let db = try openDatabase(try loadConfig().databaseURL)
        try Migrator(directory: try Migrator.locateDirectory(explicit: migrations)).checkCurrent(db)
        return db
    }
}

/// Runs `body`, printing operator mistakes as one clear line instead of a trace.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        FileHandle.standardError.write(Data("liandongd: error: \(Secrets.redact("\(error)"))\n".utf8))
        throw ExitCode(1)
    }
}

/// One line per event on stderr (journald), in log.format; the level and format change on SIGHUP.
func bootstrapLogging(_ config: Config) -> (Logger, LogSettings) {
    let settings = LogSettings(level: Logger.Level(rawValue: config.logLevel) ?? .info, json: config.logFormat == "json")
    LoggingSystem.bootstrap { label in LineLogHandler(label: label, settings: settings) }
    return (Logger(label: "liandongd"), settings)
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the daemon until SIGTERM or SIGINT.")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        limitMallocArenas()
        try await reportingErrors {
            let config = try options.loadConfig()
            let (logger, logSettings) = bootstrapLogging(config)
            // A database that stops answering must not hang a connection attempt for ever.
            if ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"] == nil { setenv("PGCONNECT_TIMEOUT", "5", 1) }
            let migrator = try Migrator(directory: try Migrator.locateDirectory(explicit: options.migrations))
            for warning in try preflight(config: config, migrator: migrator) {
                logger.error("database setup needs a DBA", metadata: ["db.problem": "\(warning)"])
            }
            logger.info("liandongd starting", metadata: [
                "zmq.version": "\(ZMQContext.version)", "ingest.bind": "\(config.ingestBind)",
                "feed.bind": "\(config.feedBind)", "batch.size": "\(config.batchSize)",
            ])
            for warning in config.warnings { logger.warning("\(warning)") }
            let group = try makeServiceGroup(config: config, expectedMigration: migrator.latestVersion, logger: logger,
                                             reloadFrom: options.config, logSettings: logSettings)
            try await group.run()
            logger.info("liandongd stopped")
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending database migrations (a no-op when current).")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        try await reportingErrors {
            let config = try options.loadConfig()
            let migrator = try Migrator(directory: try Migrator.locateDirectory(explicit: options.migrations))
            let db = try openDatabase(config.databaseURL)
            let applied = try migrator.migrate(db)
            if applied.isEmpty {
                print("database is current (version \(migrator.latestVersion)); nothing to do")
            } else {
                for m in applied { print("applied \(m.name)") }
                print("database is at version \(migrator.latestVersion)")
            }
        }
    }
}

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import reference data; each file all or nothing, re-imports update in place.",
        subcommands: [Divisions.self, Grids.self, Cameras.self, Workers.self])

    struct Divisions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Divisions CSV: code,name,kind[,parent_code].")
        @OptionGroup var options: CommonOptions
        @Argument(help: "CSV file") var file: String
        func run() async throws { try await runImport(options: options) { try $0.importDivisions(path: file) } }
    }

    struct Grids: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Grids GeoJSON FeatureCollection (grid_code, name, village_code, worker_id, worker_name).")
        @OptionGroup var options: CommonOptions
        @Argument(help: "GeoJSON file") var file: String
        @Flag(help: "Retire (valid_to) the grids of the file's counties that the file no longer holds.") var replace = false
        @Flag(help: "Accept grids overlapping each other by more than 100 m² (reported in the summary).") var allowOverlap = false
        func run() async throws {
            try await runImport(options: options) { try $0.importGrids(path: file, replace: replace, allowOverlap: allowOverlap) }
        }
    }

    struct Cameras: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cameras CSV: device_id,name,lon,lat[,crs].")
        @OptionGroup var options: CommonOptions
        @Argument(help: "CSV file") var file: String
        @Flag(help: "Retire (valid_to) the cameras of the file's counties that the file no longer holds.") var replace = false
        func run() async throws { try await runImport(options: options) { try $0.importCameras(path: file, replace: replace) } }
    }

    struct Workers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Grid workers CSV: worker_id,name,grid_code (staff changes without touching the grids).")
        @OptionGroup var options: CommonOptions
        @Argument(help: "CSV file") var file: String
        func run() async throws { try await runImport(options: options) { try $0.importWorkers(path: file) } }
    }
}

func runImport(options: CommonOptions, _ body: (Importer) throws -> ImportSummary) async throws {
    try await reportingErrors {
        let config = try options.loadConfig()
        let db = try openDatabase(config.databaseURL)
        if let migrator = try? Migrator(directory: try Migrator.locateDirectory(explicit: options.migrations)) {
            try migrator.checkCurrent(db)
        }
        print(try body(Importer(db: db)))
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate the configuration and print the effective values.")
    @OptionGroup var options: CommonOptions
    @Option(help: "Also check that this account (the unit's User=, e.g. liandong) can read the files the config names.")
    var user: String?

    func run() async throws {
        try await reportingErrors {
            let c = try options.loadConfig()
            for (key, value) in c.effectiveSettings { print("\(key): \(value)") }
            for file in c.namedFiles {
                do { try file.checkReadable(byUser: user) } catch let error as CurveKeyError { throw ConfigError(error.message) }
            }
            if !c.namedFiles.isEmpty {
                let who = ConfiguredFile.userName(getuid()) ?? "uid \(getuid())"
                print("files: \(c.namedFiles.map(\.path).joined(separator: ", ")) readable by \(who)" + (user.map { " and \($0)" } ?? ""))
            }
            if let security = try TrustBoundary.summary(c) { print(security) }
            for warning in c.warnings { print("WARNING: \(warning)") }
            print(c.warnings.isEmpty ? "config OK" : "config OK, with \(c.warnings.count) warning(s) above")
        }
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "CURVE keys for the daemon and its peers.", subcommands: [Generate.self])

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write NAME.key (secret, mode 0600) and NAME.pub (public) into DIR; never overwrites.")
        @Argument(help: "Key name: the peer's name in the peers file (or the daemon's).") var name: String
        @Option(help: "Directory for the two files.") var dir: String
        @Option(help: "Give the files (and DIR, when this makes it) to this account: the unit's User=, e.g. liandong.")
        var owner: String?

        func run() async throws {
            try await reportingErrors {
                let publicKey = try CurveKeyFiles.generate(name: name, directory: dir, owner: owner)
                print("wrote \(dir)/\(name).key (secret, mode 0600) and \(dir)/\(name).pub")
                print("public key: \(publicKey)")
                print("peers file entry: - {name: \(name), public_key: \"\(publicKey)\", role: gateway|dispatcher|observer, scope: \"<division code prefix>\"}")
            }
        }
    }
}

struct Operator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read-only operators (psql, Grafana, QGIS) who see only the rows of their divisions (row-level security).",
        subcommands: [Grant.self, Revoke.self, List.self])

    static func run(_ options: CommonOptions, _ body: @escaping (OperatorAccess) throws -> Void) async throws {
        try await reportingErrors { try body(OperatorAccess(db: try options.currentDatabase())) }
    }

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make ROLE a read-only operator of the divisions under --scope (creating the login when allowed).")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The role (a login, or a group of logins).") var role: String
        @Option(help: "Division-code prefix: 620922100 one township, 620922 the county, \"\" everything incl. dead letters.")
        var scope: String
        func run() async throws { try await Operator.run(options) { print(try $0.grant(role: role, scope: scope)) } }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "ROLE is an operator no more.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The role.") var role: String
        func run() async throws { try await Operator.run(options) { print(try $0.revoke(role: role)) } }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Operators and their scopes.")
        @OptionGroup var options: CommonOptions
        func run() async throws {
            try await Operator.run(options) { access in
                let grants = try access.list()
                if grants.isEmpty { print("no operators (liandongd operator grant ROLE --scope PREFIX)") }
                for g in grants { print("\(g.role)\t\(g.scope.isEmpty ? "(everything)" : g.scope)\t\(g.grantedAt)\t\(g.grantedBy)") }
            }
        }
    }
}

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The assessment report (督导考核) of a period: a self-contained HTML page with maps and charts, and CSV of every table.",
        discussion: "Reads the assessment views in one read-only transaction: an operator role can run it (and sees its scope only).")
    @OptionGroup var options: CommonOptions
    @Option(help: "First day (YYYY-MM-DD, China Standard Time).") var from: String
    @Option(help: "Last day, included (YYYY-MM-DD).") var to: String
    @Option(help: "Division code (default: the county).") var division: String?
    @Option(help: "Directory to write report.html and the CSV files to (created if missing).") var out: String

    func run() async throws {
        try await reportingErrors {
            let report = try ReportStore(db: try options.currentDatabase()).load(from: from, to: to, division: division)
            let dir = URL(fileURLWithPath: out, isDirectory: true)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for file in ReportHTML.files(report) {
                try Data(file.contents.utf8).write(to: dir.appendingPathComponent(file.name), options: .atomic)
            }
            print("report of \(report.divisionName) (\(report.divisionCode)) \(from) – \(to): \(dir.appendingPathComponent("report.html").path)"
                + " (\(report.grids.count) grids, \(report.incidentCount) incidents, \(report.taskCount) tasks created; "
                + "CSV: ranking, daily, overdue, grids, residents)")
        }
    }
}

struct Camera: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Noisy cameras: whose alerts ask for no verify task of their own (cameras.suppress_*), and reviews that lift it; the registry from the devices' catalogs.",
        subcommands: [Noisy.self, Review.self, Sync.self])

    static func run(_ options: CommonOptions, _ body: @escaping (CameraStore) throws -> Void) async throws {
        try await reportingErrors { try body(CameraStore(db: try options.currentDatabase())) }
    }

    struct Noisy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cameras by false-alarm share of their judged incidents, suppressed first.")
        @OptionGroup var options: CommonOptions
        func run() async throws {
            try await Camera.run(options) { store in
                let rows = try store.noisy()
                if rows.isEmpty { print("no camera has judged incidents yet") }
                for r in rows {
                    print("\(r.deviceID)\t\(r.suppressedSince.map { "suppressed since \($0)" } ?? "")\t"
                        + "\(r.falseAlarms)/\(r.judged) false alarms (\(r.percent) %)\t\(r.name ?? "")")
                }
            }
        }
    }

    struct Review: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record that a camera was looked at (repaired, re-aimed): its false alarms so far no longer count, a suppression is lifted at once.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The camera's GB/T 28181 device id.") var device: String
        @Option(help: "What was done (required).") var comment: String
        @Option(help: "Who (default: the login name).") var by = ProcessInfo.processInfo.environment["USER"] ?? "operator"
        func run() async throws {
            try await Camera.run(options) { store in
                let since = try store.review(device: device, by: by, comment: comment)
                print("camera \(device) reviewed: its count starts afresh"
                    + (since.map { "; no longer suppressed (it was since \($0))" } ?? ""))
            }
        }
    }
}

extension Camera {
    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add cameras from the GB/T 28181 catalogs' channels that have a position inside a grid, move the cameras whose channel moved; says what it skipped and why.")
        @OptionGroup var options: CommonOptions
        @Flag(name: .customLong("from-catalog"), help: "From liandong.device_channels (the catalogs liandong-gb28181 collects).")
        var fromCatalog = false
        @Option(help: "Only channels whose grid lies in this division (a code prefix, e.g. 620922100).") var division: String?
        @Flag(help: "Say what would change; write nothing.") var dryRun = false

        func validate() throws {
            guard fromCatalog else { throw ValidationError("camera sync needs --from-catalog (the devices' catalogs are its only source)") }
            if let division, division.isEmpty || !division.allSatisfy({ $0.isASCII && $0.isNumber }) {
                throw ValidationError("--division must be a division code (digits), got \"\(division)\"")
            }
        }

        func run() async throws {
            try await reportingErrors {
                let changes = try CatalogSync.run(try options.currentDatabase(), division: division, dryRun: dryRun)
                var added = 0, moved = 0, skipped = 0
                for change in changes {
                    switch change {
                    case .added(let channel, let name, let grid):
                        added += 1
                        print("added \(channel) \(name) in grid \(grid)")
                    case .moved(let channel, let from, let to, let metres):
                        moved += 1
                        print("moved \(channel) \(Int(metres.rounded())) m, grid \(from ?? "none") -> \(to)")
                    case .skipped(let channel, let reason):
                        skipped += 1
                        print("skipped \(channel): \(reason)")
                    }
                }
                print("camera sync --from-catalog: \(added) added, \(moved) moved, \(skipped) skipped"
                    + (dryRun ? " (dry run: nothing written)" : ""))
            }
        }
    }
}

struct Silence: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Maintenance windows: matching events are stored and correlated but make no task message.",
        subcommands: [Add.self, List.self, Expire.self])

    static func run(_ options: CommonOptions, _ body: @escaping (SilenceStore) throws -> Void) async throws {
        try await reportingErrors { try body(SilenceStore(db: try options.currentDatabase())) }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a silence; prints its id.")
        @OptionGroup var options: CommonOptions
        @Option(help: "GB/T 28181 device-id prefix (a camera, or a platform's cameras).") var device = ""
        @Option(help: "Division-code prefix of the grids it covers (620922100: a township).") var division = ""
        @Option(help: "Category it covers (fire, crowd, intrusion, ...).") var category: String?
        @Option(help: "Start (RFC 3339; without offset China time). Default: now.") var starts: String?
        @Option(help: "Length: 90m, 2h, 1d.") var duration: String?
        @Option(help: "End (RFC 3339), instead of --duration.") var until: String?
        @Option(help: "Why (required).") var comment: String
        @Option(help: "Who asks for it (default: the login name).") var by = ProcessInfo.processInfo.environment["USER"] ?? "operator"

        func run() async throws {
            try await Silence.run(options) { store in
                // From the start of this second: events carry whole seconds as often as not.
                let now = Date().timeIntervalSince1970.rounded(.down)
                let start = try starts.map { try Silence.time($0, "--starts") } ?? now
                let end: Double
                switch (duration, until) {
                case (let d?, nil): end = start + (try Silence.seconds(d))
                case (nil, let u?): end = try Silence.time(u, "--until")
                default: throw ValidationError("give --duration or --until (one of them)")
                }
                let id = try store.add(devicePrefix: device, divisionPrefix: division, category: category, startsAt: start,
                                       endsAt: end, createdBy: by, comment: comment,
                                       knownCategories: try options.loadConfig().rules.knownCategories)
                print("silence \(id) until \(Timestamp.formatCST(end)): events of " + Silence.describe(device, division, category)
                    + " make no task message (liandongd silence expire \(id) ends it)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Silences running or to come (--all: every one).")
        @OptionGroup var options: CommonOptions
        @Flag(help: "Also those that ended.") var all = false
        func run() async throws {
            try await Silence.run(options) { store in
                let rows = try store.list(all: all)
                if rows.isEmpty { print("no silences") }
                for r in rows {
                    print("\(r.id)\t\(r.active ? "active" : "")\t\(r.startsAt) - \(r.endsAt)\t"
                        + Silence.describe(r.devicePrefix, r.divisionPrefix, r.category) + "\t\(r.createdBy)\t\(r.comment)")
                }
            }
        }
    }

    struct Expire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a silence now.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The silence's id (liandongd silence list).") var id: String
        func run() async throws {
            try await Silence.run(options) { store in
                guard try store.expire(id: id) else { throw ValidationError("no silence \(id) running or to come") }
                print("silence \(id) ended")
            }
        }
    }

    static func describe(_ device: String, _ division: String, _ category: String?) -> String {
        var parts: [String] = []
        if !device.isEmpty { parts.append("device \(device)*") }
        if !division.isEmpty { parts.append("division \(division)*") }
        if let category { parts.append("category \(category)") }
        return parts.joined(separator: ", ")
    }

    static func time(_ text: String, _ option: String) throws -> Double {
        guard let t = Timestamp.parse(text) else { throw ValidationError("\(option) \(text): not an RFC 3339 time (2026-12-02T08:00:00+08:00)") }
        return t
    }

    /// "90m", "2h", "1d", "45s".
    static func seconds(_ text: String) throws -> Double {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        guard let unit = text.last.flatMap({ units[$0] }), let n = Double(text.dropLast()), n > 0 else {
            throw ValidationError("--duration \(text): a number and s, m, h or d (90m, 2h, 1d)")
        }
        return n * unit
    }
}

struct City: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The city (地级市) read model: counties' divisions, grids, cameras, incidents and tasks in one city database (logical replication).",
        discussion: """
            attach creates two publications on the county (its server needs wal_level = logical), the city's tables and views
            (liandong.city_division_kpis, liandong.city_open_incidents) and a subscription liandong_<county code>, which needs a
            superuser on the city (PostgreSQL 15). --county is how the city's server reaches the county's.
            """,
        subcommands: [Attach.self, Detach.self])

    struct Attach: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replicate a county database into the city database.")
        @Option(help: "The city database (libpq conninfo or URI).") var city: String
        @Option(help: "The county database, as the city's server reaches it (libpq conninfo or URI).") var county: String
        func run() async throws {
            try await reportingErrors {
                let model = CityReadModel(city: try openDatabase(city))
                print(try model.attach(county: try openDatabase(county), countyURL: county))
            }
        }
    }

    struct Detach: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop replicating a county into the city and remove its rows there.")
        @Option(help: "The city database.") var city: String
        @Option(help: "The county database (to read its code), or give --county-code.") var county: String?
        @Option(help: "The county's 6-digit code, when its database is unreachable.") var countyCode: String?
        func run() async throws {
            try await reportingErrors {
                let code: String
                if let countyCode {
                    code = countyCode
                } else if let county {
                    code = try CityReadModel.countyCode(try openDatabase(county))
                } else {
                    throw ValidationError("--county URL or --county-code CODE names the county to detach")
                }
                print(try CityReadModel(city: try openDatabase(city)).detach(countyCode: code))
            }
        }
    }
}
