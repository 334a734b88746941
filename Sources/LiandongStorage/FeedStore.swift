import Foundation
import LiandongCore
import LibPQ

/// The feed outbox as the publisher and the replay service read it: what was committed but not
/// yet published, holes to fill, how far it was published, and replays by topic prefix.
package struct FeedStore {
    package let db: PGConnection

    package init(db: PGConnection) { self.db = db }

    /// The seq of the newest committed message.
    package func head() throws -> Int64 {
        Int64(try db.query("SELECT seq FROM liandong.feed_head").scalar ?? "0") ?? 0
    }

    /// Messages committed after the last one recorded as published, in seq order.
    package func unpublished() throws -> [FeedMessage] {
        try messages(db.query("""
            SELECT seq, topic, body FROM liandong.feed WHERE seq > (SELECT seq FROM liandong.feed_published) ORDER BY seq
            """))
    }

    /// Messages with seqs in `from..<to`, in seq order.
    package func messages(from: Int64, to: Int64) throws -> [FeedMessage] {
        try messages(db.query("SELECT seq, topic, body FROM liandong.feed WHERE seq >= $1 AND seq < $2 ORDER BY seq",
                              [String(from), String(to)]))
    }

    private func messages(_ rows: PGRows) throws -> [FeedMessage] {
        try rows.typed.map { FeedMessage(seq: try $0.int64(0), topic: try $0.string(1), body: try $0.string(2)) }
    }

    /// Records that every message up to `seq` was published (never moving back).
    package func markPublished(through seq: Int64, at now: Double) throws {
        try db.query("UPDATE liandong.feed_published SET seq = $1, published_at = to_timestamp($2::float8) WHERE seq < $1",
                     [String(seq), String(now)])
    }

    /// The bodies of up to `limit` messages after `since` whose topic starts with `prefix`, and
    /// the head then (one snapshot), returned only once they are as durable as an acknowledgement
    /// (see `confirmed`).
    package func replay(since: Int64, prefix: String, limit: Int) throws -> (bodies: [String], head: Int64) {
        let pattern = prefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_") + "%"
        return try confirmed { feed in
            let rows = try feed.db.query("SELECT body FROM liandong.feed WHERE seq > $1 AND topic LIKE $2 ORDER BY seq LIMIT $3",
                                         [String(since), pattern, String(limit)])
            return (try rows.typed.map { try $0.string(0) }, try feed.head())
        }
    }

    /// Runs `body` (reads of the feed) in a transaction whose commit waits like the writer's: with
    /// synchronous replication a row is visible on the primary as soon as it is committed there,
    /// before its standby has confirmed it; a message sent then could vanish in a failover and
    /// its seq be given to another (a dispatcher would drop that one as seen). A transactional
    /// logical message (pg_logical_emit_message, any role, any wal_level) makes this commit write
    /// WAL after everything `body` saw, so it returns only once the standby has all of it.
    /// Repeatable read: every read of `body` sees one snapshot, so the head it reads matches the
    /// messages it read (with a snapshot per statement, a message committed between the two was
    /// counted as caught up by a replaying client without being sent to it, and the publisher
    /// starting then skipped it).
    package func confirmed<T>(_ body: (FeedStore) throws -> T) throws -> T {
        try db.transaction(.repeatableRead) { db in
            let value = try body(FeedStore(db: db))
            try db.query("SELECT pg_logical_emit_message(true, 'liandong', 'feed read')")
            return value
        }
    }
}
