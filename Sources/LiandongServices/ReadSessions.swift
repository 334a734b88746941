import Foundation
import LiandongStorage
import LibPQ
import Logging
import ServiceLifecycle
import Synchronization

/// Reads for an HTTP server's answers (liandong-open311, liandong-console) that never hang a
/// handler on the database: a few sessions, each used on its own queue, and `Unavailable` when a
/// read takes longer than `timeout` (the session is then left to finish or fail; a failed one is
/// opened again).
public final class ReadSessions: Sendable {
    /// The database did not answer in time, or could not be read: the server answers 503.
    public struct Unavailable: Error, Sendable {
        public let message: String
    }

    private final class Slot: Sendable {
        let queue: DispatchQueue
        let db = Mutex<PGConnection?>(nil)
        init(_ name: String, _ n: Int) { queue = DispatchQueue(label: "\(name)-db-\(n)") }
    }

    private let conninfo: String
    private let name: String
    private let slots: [Slot]
    private let next = Atomic<Int>(0)
    private let timeout: Double
    private let logger: Logger

    public init(conninfo: String, name: String, sessions: Int = 4, timeout: Double = 5, logger: Logger) {
        self.logger = logger
        self.conninfo = conninfo
        self.name = name
        slots = (0..<sessions).map { Slot(name, $0) }
        self.timeout = timeout
    }

    /// Runs `body` on a session. Errors `body` throws of type `Passed` reach the caller as they
    /// are (an answer the handler chose); any other error closes the session and is `Unavailable`.
    public func read<T: Sendable, Passed: Error>(passing: Passed.Type,
                                                 _ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        let slot = slots[next.wrappingAdd(1, ordering: .relaxed).oldValue % slots.count]
        let (timeout, conninfo, logger, name) = (self.timeout, self.conninfo, self.logger, self.name)
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let once = FirstAnswer<Result<T, any Error>> { continuation.resume(with: $0) }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
                once.give(.failure(Unavailable(message: "the database did not answer within \(Int(timeout)) s; try again later")))
            }
            slot.queue.async {
                let result: Result<T, any Error> = slot.db.withLock { db in
                    do {
                        if db == nil || db?.isOK == false { db = try Sessions.open(conninfo, name: name) }
                        return .success(try body(db!))
                    } catch let passed as Passed {
                        return .failure(passed)
                    } catch {
                        db?.close()
                        db = nil
                        logger.warning("database read failed", metadata: ["error": "\(error)"])
                        return .failure(Unavailable(message: "the database could not be read; try again later"))
                    }
                }
                once.give(result)
            }
        }
    }
}

/// A blocking loop on its own thread as a service: `run` is started on a thread, `stop` is called
/// on graceful shutdown, and the service ends when `run` returns (throwing what it threw).
public struct ThreadService: Service {
    let name: String
    let body: @Sendable () throws -> Void
    let stop: @Sendable () -> Void
    let logger: Logger

    public init(name: String, logger: Logger, run: @escaping @Sendable () throws -> Void, stop: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = run
        self.stop = stop
        self.logger = logger
    }

    public func run() async throws {
        let done = Mutex<CheckedContinuation<Void, any Error>?>(nil)
        try await withGracefulShutdownHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                done.withLock { $0 = c }
                let thread = Thread { [body, logger, name] in
                    let result = Result { try body() }
                    if case .failure(let error) = result { logger.error("\(name) failed", metadata: ["error": "\(error)"]) }
                    done.withLock { $0.take() }?.resume(with: result)
                }
                thread.name = name
                thread.start()
            }
        } onGracefulShutdown: { [stop] in
            stop()
        }
    }
}
