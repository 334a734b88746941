import Foundation
import LiandongCore
import Testing

/// The small wire messages: written with keys sorted (what JSONSerialization with .sortedKeys
/// wrote before them, so clients see the same text), read back to the same value.
@Suite("Wire answers")
struct WireAnswerTests {
    func sorted(_ o: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    }
    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test("ingest answers: stored, duplicate, refused with and without an id")
    func ingest() {
        let cases: [(IngestAnswer, [String: Any])] = [
            (.stored("gw-7:000123"), ["ok": true, "id": "gw-7:000123"]),
            (.duplicate("r-1"), ["ok": true, "id": "r-1", "duplicate": true]),
            (.refused("a \"quoted\" 名", error: "out_of_range: priority 9 is not 1...4"),
             ["ok": false, "id": "a \"quoted\" 名", "error": "out_of_range: priority 9 is not 1...4"]),
            (.refused(nil, error: "malformed_json: line\nbreak"), ["ok": false, "error": "malformed_json: line\nbreak"]),
        ]
        for (answer, object) in cases {
            #expect(text(answer.json()) == sorted(object))
            #expect(IngestAnswer(json: answer.json()) == answer)
        }
        #expect(IngestAnswer(json: Array("{\"id\":\"x\"}".utf8)) == nil)
    }

    @Test("update answers")
    func updates() {
        for answer in [TaskUpdateAnswer(ok: true, updateID: "u-1"), TaskUpdateAnswer(ok: false, updateID: nil, error: "body is not a JSON object"),
                       TaskUpdateAnswer(ok: false, updateID: "u-2", error: "cannot accept a resolved task")] {
            var o: [String: Any] = ["ok": answer.ok]
            if let id = answer.updateID { o["update_id"] = id }
            if let e = answer.error { o["error"] = e }
            #expect(text(answer.json()) == sorted(o))
            #expect(TaskUpdateAnswer(json: answer.json()) == answer)
        }
    }

    @Test("replay requests: defaults, clamping, refusals; end frames and heartbeats round-trip")
    func replay() throws {
        #expect(try ReplayRequest.decode(Array(#"{"since":5}"#.utf8)).get() == ReplayRequest(since: 5))
        #expect(try ReplayRequest.decode(Array(#"{"since":0,"prefix":"task.620922100","limit":99999}"#.utf8)).get()
                == ReplayRequest(since: 0, prefix: "task.620922100", limit: 10_000))
        #expect(try ReplayRequest.decode(Array(#"{"since":0,"limit":0}"#.utf8)).get().limit == 1)
        for bad in [#"{"since":-1}"#, #"{"since":1.5}"#, #"{"since":"1"}"#, #"{}"#, "[1]", "nope"] {
            guard case .failure = ReplayRequest.decode(Array(bad.utf8)) else {
                Issue.record("accepted \(bad)")
                continue
            }
        }
        let request = ReplayRequest(since: 42, prefix: "task.6209", limit: 7)
        #expect(try ReplayRequest.decode(request.json()).get() == request)
        #expect(text(ReplayEnd.end(head: 4711, more: true).json()) == sorted(["end": true, "head": 4711, "more": true]))
        #expect(text(ReplayEnd.error("since must be a non-negative integer").json())
                == sorted(["end": true, "error": "since must be a non-negative integer"]))
        for end in [ReplayEnd.end(head: 0, more: false), .end(head: 9_007_199_254, more: true), .error("x")] {
            #expect(ReplayEnd(json: end.json()) == end)
        }
        #expect(ReplayEnd(json: Array(#"{"seq":3,"kind":"verify"}"#.utf8)) == nil)
        let beat = Heartbeat(head: 17, at: "2026-12-01T10:00:00+08:00")
        #expect(text(beat.json()) == #"{"head":17,"at":"2026-12-01T10:00:00+08:00"}"#)
        #expect(Heartbeat(json: beat.json()) == beat)
    }
}
