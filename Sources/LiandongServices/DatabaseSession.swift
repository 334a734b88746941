import Foundation
import LibPQ
import Logging

/// A connection that a dedicated-thread service reopens with backoff when it breaks.
final class DatabaseSession {
    private let conninfo: String
    private let logger: Logger
    private let stop: StopFlag
    private var connection: PGConnection?

    init(conninfo: String, logger: Logger, stop: StopFlag) {
        self.conninfo = conninfo
        self.logger = logger
        self.stop = stop
    }

    /// Runs `body` on a live connection; on a connection failure it reconnects and retries, until
    /// `stop` is set (then the failure is thrown). Other errors are thrown at once.
    func run<T>(_ body: (PGConnection) throws -> T) throws -> T {
        var delay = 0.1
        while true {
            do {
                if connection == nil || connection?.isOK == false {
                    connection = try PGConnection(conninfo: conninfo)
                    try connection!.execute("SET client_min_messages = warning")
                }
                return try body(connection!)
            } catch let error as PQError where error.isConnectionFailure {
                connection = nil
                if stop.isSet { throw error }
                logger.error("database unreachable, retrying", metadata: ["db.error": "\(error)", "retry.s": "\(delay)"])
                Thread.sleep(forTimeInterval: delay)
                delay = min(delay * 2, 5)
            }
        }
    }
}
