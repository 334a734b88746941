import Foundation
import Synchronization

/// One job on the prepare thread, waited for by the thread that started it.
final class Pending<T: Sendable>: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let result = Mutex<T?>(nil)

    init(on worker: WorkerThread, _ body: @escaping @Sendable () -> T) {
        worker.run { [self] in
            let value = body()
            result.withLock { $0 = value }
            done.signal()
        }
    }

    /// Waits for the job (once).
    func wait() -> T {
        done.wait()
        return result.withLock { $0! }
    }
}

/// A dedicated thread that runs the jobs handed to it one at a time, at a lower scheduling
/// priority (`nice`): the prepare stage has slack, the write stage does not, so when the writer
/// thread or PostgreSQL's backend wakes on a busy machine it gets a core before this thread.
final class WorkerThread: @unchecked Sendable {
    // @unchecked: `jobs` and `stopped` are guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopped = false

    init(name: String, nice: Int32) {
        let thread = Thread { [condition] in
            // Linux: the nice value is per thread; 0 means the calling one.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice)
            while true {
                condition.lock()
                while self.jobs.isEmpty && !self.stopped { condition.wait() }
                let job = self.jobs.isEmpty ? nil : self.jobs.removeFirst()
                condition.unlock()
                guard let job else { return }
                job()
            }
        }
        thread.name = name
        thread.start()
    }

    func run(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// The thread ends once the jobs handed to it are done.
    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }
}
