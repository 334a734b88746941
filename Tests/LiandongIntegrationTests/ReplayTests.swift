import Foundation
import LiandongClient
import LiandongCore
import LiandongStorage
import LibPQ
import Synchronization
import Testing
import ZeroMQ

/// The feed is a PUB socket and drops what a subscriber misses; the replay ROUTER and FeedClient
/// make every task reachable from PostgreSQL.
@Suite("Feed replay")
struct ReplayTests {
    /// `n` camera-only incidents at one place 20 minutes apart (beyond the 15-minute window), each a
    /// verify task; returns once all are in the feed.
    func emit(_ s: Scene, _ n: Int, from: Int) throws {
        for i in from..<(from + n) {
            try s.send("alert", Wire.alert(id: "rp-\(i)", priority: 3, at: s.now - Double(i) * 1200, position: s.centre))
        }
        try waitUntil(timeout: 20, "\(from + n) feed rows") { try s.db.int("SELECT count(*) FROM liandong.feed") >= from + n }
    }

    @Test("a dispatcher that was away replays every task it missed, each once")
    func awayAndBack() throws {
        let s = try Scene()
        try emit(s, 30, from: 0)
        var seen: [Int64] = []
        var caughtUp: Int64 = 0
        do {
            let client = try FeedClient(context: s.daemon.context, feed: s.daemon.feed, replay: s.daemon.replay)
            seen += try client.catchUp().map(\.seq)
            #expect(seen.count == 30 && client.replayedCount == 30)
            try emit(s, 10, from: 30)
            try waitUntil(timeout: 10, "the 10 new tasks") {
                seen += try client.next(timeout: 0.2).map(\.seq)
                return seen.count >= 40
            }
            _ = try client.catchUp()
            caughtUp = client.caughtUp
        }
        // Away: the client is gone while 25 more tasks go out.
        try emit(s, 25, from: 40)
        let back = try FeedClient(context: s.daemon.context, feed: s.daemon.feed, replay: s.daemon.replay, since: caughtUp)
        seen += try back.catchUp().map(\.seq)
        try waitUntil(timeout: 10, "all 65") {
            seen += try back.next(timeout: 0.2).map(\.seq)
            return seen.count >= 65
        }
        let all = try s.db.query("SELECT seq FROM liandong.feed ORDER BY seq").rows.map { Int64($0[0]!)! }
        #expect(seen.sorted() == all, "every task exactly once")
        #expect(back.replayedCount >= 25)
    }

    @Test("replay honours the prefix, the limit and says when there is more")
    func protocolDetails() throws {
        let s = try Scene()
        try emit(s, 12, from: 0)
        let dealer = try ZMQSocket(context: s.daemon.context, type: .dealer)
        try dealer.setReceiveTimeout(milliseconds: 10_000)
        try dealer.connect(s.daemon.replay)
        func ask(_ request: String) throws -> (messages: [[String: Any]], end: [String: Any]) {
            try dealer.send([Array(request.utf8)])
            let frames = try #require(try dealer.receive())
            let objects = try frames.map { try JSONSerialization.jsonObject(with: Data($0)) as! [String: Any] }
            return (Array(objects.dropLast()), objects.last!)
        }
        let page = try ask("{\"since\":0,\"prefix\":\"task.\",\"limit\":5}")
        #expect(page.messages.map { $0["seq"] as! Int } == [1, 2, 3, 4, 5])
        #expect(page.end["more"] as? Bool == true && page.end["head"] as? Int == 12)
        let rest = try ask("{\"since\":5,\"prefix\":\"task.\",\"limit\":100}")
        #expect(rest.messages.count == 7 && rest.end["more"] as? Bool == false)
        #expect(rest.messages.allSatisfy { ($0["topic"] as? String)?.hasPrefix("task.") == true })
        let none = try ask("{\"since\":0,\"prefix\":\"task.620922999\"}")
        #expect(none.messages.isEmpty && none.end["head"] as? Int == 12)
        let township = try ask("{\"since\":0,\"prefix\":\"task.620922102\"}")
        #expect(township.messages.count == 12)
        let bad = try ask("{\"since\":\"yesterday\"}")
        #expect((bad.end["error"] as? String ?? "").contains("since"))
    }

    @Test("a replayed task message is byte for byte the one published")
    func replayedAsPublished() throws {
        let s = try Scene()
        try s.send("alert", Wire.alert(id: "rp-bytes", priority: 3, at: s.now, position: s.centre))
        var published: [[UInt8]] = []
        try waitUntil(timeout: 10, "the task published") {
            guard try ZMQSocket.poll([s.feed], timeoutMilliseconds: 200)[0], let frames = try s.feed.receiveNow() else { return false }
            if frames.count == 2, String(decoding: frames[0], as: UTF8.self).hasPrefix("task.") { published = frames }
            return !published.isEmpty
        }
        let dealer = try ZMQSocket(context: s.daemon.context, type: .dealer)
        try dealer.setReceiveTimeout(milliseconds: 10_000)
        try dealer.connect(s.daemon.replay)
        try dealer.send([Array("{\"since\":0,\"prefix\":\"task.\"}".utf8)])
        let replayed = try #require(try dealer.receive())
        #expect(replayed.count == 2)
        #expect(replayed.first == published[1], "the stored message is the published text, not a re-serialised document")
    }

    /// The race a dispatcher starting at the moment a task commits meets: the head a replay answers
    /// must come from the snapshot its messages came from, or a message committed between the two
    /// reads is counted as caught up without being sent (a client then never asks for it again).
    @Test("a replay concurrent with commits never answers a head beyond the messages it sent")
    func headMatchesMessages() throws {
        let url = try TestDatabase.create()
        let reader = try PGConnection(conninfo: url)
        let writing = Mutex(true)
        let writer = Thread {
            guard let db = try? PGConnection(conninfo: url) else { return }
            while writing.withLock({ $0 }) {
                _ = try? db.query("""
                    WITH head AS (UPDATE liandong.feed_head SET seq = seq + 1 RETURNING seq)
                    INSERT INTO liandong.feed (seq, message_id, topic, kind, body)
                    SELECT seq, gen_random_uuid(), 'reminder.620922100001', 'reminder', jsonb_build_object('seq', seq) FROM head
                    """)
            }
        }
        writer.start()
        defer { writing.withLock { $0 = false } }
        var caughtUp: Int64 = 0
        var received: [Int64] = []
        for _ in 0..<1500 {
            let (bodies, head) = try FeedStore(db: reader).replay(since: caughtUp, prefix: "reminder.", limit: 100_000)
            received += try bodies.map { body -> Int64 in
                let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
                return Int64(try #require(object?["seq"] as? Int))
            }
            caughtUp = max(received.last ?? caughtUp, head)
        }
        writing.withLock { $0 = false }
        #expect(caughtUp > 100, "the writer committed while the replays ran")
        let missing = Set(1...caughtUp).subtracting(received).sorted()
        #expect(received == Array(1...caughtUp), "every seq up to the head answered, once, in order; missing \(missing.count): \(missing.prefix(10))")
    }
}
