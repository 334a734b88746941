import Foundation
import LiandongStorage
import ServiceLifecycle
import Synchronization

/// A blocking, bounded FIFO between dedicated threads: producers wait when it is full (explicit
/// backpressure, never unbounded memory), the consumer takes batches bounded by size and time.
public final class BoundedQueue<Element: Sendable>: @unchecked Sendable {
    // @unchecked: every access to `items` and `closed` happens with `condition` locked.
    private let condition = NSCondition()
    private var items: [Element] = []
    private var head = 0
    private var closed = false
    public let capacity: Int

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    public var count: Int {
        condition.lock()
        defer { condition.unlock() }
        return items.count - head
    }

    /// Appends, waiting while full. Returns false when the queue is closed or `timeout` passed.
    @discardableResult
    public func push(_ element: Element, timeout: TimeInterval = .infinity) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !closed && items.count - head >= capacity {
            if !condition.wait(until: deadline) { return false }
        }
        guard !closed else { return false }
        items.append(element)
        condition.broadcast()
        return true
    }

    /// Takes up to `max` elements: waits up to `idle` for the first one, then up to `linger`
    /// more for the batch to fill. Returns [] on idle timeout and nil once closed and drained.
    public func popBatch(max: Int, idle: TimeInterval, linger: TimeInterval) -> [Element]? {
        condition.lock()
        defer { condition.unlock() }
        let idleDeadline = Date(timeIntervalSinceNow: idle)
        while items.count == head {
            if closed { return nil }
            if !condition.wait(until: idleDeadline) { return [] }
        }
        let lingerDeadline = Date(timeIntervalSinceNow: linger)
        while items.count - head < max && !closed {
            if !condition.wait(until: lingerDeadline) { break }
        }
        return takeLocked(max)
    }

    /// Takes up to `max` elements at `deadline`, or at once when `max` are waiting (a backlog is
    /// never held). Returns [] when nothing came by then and nil once closed and drained. Sleeps
    /// rather than waking at every push meanwhile.
    public func popBatch(max: Int, until deadline: Date) -> [Element]? {
        condition.lock()
        let full = closed || items.count - head >= max
        condition.unlock()
        if !full { Thread.sleep(until: deadline) }
        condition.lock()
        defer { condition.unlock() }
        if closed && items.count == head { return nil }
        return takeLocked(max)
    }

    private func takeLocked(_ max: Int) -> [Element] {
        let n = Swift.min(max, items.count - head)
        let batch = Array(items[head..<(head + n)])
        head += n
        if head > 4096 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        condition.broadcast()
        return batch
    }

    /// Whether `close` was called.
    public var isClosed: Bool {
        condition.lock()
        defer { condition.unlock() }
        return closed
    }

    /// No more pushes; the consumer drains what is left, then gets nil.
    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}

/// A flag set from any thread and polled by a dedicated thread's loop.
public final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    public init() {}
    public func set() { value.store(true, ordering: .releasing) }
    public var isSet: Bool { value.load(ordering: .acquiring) }
}

/// Runs blocking work (libzmq, libpq) on a dedicated thread, never on the cooperative pool,
/// and resumes when it finishes.
public func runOnDedicatedThread(name: String, _ body: @escaping @Sendable () throws -> Void) async throws {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
        let thread = Thread {
            do {
                try body()
                continuation.resume()
            } catch {
                continuation.resume(throwing: error)
            }
        }
        thread.name = name
        thread.stackSize = 4 << 20
        thread.start()
    }
}

/// Runs a service whose work loop is blocking (libzmq, libpq) on a dedicated thread; graceful
/// shutdown and cancellation both call `onStop`, which must make the loop return soon. A loop
/// stopped while its database was unreachable (`SessionStopped`) ends normally.
package func runThreadService(name: String, onStop: @escaping @Sendable () -> Void,
                      _ body: @escaping @Sendable () throws -> Void) async throws {
    try await withTaskCancellationHandler {
        try await withGracefulShutdownHandler {
            try await runOnDedicatedThread(name: name) {
                do { try body() } catch is SessionStopped {}
            }
        } onGracefulShutdown: {
            onStop()
        }
    } onCancel: {
        onStop()
    }
}
