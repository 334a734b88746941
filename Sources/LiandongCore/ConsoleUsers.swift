import Foundation

/// liandong-console's users file (console.users_file, mode 0600): a line per user,
/// `NAME ROLE SCOPE HASH`, `#` comments. ROLE is viewer or dispatcher, SCOPE the division code
/// (6, 9 or 12 digits) whose tasks the user sees, HASH a crypt(3) hash (yescrypt, `$y$...`)
/// written by `liandong-console user add`.
public enum ConsoleUsers {
    public enum Role: String, Sendable, CaseIterable {
        /// Sees everything in scope, acts on nothing.
        case viewer
        /// Also acknowledges, notes, escalates and closes tasks in scope.
        case dispatcher
    }

    public struct User: Sendable, Equatable {
        public var name: String
        public var role: Role
        public var scope: String
        public var hash: String

        public init(name: String, role: Role, scope: String, hash: String) {
            self.name = name
            self.role = role
            self.scope = scope
            self.hash = hash
        }

        public var line: String { "\(name) \(role.rawValue) \(scope) \(hash)" }
    }

    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public let message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    /// Why a user name cannot be used (nil: it can): 1-64 bytes of printable text without spaces
    /// (Chinese names are fine); it is the actor of every action the user takes.
    public static func nameProblem(_ name: String) -> String? {
        guard !name.isEmpty, name.utf8.count <= 64 else { return "a user name has 1 to 64 bytes" }
        guard !name.hasPrefix("#"), name.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7f && !(0x80...0x9f).contains($0.value)
                                                                     && !$0.properties.isWhitespace }) else {
            return "a user name has no spaces or control characters and does not start with #"
        }
        return nil
    }

    /// Why a scope cannot be used (nil: it can): a division code of 6 (county), 9 (township) or 12 (village) digits.
    public static func scopeProblem(_ scope: String) -> String? {
        Tier(divisionCode: scope) == nil ? "a scope is a division code: 6 (county), 9 (township) or 12 (village) digits" : nil
    }

    /// Reads a users file; `file` names it in errors. A repeated name is an error.
    public static func parse(_ text: String, file: String) throws(Problem) -> [User] {
        var users: [User] = []
        var seen = Set<String>()
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard f.count == 4 else { throw Problem("\(file) line \(n + 1): expected NAME ROLE SCOPE HASH") }
            if let p = nameProblem(f[0]) { throw Problem("\(file) line \(n + 1): \(p)") }
            guard let role = Role(rawValue: f[1]) else { throw Problem("\(file) line \(n + 1): the role is viewer or dispatcher, not \(f[1].prefix(20))") }
            if let p = scopeProblem(f[2]) { throw Problem("\(file) line \(n + 1): \(p)") }
            guard f[3].hasPrefix("$"), f[3].count >= 20 else { throw Problem("\(file) line \(n + 1): the hash is not a crypt(3) hash (write it with user add)") }
            guard seen.insert(f[0]).inserted else { throw Problem("\(file) line \(n + 1): user \(f[0]) is listed twice") }
            users.append(User(name: f[0], role: role, scope: f[2], hash: f[3]))
        }
        return users
    }

    /// The file with `user` added or replaced (its other lines, comments included, kept).
    public static func adding(_ user: User, to text: String) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        if lines.isEmpty { lines = ["# liandong-console users: NAME ROLE SCOPE HASH (liandong-console --config FILE user add NAME ...)"] }
        if let i = lines.firstIndex(where: { $0.split(separator: " ").first.map(String.init) == user.name }) {
            lines[i] = user.line
        } else {
            lines.append(user.line)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
