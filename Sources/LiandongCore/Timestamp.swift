/// RFC 3339 parsing and formatting without Foundation's formatters (fast and predictable).
/// A time without an offset is China Standard Time (+08:00), as the wire contract says.
public enum Timestamp {
    public static let chinaOffsetSeconds = 8 * 3600

    /// Parses "2026-11-29T10:15:32+08:00", "...Z", "...32.250+08:00", "2026-11-29 10:15:32" (CST),
    /// also unpadded fields as some vendors send ("2026-11-29T9:5:3"). Returns Unix seconds.
    public static func parse(_ text: String) -> Double? {
        var bytes = Array(text.utf8)[...]
        while let c = bytes.first, c == 0x20 || c == 0x09 { bytes.removeFirst() }
        while let c = bytes.last, c == 0x20 || c == 0x09 { bytes.removeLast() }
        guard !bytes.isEmpty, bytes.count <= 40 else { return nil }
        func number(maxDigits: Int) -> Int? {
            var value = 0, n = 0
            while let c = bytes.first, c >= 0x30, c <= 0x39, n < maxDigits {
                value = value * 10 + Int(c - 0x30)
                n += 1
                bytes.removeFirst()
            }
            return n == 0 ? nil : value
        }
        func expect(_ chars: String) -> Bool {
            guard let c = bytes.first, chars.utf8.contains(c) else { return false }
            bytes.removeFirst()
            return true
        }
        guard let year = number(maxDigits: 4), year >= 1970, expect("-"),
            let month = number(maxDigits: 2), (1...12).contains(month), expect("-"),
            let day = number(maxDigits: 2), (1...daysIn(month: month, year: year)).contains(day),
            expect("Tt "),
            let hour = number(maxDigits: 2), hour < 24, expect(":"),
            let minute = number(maxDigits: 2), minute < 60, expect(":"),
            let second = number(maxDigits: 2), second < 61
        else { return nil }
        var fraction = 0.0
        if expect(".") {
            var scale = 0.1
            var n = 0
            while let c = bytes.first, c >= 0x30, c <= 0x39 {
                fraction += Double(c - 0x30) * scale
                scale /= 10
                n += 1
                bytes.removeFirst()
            }
            if n == 0 { return nil }
        }
        var offset = chinaOffsetSeconds
        if bytes.isEmpty {
            // No zone: China Standard Time.
        } else if expect("Zz") {
            offset = 0
        } else if let sign = bytes.first, sign == 0x2B || sign == 0x2D {
            bytes.removeFirst()
            guard let oh = number(maxDigits: 2), oh < 24 else { return nil }
            _ = expect(":")
            let om = number(maxDigits: 2) ?? 0
            guard om < 60 else { return nil }
            offset = (oh * 3600 + om * 60) * (sign == 0x2D ? -1 : 1)
        } else {
            return nil
        }
        guard bytes.isEmpty else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let local = Double(days * 86400 + hour * 3600 + minute * 60 + second) + fraction
        return local - Double(offset)
    }

    /// Formats Unix seconds as RFC 3339 in China Standard Time, milliseconds when not whole.
    public static func formatCST(_ seconds: Double) -> String {
        format(seconds, offsetSeconds: chinaOffsetSeconds)
    }

    /// Formats Unix seconds as RFC 3339 UTC ("Z"), microsecond precision (for PostgreSQL).
    public static func formatUTC(_ seconds: Double) -> String {
        format(seconds, offsetSeconds: 0, micro: true)
    }

    static func format(_ seconds: Double, offsetSeconds: Int, micro: Bool = false) -> String {
        let local = seconds + Double(offsetSeconds)
        let whole = Int(local.rounded(.down))
        var days = whole / 86400
        var rem = whole % 86400
        if rem < 0 {
            rem += 86400
            days -= 1
        }
        let (y, m, d) = civilFromDays(days)
        // Digits written into one buffer: this runs for every stored event and task (several
        // times), and building it from small Strings cost 5 % of the daemon's CPU.
        var out: [UInt8] = []
        out.reserveCapacity(32)
        func p(_ v: Int, _ n: Int = 2) {
            guard v >= 0 else {
                out.append(UInt8(ascii: "-"))
                return p(-v, n)
            }
            var digits = 1, rest = v / 10
            while rest > 0 {
                digits += 1
                rest /= 10
            }
            for _ in digits..<max(n, digits) { out.append(UInt8(ascii: "0")) }
            var divisor = 1
            for _ in 1..<digits { divisor *= 10 }
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(v / divisor % 10))
                divisor /= 10
            }
        }
        func c(_ ascii: Unicode.Scalar) { out.append(UInt8(ascii: ascii)) }
        p(y, 4); c("-"); p(m); c("-"); p(d); c("T"); p(rem / 3600); c(":"); p(rem % 3600 / 60); c(":"); p(rem % 60)
        if micro {
            let us = Int(((local - Double(whole)) * 1_000_000).rounded())
            if us > 0 && us < 1_000_000 { c("."); p(us, 6) }
        } else {
            let ms = Int(((local - Double(whole)) * 1000).rounded())
            if ms > 0 && ms < 1000 { c("."); p(ms, 3) }
        }
        if offsetSeconds == 0 {
            c("Z")
        } else {
            c(offsetSeconds < 0 ? "-" : "+")
            let o = abs(offsetSeconds)
            p(o / 3600); c(":"); p(o % 3600 / 60)
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp + (mp < 10 ? 3 : -9)
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
