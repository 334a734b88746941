import Foundation
import LibPQ
/// A storage condition an operator has to act on (a migration folder, a migration state, the
/// spill file), phrased for them; the database's own errors stay `PQError`.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension PGRow {
    /// A uuid column.
    func uuid(_ i: Int) throws(PGDecodeError) -> UUID {
        let text = try string(i)
        guard let id = UUID(uuidString: text) else { throw PGDecodeError(column: columns.indices.contains(i) ? columns[i] : "#\(i)", expected: "a uuid", found: text) }
        return id
    }
}
