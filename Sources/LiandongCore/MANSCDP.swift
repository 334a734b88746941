/// GB/T 28181 MANSCDP notifications (the XML bodies of SIP MESSAGEs), as cameras, NVRs and
/// platforms send them: root `<Notify>`, CmdType `Alarm` or `Keepalive`, in any of the encodings
/// they declare (`TextEncoding`). Liberal in what vendors vary (AlarmTime with or without zone,
/// milliseconds or zero padding; concatenated AlarmMethod digits; white space; zero coordinates
/// meaning none), strict about what identifies the alarm (DeviceID, SN, AlarmTime).
public struct ManscdpNotify: Sendable, Equatable {
    public enum Command: Sendable, Equatable {
        case alarm(ManscdpAlarm)
        /// A device's heartbeat, with its Status (OK, ERROR) when given.
        case keepalive(status: String?)
    }

    /// The command's serial number (with DeviceID and AlarmTime: the alarm's identity).
    public var sn: String
    /// The alarming channel or the device (20-digit GB/T 28181 id).
    public var deviceID: String
    public var command: Command
}

public struct ManscdpAlarm: Sendable, Equatable {
    /// AlarmPriority: 1 most urgent .. 4.
    public var priority: Int
    /// AlarmMethod as sent (vendors concatenate digits: 25).
    public var method: Int
    /// Info/AlarmType, when given.
    public var alarmType: Int?
    /// Info/AlarmTypeParam/EventType, when given (intrusion: 1 enter, 2 leave).
    public var eventType: Int?
    /// AlarmTime, Unix seconds (local time without a zone is China Standard Time).
    public var time: Double
    /// AlarmTime as sent (trimmed): part of the alert id.
    public var timeText: String
    public var description: String?
    /// Longitude/Latitude (WGS-84) when given and not zero.
    public var position: LonLat?

    /// The id the alert is stored under: retransmissions of one alarm have one effect.
    public func alertID(deviceID: String, sn: String) -> String { "gb28181:\(deviceID):\(sn):\(timeText)" }
}

public enum MANSCDP {
    /// Decodes a body: converted to UTF-8, read as XML, checked as a Notify.
    public static func decode(_ body: [UInt8]) throws(Rejection) -> ManscdpNotify {
        try decode(utf8: try TextEncoding.xmlToUTF8(body))
    }

    /// Decodes a body already converted to UTF-8 (`TextEncoding.xmlToUTF8`).
    public static func decode(utf8: [UInt8]) throws(Rejection) -> ManscdpNotify {
        let (root, cmd, sn, device) = try envelope(utf8, root: "Notify", "(only notifications are ingested)")
        switch cmd {
        case "Keepalive":
            return ManscdpNotify(sn: sn, deviceID: device, command: .keepalive(status: root.value("Status")))
        case "Alarm":
            return ManscdpNotify(sn: sn, deviceID: device, command: .alarm(try alarm(root)))
        default:
            throw Rejection(.unknownSchema, "CmdType \"\(cmd.prefix(32))\" is not Alarm or Keepalive")
        }
    }

    /// What every MANSCDP body carries: well-formed XML under `name` (`why`: said when it is not),
    /// CmdType, a numeric SN and a 20-digit DeviceID.
    static func envelope(_ utf8: [UInt8], root name: String, _ why: String = "")
        throws(Rejection) -> (root: XMLElement, cmd: String, sn: String, device: String)
    {
        let root: XMLElement
        do {
            root = try XMLReader.parse(utf8)
        } catch {
            throw Rejection(.malformedXML, "the body is not well-formed XML: \(error)")
        }
        guard root.name == name else {
            throw Rejection(.malformedXML, "root element <\(root.name.prefix(32))> is not <\(name)>" + (why.isEmpty ? "" : " " + why))
        }
        guard let cmd = root.value("CmdType") else { throw Rejection(.missingField, "CmdType is required") }
        guard let sn = root.value("SN") else { throw Rejection(.missingField, "SN is required") }
        return (root, cmd, try serialNumber(sn, field: "SN"), try deviceID(root.value("DeviceID"), field: "DeviceID"))
    }

    /// A command's serial number: 1-20 digits.
    static func serialNumber(_ sn: String, field: String) throws(Rejection) -> String {
        guard !sn.isEmpty, sn.utf8.count <= 20, sn.allSatisfy(\.isASCIIDigit) else {
            throw Rejection(.invalidField, "\(field) \"\(sn.prefix(24))\" is not a number")
        }
        return sn
    }

    /// A 20-digit GB/T 28181 id named by `field` (required).
    static func deviceID(_ text: String?, field: String) throws(Rejection) -> String {
        guard let text else { throw Rejection(.missingField, "\(field) is required") }
        guard DeviceID(text) != nil else {
            throw Rejection(.invalidDeviceID, "\(field) \"\(text.prefix(40))\" is not a 20-digit GB/T 28181 id")
        }
        return text
    }

    static func alarm(_ n: XMLElement) throws(Rejection) -> ManscdpAlarm {
        func integer(_ path: String, in range: ClosedRange<Int>, required: Bool) throws(Rejection) -> Int? {
            guard let text = n.value(path) else {
                if required { throw Rejection(.missingField, "\(path) is required") }
                return nil
            }
            guard text.utf8.count <= 9, text.allSatisfy(\.isASCIIDigit), let v = Int(text), range.contains(v) else {
                throw Rejection(.invalidField, "\(path) \"\(text.prefix(24))\" is not a number in \(range.lowerBound)...\(range.upperBound)")
            }
            return v
        }
        let priority = try integer("AlarmPriority", in: 1...4, required: true)!
        let method = try integer("AlarmMethod", in: 1...99_999_999, required: true)!
        guard let timeText = n.value("AlarmTime") else { throw Rejection(.missingField, "AlarmTime is required") }
        guard let time = parseTime(timeText) else {
            throw Rejection(.invalidTime, "AlarmTime \"\(timeText.prefix(40))\" is not a time (2026-11-29T10:15:32, with or without zone)")
        }
        var position: LonLat?
        if let lonText = n.value("Longitude"), let latText = n.value("Latitude") {
            guard let lon = Double(lonText), let lat = Double(latText) else {
                throw Rejection(.invalidField, "Longitude/Latitude \"\(lonText.prefix(20))\", \"\(latText.prefix(20))\" are not numbers")
            }
            if lon != 0 || lat != 0 {
                let p = LonLat(lon: lon, lat: lat)
                guard p.isValid else { throw Rejection(.coordinatesOutOfRange, "Longitude \(lon), Latitude \(lat) is not a position on Earth") }
                position = p
            }
        }
        return ManscdpAlarm(
            priority: priority, method: method, alarmType: try integer("Info/AlarmType", in: 0...9_999, required: false),
            eventType: try integer("Info/AlarmTypeParam/EventType", in: 0...9_999, required: false), time: time,
            timeText: timeText, description: n.value("AlarmDescription"), position: position)
    }

    /// AlarmTime as vendors send it: `2026-11-29T10:15:32`, a space for the T, `.123`
    /// milliseconds, a zone (`Z`, `+08:00`, `+0800`) or none (China Standard Time), fields
    /// without zero padding (`2026-11-29T9:5:3`).
    public static func parseTime(_ text: String) -> Double? {
        var s = Substring(text)
        var offset = 8 * 3600
        if s.hasSuffix("Z") {
            offset = 0
            s = s.dropLast()
        } else if let sign = s.lastIndex(where: { $0 == "+" || $0 == "-" }), s.distance(from: s.startIndex, to: sign) > 10 {
            let zone = s[s.index(after: sign)...].filter { $0 != ":" }
            guard zone.count == 4, let hh = Int(zone.prefix(2)), let mm = Int(zone.suffix(2)), hh <= 14, mm < 60 else { return nil }
            offset = (hh * 3600 + mm * 60) * (s[sign] == "-" ? -1 : 1)
            s = s[..<sign]
        }
        let parts = s.split(whereSeparator: { $0 == "T" || $0 == " " })
        guard parts.count == 2 else { return nil }
        let date = parts[0].split(separator: "-"), clock = parts[1].split(separator: ":")
        guard date.count == 3, clock.count == 3, let y = Int(date[0]), let mo = Int(date[1]), let d = Int(date[2]),
              let h = Int(clock[0]), let mi = Int(clock[1]), (1970...9999).contains(y), (1...12).contains(mo), (1...31).contains(d),
              (0...23).contains(h), (0...59).contains(mi)
        else { return nil }
        let secondText = clock[2]
        guard let seconds = Double(secondText), seconds >= 0, seconds < 61, secondText.first?.isASCIIDigit == true else { return nil }
        // Days from civil (Howard Hinnant).
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        guard d <= daysIn(month: mo, year: y) else { return nil }
        return Double(days * 86_400 + h * 3600 + mi * 60 - offset) + seconds
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
