import Foundation
import LibPQ
import LiandongServices
import LiandongStorage
import Synchronization
import Testing

/// Throwaway databases on the test cluster (tools/test starts it and sets LIANDONG_TEST_PG).
/// A template holding the migrated schema and the Guazhou demo dataset is built once per run;
/// each test gets its own copy, so tests run in parallel without seeing each other's rows.
enum TestDatabase {
    static let admin = ProcessInfo.processInfo.environment["LIANDONG_TEST_PG"]
        ?? "host=127.0.0.1 port=55433 user=postgres dbname=postgres"
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let migrations = repository.appendingPathComponent("schemas/migrations").path
    static let data = repository.appendingPathComponent("data/guazhou").path

    private static let lock = Mutex<Bool>(false)
    private static let template = "liandong_test_template_\(ProcessInfo.processInfo.processIdentifier)"

    /// Every test database's conninfo carries this password (the test cluster trusts 127.0.0.1 and
    /// ignores it): no process the suite runs may print it (checked on every log the suite reads
    /// and every log it deletes: `expectNoPlantedSecret`).
    static let plantedPassword = "Planted-Pw-7f3c9e"

    static func conninfo(_ name: String) -> String {
        admin.replacingOccurrences(of: "dbname=postgres", with: "dbname=\(name)") + " password=\(plantedPassword)"
    }

    /// A new database: empty, or (default) migrated with the demo dataset imported.
    static func create(seeded: Bool = true) throws -> String {
        let name = "ld_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try lock.withLock { built in
            let db = try PGConnection(conninfo: admin)
            if seeded && !built {
                try db.execute("DROP DATABASE IF EXISTS \(template)")
                try db.execute("CREATE DATABASE \(template)")
                try seed(conninfo(template))
                built = true
            }
            try db.execute("CREATE DATABASE \(name)" + (seeded ? " TEMPLATE \(template)" : ""))
        }
        return conninfo(String(name))
    }

    private static func seed(_ conninfo: String) throws {
        let db = try PGConnection(conninfo: conninfo)
        try Migrator(directory: migrations).migrate(db)
        let importer = Importer(db: db)
        _ = try importer.importDivisions(path: data + "/divisions.csv")
        _ = try importer.importGrids(path: data + "/grids.geojson")
        _ = try importer.importCameras(path: data + "/cameras.csv")
    }
}

/// Polls `condition` until it holds or `timeout` passes: a wait on a condition with a deadline.
func waitUntil(timeout: TimeInterval = 10, _ what: String = "condition", _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try condition() { return }
        guard Date() < deadline else { throw TestFailure("timed out after \(timeout) s waiting for \(what)") }
        usleep(20_000)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension PGConnection {
    /// The first column of the first row as an integer.
    func int(_ sql: String, _ params: [String?] = []) throws -> Int {
        Int(try query(sql, params).scalar ?? "0") ?? 0
    }
}

/// Fails the running test when `output` (a process's log or output) holds a secret the suite planted.
func expectNoPlantedSecret(_ output: String, from process: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    for secret in [TestDatabase.plantedPassword, BridgeProcess.password] where output.contains(secret) {
        let line = output.split(separator: "\n").first { $0.contains(secret) } ?? ""
        Issue.record("\(process) printed a secret: \(line.prefix(300))", sourceLocation: sourceLocation)
    }
}

/// Makes the database itself refuse events with `sourceID` (a trigger on event_keys): a store-only
/// failure for the tests of what the writer does when PostgreSQL refuses a batch. (The decoder now
/// refuses what used to be the store's own refusals, such as a \u0000 in a string.)
func refuseInDatabase(_ db: PGConnection, sourceIDs: [String]) throws {
    let list = sourceIDs.map { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" }.joined(separator: ", ")
    try db.execute("""
        CREATE FUNCTION liandong.test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.source_id IN (\(list)) THEN RAISE EXCEPTION 'refused by the test''s trigger'; END IF;
            RETURN NEW;
        END $$;
        COMMENT ON FUNCTION liandong.test_refuse() IS 'Test only.';
        CREATE TRIGGER test_refuse BEFORE INSERT ON liandong.event_keys FOR EACH ROW EXECUTE FUNCTION liandong.test_refuse();
        """)
}
