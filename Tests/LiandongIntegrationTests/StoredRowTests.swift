import Foundation
import LiandongCore
import LiandongStorage
import LibPQ
import Testing

/// A stored row the writer cannot read (a NULL where it expects a value, after someone changed the
/// schema by hand) is a typed error handled like a refusal: the batch is written item by item and
/// the item that needs the row becomes a dead letter (store_error) - no crash, no endless retry.
@Suite("Stored rows the writer cannot read", .serialized)
struct StoredRowTests {
    @Test("a task whose priority is NULL refuses only the event that joins its incident, as store_error naming the column")
    func unreadableRowIsARefusal() throws {
        let url = try TestDatabase.create()
        let db = try PGConnection(conninfo: url)
        defer { db.close() }
        let centre = try Scene.centre(of: Scene.ruralGrid, db)
        let store = try EventStore(conninfo: url, rules: Rules())
        defer { store.close() }
        let now = Date().timeIntervalSince1970
        func item(_ topic: String, _ body: String) -> Inbound {
            Inbound(RawMessage(endpoint: "test", frames: [Array(topic.utf8), Array(body.utf8)], receivedAt: now), decodedBy: MessageDecoder())
        }
        _ = try store.write([item("alert", Wire.alert(id: "sr-1", at: now - 60, position: centre))])
        #expect(try db.int("SELECT count(*) FROM liandong.tasks") == 1, "the alert's verify task")
        try db.execute("ALTER TABLE liandong.tasks ALTER COLUMN priority DROP NOT NULL")
        try db.execute("UPDATE liandong.tasks SET priority = NULL")
        let result = try store.write([
            item("report", Wire.report(id: "sr-2", at: now, position: offset(centre, north: 30))),  // joins the incident of the damaged task
            item("alert", Wire.alert(id: "sr-3", at: now, position: offset(centre, east: -2000))),  // far away: a new incident
        ])
        guard case .rejected(let refusal) = result.outcomes[0] else { Issue.record("sr-2: \(result.outcomes[0])"); return }
        #expect(refusal.reason == .storeError && refusal.detail.contains("priority"), "\(refusal.detail)")
        guard case .stored = result.outcomes[1] else { Issue.record("sr-3: \(result.outcomes[1])"); return }
        #expect(try db.int("SELECT count(*) FROM liandong.rejected_messages WHERE reason = 'store_error'") == 1)
    }
}
