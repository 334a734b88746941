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
}
