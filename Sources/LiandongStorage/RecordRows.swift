import LiandongCore
import LibPQ

/// The rows of a kind of `InboundRecord`: written in the transaction of the batch it came in.
package protocol RecordRows: InboundRecord {
    static func write(_ db: PGConnection, _ records: [Self]) throws
}

extension RecordRows {
    /// The records of this kind among `records`.
    static func writeAll(_ db: PGConnection, _ records: [any InboundRecord]) throws {
        try write(db, records.compactMap { $0 as? Self })
    }
}

/// Writes a batch's records, each kind with its own rows, kinds in the order they first came.
package enum RecordWriter {
    package static func write(_ db: PGConnection, _ records: [any InboundRecord]) throws {
        var order: [ObjectIdentifier] = [], groups: [ObjectIdentifier: [any InboundRecord]] = [:]
        for record in records {
            let kind = ObjectIdentifier(type(of: record))
            if groups[kind] == nil { order.append(kind) }
            groups[kind, default: []].append(record)
        }
        for kind in order {
            let group = groups[kind]!
            guard let rows = type(of: group[0]) as? any RecordRows.Type else {
                throw StorageError("no rows are defined for inbound records of topic \(type(of: group[0]).topic) (RecordRows)")
            }
            try rows.writeAll(db, group)
        }
    }

    /// Whether every kind the decoder reads has its rows.
    package static var everyKindHasRows: Bool { MessageDecoder.recordKinds.allSatisfy { $0 is any RecordRows.Type } }
}
