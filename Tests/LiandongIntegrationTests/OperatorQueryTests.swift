import Foundation
import LibPQ
import Testing

/// The operator guide's queries work for an operator (a login role granted liandong_operator,
/// which reads views only), also on dead letters that are not text.
@Suite("Operator queries")
struct OperatorQueryTests {
    /// Every SQL statement in the ```sql blocks of deploy/OPERATIONS.md.
    static func documentedStatements() throws -> [String] {
        let text = try String(contentsOfFile: TestDatabase.repository.path + "/deploy/OPERATIONS.md", encoding: .utf8)
        var statements: [String] = [], current = "", inBlock = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { inBlock = line == "```sql"; continue }
            guard inBlock, !line.hasPrefix("--") else { continue }
            current += line + "\n"
            if line.hasSuffix(";") {
                statements.append(current)
                current = ""
            }
        }
        return statements
    }

    @Test("every query in OPERATIONS.md runs as an operator; binary dead letters read as escaped text")
    func documentedQueriesAsOperator() throws {
        let url = try TestDatabase.create()
        let admin = try PGConnection(conninfo: url)
        try admin.query("INSERT INTO liandong.rejected_messages (endpoint, topic, raw, raw_size, reason, detail) "
            + "VALUES ('ingest.sub', '\\x616c657274'::bytea, '\\x7b00ff7d'::bytea, 4, 'invalid_utf8', 'test'), "
            + "('ingest.sub', '\\x616c657274'::bytea, convert_to('{\"备注\":1', 'UTF8'), 12, 'malformed_json', 'test')")
        let role = "ld_operator_\(UUID().uuidString.lowercased().prefix(8))"
        try admin.execute("CREATE ROLE \(role) LOGIN; GRANT liandong_operator TO \(role)")
        // Unscoped: everything, dead letters included (a scoped one: see OperatorScopeTests).
        try admin.query("INSERT INTO liandong.operator_scopes (role, scope) VALUES ($1, '')", [role])
        let op = try PGConnection(conninfo: url.replacingOccurrences(of: "user=postgres", with: "user=\(role)"))
        let statements = try Self.documentedStatements()
        #expect(statements.count >= 10)
        for sql in statements {
            #expect(throws: Never.self, "as an operator: \(sql)") { try op.query(sql) }
        }
        let bodies = try op.query("SELECT body FROM liandong.dead_letters ORDER BY id").rows.map { $0[0]! }
        #expect(bodies == ["{\\000\\377}", "{\"备注\":1"])
        // Read-only: nothing an operator may change.
        #expect(throws: PQError.self) { try op.query("DELETE FROM liandong.rejected_messages") }
        #expect(throws: PQError.self) { try op.query("UPDATE liandong.operator_scopes SET scope = ''") }
        #expect(throws: PQError.self) { try op.query("SELECT count(*) FROM liandong.event_keys") }
        // A login that is no operator reads nothing.
        let stranger = "ld_stranger_\(UUID().uuidString.lowercased().prefix(8))"
        try admin.execute("CREATE ROLE \(stranger) LOGIN")
        let other = try PGConnection(conninfo: url.replacingOccurrences(of: "user=postgres", with: "user=\(stranger)"))
        #expect(throws: PQError.self) { try other.query("SELECT count(*) FROM liandong.open_incidents") }
        #expect(throws: PQError.self) { try other.query("SELECT count(*) FROM liandong.rejected_messages") }
    }
}
