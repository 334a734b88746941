import Foundation
import LibPQ
@testable import LiandongServices
@testable import LiandongStorage
import Testing

/// `migrate` needs no cluster superpowers once a DBA has run deploy/dba-setup.sql; `run` refuses a
/// schema it does not match exactly.
@Suite("Migration privileges and schema versions")
struct MigrationPrivilegeTests {
    /// A login role with no SUPERUSER and no CREATEROLE, and an empty database it owns.
    func ownerAndDatabase(setup: Bool) throws -> (owner: String, database: String, url: String) {
        let suffix = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(10)
        let owner = "ld_owner_\(suffix)", database = "ld_priv_\(suffix)"
        let admin = try PGConnection(conninfo: TestDatabase.admin)
        try admin.execute("CREATE ROLE \(owner) LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB")
        if setup {
            // The DBA's step, with the file operators are told to run.
            let psql = Process()
            psql.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
            psql.arguments = ["-X", "-q", "-v", "db=\(database)", "-v", "owner=\(owner)",
                              "-f", TestDatabase.repository.path + "/deploy/dba-setup.sql", TestDatabase.admin]
            let err = Pipe()
            psql.standardError = err
            psql.standardOutput = FileHandle.nullDevice
            try psql.run()
            psql.waitUntilExit()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            guard psql.terminationStatus == 0 else { throw TestFailure("dba-setup.sql failed: \(text)") }
        } else {
            try admin.execute("CREATE DATABASE \(database) OWNER \(owner)")
        }
        let url = TestDatabase.conninfo(database).replacingOccurrences(of: "user=postgres", with: "user=\(owner)")
        return (owner, database, url)
    }

    @Test("after deploy/dba-setup.sql the database owner migrates and runs without SUPERUSER or CREATEROLE")
    func ownerMigrates() throws {
        let (owner, _, url) = try ownerAndDatabase(setup: true)
        let r = try liandongd(["migrate", "--migrations", TestDatabase.migrations], database: url)
        #expect(r.status == 0, "\(r.stderr)")
        let db = try PGConnection(conninfo: url)
        #expect(try db.query("SELECT current_user").scalar == owner)
        #expect(try db.query("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user").scalar == "f")
        let count = try Migrator(directory: TestDatabase.migrations).migrations.count
        #expect(try db.int("SELECT count(*) FROM liandong.schema_migrations") == count)
        // Import and the daemon's preflight work as that owner too.
        let imported = try liandongd(["import", "divisions", TestDatabase.data + "/divisions.csv",
                                      "--migrations", TestDatabase.migrations], database: url)
        #expect(imported.status == 0, "\(imported.stderr)")
        let check = try liandongd(["migrate", "--migrations", TestDatabase.migrations], database: url)
        #expect(check.stdout.contains("nothing to do"))
    }

    @Test("the daemon runs as that owner (no superuser, no CREATEROLE); the owner scopes operators whose logins a DBA created")
    func ownerRunsAndScopesOperators() throws {
        let (owner, database, url) = try ownerAndDatabase(setup: true)
        for args in [["migrate"], ["import", "divisions", TestDatabase.data + "/divisions.csv"],
                     ["import", "grids", TestDatabase.data + "/grids.geojson"], ["import", "cameras", TestDatabase.data + "/cameras.csv"]] {
            let r = try liandongd(args + ["--migrations", TestDatabase.migrations], database: url)
            #expect(r.status == 0, "\(args): \(r.stderr)")
        }
        let admin = try PGConnection(conninfo: TestDatabase.conninfo(database))
        let daemon = try DaemonProcess(database: url)
        try daemon.send("alert", Wire.alert(id: "as-owner", priority: 3, at: Date().timeIntervalSince1970,
                                            position: try Scene.centre(of: Scene.ruralGrid, admin)))
        try daemon.waitUntil(timeout: 15, "the owner's daemon creates the task") {
            try admin.int("SELECT count(*) FROM liandong.tasks") == 1
        }
        let sessions = try admin.query("""
            SELECT DISTINCT usename FROM pg_stat_activity
            WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()
            """, [database]).rows.map { $0[0]! }
        #expect(sessions == [owner], "every session of the daemon is the owner's")
        #expect(try admin.query("SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls FROM pg_roles WHERE rolname = $1",
                                [owner]).scalar == "f")
        // Scoped operators: the owner may not create logins, a DBA does; then the owner scopes it.
        let login = "ld_town_\(UUID().uuidString.lowercased().prefix(8))"
        let refused = try liandongd(["operator", "grant", login, "--scope", "620922102"], database: url)
        #expect(refused.status == 1 && refused.stderr.contains("a DBA runs CREATE ROLE \(login) LOGIN"), "\(refused.stderr)")
        try admin.execute("CREATE ROLE \(login) LOGIN")
        let granted = try liandongd(["operator", "grant", login, "--scope", "620922102"], database: url)
        #expect(granted.status == 0, "\(granted.stderr)")
        let op = try PGConnection(conninfo: TestDatabase.conninfo(database).replacingOccurrences(of: "user=postgres", with: "user=\(login)"))
        #expect(try op.int("SELECT count(*) FROM liandong.open_incidents") == 1)
        #expect(try op.int("SELECT count(*) FROM liandong.division_names WHERE code NOT LIKE '620922102%'") == 0)
        #expect(try daemon.stop() == 0)
    }

    @Test("without the DBA's step, migrate names the missing extension and the step")
    func ownerWithoutSetup() throws {
        let (_, _, url) = try ownerAndDatabase(setup: false)
        let r = try liandongd(["migrate", "--migrations", TestDatabase.migrations], database: url)
        #expect(r.status == 1)
        #expect(r.stderr.contains("cannot create the extensions") && r.stderr.contains("deploy/dba-setup.sql"), "\(r.stderr)")
    }

    @Test("run refuses a database migrated by a newer release, or with a migration applied from another text")
    func schemaMismatch() throws {
        let url = try TestDatabase.create()
        let db = try PGConnection(conninfo: url)
        let run = { try liandongd(["run", "--migrations", TestDatabase.migrations], database: url, timeout: 30) }
        try db.execute("INSERT INTO liandong.schema_migrations (version, name, checksum) VALUES (999, '999_from_the_future', 'x')")
        let newer = try run()
        #expect(newer.status == 1 && newer.stderr.contains("999_from_the_future") && newer.stderr.contains("newer release"),
                "\(newer.stderr)")
        try db.execute("DELETE FROM liandong.schema_migrations WHERE version = 999")
        try db.execute("UPDATE liandong.schema_migrations SET checksum = 'deadbeef' WHERE version = 5")
        let changed = try run()
        #expect(changed.status == 1 && changed.stderr.contains("005_") && changed.stderr.contains("differ"), "\(changed.stderr)")
        // The first text of the amended migration 003 counts as applied.
        let migrator = try Migrator(directory: TestDatabase.migrations)
        let fifth = migrator.migrations.first { $0.version == 5 }!
        try db.query("UPDATE liandong.schema_migrations SET checksum = $1 WHERE version = 5", [fifth.checksum])
        try db.execute("UPDATE liandong.schema_migrations SET checksum = 'b309756e01c33032' WHERE version = 3")
        try migrator.checkCurrent(db)
        #expect(try migrator.migrate(db).isEmpty)
    }
}
