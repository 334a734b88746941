import Foundation
import LiandongCore
import LiandongStorage
import LibPQ
import Testing

/// A kind of inbound message added in this file alone - its decoder and plan step (the core's
/// `InboundRecord`) and its rows (storage's `RecordRows`) - goes through decoding, trust,
/// the fresh-reference check, the batch's transaction and the acknowledgement outcomes without
/// a line changed elsewhere.
@Suite("A new kind of inbound record", .serialized)
struct InboundRecordTests {
    /// A grid worker's note about a grid (test only): topic `note`, schema test.note.v1.
    struct GridNote: InboundRecord, RecordRows {
        var noteID: String
        var gridCode: String
        var text: String

        // Its decoder.
        static let topic = "note"

        static func decode(_ f: inout Fields, by decoder: MessageDecoder, now: Double) throws -> GridNote {
            guard try f.string("schema") == "test.note.v1" else { throw Rejection(.unknownSchema, "not test.note.v1") }
            return GridNote(noteID: try f.identifier("note_id"), gridCode: try f.string("grid_code"), text: try f.string("text"))
        }

        var id: String { noteID }

        // Its plan step: the grid must be known, and in the sender's scope.
        func isKnown(to reference: ReferenceData) -> Bool { reference.gridByCode[gridCode] != nil }

        func refusal(from sender: Sender?, reference: ReferenceData) -> Rejection? {
            guard isKnown(to: reference) else { return Rejection(.unknownGrid, "grid_code \(gridCode) is not a known grid") }
            if let sender, case .forbidden(let why) = TrustPolicy.event(from: sender, inGrid: gridCode) { return Rejection(.outOfScope, why) }
            return nil
        }

        static let counter = (name: "test_grid_notes_total", label: "grid", values: [String]())
        var counterValue: String { gridCode }

        // Its rows.
        static func write(_ db: PGConnection, _ records: [GridNote]) throws {
            for r in records {
                try db.query("INSERT INTO grid_notes (note_id, grid_code, text) VALUES ($1, $2, $3)", [r.noteID, r.gridCode, r.text])
            }
        }
    }

    @Test("a record kind defined in one place is decoded, judged, written in the batch's transaction and answered")
    func newKindEndToEnd() throws {
        let url = try TestDatabase.create()
        let db = try PGConnection(conninfo: url)
        defer { db.close() }
        try db.execute("CREATE TABLE grid_notes (note_id text PRIMARY KEY, grid_code text NOT NULL, text text NOT NULL)")
        let store = try EventStore(conninfo: url, rules: Rules())
        defer { store.close() }
        var decoder = MessageDecoder()
        decoder.records.append(GridNote.self)
        let now = Date().timeIntervalSince1970
        func item(_ topic: String, _ body: String, sender: Sender? = nil) -> Inbound {
            Inbound(RawMessage(endpoint: "test", frames: [Array(topic.utf8), Array(body.utf8)], receivedAt: now, sender: sender),
                    decodedBy: decoder)
        }
        func note(_ id: String, _ grid: String) -> String {
            #"{"schema":"test.note.v1","note_id":"\#(id)","grid_code":"\#(grid)","text":"井盖缺失"}"#
        }
        let township = Sender(name: "gw-other", role: .gateway, scope: "620922101")
        let result = try store.write([
            item("note", note("n-1", Scene.ruralGrid)),
            item("note.village", note("n-2", Scene.ruralGrid)),
            item("note", note("n-3", "620922999999999")),  // no such grid, even after the fresh look
            item("note", note("n-4", Scene.ruralGrid), sender: township),  // outside the sender's scope
            item("note", #"{"schema":"test.note.v1","note_id":"n-5"}"#),  // grid_code missing
            item("alert", Wire.alert(id: "a-1", at: now, position: try Scene.centre(of: Scene.ruralGrid, db))),
        ])
        #expect(result.outcomes[0] == .stored(incidentID: "") && result.outcomes[1] == .stored(incidentID: ""))
        #expect(result.outcomes[2] == .rejected(Rejection(.unknownGrid, "grid_code 620922999999999 is not a known grid")))
        guard case .rejected(let scope) = result.outcomes[3], case .rejected(let missing) = result.outcomes[4] else {
            Issue.record("n-4 and n-5 must be refused: \(result.outcomes)")
            return
        }
        #expect(scope.reason == .outOfScope && missing.reason == .missingField)
        guard case .stored(let incident) = result.outcomes[5] else { Issue.record("the alert beside them: \(result.outcomes[5])"); return }
        #expect(!incident.isEmpty, "events in the same batch are correlated as ever")
        #expect(try db.query("SELECT note_id FROM grid_notes ORDER BY note_id").rows.map { $0[0]! } == ["n-1", "n-2"])
        #expect(try db.int("SELECT count(*) FROM liandong.rejected_messages WHERE endpoint = 'test'") == 3,
                "the three refusals are dead letters")
        // The shipped kinds all have their rows; the test kind is not one of them.
        #expect(RecordWriter.everyKindHasRows)
        #expect(!MessageDecoder.topics.contains("note"))
    }
}
