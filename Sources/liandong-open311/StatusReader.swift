import Foundation
import LiandongCore
import LiandongServices
import LiandongStorage
import LibPQ
import Logging
import Synchronization

/// Reads for the GET answers and the feedback check, never hanging a handler on the database:
/// a few sessions, each used on its own queue, and an answer 503 when a read takes longer than
/// `timeout` (the session is then left to finish or fail; a failed one is opened again).
final class StatusReader: Sendable {
    private final class Slot: Sendable {
        let queue: DispatchQueue
        let db = Mutex<PGConnection?>(nil)
        init(_ n: Int) { queue = DispatchQueue(label: "liandong-open311-db-\(n)") }
    }

    private let conninfo: String
    private let slots: [Slot]
    private let next = Atomic<Int>(0)
    private let timeout: Double
    private let logger: Logger

    init(conninfo: String, sessions: Int = 4, timeout: Double = 5, logger: Logger) {
        self.logger = logger
        self.conninfo = conninfo
        slots = (0..<sessions).map(Slot.init)
        self.timeout = timeout
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        let slot = slots[next.wrappingAdd(1, ordering: .relaxed).oldValue % slots.count]
        let timeout = self.timeout
        let conninfo = self.conninfo
        let logger = self.logger
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let once = FirstAnswer<Result<T, any Error>> { continuation.resume(with: $0) }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
                once.give(.failure(Open311.Failure(503, "the database did not answer within \(Int(timeout)) s; try again later")))
            }
            slot.queue.async {
                let result: Result<T, any Error> = slot.db.withLock { db in
                    do {
                        if db == nil || db?.isOK == false { db = try Sessions.open(conninfo, name: "open311") }
                        return .success(try body(db!))
                    } catch let failure as Open311.Failure {
                        return .failure(failure)
                    } catch {
                        db?.close()
                        db = nil
                        logger.warning("database read failed", metadata: ["error": "\(error)"])
                        return .failure(Open311.Failure(503, "the database could not be read; try again later"))
                    }
                }
                once.give(result)
            }
        }
    }
}
