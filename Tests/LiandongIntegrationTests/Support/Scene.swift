import Foundation
import LibPQ
import LiandongCore
import ZeroMQ

/// One test's world: its own seeded database, a running daemon, a gateway and a feed subscriber.
final class Scene {
    let db: PGConnection
    let daemon: DaemonProcess
    let feed: ZMQSocket
    /// A rural grid (about 2 km², a Voronoi cell) in 三道沟镇 and its centre; the demo dataset is synthetic.
    static let ruralGrid = "620922102201005"
    let centre: LonLat
    let now = Date().timeIntervalSince1970

    init(environment: [String: String] = [:]) throws {
        let url = try TestDatabase.create()
        db = try PGConnection(conninfo: url)
        daemon = try DaemonProcess(database: url, environment: environment)
        feed = try daemon.subscribeFeed()
        centre = try Scene.centre(of: Scene.ruralGrid, db)
    }

    static func centre(of grid: String, _ db: PGConnection) throws -> LonLat {
        let row = try db.query(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) c FROM liandong.grids WHERE grid_code = $1) s", [grid])
        guard row.count == 1 else { throw TestFailure("grid \(grid) missing from the demo dataset") }
        return LonLat(lon: Double(row[0, "st_x"]!)!, lat: Double(row[0, "st_y"]!)!)
    }

    func send(_ topic: String, _ body: String) throws { try daemon.send(topic, body) }

    /// Waits until the database holds `n` events plus dead letters (everything sent was processed).
    func waitProcessed(_ n: Int, timeout: TimeInterval = 10) throws {
        try waitUntil(timeout: timeout, "\(n) messages processed") {
            try db.int("SELECT (SELECT count(*) FROM liandong.events) + (SELECT count(*) FROM liandong.rejected_messages)") >= n
        }
    }

    /// Feed kinds in seq order.
    func feedKinds() throws -> [String] {
        try db.query("SELECT kind FROM liandong.feed ORDER BY seq").rows.map { $0[0]! }
    }

    func count(_ sql: String) throws -> Int { try db.int(sql) }
}
