import LiandongCore
import Testing

@Suite("Silences (matching)")
struct SilenceTests {
    let camera = "62092200001320000004"

    @Test("every given matcher must match, within [starts, ends) of the observed time")
    func matching() {
        let s = Silence(id: 1, devicePrefix: "620922000013", divisionPrefix: "620922102", category: "intrusion", startsAt: 100, endsAt: 200)
        #expect(s.matches(deviceID: camera, gridCode: "620922102201005", category: "intrusion", observedAt: 100))
        #expect(!s.matches(deviceID: camera, gridCode: "620922102201005", category: "intrusion", observedAt: 200), "the end is exclusive")
        #expect(!s.matches(deviceID: camera, gridCode: "620922102201005", category: "intrusion", observedAt: 99))
        #expect(!s.matches(deviceID: "62092200001110000001", gridCode: "620922102201005", category: "intrusion", observedAt: 150))
        #expect(!s.matches(deviceID: camera, gridCode: "620922101201001", category: "intrusion", observedAt: 150))
        #expect(!s.matches(deviceID: camera, gridCode: "620922102201005", category: "fire", observedAt: 150))
        #expect(!s.matches(deviceID: nil, gridCode: "620922102201005", category: "intrusion", observedAt: 150), "a report has no device")
        let township = Silence(id: 2, devicePrefix: "", divisionPrefix: "620922102", category: nil, startsAt: 0, endsAt: 1000)
        #expect(township.matches(deviceID: nil, gridCode: "620922102201005", category: "crowd", observedAt: 500))
        #expect([s, township].silencing(deviceID: nil, gridCode: "620922102201005", category: "crowd", observedAt: 500)?.id == 2)
        #expect([s].silencing(deviceID: nil, gridCode: "620922102201005", category: "crowd", observedAt: 500) == nil)
    }

    @Test("alarm classes: analytics (method 5), picture lost (method 2, type 1 or 2), vendors' concatenated methods")
    func alarmClasses() {
        #expect(AlarmClass(alarmMethod: 5, alarmType: 6) == .analytics)
        #expect(AlarmClass(alarmMethod: 2, alarmType: 1) == .pictureLost)
        #expect(AlarmClass(alarmMethod: 2, alarmType: 2) == .pictureLost)
        #expect(AlarmClass(alarmMethod: 2, alarmType: 3) == .other, "disk full says nothing about the picture")
        #expect(AlarmClass(alarmMethod: 25, alarmType: 6) == .analytics, "video analytics wins in concatenated digits")
        #expect(AlarmClass(alarmMethod: 12, alarmType: 1) == .pictureLost)
        #expect(AlarmClass(alarmMethod: 1, alarmType: nil) == .other)
        let decoder = MessageDecoder()
        let body = #"{"schema":"liandong.alert.v1","alert_id":"a","device_id":"62092200001320000004","alarm_method":2,"alarm_type":2,"priority":2,"observed_at":"2025-11-29T10:15:32+08:00"}"#
        guard case .success(let event) = decoder.decode(frames: [Array("alert".utf8), Array(body.utf8)], now: 1_764_383_000) else {
            Issue.record("the tamper alert did not decode")
            return
        }
        #expect(event.alarmClass == .pictureLost && event.category == "tamper")
    }
}
