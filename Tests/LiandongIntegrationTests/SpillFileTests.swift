import Foundation
@testable import LiandongServices
@testable import LiandongStorage
import LiandongCore
import Testing

@Suite("Spill file")
struct SpillFileTests {
    func raw(_ i: Int) -> RawMessage {
        RawMessage(endpoint: "ingest.sub", frames: [Array("alert".utf8), Array("{\"n\":\(i)}".utf8), []], receivedAt: 1000 + Double(i))
    }

    @Test("messages come back in order with their frames and times; commit truncates once all is read")
    func roundTrip() throws {
        let path = "\(Scratch.directory)/ld-spill-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + ".offset") }
        let spill = try SpillFile(path: path, maxBytes: 1 << 20)
        for i in 0..<10 { #expect(spill.append(raw(i))) }
        let (first, end1) = spill.read(max: 4)
        #expect(first.map { String(decoding: $0.frames[1], as: UTF8.self) } == (0..<4).map { "{\"n\":\($0)}" })
        #expect(first[0].frames.count == 3 && first[0].frames[2].isEmpty && first[3].receivedAt == 1003 && first[0].endpoint == "ingest.sub")
        try spill.commit(end1)
        let (rest, end2) = spill.read(max: 100)
        #expect(rest.count == 6)
        try spill.commit(end2)
        #expect(spill.isEmpty)
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) == 0)
    }

    @Test("an authenticated sender is kept with its message (the rights it had on arrival); records without one still read")
    func sender() throws {
        let path = "\(Scratch.directory)/ld-spill-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + ".offset") }
        let spill = try SpillFile(path: path, maxBytes: 1 << 20)
        var signed = raw(1)
        signed.sender = Sender(name: "gw-yuanquan-01", role: .gateway, scope: "620922100")
        var gone = raw(2)
        gone.sender = Sender(name: "gw-removed", role: nil, scope: "")
        #expect(spill.appendAll([raw(0), signed, gone]) == 3)
        let (back, _) = spill.read(max: 10)
        #expect(back.map(\.endpoint) == ["ingest.sub", "ingest.sub", "ingest.sub"])
        #expect(back[0].sender == nil && back[1].sender == signed.sender && back[2].sender == gone.sender)
    }

    @Test("a new process resumes after the last committed read; a full spill refuses more")
    func resumeAndLimit() throws {
        let path = "\(Scratch.directory)/ld-spill-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + ".offset") }
        do {
            let spill = try SpillFile(path: path, maxBytes: 1 << 20)
            for i in 0..<5 { _ = spill.append(raw(i)) }
            let (_, end) = spill.read(max: 2)
            try spill.commit(end)
            _ = spill.read(max: 3)  // read but never committed: a crash here
        }
        let again = try SpillFile(path: path, maxBytes: 1 << 20)
        let (left, _) = again.read(max: 100)
        #expect(left.map { String(decoding: $0.frames[1], as: UTF8.self) } == ["{\"n\":2}", "{\"n\":3}", "{\"n\":4}"])
        let small = try SpillFile(path: path + "-small", maxBytes: 100)
        defer { try? FileManager.default.removeItem(atPath: path + "-small") }
        #expect(small.append(raw(1)))
        #expect(!small.append(RawMessage(endpoint: "x", frames: [Array(repeating: 0, count: 200)], receivedAt: 0)))
    }
}
