import Foundation
import LibPQ
import LiandongCore
import Testing

/// The Grafana dashboard in deploy/grafana queries only what exists: every metric name is served by
/// a running daemon's /metrics, every SQL query runs as an operator against the schema.
@Suite("Grafana dashboard")
struct DashboardTests {
    static let file = TestDatabase.repository.path + "/deploy/grafana/liandong-dashboard.json"

    /// The panels' targets: Prometheus expressions and SQL queries.
    static func targets() throws -> (exprs: [String], sql: [String]) {
        guard case .object(let root) = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: file)))),
              case .array(let panels)? = root["panels"] else { throw TestFailure("no panels in \(file)") }
        var exprs: [String] = [], sql: [String] = []
        for case .object(let panel) in panels {
            guard case .array(let targets)? = panel["targets"] else { continue }
            for case .object(let t) in targets {
                if let e = t["expr"]?.stringValue { exprs.append(e) }
                if let q = t["rawSql"]?.stringValue { sql.append(q) }
            }
        }
        return (exprs, sql)
    }

    @Test("every metric the dashboard queries is served by a running daemon")
    func metricsExist() throws {
        let (exprs, _) = try Self.targets()
        #expect(exprs.count >= 10)
        let names = Set(exprs.flatMap { expr in
            expr.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") }).map(String.init).filter { $0.hasPrefix("liandong_") }
        })
        let s = try Scene()
        // One event and its task: the batch histograms exist once a batch was written.
        try s.send("alert", Wire.alert(id: "dash-1", at: s.now, position: s.centre))
        _ = try receiveTasks(s.feed, count: 1)
        let served = try httpGet(port: s.daemon.metricsPort, "/metrics").body
        for name in names.sorted() {
            // Histograms are queried through their _bucket series.
            let base = name.hasSuffix("_bucket") ? String(name.dropLast("_bucket".count)) : name
            #expect(served.contains("# TYPE \(base) "), "\(name) is not served by /metrics")
        }
    }

    @Test("every SQL query of the dashboard runs as an operator")
    func queriesRun() throws {
        let (_, queries) = try Self.targets()
        #expect(queries.count >= 3)
        let url = try TestDatabase.create()
        let admin = try PGConnection(conninfo: url)
        let role = "ld_grafana_\(UUID().uuidString.lowercased().prefix(8))"
        try admin.execute("CREATE ROLE \(role) LOGIN; GRANT liandong_operator TO \(role)")
        let op = try PGConnection(conninfo: url.replacingOccurrences(of: "user=postgres", with: "user=\(role)"))
        for sql in queries {
            #expect(throws: Never.self, "\(sql)") { try op.query(sql) }
        }
    }
}
