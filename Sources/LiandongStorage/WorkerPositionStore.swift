import Foundation
import LiandongCore
import LibPQ
import Synchronization

/// Grid workers' positions in liandong.worker_positions (day partitions, migration 034): the
/// writer stores them in its batch transaction and loads the latest ones with the correlation
/// window (where the task messages' suggested workers come from).
package enum WorkerPositionStore {
    /// CST days whose partition is known to exist (the sweeper makes the week ahead): checked once
    /// each, forgotten after any failure (a day dropped meanwhile is made again).
    private static let partitioned = Mutex<Set<Int>>([])

    /// Stores positions placed by the plan step (a repeat has one row): one statement, and one
    /// more for a day not seen yet.
    static func record(_ db: PGConnection, _ positions: [WorkerPosition]) throws {
        let placed = positions.filter { $0.gridCode != nil && $0.homeGridCode != nil }
        guard !placed.isEmpty else { return }
        let offset = Double(Timestamp.chinaOffsetSeconds)
        let days = Set(placed.map { Int(((($0.at + offset) / 86_400)).rounded(.down)) })
        do {
            let missing = days.subtracting(partitioned.withLock { $0 })
            if let first = missing.min(), let last = missing.max() {
                try db.query("""
                    SELECT liandong.ensure_day_partitions('worker_positions', 'at', date '1970-01-01' + $1::int, date '1970-01-01' + $2::int)
                    """, [String(first), String(last)])
            }
            try db.query("""
                INSERT INTO liandong.worker_positions (worker_id, at, state, geog, source_crs, grid_code, home_grid_code)
                SELECT w, to_timestamp(t), s, ST_SetSRID(ST_MakePoint(x, y), 4326)::geography, c, g, h
                FROM unnest($1::text[], $2::float8[], $3::text[], $4::float8[], $5::float8[], $6::text[], $7::text[], $8::text[])
                    AS p(w, t, s, x, y, c, g, h)
                ON CONFLICT (worker_id, at) DO NOTHING
                """, [PGCopyText.arrayLiteral(placed.map(\.workerID)), "{" + placed.map { String($0.at) }.joined(separator: ",") + "}",
                      PGCopyText.arrayLiteral(placed.map(\.state.rawValue)),
                      "{" + placed.map { String($0.position.lon) }.joined(separator: ",") + "}",
                      "{" + placed.map { String($0.position.lat) }.joined(separator: ",") + "}",
                      PGCopyText.arrayLiteral(placed.map(\.crs.rawValue)), PGCopyText.arrayLiteral(placed.map { $0.gridCode! }),
                      PGCopyText.arrayLiteral(placed.map { $0.homeGridCode! })])
            partitioned.withLock { $0.formUnion(missing) }
        } catch {
            partitioned.withLock { $0 = [] }
            throw error
        }
    }

    /// Each worker's latest position within `seconds` of now (with the worker's grid now).
    package static func latest(_ db: PGConnection, within seconds: Double) throws -> [WorkerSighting] {
        try db.query("""
            SELECT DISTINCT ON (p.worker_id) p.worker_id, w.grid_code, ST_X(p.geog::geometry), ST_Y(p.geog::geometry),
                   extract(epoch FROM p.at), p.state
            FROM liandong.worker_positions p JOIN liandong.grid_workers w USING (worker_id)
            WHERE p.at > now() - make_interval(secs => $1::float8)
            ORDER BY p.worker_id, p.at DESC
            """, [String(seconds)]).typed.map { v in
            guard let state = WorkerPosition.State(rawValue: try v.string(5)) else {
                throw StorageError("worker_positions holds an unknown state \(v[5] ?? "")")
            }
            return WorkerSighting(workerID: try v.string(0), gridCode: try v.string(1),
                                  position: LonLat(lon: try v.double(2), lat: try v.double(3)), at: try v.double(4), state: state)
        }
    }
}

/// A worker position's rows.
extension WorkerPosition: RecordRows {
    package static func write(_ db: PGConnection, _ records: [WorkerPosition]) throws { try WorkerPositionStore.record(db, records) }
}
