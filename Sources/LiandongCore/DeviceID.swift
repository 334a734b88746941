/// A GB/T 28181 20-digit device id: centre code (8: province 2, city 2, county 2, access unit 2),
/// industry (2), type (3), network flag (1), serial (6). Example: 62092200011320000017.
public struct DeviceID: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String

    /// Parses a device id; nil unless it is exactly 20 ASCII digits.
    public init?(_ text: String) {
        guard text.utf8.count == 20, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        rawValue = text
    }

    private func digits(_ from: Int, _ count: Int) -> String {
        let start = rawValue.utf8.index(rawValue.utf8.startIndex, offsetBy: from)
        let end = rawValue.utf8.index(start, offsetBy: count)
        return String(rawValue.utf8[start..<end])!
    }

    /// Positions 1-8: the centre code.
    public var centreCode: String { digits(0, 8) }
    /// Positions 1-6: the GB/T 2260 county code.
    public var countyCode: String { digits(0, 6) }
    /// Positions 9-10: industry (00 public-order road surface, 01 community, 08 urban management ...).
    public var industry: String { digits(8, 2) }
    /// Positions 11-13: device type (131 camera, 132 IP camera, 118 NVR, 134 alarm input ...).
    public var typeCode: Int { Int(digits(10, 3))! }
    /// Position 14: network flag.
    public var networkFlag: Int { Int(digits(13, 1))! }
    /// Positions 15-20: serial number.
    public var serial: String { digits(14, 6) }

    /// True for the type codes of devices that produce video alarms (cameras, DVR/NVR, alarm inputs).
    public var isAlarmSource: Bool { [111, 112, 113, 114, 115, 116, 118, 131, 132, 134].contains(typeCode) }

    public var description: String { rawValue }

    /// Builds a device id from its parts (used by the demo dataset and tests).
    public static func make(centre: String, industry: String, type: Int, network: Int = 0, serial: Int) -> DeviceID? {
        let pad = { (v: Int, n: Int) -> String in
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        return DeviceID(centre + industry + pad(type, 3) + pad(network, 1) + pad(serial, 6))
    }
}
