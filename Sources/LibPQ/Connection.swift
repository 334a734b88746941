import CLibPQ
#if canImport(Glibc)
import Glibc
#endif

/// One libpq connection. It belongs to one thread at a time; blocking calls must run on a
/// dedicated thread, never the cooperative pool. Closed in deinit.
public final class PGConnection {
    private let handle: OpaquePointer

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
        // Server NOTICEs (e.g. "extension already exists") are not errors; keep stderr clean.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
    }

    deinit {
        PQfinish(handle)
    }

    public var isOK: Bool { PQstatus(handle) == CONNECTION_OK }
    public var serverVersion: Int { Int(PQserverVersion(handle)) }

    /// Runs one statement with text parameters ($1, $2, ...; nil is NULL) and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) throws -> PGRows {
        let result = withCStrings(parameters) { pointers in
            PQexecParams(handle, sql, Int32(parameters.count), nil, pointers, nil, nil, 0)
        }
        return try consume(result)
    }

    /// Runs one or more statements without parameters (migrations, BEGIN/COMMIT).
    public func execute(_ sql: String) throws {
        _ = try consume(PQexec(handle, sql))
    }

    /// Runs `body` inside BEGIN/COMMIT; rolls back when it throws.
    public func transaction<T>(_ body: (PGConnection) throws -> T) throws -> T {
        try execute("BEGIN")
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
