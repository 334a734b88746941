import Foundation
import LiandongCore
import LibPQ

/// Grid workers' positions in liandong.worker_positions (day partitions, migration 034): the
/// writer stores them in its batch transaction and loads the latest ones with the correlation
/// window (where the task messages' suggested workers come from).
package enum WorkerPositionStore {
    /// Stores positions (a repeat has one row), creating the day partitions they need.
    static func record(_ db: PGConnection, _ positions: [WorkerPosition]) throws {
        guard let first = positions.map(\.at).min(), let last = positions.map(\.at).max() else { return }
        // Usually one day whose partition the sweeper made a week ago: the function only checks.
        try db.query("""
            SELECT liandong.ensure_day_partitions('worker_positions', 'at', (to_timestamp($1::float8) AT TIME ZONE 'Asia/Shanghai')::date,
                                                  (to_timestamp($2::float8) AT TIME ZONE 'Asia/Shanghai')::date)
            """, [String(first), String(last)])
        struct Row: Encodable { let worker_id: String, at: Double, state: String, lon: Double, lat: Double, crs: String }
        let rows = positions.map {
            Row(worker_id: $0.workerID, at: $0.at, state: $0.state.rawValue, lon: $0.position.lon, lat: $0.position.lat, crs: $0.crs.rawValue)
        }
        try db.query("SELECT liandong.record_worker_positions($1::jsonb)", [try TaskStore.json(rows)])
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
