import Foundation
import LiandongCore
import LiandongStorage
import LibPQ
import Logging

/// A connection that a dedicated-thread service reopens with backoff when it breaks.
final class DatabaseSession {
    private let conninfo: String
    private let name: String
    private let logger: Logger
    private let stop: StopFlag
    private var connection: PGConnection?
    /// Checks each new connection (ha: the lease must name this daemon).
    private let fence: (PGConnection) throws -> Void

    init(conninfo: String, name: String, logger: Logger, stop: StopFlag, fence: @escaping (PGConnection) throws -> Void = { _ in }) {
        self.conninfo = conninfo
        self.name = name
        self.fence = fence
        self.logger = logger
        self.stop = stop
    }

    /// Runs `body` on a live connection; on a connection failure it reconnects and retries, until
    /// `stop` is set (then `SessionStopped` is thrown: the service ends normally, see
    /// `runThreadService`). Other errors are thrown at once.
    func run<T>(_ body: (PGConnection) throws -> T) throws -> T {
        var backoff = Backoff()
        while true {
            do {
                if connection == nil || connection?.isOK == false {
                    connection = nil
                    connection = try Sessions.open(conninfo, name: name, prepare: fence)
                }
                return try body(connection!)
            } catch let error as PQError where error.isConnectionFailure {
                connection = nil
                if stop.isSet { throw SessionStopped(underlying: error) }
                let delay = backoff.next()
                logger.error("database unreachable, retrying", metadata: ["db.error": "\(error)", "retry.s": "\(delay)"])
                // The backoff ends early when the service is asked to stop.
                let deadline = Date(timeIntervalSinceNow: delay)
                while !stop.isSet && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            }
        }
    }
}

/// A service asked to stop while its database was unreachable: it has nothing left to do that
/// the next start would not do (sweeps, updates and replays are answered from PostgreSQL), so it
/// ends normally instead of failing the daemon's exit status.
struct SessionStopped: Error, CustomStringConvertible {
    let underlying: PQError
    var description: String { "stopped while the database was unreachable: \(underlying)" }
}
