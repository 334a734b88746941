import Foundation
import LiandongCore
import Testing

@Suite("Coordinates")
struct CoordinateTests {
    let seat = LonLat(lon: 95.78, lat: 40.52)

    @Test("GCJ-02 is hundreds of metres off WGS-84 in Guazhou and converts back within a metre")
    func gcjRoundTrip() {
        let gcj = CoordinateConverter.fromWGS84(seat, to: .gcj02)
        #expect(gcj.distance(to: seat) > 100 && gcj.distance(to: seat) < 700)
        #expect(CoordinateConverter.toWGS84(gcj, from: .gcj02).distance(to: seat) < 1)
    }

    @Test("BD-09 converts back to WGS-84 within two metres")
    func bdRoundTrip() {
        let bd = CoordinateConverter.fromWGS84(seat, to: .bd09)
        #expect(bd.distance(to: seat) > 300)
        #expect(CoordinateConverter.toWGS84(bd, from: .bd09).distance(to: seat) < 2)
    }

    @Test("a published reference pair: WGS-84 (116.397, 39.908) is about (116.4032, 39.9094) in GCJ-02")
    func knownBeijingOffset() {
        let gcj = CoordinateConverter.wgs84ToGCJ02(LonLat(lon: 116.397, lat: 39.908))
        #expect(abs(gcj.lon - 116.4032) < 0.0003 && abs(gcj.lat - 39.9094) < 0.0003)
    }

    @Test("outside China GCJ-02 equals WGS-84")
    func outsideChina() {
        let paris = LonLat(lon: 2.35, lat: 48.85)
        #expect(CoordinateConverter.toWGS84(paris, from: .gcj02) == paris)
    }

    @Test("haversine distance of one degree of latitude is about 111 km")
    func distance() {
        let d = LonLat(lon: 95, lat: 40).distance(to: LonLat(lon: 95, lat: 41))
        #expect(abs(d - 111_195) < 100)
    }
}

@Suite("GB/T 28181 device ids")
struct DeviceIDTests {
    @Test("the reference example parses into its parts")
    func parts() throws {
        let id = try #require(DeviceID("62092200011320000017"))
        #expect(id.countyCode == "620922" && id.centreCode == "62092200")
        #expect(id.industry == "01" && id.typeCode == 132 && id.networkFlag == 0 && id.serial == "000017")
        #expect(id.isAlarmSource)
    }

    @Test("anything but 20 ASCII digits is refused", arguments: ["", "6209220001132000001", "620922000113200000171",
                                                                  "6209220001132000001a", "６２０９２２０００１１３２００００１７"])
    func invalid(_ text: String) { #expect(DeviceID(text) == nil) }

    @Test("make builds a valid id")
    func make() {
        #expect(DeviceID.make(centre: "62092200", industry: "08", type: 131, serial: 5)?.rawValue == "62092200081310000005")
    }
}

@Suite("Timestamps")
struct TimestampTests {
    // 2026-11-29T10:15:32+08:00 == 2026-11-29T02:15:32Z
    let expected = 1_795_918_532.0

    @Test("RFC 3339 variants and CST defaults parse to the same instant", arguments: [
        "2026-11-29T10:15:32+08:00", "2026-11-29T02:15:32Z", "2026-11-29T10:15:32", "2026-11-29 10:15:32",
        "2026-11-29T10:15:32+0800", "2026-11-29T9:75:32".replacingOccurrences(of: "9:75", with: "10:15"),
        "2026-11-28T21:15:32-05:00", " 2026-11-29T10:15:32+08:00 ",
    ])
    func parses(_ text: String) { #expect(Timestamp.parse(text) == expected) }

    @Test("fractions and unpadded fields")
    func fractions() {
        #expect(Timestamp.parse("2026-11-29T10:15:32.250+08:00") == expected + 0.25)
        #expect(Timestamp.parse("2026-11-29T9:5:3") == expected - 3600 - 600 - 29)
    }

    @Test("garbage is refused", arguments: ["", "yesterday", "2026-13-01T00:00:00", "2026-02-30T00:00:00",
                                            "2026-11-29T25:00:00", "2026-11-29T10:15:32+08:00junk", "2026-11-29"])
    func refused(_ text: String) { #expect(Timestamp.parse(text) == nil) }

    @Test("formatting in CST and UTC round-trips")
    func format() {
        #expect(Timestamp.formatCST(expected) == "2026-11-29T10:15:32+08:00")
        #expect(Timestamp.formatUTC(expected) == "2026-11-29T02:15:32Z")
        #expect(Timestamp.formatCST(expected + 0.5) == "2026-11-29T10:15:32.500+08:00")
        #expect(Timestamp.parse(Timestamp.formatUTC(expected + 0.123456)) == expected + 0.123456)
    }

    @Test("formatting agrees with Foundation's ISO 8601 formatter over two centuries, and microseconds round-trip")
    func formatAgreesWithFoundation() {
        let utc = ISO8601DateFormatter()
        let cst = ISO8601DateFormatter()
        cst.timeZone = TimeZone(secondsFromGMT: 8 * 3600)
        var random = SplitMix64(seed: 28181)
        for _ in 0..<5000 {
            let whole = Double(random.next() % 4_102_444_800)  // 1970 ... 2100
            let date = Date(timeIntervalSince1970: whole)
            #expect(Timestamp.formatUTC(whole) == utc.string(from: date))
            #expect(Timestamp.formatCST(whole) == cst.string(from: date))
            let micros = Double(random.next() % 1_000_000) / 1_000_000
            #expect(abs(Timestamp.parse(Timestamp.formatUTC(whole + micros))! - (whole + micros)) < 1e-6)
        }
    }
}
