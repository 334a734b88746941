import LiandongCore
import Testing

@Suite("The console's users file")
struct ConsoleUsersTests {
    static let hash = "$y$j9T$abcdefghijklmnop$0123456789abcdefghijklmnopqrstuvwxyzABCDE"

    @Test("reads NAME ROLE SCOPE HASH lines with comments; adding replaces a user of the same name and keeps the rest")
    func parseAndAdd() throws {
        let text = "# users\n王值班 dispatcher 620922 \(Self.hash)\n\n  look viewer 620922102   \(Self.hash)  \n"
        let users = try ConsoleUsers.parse(text, file: "f")
        #expect(users.map(\.name) == ["王值班", "look"] && users[0].role == .dispatcher && users[1].scope == "620922102")
        let changed = ConsoleUsers.adding(ConsoleUsers.User(name: "look", role: .dispatcher, scope: "620922102201", hash: Self.hash), to: text)
        let again = try ConsoleUsers.parse(changed, file: "f")
        #expect(again.count == 2 && again[1].role == .dispatcher && again[1].scope == "620922102201" && changed.hasPrefix("# users\n"))
        let fresh = ConsoleUsers.adding(users[0], to: "")
        let reread = try ConsoleUsers.parse(fresh, file: "f")
        #expect(fresh.hasPrefix("#") && reread == [users[0]])
    }

    @Test("refuses what it cannot use, naming the line", arguments: [
        ("a dispatcher 620922", "expected NAME ROLE SCOPE HASH"),
        ("a boss 620922 $y$j9T$abcdefghijklmnopqrstu", "viewer or dispatcher"),
        ("a viewer 62092 $y$j9T$abcdefghijklmnopqrstu", "division code"),
        ("a viewer 620922 plaintext-password-here", "crypt(3)"),
        ("a viewer 620922 $y$j9T$abcdefghijklmnopqrstu\na viewer 620922 $y$j9T$abcdefghijklmnopqrstu", "listed twice"),
    ])
    func refusals(_ text: String, _ why: String) {
        do {
            _ = try ConsoleUsers.parse(text, file: "users")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.message.contains(why) && error.message.hasPrefix("users line "), "\(error.message)")
        }
    }

    @Test("names: printable, no spaces or controls, not a comment; scopes: 6, 9 or 12 digits")
    func names() {
        #expect(ConsoleUsers.nameProblem("王值班") == nil && ConsoleUsers.nameProblem("duty-2") == nil)
        for bad in ["", "a b", "a\tb", "#x", "a\u{7}", String(repeating: "x", count: 65)] { #expect(ConsoleUsers.nameProblem(bad) != nil, "\(bad)") }
        #expect(["620922", "620922102", "620922102201"].allSatisfy { ConsoleUsers.scopeProblem($0) == nil })
        #expect(["62092", "6209221", "620922102201001", "62092a"].allSatisfy { ConsoleUsers.scopeProblem($0) != nil })
    }
}
