import Foundation

/// A JSON document as a value, for validating messages field by field with precise errors.
public enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let d = try? c.decode(Double.self) {
            self = .number(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// A short name of the JSON type, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

/// A strict RFC 8259 parser straight from UTF-8 bytes into `JSONValue`: the ingest path parses
/// every message, and Foundation's JSONDecoder (through Codable) cost most of the daemon's CPU.
/// Rejects trailing commas, leading zeros, control characters in strings, lone surrogates and
/// anything after the value; nesting deeper than `maxDepth` is refused rather than recursed into.
public struct JSONParseError: Error, Equatable, CustomStringConvertible {
    public let offset: Int
    public let reason: String
    public var description: String { "\(reason) at byte \(offset)" }
}

extension JSONValue {
    public static let maxDepth = 128

    public static func parse<C: Collection<UInt8>>(_ bytes: C) throws(JSONParseError) -> JSONValue {
        let buffer = Array(bytes)
        var parser = JSONBytesParser(bytes: buffer)
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.at == buffer.count else { throw parser.fail("unexpected content after the value") }
        return value
    }

    /// The fields named `keys` of a document that must be a JSON object (the last of repeated
    /// keys, as `parse` keeps), validated as strictly as `parse` validates the whole document but
    /// without building the values of other fields: for reading a few fields of many messages.
    public static func fields<C: Collection<UInt8>>(_ bytes: C, _ keys: Set<String>) throws(JSONParseError)
        -> [String: JSONValue]
    {
        let buffer = Array(bytes)
        var parser = JSONBytesParser(bytes: buffer)
        parser.skipSpace()
        guard parser.at < buffer.count, buffer[parser.at] == UInt8(ascii: "{") else { throw parser.fail("expected an object") }
        let found = try parser.object(depth: 0, keeping: keys)
        parser.skipSpace()
        guard parser.at == buffer.count else { throw parser.fail("unexpected content after the value") }
        return found
    }
}

private struct JSONBytesParser {
    let bytes: [UInt8]
    var at = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    func fail(_ reason: String) -> JSONParseError { JSONParseError(offset: at, reason: reason) }

    mutating func skipSpace() {
        while at < bytes.count, bytes[at] == 0x20 || bytes[at] == 0x0A || bytes[at] == 0x0D || bytes[at] == 0x09 { at += 1 }
    }

    mutating func literal(_ word: StaticString, _ value: JSONValue) throws(JSONParseError) -> JSONValue {
        let n = word.utf8CodeUnitCount
        guard at + n <= bytes.count else { throw fail("truncated literal") }
        let matches = word.withUTF8Buffer { w in (0..<n).allSatisfy { bytes[at + $0] == w[$0] } }
        guard matches else { throw fail("invalid literal") }
        at += n
        return value
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard at < bytes.count else { throw fail("unexpected end") }
        switch bytes[at] {
        case UInt8(ascii: "{"):
            return .object(try object(depth: depth, keeping: nil))
        case UInt8(ascii: "["):
            guard depth < JSONValue.maxDepth else { throw fail("nested too deeply") }
            at += 1
            var array: [JSONValue] = []
            skipSpace()
            if at < bytes.count, bytes[at] == UInt8(ascii: "]") {
                at += 1
                return .array(array)
            }
            while true {
                skipSpace()
                array.append(try value(depth: depth + 1))
                skipSpace()
                guard at < bytes.count else { throw fail("unexpected end in array") }
                if bytes[at] == UInt8(ascii: ",") {
                    at += 1
                } else if bytes[at] == UInt8(ascii: "]") {
                    at += 1
                    return .array(array)
                } else {
                    throw fail("expected ',' or ']'")
                }
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try number())
        default:
            throw fail("unexpected character")
        }
    }

    /// An object starting at "{": its fields, or with `keeping` only those (the others are
    /// validated and skipped, not built).
    mutating func object(depth: Int, keeping keys: Set<String>?) throws(JSONParseError) -> [String: JSONValue] {
        guard depth < JSONValue.maxDepth else { throw fail("nested too deeply") }
        at += 1
        var object: [String: JSONValue] = [:]
        skipSpace()
        if at < bytes.count, bytes[at] == UInt8(ascii: "}") {
            at += 1
            return object
        }
        while true {
            skipSpace()
            guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let key = try string()
            skipSpace()
            guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            at += 1
            skipSpace()
            if let keys, !keys.contains(key) {
                try skip(depth: depth + 1)
            } else {
                object[key] = try value(depth: depth + 1)
            }
            skipSpace()
            guard at < bytes.count else { throw fail("unexpected end in object") }
            if bytes[at] == UInt8(ascii: ",") {
                at += 1
            } else if bytes[at] == UInt8(ascii: "}") {
                at += 1
                return object
            } else {
                throw fail("expected ',' or '}'")
            }
        }
    }

    /// Validates a value as `value` does, without building it.
    mutating func skip(depth: Int) throws(JSONParseError) {
        guard at < bytes.count else { throw fail("unexpected end") }
        switch bytes[at] {
        case UInt8(ascii: "{"):
            _ = try object(depth: depth, keeping: [])
        case UInt8(ascii: "\""):
            try skipString()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            _ = try number()
        default:
            // Arrays and literals: rare in the fields skipped, built and dropped.
            _ = try value(depth: depth)
        }
    }

    /// A string starting at the opening quote, validated as `string` does; built only when it
    /// holds escapes (to check them).
    mutating func skipString() throws(JSONParseError) {
        var end = at + 1
        while end < bytes.count {
            let c = bytes[end]
            if c == UInt8(ascii: "\"") {
                at = end + 1
                return
            }
            if c == UInt8(ascii: "\\") { break }
            guard c >= 0x20 else { break }
            end += 1
        }
        _ = try string()
    }

    mutating func number() throws(JSONParseError) -> Double {
        let start = at
        func digits() -> Int {
            let from = at
            while at < bytes.count, bytes[at] >= 0x30, bytes[at] <= 0x39 { at += 1 }
            return at - from
        }
        if bytes[at] == UInt8(ascii: "-") { at += 1 }
        guard at < bytes.count, bytes[at] >= 0x30, bytes[at] <= 0x39 else { throw fail("invalid number") }
        if bytes[at] == 0x30 {
            at += 1
            if at < bytes.count, bytes[at] >= 0x30, bytes[at] <= 0x39 { throw fail("leading zero in number") }
        } else {
            _ = digits()
        }
        if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
            at += 1
            guard digits() > 0 else { throw fail("invalid fraction") }
        }
        if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
            at += 1
            if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
            guard digits() > 0 else { throw fail("invalid exponent") }
        }
        guard let value = Double(String(decoding: bytes[start..<at], as: UTF8.self)), value.isFinite else {
            throw fail("number out of range")
        }
        return value
    }

    /// A string starting at the opening quote.
    mutating func string() throws(JSONParseError) -> String {
        at += 1
        let start = at
        // Fast path: no escapes.
        while at < bytes.count {
            let c = bytes[at]
            if c == UInt8(ascii: "\"") {
                defer { at += 1 }
                return String(decoding: bytes[start..<at], as: UTF8.self)
            }
            if c == UInt8(ascii: "\\") { break }
            guard c >= 0x20 else { throw fail("control character in string") }
            at += 1
        }
        var out = Array(bytes[start..<at])
        while at < bytes.count {
            let c = bytes[at]
            if c == UInt8(ascii: "\"") {
                at += 1
                return String(decoding: out, as: UTF8.self)
            }
            guard c >= 0x20 else { throw fail("control character in string") }
            guard c == UInt8(ascii: "\\") else {
                out.append(c)
                at += 1
                continue
            }
            at += 1
            guard at < bytes.count else { break }
            let e = bytes[at]
            at += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard at + 1 < bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") else {
                        throw fail("lone surrogate")
                    }
                    at += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("lone surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw fail("lone surrogate")
                } else if scalar == 0 {
                    // Valid JSON, but no PostgreSQL text or jsonb can hold it: refused here, with
                    // the reason, rather than failing the store later.
                    throw fail("\\u0000 (NUL) in a string: not storable (PostgreSQL text cannot hold it)")
                }
                out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
            default:
                throw fail("invalid escape")
            }
        }
        throw fail("unterminated string")
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard at + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[at]
            let digit: UInt8
            switch c {
            case 0x30...0x39: digit = c - 0x30
            case 0x41...0x46: digit = c - 0x41 + 10
            case 0x61...0x66: digit = c - 0x61 + 10
            default: throw fail("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
            at += 1
        }
        return value
    }
}
