import Foundation
import LiandongStorage
import Logging
import ServiceLifecycle
import UnixSignals

/// SIGHUP: reads the configuration again (the file given at start and the environment), applies
/// what can change without a restart - log.level and log.format - and names every other key
/// whose value changed, which applies at the next restart. A configuration that no longer loads
/// is refused with its error and the running one kept. With security.curve it reads the peers
/// file again: a removed peer's connections are closed (see PeerRegistry).
public final class ReloadService: Service, Sendable {
    let path: String?
    let running: Config
    let settings: LogSettings
    let logger: Logger
    let trust: TrustBoundary?

    public init(path: String?, running: Config, settings: LogSettings, trust: TrustBoundary? = nil, logger: Logger) {
        self.trust = trust
        self.path = path
        self.running = running
        self.settings = settings
        self.logger = logger
    }

    public func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            reload()
        }
    }

    /// What changed between the running configuration and the file now, and what was applied.
    func reload() {
        reloadPeers()
        let fresh: Config
        do {
            fresh = try Config.load(path: path)
        } catch {
            logger.error("SIGHUP: the configuration does not load; keeping the running one", metadata: ["config.error": "\(error)"])
            return
        }
        var applied: [String] = []
        if let level = Logger.Level(rawValue: fresh.logLevel), level != settings.level {
            settings.level = level
            applied.append("log.level=\(fresh.logLevel)")
        }
        if (fresh.logFormat == "json") != settings.json {
            settings.json = fresh.logFormat == "json"
            applied.append("log.format=\(fresh.logFormat)")
        }
        let live: Set<String> = ["log.level", "log.format"]
        let before = Dictionary(running.effectiveSettings.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        let restart = fresh.effectiveSettings.filter { !live.contains($0.key) && before[$0.key] != $0.value }.map(\.key)
        logger.notice("SIGHUP: configuration reloaded", metadata: [
            "reload.applied": "\(applied.isEmpty ? "nothing changed that applies live" : applied.joined(separator: ", "))",
            "reload.restart_needed": "\(restart.isEmpty ? "none" : restart.joined(separator: ", "))",
        ])
    }

    private func reloadPeers() {
        guard let registry = trust?.registry else { return }
        do {
            let change = try registry.reload()
            logger.notice("SIGHUP: peers file reloaded", metadata: [
                "peers.file": "\(registry.path)", "peers.count": "\(registry.count)",
                "peers.added": "\(change.added.joined(separator: ","))", "peers.removed": "\(change.removed.joined(separator: ","))",
                "peers.changed": "\(change.changed.joined(separator: ","))",
            ])
        } catch {
            logger.error("SIGHUP: the peers file does not load; keeping the running peers", metadata: ["peers.error": "\(error)"])
        }
    }
}

/// Says in the log that a stop was asked for (SIGTERM from systemd, or SIGINT), the moment the
/// graceful shutdown begins: last in the group, so it is told first; what follows in the log is the
/// ingest stopping, the writer draining and "liandongd stopped".
public struct ShutdownNoticeService: Service {
    let logger: Logger
    /// Told when the stop begins: from then on nothing the database does may hold the daemon back.
    let database: DatabaseHealth?
    public init(logger: Logger, database: DatabaseHealth? = nil) {
        self.logger = logger
        self.database = database
    }

    public func run() async throws {
        try? await gracefulShutdown()
        database?.shutdownBegan()
        guard !Task.isCancelled else { return }
        logger.notice("SIGTERM (or SIGINT) received: stopping; ingest stops first, the writer commits what it holds, then exit")
    }
}
