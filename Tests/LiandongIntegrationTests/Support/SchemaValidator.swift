import Foundation
import LiandongCore

/// The part of JSON Schema (2020-12) that schemas/json uses: type, const, enum, required,
/// properties, additionalProperties: false, oneOf, if/then, minimum/maximum, minLength/maxLength.
/// Enough to check real messages against the published schemas without a dependency.
struct SchemaValidator {
    let schema: JSONValue

    init(file: String) throws {
        let url = TestDatabase.repository.appendingPathComponent("schemas/json/\(file)")
        schema = try JSONValue.parse(Array(try Data(contentsOf: url)))
    }

    /// Why `document` does not match (empty when it does).
    func problems(_ document: [UInt8]) -> [String] {
        guard let value = try? JSONValue.parse(document) else { return ["not JSON"] }
        return Self.check(value, against: schema, at: "$")
    }

    static func check(_ value: JSONValue, against schema: JSONValue, at path: String) -> [String] {
        guard case .object(let s) = schema else { return [] }
        var out: [String] = []
        if case .string(let type)? = s["type"], !matches(value, type) { out.append("\(path): not a \(type)") }
        if let c = s["const"], c != value { out.append("\(path): not \(c)") }
        if case .array(let options)? = s["enum"], !options.contains(value) { out.append("\(path): not one of \(options)") }
        if case .number(let d) = value {
            if case .number(let min)? = s["minimum"], d < min { out.append("\(path): below \(min)") }
            if case .number(let max)? = s["maximum"], d > max { out.append("\(path): above \(max)") }
        }
        if case .string(let text) = value {
            if case .number(let n)? = s["minLength"], Double(text.count) < n { out.append("\(path): shorter than \(n)") }
            if case .number(let n)? = s["maxLength"], Double(text.count) > n { out.append("\(path): longer than \(n)") }
        }
        if case .object(let o) = value {
            if case .array(let required)? = s["required"] {
                for case .string(let key) in required where o[key] == nil { out.append("\(path): lacks \(key)") }
            }
            let properties: [String: JSONValue]
            if case .object(let p)? = s["properties"] { properties = p } else { properties = [:] }
            for (key, member) in o {
                if let sub = properties[key] {
                    out += check(member, against: sub, at: "\(path).\(key)")
                } else if s["additionalProperties"] == .bool(false) {
                    out.append("\(path): unexpected \(key)")
                }
            }
        }
        if case .array(let options)? = s["oneOf"] {
            let matching = options.filter { check(value, against: $0, at: path).isEmpty }.count
            if matching != 1 { out.append("\(path): matches \(matching) of the oneOf alternatives, not 1") }
        }
        if let condition = s["if"], let then = s["then"], check(value, against: condition, at: path).isEmpty {
            out += check(value, against: then, at: path)
        }
        return out
    }

    static func matches(_ value: JSONValue, _ type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null),
             ("number", .number): return true
        case ("integer", .number(let d)): return d == d.rounded()
        default: return false
        }
    }
}
