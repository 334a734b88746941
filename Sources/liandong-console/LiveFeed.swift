import Foundation
import LiandongClient
import LiandongCore
import Logging
import Synchronization
import ZeroMQ

/// The console's one dispatcher connection: a `FeedClient` over every daemon's feed and replay
/// (nothing missed: a gap is filled from PostgreSQL), on its own thread, handing each task
/// message to the pages whose user's scope covers its topic, as a Server-Sent Event.
final class LiveFeed: Sendable {
    /// A page's stream. A page that falls `backlog` events behind is ended: its EventSource
    /// reconnects and the page reloads its snapshot, so it never shows a queue with a hole.
    static let backlog = 2_000

    private struct Page {
        let topicPrefix: String
        let continuation: AsyncStream<String>.Continuation
    }

    private let pages = Mutex<[Int: Page]>([:])
    private let nextID = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)
    private let delivered = Atomic<Int64>(0)
    private let feed: [String]
    private let replay: [String]
    private let curve: CurveClientKeys?
    private let since: Int64
    private let logger: Logger

    init(feed: [String], replay: [String], curve: CurveClientKeys?, since: Int64, logger: Logger) {
        self.feed = feed
        self.replay = replay
        self.curve = curve
        self.since = since
        self.logger = logger
        delivered.store(since, ordering: .relaxed)
    }

    var pageCount: Int { pages.withLock { $0.count } }
    var lastSeq: Int64 { delivered.load(ordering: .relaxed) }

    /// A page's events: the feed's task messages whose topic is `task.<scope...>`.
    func subscribe(scope: String) -> (id: Int, events: AsyncStream<String>) {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingOldest(Self.backlog))
        let topicPrefix = "task." + scope
        if stopped.load(ordering: .relaxed) {
            continuation.finish()
        } else {
            pages.withLock { $0[id] = Page(topicPrefix: topicPrefix, continuation: continuation) }
        }
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(id) }
        return (id, stream)
    }

    func unsubscribe(_ id: Int) {
        _ = pages.withLock { $0.removeValue(forKey: id) }
    }

    /// The feed thread: runs until `stop`. A failing connection is opened again (1 s, doubling to 30 s).
    func run() throws {
        var caughtUp = since
        var backoff = Backoff(first: 1, limit: 30)
        while !stopped.load(ordering: .relaxed) {
            do {
                let context = try ZMQContext()
                let client = try FeedClient(context: context, feed: feed[0], replay: replay[0], prefix: "task.", since: caughtUp, curve: curve)
                for (f, r) in zip(feed.dropFirst(), replay.dropFirst()) { try client.connect(feed: f, replay: r) }
                while !stopped.load(ordering: .relaxed) {
                    for item in try client.next(timeout: 0.2) {
                        deliver(item)
                        caughtUp = max(caughtUp, item.seq)
                    }
                    delivered.store(max(caughtUp, client.caughtUp), ordering: .relaxed)
                    backoff.reset()
                }
            } catch {
                let wait = backoff.next()
                logger.warning("the task feed failed; listening again", metadata: ["error": "\(error)", "retry_s": "\(wait)"])
                var slept = 0.0
                while slept < wait && !stopped.load(ordering: .relaxed) {
                    Thread.sleep(forTimeInterval: 0.1)
                    slept += 0.1
                }
            }
        }
        let ended = pages.withLock { p in
            let all = Array(p.values)
            p = [:]
            return all
        }
        for page in ended { page.continuation.finish() }
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    private func deliver(_ item: FeedClient.Item) {
        let event = Self.event(seq: item.seq, body: item.body)
        let overflowed = pages.withLock { p -> [Page] in
            var out: [Page] = []
            for (id, page) in p where item.topic.hasPrefix(page.topicPrefix) {
                if case .dropped = page.continuation.yield(event) {
                    p.removeValue(forKey: id)
                    out.append(page)
                }
            }
            return out
        }
        for page in overflowed { page.continuation.finish() }
    }

    /// One Server-Sent Event: `id` the seq, `event: task`, the feed's JSON body as data.
    static func event(seq: Int64, body: String) -> String {
        "id: \(seq)\nevent: task\ndata: " + body.replacingOccurrences(of: "\n", with: "\ndata: ") + "\n\n"
    }
}
