import Foundation
import LiandongCore
import LiandongServices
import LiandongStorage
import LibPQ
import Testing

/// The writer prepares batch N+1 (placement, dedup, correlation, rows) on a read session while
/// batch N is written on the write session. These tests drive `EventStore` directly, so that the
/// batch boundaries are exact: N+1 must see N's uncommitted events, and a failure of N must make
/// N+1 be prepared again.
@Suite("Pipelined batches", .serialized)
struct PipelineTests {
    let url: String
    let db: PGConnection
    let centre: LonLat
    let now = Date().timeIntervalSince1970

    init() throws {
        url = try TestDatabase.create()
        db = try PGConnection(conninfo: url)
        centre = try Scene.centre(of: Scene.ruralGrid, db)
    }

    func item(_ topic: String, _ body: String) -> Inbound {
        let raw = RawMessage(endpoint: "test", frames: [Array(topic.utf8), Array(body.utf8)], receivedAt: now)
        switch MessageDecoder().decode(frames: raw.frames, now: now) {
        case .success(let event): return .event(event, raw)
        case .failure(let rejection): return .rejected(rejection, raw)
        }
    }

    func incident(_ id: String) throws -> String? {
        try db.query("SELECT incident_id FROM liandong.events WHERE source_id = $1", [id]).scalar
    }

    @Test("a batch prepared while the one before it is written sees that batch's events, incidents and late events")
    func preparedAheadSeesInFlight() throws {
        let store = try EventStore(conninfo: url, rules: Rules())
        defer { store.close() }
        let east = offset(centre, east: 2000), old = now - 10 * 3600
        // The window's newest observed time is now: events ten hours old are late (matched in stored history).
        _ = try store.write([item("alert", Wire.alert(id: "p-0", at: now, position: offset(centre, east: -2000)))])
        let n = try store.prepare([
            item("alert", Wire.alert(id: "p-a", at: now - 30, position: centre)),
            item("alert", Wire.alert(id: "p-late-1", at: old, position: east)),
        ])
        let next = try store.prepare([
            item("alert", Wire.alert(id: "p-a", at: now - 30, position: centre)),  // the same id: a duplicate
            item("report", Wire.report(id: "p-r", at: now, position: offset(centre, north: 40))),
            item("report", Wire.report(id: "p-late-2", at: old + 60, position: offset(east, north: 40))),
        ], after: n)
        let first = try store.commit(n)
        let second = try store.commit(next)
        store.committed()
        #expect(first.stored == 2 && second.stored == 2)
        #expect(second.outcomes[0] == .duplicate, "the id stored by the batch in flight is a duplicate")
        #expect(try incident("p-r") == incident("p-a"), "joined an incident the batch in flight opened")
        #expect(try incident("p-late-2") == incident("p-late-1"), "joined the batch in flight's late event")
        #expect(try db.int("SELECT count(*) FROM liandong.events WHERE source_id = 'p-a'") == 1)
        #expect(try db.int("""
            SELECT alert_count * 10 + report_count FROM liandong.incidents
            WHERE id = (SELECT incident_id FROM liandong.events WHERE source_id = 'p-a')
            """) == 11, "grown by the next batch once the first was committed")
        // The camera alerts' verify tasks (built while preparing) are upgraded by the reports' batch.
        #expect(try db.query("SELECT kind FROM liandong.feed ORDER BY seq").rows.map { $0[0]! }
            == ["verify", "verify", "verify", "joint_dispatch", "joint_dispatch"])
        #expect(try db.query("""
            SELECT kind FROM liandong.tasks WHERE incident_id = (SELECT incident_id FROM liandong.events WHERE source_id = 'p-a')
            """).scalar == "joint_dispatch")
    }

    @Test("a repeat of a stored id has no effect; a repeat of a refused id is judged on its own, in one batch as across batches")
    func repeatsOfRefusedIDs() throws {
        let store = try EventStore(conninfo: url, rules: Rules())
        defer { store.close() }
        let outside = LonLat(lon: 120.0, lat: 30.0)  // far outside the county: refused at placement
        let batch = [
            item("alert", Wire.alert(id: "r-x", at: now - 60, position: outside)),  // refused
            item("alert", Wire.alert(id: "r-x", at: now - 30, position: centre)),  // stored
            item("alert", Wire.alert(id: "r-y", at: now - 60, position: centre)),  // stored
            item("alert", Wire.alert(id: "r-y", at: now - 30, position: outside)),  // a repeat of a stored id
        ]
        let result = try store.write(batch)
        #expect(result.outcomes[1] != .duplicate && result.outcomes[3] == .duplicate)
        if case .rejected(let r) = result.outcomes[0] { #expect(r.reason == .outsideArea) } else { Issue.record("r-x outside was not refused") }
        // The same ids again in a later batch: both stored already, both without effect.
        let again = try store.write([batch[0], batch[2]])
        #expect(again.outcomes == [.duplicate, .duplicate])
        #expect(try db.int("SELECT count(*) FROM liandong.events") == 2)
        #expect(try db.int("SELECT count(*) FROM liandong.rejected_messages") == 1)
    }

    @Test("when the database refuses the batch written first, the one prepared after it is prepared again and nothing is lost")
    func refusedBatchInvalidatesNext() throws {
        let store = try EventStore(conninfo: url, rules: Rules())
        defer { store.close() }
        let elsewhere = offset(centre, east: 2000)
        // Valid in every way the decoder checks; only the store can tell (a trigger of the test's).
        try refuseInDatabase(db, sourceIDs: ["x-poison"])
        let poison = Wire.alert(id: "x-poison", at: now, position: elsewhere)
        let batch = [item("alert", Wire.alert(id: "x-good", at: now, position: centre)), item("alert", poison)]
        let n = try store.prepare(batch)
        let nextItems = [
            item("report", Wire.report(id: "x-r1", at: now, position: offset(centre, north: 40))),
            item("report", Wire.report(id: "x-r2", at: now, position: offset(elsewhere, north: 40))),
        ]
        let stale = try store.prepare(nextItems, after: n)
        guard case .stored(let poisonIncident) = n.outcomes[1] else {
            Issue.record("the poison alert was not placed")
            return
        }
        #expect(stale.outcomes[1] == .stored(incidentID: poisonIncident), "prepared against the poison's incident")
        var refusal: PQError?
        do {
            _ = try store.commit(n)
        } catch let error as PQError {
            refusal = error
        }
        guard let refusal, !refusal.isConnectionFailure else {
            Issue.record("the batch with the poison alert was not refused")
            return
        }
        // What the writer does: the window and the batch prepared ahead are dropped, the refused
        // batch goes item by item, the next one is prepared again.
        store.discardPrepared()
        let separately = try store.writeSeparately(batch, refusedWith: refusal)
        #expect(separately.stored == 1 && separately.rejected == 1)
        let again = try store.commit(try store.prepare(nextItems))
        store.committed()
        #expect(again.stored == 2)
        #expect(try incident("x-r1") == incident("x-good"))
        let r2 = try incident("x-r2")
        #expect(r2 != nil && r2 != poisonIncident, "a new incident, not the refused batch's")
        #expect(try db.int("SELECT count(*) FROM liandong.incidents WHERE id = '\(poisonIncident)'") == 0)
        #expect(try db.int("SELECT count(*) FROM liandong.events") == 3)
        #expect(try db.query("SELECT reason FROM liandong.rejected_messages").scalar == "store_error")
    }

    @Test("in a burst, a batch the database refuses while the next one is prepared: every event lands once, every pair in one incident")
    func refusedInBurst() throws {
        let s = try Scene(environment: ["LIANDONG_INGEST_BATCH_SIZE": "20"])
        // Pairs (a camera alert, a worker's report 30 m away 20 s later) at one spot, 3,000 s apart
        // (beyond the 900 s window: one incident each). The first half in observed order (the
        // window's path); then the poison; then a backlog from days ago, newest first (late
        // events: stored history, and each other across batches).
        let inOrder: [Double] = (0..<50).map { k in s.now - Double(49 - k) * 3000 }
        let backlog: [Double] = (0..<50).map { k in s.now - 300_000 - Double(k) * 3000 }
        let times = inOrder + backlog
        try refuseInDatabase(s.db, sourceIDs: ["b-poison"])
        for (k, t) in times.enumerated() {
            if k == 50 {
                try s.send("alert", Wire.alert(id: "b-poison", at: s.now, position: s.centre))
            }
            try s.send("alert", Wire.alert(id: "b-a-\(k)", at: t, position: s.centre))
            try s.send("report", Wire.report(id: "b-r-\(k)", at: t + 20, position: offset(s.centre, north: 30)))
        }
        try s.waitProcessed(201, timeout: 30)
        #expect(try s.count("SELECT count(*) FROM liandong.events") == 200)
        #expect(try s.db.query("SELECT string_agg(reason, ',') FROM liandong.rejected_messages").scalar == "store_error")
        #expect(try s.count("""
            SELECT count(*) FROM (SELECT split_part(source_id, '-', 3), count(DISTINCT incident_id) n
                                  FROM liandong.events GROUP BY 1) pairs WHERE n <> 1
            """) == 0, "each pair in one incident")
        #expect(try s.count("SELECT count(DISTINCT incident_id) FROM liandong.events") == 100)
        #expect(try s.count("SELECT count(*) FROM liandong.incidents WHERE alert_count <> 1 OR report_count <> 1") == 0)
        var ahead = (used: 0.0, discarded: 0.0)
        try waitUntil(timeout: 10, "the writer's counters") {
            ahead = (try s.daemon.metric("liandong_batches_prepared_ahead_total{outcome=\"used\"}"),
                     try s.daemon.metric("liandong_batches_prepared_ahead_total{outcome=\"discarded\"}"))
            return ahead.used >= 1 && ahead.discarded >= 1
        }
        #expect(ahead.used >= 1 && ahead.discarded >= 1, "the burst was pipelined and the refused batch's successor prepared again")
    }

    /// Queue capacity 10,000: the batch prepared ahead comes from the queue (put back in front when
    /// the batch before it fails); 100: from the spill (it stays there).
    @Test("the write session killed in the middle of a burst, with the next batch prepared: every event lands once, every pair in one incident",
          arguments: [10_000, 100])
    func writeSessionLostMidBurst(queueCapacity: Int) throws {
        let s = try Scene(environment: ["LIANDONG_INGEST_BATCH_SIZE": "20", "LIANDONG_INGEST_QUEUE_CAPACITY": String(queueCapacity)])
        // 1,500 pairs (alert, report 30 m away 20 s later) at three spots 2 km apart, 1,000 s apart
        // at each spot (beyond the 900 s window: one incident per pair), oldest first.
        let spots = [s.centre, offset(s.centre, east: 2000), offset(s.centre, east: -2000)]
        let pairs = 1500
        for k in 0..<pairs {
            let t = s.now - Double(pairs / 3 - 1 - k / 3) * 1000, spot = spots[k % 3]
            try s.send("alert", Wire.alert(id: "k-a-\(k)", at: t, position: spot))
            try s.send("report", Wire.report(id: "k-r-\(k)", at: t + 20, position: offset(spot, north: 30)))
        }
        try waitUntil(timeout: 30, "the first batches written") { try s.count("SELECT count(*) FROM liandong.events") >= 100 }
        // The writer's write session (the holder of the writer lock) dies mid-burst.
        let killed = try s.db.query("""
            SELECT pg_terminate_backend(pid) FROM pg_locks
            WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """)
        let storedAtKill = try s.count("SELECT count(*) FROM liandong.events")
        #expect(killed.count == 1 && killed.scalar == "t")
        #expect(storedAtKill < 2 * pairs, "the session died before the burst was written")
        try s.waitProcessed(2 * pairs, timeout: 60)
        #expect(try s.count("SELECT count(*) FROM liandong.events") == 2 * pairs)
        #expect(try s.count("SELECT count(DISTINCT source_id) FROM liandong.events") == 2 * pairs)
        #expect(try s.count("SELECT count(*) FROM liandong.rejected_messages") == 0)
        #expect(try s.count("""
            SELECT count(*) FROM (SELECT split_part(source_id, '-', 3), count(DISTINCT incident_id) n
                                  FROM liandong.events GROUP BY 1) pairs WHERE n <> 1
            """) == 0, "each pair in one incident")
        #expect(try s.count("SELECT count(*) FROM liandong.incidents") == pairs)
        #expect(try s.count("SELECT count(*) FROM liandong.incidents WHERE alert_count <> 1 OR report_count <> 1") == 0)
        #expect(try s.daemon.metric("liandong_db_reconnects_total") >= 1)
        #expect(try s.daemon.metric("liandong_batches_prepared_ahead_total{outcome=\"discarded\"}") >= 1)
    }
}
