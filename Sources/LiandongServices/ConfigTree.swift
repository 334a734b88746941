import Foundation
import LiandongCore
import Yams

/// The configuration as read: YAML mappings, lists and scalars (kept as their text; the keys'
/// readers parse them), with `LIANDONG_*` environment values laid over as scalars.
enum ConfigValue: Sendable, Equatable {
    case mapping([String: ConfigValue])
    case list([ConfigValue])
    case scalar(String)
    case null

    /// From a composed YAML node; `path` names it in errors.
    init(_ node: Node, at path: String) throws {
        switch node {
        case .scalar(let scalar):
            self = node.tag.rawValue == Tag.Name.null.rawValue ? .null : .scalar(scalar.string)
        case .mapping(let mapping):
            var out: [String: ConfigValue] = [:]
            for (key, value) in mapping {
                guard case .scalar(let k) = key else { throw ConfigError("config key \(path): keys must be plain words") }
                out[k.string] = try ConfigValue(value, at: path.isEmpty ? k.string : "\(path).\(k.string)")
            }
            self = .mapping(out)
        case .sequence(let sequence):
            self = .list(try sequence.map { try ConfigValue($0, at: path) })
        case .alias:
            throw ConfigError("config key \(path): YAML aliases are not supported; write the value out")
        }
    }

    var mapping: [String: ConfigValue]? {
        if case .mapping(let m) = self { return m }
        return nil
    }
}

/// One mapping in the config tree, with its dotted path for error messages.
struct ConfigNode {
    let path: String
    let map: [String: ConfigValue]

    init(path: String, value: [String: ConfigValue]) {
        self.path = path
        self.map = value
    }

    private func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The value under `key`; nil when absent or null.
    private func value(_ key: String) -> ConfigValue? {
        guard let value = map[key], value != .null else { return nil }
        return value
    }

    /// A scalar's text, for error messages.
    private static func shown(_ value: ConfigValue) -> String {
        switch value {
        case .scalar(let s): return s
        case .list: return "a list"
        case .mapping: return "a mapping"
        case .null: return "null"
        }
    }

    func keys() throws -> [String] { map.keys.sorted() }

    func checkKeys(_ allowed: Set<String>) throws {
        for key in map.keys where !allowed.contains(key) {
            throw ConfigError("unknown config key \(name(key)) (known here: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    func child(_ key: String) throws -> ConfigNode? {
        guard let value = value(key) else { return nil }
        guard case .mapping(let m) = value else { throw ConfigError("config key \(name(key)) must be a mapping") }
        return ConfigNode(path: name(key), value: m)
    }

    func string(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard case .scalar(let s) = value else { throw ConfigError("config key \(name(key)) must be a string") }
        return s
    }

    func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
        guard let value = value(key) else { return nil }
        guard case .scalar(let s) = value, let v = Int(s.trimmingCharacters(in: .whitespaces)) else {
            throw ConfigError("config key \(name(key)) must be an integer, got \"\(Self.shown(value))\"")
        }
        guard range.contains(v) else {
            throw ConfigError("config key \(name(key)) = \(v) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    func double(_ key: String, _ range: ClosedRange<Double>) throws -> Double? {
        guard let value = value(key) else { return nil }
        guard let v = Self.number(value) else {
            throw ConfigError("config key \(name(key)) must be a number, got \"\(Self.shown(value))\"")
        }
        guard range.contains(v) else {
            throw ConfigError("config key \(name(key)) = \(v) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    static func number(_ value: ConfigValue) -> Double? {
        guard case .scalar(let s) = value, let d = Double(s.trimmingCharacters(in: .whitespaces)), d.isFinite else { return nil }
        return d
    }

    func stringList(_ key: String) throws -> [String]? {
        guard let value = value(key) else { return nil }
        switch value {
        case .scalar(let s):
            return s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        case .list(let items):
            return try items.map {
                guard case .scalar(let s) = $0 else { throw ConfigError("config key \(name(key)) must be a list of strings") }
                return s
            }
        default:
            throw ConfigError("config key \(name(key)) must be a list")
        }
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        let yes = ["true", "yes", "on", "1"], no = ["false", "no", "off", "0"]
        guard case .scalar(let s) = value, (yes + no).contains(s.lowercased()) else {
            throw ConfigError("config key \(name(key)) must be true or false")
        }
        return yes.contains(s.lowercased())
    }

    /// Four tiers, one per priority 1...4.
    func tierList(_ key: String) throws -> [Tier]? {
        guard let items = try stringList(key) else { return nil }
        let tiers = items.compactMap(Tier.init(rawValue:))
        guard tiers.count == 4, items.count == 4 else {
            throw ConfigError("config key \(name(key)) must list 4 tiers (village, township or county) for priority 1...4")
        }
        return tiers
    }

    func doubleList(_ key: String, count: Int) throws -> [Double]? {
        guard let value = value(key) else { return nil }
        let items: [ConfigValue]
        switch value {
        case .scalar(let s): items = s.split(separator: ",").map { .scalar(String($0)) }
        case .list(let list): items = list
        default: throw ConfigError("config key \(name(key)) must be a list of \(count) numbers")
        }
        let numbers = items.compactMap(Self.number)
        guard numbers.count == count, items.count == count, numbers.allSatisfy({ $0 > 0 }) else {
            throw ConfigError("config key \(name(key)) must be \(count) positive numbers (priority 1...\(count))")
        }
        return numbers
    }
}
