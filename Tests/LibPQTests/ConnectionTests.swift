import Foundation
import LibPQ
import Testing

/// Against the real server started by tools/test (LIANDONG_TEST_PG).
@Suite("libpq wrapper")
struct ConnectionTests {
    static let conninfo = ProcessInfo.processInfo.environment["LIANDONG_TEST_PG"]
        ?? "host=127.0.0.1 port=55433 user=postgres dbname=postgres"

    @Test("parameters are bound, never interpolated: quotes, unicode and NULL round-trip")
    func parameters() throws {
        let db = try PGConnection(conninfo: Self.conninfo)
        let rows = try db.query("SELECT $1::text AS a, $2::text AS b, $3::int + 1 AS c", ["'; DROP TABLE x; --", nil, "41"])
        #expect(rows[0, "a"] == "'; DROP TABLE x; --")
        #expect(rows[0, "b"] == nil)
        #expect(rows[0, "c"] == "42")
        #expect(try db.query("SELECT $1::text", ["瓜州县 渊泉镇"]).scalar == "瓜州县 渊泉镇")
    }

    @Test("a prepared statement is prepared once per session, binds parameters like any, survives a rolled-back transaction and reports server errors")
    func prepared() throws {
        let db = try PGConnection(conninfo: Self.conninfo)
        let sql = "SELECT $1::int + 1 AS n, $2::text AS t"
        #expect(try db.queryPrepared(sql, ["41", "瓜州"])[0, "n"] == "42")
        #expect(try db.queryPrepared(sql, ["1", nil])[0, "t"] == nil)
        // Rolled back after it was made: still there.
        do {
            try db.transaction { db in
                _ = try db.queryPrepared("SELECT $1::int * 2", ["21"])
                throw PQError(kind: .client, message: "roll back")
            }
        } catch {}
        #expect(try db.queryPrepared("SELECT $1::int * 2", ["4"]).scalar == "8")
        #expect(try db.query("SELECT count(*) FROM pg_prepared_statements").scalar == "2", "two statements, each prepared once")
        #expect(throws: PQError.self) { try db.queryPrepared("SELECT $1::int / 0", ["1"]) }
        #expect(try db.queryPrepared(sql, ["2", "x"])[0, "n"] == "3", "the session goes on")
        // Another session has its own.
        let other = try PGConnection(conninfo: Self.conninfo)
        #expect(try other.queryPrepared(sql, ["9", "y"])[0, "n"] == "10")
        #expect(try other.query("SELECT count(*) FROM pg_prepared_statements").scalar == "1")
    }

    @Test("at most preparedLimit statements stay prepared: the least recently used is deallocated, and prepared again when asked")
    func preparedLimit() throws {
        let db = try PGConnection(conninfo: Self.conninfo)
        func statement(_ k: Int) -> String { "SELECT $1::int + \(k)" }
        for k in 1...PGConnection.preparedLimit {
            #expect(try db.queryPrepared(statement(k), ["1"]).scalar == String(1 + k))
        }
        #expect(try db.queryPrepared(statement(1), ["2"]).scalar == "3", "the first is used again: the second is now the oldest")
        #expect(try db.queryPrepared(statement(100), ["1"]).scalar == "101")
        func held() throws -> Set<String> {
            Set(try db.query("SELECT statement FROM pg_prepared_statements").rows.map { $0[0]! })
        }
        #expect(db.preparedCount == PGConnection.preparedLimit)
        #expect(try held().count == PGConnection.preparedLimit)
        #expect(try held().contains(statement(1)) && held().contains(statement(100)))
        #expect(try !held().contains(statement(2)), "the least recently used went")
        #expect(try db.queryPrepared(statement(2), ["1"]).scalar == "3", "and is prepared again when asked")
        #expect(try held().contains(statement(2)) && !held().contains(statement(3)))
        #expect(try held().count == PGConnection.preparedLimit)
    }

    @Test("a statement is visible from another thread while it waits, and a cancel from there ends it as cancelled (outcome unknown); the session goes on")
    func activityAndCancel() throws {
        let db = try PGConnection(conninfo: Self.conninfo)
        #expect(db.activity.running == nil)
        let activity = db.activity
        let started = Date()
        let watcher = Thread {
            while activity.running == nil || activity.running!.seconds < 0.3 { Thread.sleep(forTimeInterval: 0.01) }
            activity.cancel()
        }
        watcher.start()
        #expect {
            try db.query("SELECT pg_sleep(20)")
        } throws: { error in
            guard let e = error as? PQError else { return false }
            return e.kind == .cancelled && e.isConnectionFailure && e.message.contains("SELECT pg_sleep(20)")
        }
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(db.activity.running == nil)
        #expect(!db.activity.cancel(), "nothing running: nothing to cancel")
        #expect(try db.query("SELECT 1").scalar == "1")
        #expect(db.activity.backendPID > 0)
    }

    @Test("COPY text: backslash, tab, newline, CR, unicode, NULL and text[] values round-trip")
    func copyText() throws {
        let db = try PGConnection(conninfo: Self.conninfo)
        try db.execute("CREATE TEMP TABLE copy_probe (n int, t text, a text[])")
        let values: [String?] = ["plain", "back\\slash", "tab\there", "new\nline", "cr\rhere", "瓜州县 渊泉镇", "", nil,
                                 "\\N", "mixed \\ \t \n \r end"]
        var copy = PGCopyText()
        for (n, value) in values.enumerated() {
            copy.plain(String(n))
            copy.field(value)
            copy.field(PGCopyText.arrayLiteral([value ?? "x", "a,b", "q\"uote", "NULL"]))
            copy.endRow()
        }
        #expect(try db.copy("COPY copy_probe (n, t, a) FROM STDIN", copy.bytes) == values.count)
        let rows = try db.query("SELECT t, a[1], a[2], a[3], a[4], a[4] IS NULL FROM copy_probe ORDER BY n")
        for (n, value) in values.enumerated() {
            #expect(rows.rows[n][0] == value)
            #expect(rows.rows[n][1] == (value ?? "x"))
            #expect(rows.rows[n][2] == "a,b" && rows.rows[n][3] == "q\"uote" && rows.rows[n][4] == "NULL" && rows.rows[n][5] == "f")
        }
    }

    @Test("a text[] literal as a parameter: any id (quotes, backslashes, commas, braces, spaces, NULL, empty) round-trips")
    func arrayParameter() throws {
        let db = try PGConnection(conninfo: Self.conninfo)
        let values = ["plain", "q\"uote", "back\\slash", "a,b", "{x}", " spaced ", "NULL", "", "瓜州县:001", "\\\"", "tab\there"]
        let rows = try db.query("SELECT x, n FROM unnest($1::text[]) WITH ORDINALITY AS u(x, n) ORDER BY n",
                                [PGCopyText.arrayLiteral(values)])
        #expect(rows.rows.map { $0[0] } == values.map { Optional($0) })
    }

    @Test("server errors carry their SQLSTATE")
    func sqlState() throws {
        let db = try PGConnection(conninfo: Self.conninfo)
        #expect { try db.query("SELECT * FROM no_such_table") } throws: { ($0 as? PQError)?.sqlState == "42P01" }
        #expect { try db.execute("SELEKT 1") } throws: { ($0 as? PQError)?.sqlState == "42601" }
        #expect { try db.query("SELECT 1/0") } throws: { error in
            let e = error as? PQError
            return e?.sqlState == "22012" && e?.kind == .query && e?.isConnectionFailure == false
        }
        #expect(try db.query("SELECT 1").scalar == "1", "the connection is usable after errors")
    }

    @Test("a refused connection is a connection failure")
    func refused() {
        #expect { try PGConnection(conninfo: "host=127.0.0.1 port=1 connect_timeout=2") } throws: {
            ($0 as? PQError)?.isConnectionFailure == true
        }
    }

    @Test("a transaction commits on success and rolls back when the body throws")
    func transactions() throws {
        let db = try PGConnection(conninfo: Self.conninfo)
        try db.execute("CREATE TEMP TABLE t (v int)")
        try db.transaction { try $0.query("INSERT INTO t VALUES (1)") }
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try db.transaction { db in
                try db.query("INSERT INTO t VALUES (2)")
                throw Boom()
            }
        }
        #expect(try db.query("SELECT array_agg(v) FROM t").scalar == "{1}")
    }

    @Test("affected row counts and column names are reported")
    func metadata() throws {
        let db = try PGConnection(conninfo: Self.conninfo)
        try db.execute("CREATE TEMP TABLE m (v int)")
        #expect(try db.query("INSERT INTO m SELECT generate_series(1, 5)").affected == 5)
        let rows = try db.query("SELECT v AS value FROM m ORDER BY v")
        #expect(rows.columns == ["value"] && rows.count == 5 && rows[4, "value"] == "5")
    }
}
