/// A value of a result that is not what the reader asked for: a NULL where a value is required,
/// or text that is not the type asked for. Thrown by `PGRow`'s readers (never a crash on a stored
/// row someone edited by hand, or a column that became nullable).
public struct PGDecodeError: Error, CustomStringConvertible, Sendable {
    public let column: String
    public let expected: String
    public let found: String?
    public init(column: String, expected: String, found: String?) {
        self.column = column
        self.expected = expected
        self.found = found
    }

    public var description: String {
        "column \(column): expected \(expected), found " + (found.map { "\"\($0.prefix(60))\"" } ?? "NULL")
    }
}

/// One row of a result, read by position with a type. Each reader throws `PGDecodeError`
/// naming the column; the `optional` readers take NULL as nil (and still throw on bad text).
public struct PGRow: Sendable {
    public let columns: [String]
    public let values: [String?]

    public init(columns: [String], values: [String?]) {
        self.columns = columns
        self.values = values
    }

    /// The raw text of column `i` (nil for NULL).
    public subscript(_ i: Int) -> String? { values[i] }

    private func name(_ i: Int) -> String { i < columns.count ? columns[i] : "#\(i)" }

    private func required(_ i: Int, _ expected: String) throws(PGDecodeError) -> String {
        guard let value = values[i] else { throw PGDecodeError(column: name(i), expected: expected, found: nil) }
        return value
    }

    private func parse<T>(_ i: Int, _ expected: String, _ convert: (String) -> T?) throws(PGDecodeError) -> T? {
        guard let text = values[i] else { return nil }
        guard let value = convert(text) else { throw PGDecodeError(column: name(i), expected: expected, found: text) }
        return value
    }

    public func string(_ i: Int) throws(PGDecodeError) -> String { try required(i, "text") }
    public func optionalString(_ i: Int) -> String? { values[i] }

    public func int(_ i: Int) throws(PGDecodeError) -> Int {
        guard let v = try parse(i, "an integer", { Int($0) }) else { throw PGDecodeError(column: name(i), expected: "an integer", found: nil) }
        return v
    }
    public func optionalInt(_ i: Int) throws(PGDecodeError) -> Int? { try parse(i, "an integer", { Int($0) }) }

    public func int64(_ i: Int) throws(PGDecodeError) -> Int64 {
        guard let v = try parse(i, "an integer", { Int64($0) }) else { throw PGDecodeError(column: name(i), expected: "an integer", found: nil) }
        return v
    }

    public func double(_ i: Int) throws(PGDecodeError) -> Double {
        guard let v = try parse(i, "a number", { Double($0) }) else { throw PGDecodeError(column: name(i), expected: "a number", found: nil) }
        return v
    }
    public func optionalDouble(_ i: Int) throws(PGDecodeError) -> Double? { try parse(i, "a number", { Double($0) }) }

    /// PostgreSQL's boolean text: "t" or "f".
    public func bool(_ i: Int) throws(PGDecodeError) -> Bool {
        guard let v = try parse(i, "a boolean", { $0 == "t" ? true : ($0 == "f" ? false : nil) }) else {
            throw PGDecodeError(column: name(i), expected: "a boolean", found: nil)
        }
        return v
    }
}

extension PGRows {
    /// The rows, each read with types.
    public var typed: [PGRow] { rows.map { PGRow(columns: columns, values: $0) } }
}
