import CLibPQ
#if canImport(Glibc)
import Glibc
#endif

/// One libpq connection. It belongs to one thread at a time; blocking calls must run on a
/// dedicated thread, never the cooperative pool. Closed in deinit.
public final class PGConnection {
    private let handle: OpaquePointer
    /// What this connection is doing, for other threads (a watchdog, a shutdown).
    public let activity: PGActivity

    /// Connects with any libpq conninfo string or URI; PG* environment variables, .pgpass and
    /// service files apply as they do for psql. An empty string means "all from the environment".
    public init(conninfo: String) throws {
        guard let handle = PQconnectdb(conninfo) else {
            throw PQError(kind: .client, message: "libpq could not allocate a connection")
        }
        if PQstatus(handle) != CONNECTION_OK {
            let message = String(cString: PQerrorMessage(handle))
            PQfinish(handle)
            throw PQError(kind: .connection, message: message)
        }
        self.handle = handle
        activity = PGActivity(handle: handle)
        // Server NOTICEs (e.g. "extension already exists") are not errors; keep stderr clean.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
    }

    private var closed = false

    deinit {
        close()
    }

    /// Ends the session now (its locks are released); the connection is unusable afterwards.
    public func close() {
        guard !closed else { return }
        closed = true
        activity.closed()
        PQfinish(handle)
    }

    public var isOK: Bool { !closed && PQstatus(handle) == CONNECTION_OK }
    public var serverVersion: Int { Int(PQserverVersion(handle)) }

    /// Runs one statement with text parameters ($1, $2, ...; nil is NULL) and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) throws -> PGRows {
        activity.begin(sql)
        let result = withCStrings(parameters) { pointers in
            PQexecParams(handle, sql, Int32(parameters.count), nil, pointers, nil, nil, 0)
        }
        return try finish(sql, result)
    }

    /// Named prepared statements of this session, by their SQL, with when each was last used.
    private var prepared: [String: (name: String, used: Int)] = [:]
    private var preparedUses = 0, preparedNames = 0
    /// At most this many statements stay prepared; the least recently used goes first (a
    /// statement that names a day's partition is prepared once a day).
    public static let preparedLimit = 16

    /// Runs `sql` as `query` does, as a statement prepared once per session: PostgreSQL plans it
    /// once (and again by itself when the schema changes), not on every call - for statements run
    /// often whose planning costs more than their execution. Only for statements whose plan does
    /// not depend on the parameters' values: after five executions PostgreSQL may keep a generic
    /// plan (a partitioned table's query would plan every partition; an `= ANY($1)` is estimated at
    /// a few elements whatever the array holds - right for a batch's keys, wrong for thousands).
    /// A prepared statement outlives the transaction that made it, not the session.
    @discardableResult
    public func queryPrepared(_ sql: String, _ parameters: [String?] = []) throws -> PGRows {
        preparedUses += 1
        let name: String
        if let known = prepared[sql] {
            name = known.name
        } else {
            if prepared.count >= Self.preparedLimit, let (oldest, entry) = prepared.min(by: { $0.value.used < $1.value.used }) {
                try execute("DEALLOCATE \(entry.name)")
                prepared[oldest] = nil
            }
            preparedNames += 1
            name = "liandong_\(preparedNames)"
            activity.begin(sql)
            _ = try finish(sql, PQprepare(handle, name, sql, Int32(parameters.count), nil))
        }
        prepared[sql] = (name, preparedUses)
        activity.begin(sql)
        let result = withCStrings(parameters) { pointers in
            PQexecPrepared(handle, name, Int32(parameters.count), pointers, nil, nil, 0)
        }
        return try finish(sql, result)
    }

    /// How many statements this session holds prepared (`queryPrepared`).
    public var preparedCount: Int { prepared.count }

    /// Runs one or more statements without parameters (migrations, BEGIN/COMMIT).
    public func execute(_ sql: String) throws {
        activity.begin(sql)
        _ = try finish(sql, PQexec(handle, sql))
    }

    /// The result of the statement `activity` was told about: a `.cancelled` error when a cancel
    /// was asked for meanwhile (whatever the server answered), else the result's rows or error.
    private func finish(_ sql: String, _ result: OpaquePointer?) throws -> PGRows {
        if activity.end() {
            if let result { PQclear(result) }
            throw PQError(kind: .cancelled, message: "cancelled while waiting for the server (\(PGActivity.summary(sql))); "
                + "its outcome is unknown")
        }
        return try consume(result)
    }

    /// Streams rows in PostgreSQL's COPY text format (`COPY table (columns) FROM STDIN`); see
    /// `PGCopyText` for building them. Returns the number of rows copied.
    @discardableResult
    public func copy(_ sql: String, _ data: [UInt8]) throws -> Int {
        activity.begin(sql)
        var ended = false
        defer { if !ended { _ = activity.end() } }
        let started = try consumeCopyStart(PQexec(handle, sql))
        guard started else {
            throw PQError(kind: .client, message: "not a COPY ... FROM STDIN statement: \(sql)")
        }
        var offset = 0
        let chunk = 1 << 20
        while offset < data.count {
            let n = min(chunk, data.count - offset)
            let sent = data.withUnsafeBufferPointer { buffer in
                buffer.baseAddress!.advanced(by: offset).withMemoryRebound(to: CChar.self, capacity: n) {
                    PQputCopyData(handle, $0, Int32(n))
                }
            }
            guard sent == 1 else {
                throw PQError(kind: isOK ? .client : .connection, message: String(cString: PQerrorMessage(handle)))
            }
            offset += n
        }
        guard PQputCopyEnd(handle, nil) == 1 else {
            throw PQError(kind: isOK ? .client : .connection, message: String(cString: PQerrorMessage(handle)))
        }
        // The COPY's own result, then NULL.
        var rows = 0
        var failure: Error? = nil
        while let result = PQgetResult(handle) {
            do { rows = try consume(result).affected } catch { failure = failure ?? error }
        }
        ended = true
        if activity.end() {
            throw PQError(kind: .cancelled, message: "cancelled while waiting for the server (\(PGActivity.summary(sql))); "
                + "its outcome is unknown")
        }
        if let failure { throw failure }
        return rows
    }

    private func consumeCopyStart(_ result: OpaquePointer?) throws -> Bool {
        if let result, PQresultStatus(result) == PGRES_COPY_IN {
            PQclear(result)
            return true
        }
        _ = try consume(result)
        return false
    }

    /// A transaction's isolation level: `readCommitted` is a plain BEGIN (the session's default,
    /// read committed unless an operator set another), each statement with its own snapshot;
    /// `repeatableRead` gives every statement the snapshot of the first.
    public enum Isolation: String, Sendable {
        case readCommitted = "READ COMMITTED"
        case repeatableRead = "REPEATABLE READ"
    }

    /// Runs `body` inside BEGIN/COMMIT; rolls back when it throws.
    public func transaction<T>(_ isolation: Isolation = .readCommitted, _ body: (PGConnection) throws -> T) throws -> T {
        try execute(isolation == .readCommitted ? "BEGIN" : "BEGIN ISOLATION LEVEL \(isolation.rawValue)")
        do {
            let value = try body(self)
            try execute("COMMIT")
            return value
        } catch {
            if isOK { try? execute("ROLLBACK") }
            throw error
        }
    }

    private func consume(_ result: OpaquePointer?) throws -> PGRows {
        guard let result else {
            throw PQError(kind: isOK ? .client : .connection, message: String(cString: PQerrorMessage(handle)))
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return PGRows(columns: [], rows: [], affected: Self.affected(result))
        case PGRES_TUPLES_OK:
            return PGRows(result: result, affected: Self.affected(result))
        default:
            func field(_ code: Character) -> String? {
                guard let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
                return String(cString: value)
            }
            let message = field("M") ?? String(cString: PQresultErrorMessage(result))
            let state = field("C")
            throw PQError(
                kind: isOK ? .query : .connection, message: message, sqlState: state,
                detail: field("D"), hint: field("H"))
        }
    }

    private static func affected(_ result: OpaquePointer) -> Int {
        Int(String(cString: PQcmdTuples(result))) ?? 0
    }
}

/// Materialised rows of one result, in text format. The PGresult is freed before this exists.
public struct PGRows: Sendable {
    public let columns: [String]
    public let rows: [[String?]]
    /// Rows affected by INSERT/UPDATE/DELETE (0 otherwise).
    public let affected: Int

    init(columns: [String], rows: [[String?]], affected: Int) {
        self.columns = columns
        self.rows = rows
        self.affected = affected
    }

    init(result: OpaquePointer, affected: Int) {
        let nRows = Int(PQntuples(result))
        let nCols = Int(PQnfields(result))
        columns = (0..<nCols).map { String(cString: PQfname(result, Int32($0))) }
        var rows: [[String?]] = []
        rows.reserveCapacity(nRows)
        for r in 0..<nRows {
            var row: [String?] = []
            row.reserveCapacity(nCols)
            for c in 0..<nCols {
                if PQgetisnull(result, Int32(r), Int32(c)) == 1 {
                    row.append(nil)
                } else {
                    row.append(String(cString: PQgetvalue(result, Int32(r), Int32(c))))
                }
            }
            rows.append(row)
        }
        self.rows = rows
        self.affected = affected
    }

    public var count: Int { rows.count }

    /// The first column of the first row, when there is one.
    public var scalar: String? { rows.first?.first ?? nil }

    public func column(_ name: String) -> Int? { columns.firstIndex(of: name) }

    /// Value of column `name` in row `row`.
    public subscript(row: Int, name: String) -> String? {
        guard let c = column(name) else { return nil }
        return rows[row][c]
    }
}

/// Passes Swift strings to C as a temporary array of NUL-terminated strings (NULL for nil).
/// The pointers are valid only inside `body`.
private func withCStrings<R>(_ values: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let storage: [UnsafeMutablePointer<CChar>?] = values.map { $0.map { strdup($0)! } }
    defer { storage.forEach { free($0) } }
    return body(storage.map { UnsafePointer($0) })
}

/// Builds the body of a `COPY ... FROM STDIN` in text format: fields separated by tabs, rows by
/// newlines, `\N` for NULL, backslash escapes for the characters that would break a field.
public struct PGCopyText {
    public private(set) var bytes: [UInt8] = []
    private var fieldsInRow = 0

    public init(reservingCapacity: Int = 0) { bytes.reserveCapacity(reservingCapacity) }

    public mutating func field(_ value: String?) {
        separate()
        guard let value else {
            bytes.append(contentsOf: [0x5C, 0x4E])  // \N
            return
        }
        var text = value
        text.withUTF8 { append(escaping: $0) }
    }

    private mutating func append(escaping utf8: UnsafeBufferPointer<UInt8>) {
        func special(_ b: UInt8) -> Bool { b == 0x5C || b == 0x09 || b == 0x0A || b == 0x0D }
        // Most fields need no escaping: one bulk append.
        guard utf8.contains(where: special) else {
            bytes.append(contentsOf: utf8)
            return
        }
        for byte in utf8 {
            switch byte {
            case 0x5C: bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x09: bytes.append(contentsOf: [0x5C, 0x74])
            case 0x0A: bytes.append(contentsOf: [0x5C, 0x6E])
            case 0x0D: bytes.append(contentsOf: [0x5C, 0x72])
            default: bytes.append(byte)
            }
        }
    }

    /// A field known to need no escaping (numbers, hex, UUIDs, codes).
    public mutating func plain(_ value: String) {
        separate()
        bytes.append(contentsOf: value.utf8)
    }

    /// A text[] literal: {"a","b"} with quotes and backslashes escaped.
    public static func arrayLiteral(_ values: [String]) -> String {
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(values.reduce(2) { $0 + $1.utf8.count + 3 })
        for (n, value) in values.enumerated() {
            if n > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            for byte in value.utf8 {
                if byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"") { out.append(UInt8(ascii: "\\")) }
                out.append(byte)
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    public mutating func endRow() {
        bytes.append(0x0A)
        fieldsInRow = 0
    }

    private mutating func separate() {
        if fieldsInRow > 0 { bytes.append(0x09) }
        fieldsInRow += 1
    }
}

extension PGConnection {
    /// Parses a conninfo string or URI without connecting (PQconninfoParse): the settings it
    /// names, or an error with libpq's explanation. Passwords are left out of the result.
    public static func parseConninfo(_ conninfo: String) throws -> [(key: String, value: String)] {
        var message: UnsafeMutablePointer<CChar>? = nil
        guard let options = PQconninfoParse(conninfo, &message) else {
            defer { if let message { PQfreemem(message) } }
            let text = message.map { String(cString: $0) } ?? "libpq could not parse it (out of memory?)"
            throw PQError(kind: .client, message: text)
        }
        defer { PQconninfoFree(options) }
        var settings: [(key: String, value: String)] = []
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val {
                let key = String(cString: keyword)
                settings.append((key, key == "password" ? "(set)" : String(cString: value)))
            }
            option += 1
        }
        return settings
    }
}
