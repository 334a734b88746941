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

/// liandong-open311: residents' apps file, follow and rate requests in Open311 GeoReport v2
/// (JSON and XML). A POST is answered only once liandongd has committed the request.
@main
struct Open311Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liandong-open311",
        abstract: "Open311 GeoReport v2 endpoint: residents' apps file, follow and rate requests; liandongd correlates and dispatches them.",
        discussion: """
            Reads the open311 section of the liandongd config file (bind, base_path, jurisdiction_id, api_keys_file, daemon_ack,
            database_url, services, answer_timeout_s); LIANDONG_OPEN311_<KEY> variables override it. See deploy/OPERATIONS.md
            (keys, a TLS reverse proxy in front, rate limits).
            """)

    @Option(help: "Config file (YAML); the open311 section is read.") var config: String?
    @Option(help: "With liandongd's security.curve: the daemon's public key (its NAME.pub file, or the 40 Z85 characters).")
    var curveServerKey: String?
    @Option(help: "With liandongd's security.curve: this server's secret key file (a gateway key of `liandongd keys generate`).")
    var curveKey: String?

    func run() async throws {
        let full: Config
        let apps: [String: Open311.App]
        do {
            full = try Config.load(path: config)
            let settings = full.open311
            guard !settings.apiKeysFile.isEmpty else {
                throw ConfigError("open311.api_keys_file is required: a line per app, \"NAME SHA256-HEX-OF-KEY PER_MINUTE\" (see deploy/OPERATIONS.md)")
            }
            let text: String
            do {
                text = try ConfiguredFile(setting: "open311.api_keys_file", path: settings.apiKeysFile, secret: true).read()
            } catch let error as CurveKeyError {
                throw ConfigError(error.message)
            }
            do {
                apps = try Open311.apps(text, file: "open311.api_keys_file \(settings.apiKeysFile)")
            } catch {
                throw ConfigError(error.message)
            }
            guard !apps.isEmpty else { throw ConfigError("open311.api_keys_file \(settings.apiKeysFile) lists no app") }
        } catch let error as ConfigError {
            throw ValidationError(error.message)
        }
        let settings = full.open311
        let logSettings = LogSettings(level: Logger.Level(rawValue: full.logLevel) ?? .info, json: full.logFormat == "json")
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, settings: logSettings) }
        let logger = Logger(label: "liandong-open311")
        if ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"] == nil { setenv("PGCONNECT_TIMEOUT", "5", 1) }
        let forwarder = try AckForwarder(endpoints: settings.daemonAcks,
                                         curve: try CurveClientKeys.options(serverKey: curveServerKey, secretKeyFile: curveKey))
        let reader = ReadSessions(conninfo: settings.databaseURL.isEmpty ? full.databaseURL : settings.databaseURL, name: "open311", logger: logger)
        let api = Open311API(settings: settings, apps: apps, forwarder: forwarder, reader: reader, logger: logger)
        // The forwarder's socket thread: started first, stopped last (what liandongd has not answered yet gets up to 5 s).
        let ack = ThreadService(name: "liandong-open311-ack", logger: logger, run: forwarder.run, stop: forwarder.stop)
        try await HTTPFront.run(router: api.router(), bind: settings.bind, key: "open311.bind", serverName: "liandong-open311",
                                idleTimeoutSeconds: 30, threads: [ack], shutdownSeconds: 15, logger: logger) {
            logger.info("open311 listening", metadata: ["http.bind": "\(settings.bind)", "http.base_path": "\(settings.basePath)",
                                                        "open311.apps": "\(apps.count)", "open311.daemon_ack": "\(settings.daemonAck)"])
        }
    }
}
