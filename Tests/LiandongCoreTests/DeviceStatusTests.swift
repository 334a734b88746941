import Foundation
import LiandongCore
import Testing

@Suite("device status messages")
struct DeviceStatusTests {
    static let now = 1_800_000_000.0
    let decoder = MessageDecoder()

    func decode(_ topic: String, _ body: String) -> Result<DecodedMessage, Rejection> {
        decoder.decodeMessage(frames: [Array(topic.utf8), Array(body.utf8)], now: Self.now)
    }

    @Test("liandong.device_status.v1 on topic status: decoded, its id stable, written back as sent")
    func roundTrip() throws {
        let report = DeviceStatusReport(deviceID: "62092210001320000001", reason: .timeout, at: Self.now - 5)
        let decoded = try decoder.decodeMessage(frames: [Array("status".utf8), report.json()], now: Self.now).get()
        #expect(decoded == .record(report))
        #expect(report.id == "status:62092210001320000001:\(Timestamp.formatCST(Self.now - 5)):timeout" && report.status == .offline)
        #expect(MessageDecoder.peekID([Array("status.bridge-1".utf8), report.json()]) == report.id)
        // An event decoder refuses it (it is not an event).
        #expect(throws: Rejection.self) { try decoder.decode(frames: [Array("status".utf8), report.json()], now: Self.now).get() }
    }

    @Test("refused: wrong schema, status not matching the reason, unknown reason, bad device id, a time out of range")
    func refused() {
        func reason(_ body: String) -> RejectReason? {
            if case .failure(let r) = decode("status", body) { return r.reason }
            return nil
        }
        let at = Timestamp.formatCST(Self.now)
        #expect(reason("{\"schema\":\"liandong.alert.v1\"}") == .unknownSchema)
        #expect(reason("{\"schema\":\"liandong.device_status.v1\",\"device_id\":\"62092210001320000001\",\"status\":\"online\",\"reason\":\"timeout\",\"at\":\"\(at)\"}") == .invalidField)
        #expect(reason("{\"schema\":\"liandong.device_status.v1\",\"device_id\":\"62092210001320000001\",\"status\":\"online\",\"reason\":\"hello\",\"at\":\"\(at)\"}") == .invalidField)
        #expect(reason("{\"schema\":\"liandong.device_status.v1\",\"device_id\":\"123\",\"status\":\"online\",\"reason\":\"register\",\"at\":\"\(at)\"}") == .invalidDeviceID)
        #expect(reason("{\"schema\":\"liandong.device_status.v1\",\"device_id\":\"62092210001320000001\",\"status\":\"online\",\"reason\":\"register\",\"at\":\"2020-01-01T00:00:00+08:00\"}") == .timeOutOfRange)
    }

    @Test("a MANSCDP Keepalive on topic gb28181 marks its device seen (a keepalive status at arrival)")
    func keepalive() throws {
        let body = "<?xml version=\"1.0\" encoding=\"GB2312\"?><Notify><CmdType>Keepalive</CmdType><SN>43</SN><DeviceID>62092200001180000001</DeviceID><Status>OK</Status></Notify>"
        let decoded = try decode("gb28181", body).get()
        #expect(decoded == .record(DeviceStatusReport(deviceID: "62092200001180000001", reason: .keepalive, at: Self.now)))
    }
}
