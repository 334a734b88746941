import Foundation
import LibPQ

/// One numbered SQL file from schemas/migrations ("001_base.sql").
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String

    /// FNV-1a 64 of the SQL text: detects a migration edited after it was applied.
    public var checksum: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in sql.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }
}

/// Applies pending migrations in order, each in its own transaction, recording them in
/// liandong.schema_migrations. Running it again is a no-op.
public struct Migrator {
    public let migrations: [Migration]

    public init(directory: String) throws {
        let files: [String]
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw StorageError("cannot read migrations directory \(directory)")
        }
        var found: [Migration] = []
        for file in files.sorted() where file.hasSuffix(".sql") {
            guard let version = Int(file.prefix { $0.isNumber }) else {
                throw StorageError("migration \(file) must start with its number, e.g. 003_tasks.sql")
            }
            let sql = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            found.append(Migration(version: version, name: String(file.dropLast(4)), sql: sql))
        }
        guard Set(found.map(\.version)).count == found.count else {
            throw StorageError("two migrations in \(directory) share a number")
        }
        migrations = found
    }

    /// Finds schemas/migrations: an explicit path, the current directory, the executable's
    /// ancestors (a build tree), then /usr/share/liandong.
    public static func locateDirectory(explicit: String?) throws -> String {
        if let explicit { return explicit }
        var candidates = [FileManager.default.currentDirectoryPath + "/schemas/migrations"]
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            candidates.append(dir.path + "/schemas/migrations")
            dir = dir.deletingLastPathComponent()
        }
        candidates.append("/usr/share/liandong/schemas/migrations")
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) { return found }
        throw StorageError("cannot find schemas/migrations (looked in \(candidates.joined(separator: ", "))); pass --migrations DIR")
    }

    public var latestVersion: Int { migrations.map(\.version).max() ?? 0 }

    /// Migrations amended after release in ways that change nothing for a database that already
    /// applied them, with the checksums of their earlier texts (accepted as applied):
    /// 003 creates liandong_operator only when it does not exist, so an owner without
    /// CREATEROLE can migrate once a DBA created the role (deploy/dba-setup.sql).
    package static let amended: [Int: Set<String>] = [3: ["b309756e01c33032"]]

    /// True when `checksum` (as recorded) is `migration`'s text or an earlier one it amends.
    package static func matches(_ migration: Migration, _ checksum: String) -> Bool {
        checksum == migration.checksum || amended[migration.version, default: []].contains(checksum)
    }

    /// Versions already applied, with their checksums (empty on a new database).
    public static func applied(_ db: PGConnection) throws -> [Int: String] {
        let exists = try db.query("SELECT to_regclass('liandong.schema_migrations') IS NOT NULL").scalar == "t"
        guard exists else { return [:] }
        let rows = try db.query("SELECT version, checksum FROM liandong.schema_migrations")
        return Dictionary(uniqueKeysWithValues: try rows.typed.map { (try $0.int(0), try $0.string(1)) })
    }

    /// Applies what is pending; returns the migrations applied now.
    @discardableResult
    public func migrate(_ db: PGConnection) throws -> [Migration] {
        try db.execute("""
            SET client_min_messages = warning;
            CREATE SCHEMA IF NOT EXISTS liandong;
            CREATE TABLE IF NOT EXISTS liandong.schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            COMMENT ON TABLE liandong.schema_migrations IS 'Migrations applied by liandongd migrate, one row each.';
            COMMENT ON COLUMN liandong.schema_migrations.version IS 'Number of the migration file.';
            COMMENT ON COLUMN liandong.schema_migrations.name IS 'File name without .sql.';
            COMMENT ON COLUMN liandong.schema_migrations.checksum IS 'FNV-1a 64 of the file as applied.';
            COMMENT ON COLUMN liandong.schema_migrations.applied_at IS 'When it was applied.';
            """)
        var done: [Migration] = []
        for migration in migrations {
            let applied = try db.transaction { db -> Bool in
                // One migrator at a time; the lock ends with the transaction.
                try db.query("SELECT pg_advisory_xact_lock(7601001)")
                let existing = try db.query(
                    "SELECT checksum FROM liandong.schema_migrations WHERE version = $1", [String(migration.version)])
                if let checksum = existing.scalar {
                    guard Self.matches(migration, checksum) else {
                        throw StorageError("migration \(migration.name) was changed after it was applied; "
                            + "add a new numbered migration instead of editing an applied one")
                    }
                    return false
                }
                do {
                    try db.execute(migration.sql)
                } catch let error as PQError {
                    throw Self.explain(error, migration: migration)
                }
                try db.query(
                    "INSERT INTO liandong.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    [String(migration.version), migration.name, migration.checksum])
                return true
            }
            if applied { done.append(migration) }
        }
        return done
    }

    /// Throws unless the database holds exactly this binary's migrations (used before `run` and
    /// `import`): none pending, none this binary does not know (a newer liandongd migrated it),
    /// none applied from a different text.
    /// The highest migration applied (0: none).
    package static func currentVersion(_ db: PGConnection) throws -> Int {
        Int(try db.query("SELECT coalesce(max(version), 0) FROM liandong.schema_migrations").scalar ?? "0") ?? 0
    }

    public func checkCurrent(_ db: PGConnection) throws {
        let applied = try Self.applied(db)
        let known = Set(migrations.map(\.version))
        let unknown = applied.keys.filter { !known.contains($0) }.sorted()
        if !unknown.isEmpty {
            let names = try db.query("SELECT name FROM liandong.schema_migrations WHERE version = ANY($1::int[]) ORDER BY version",
                                     ["{" + unknown.map(String.init).joined(separator: ",") + "}"]).rows.compactMap { $0[0] }
            throw StorageError("the database holds migration(s) this liandongd does not know (\(names.joined(separator: ", "))): "
                + "it was migrated by a newer release (this one knows up to \(latestVersion)); run that release, "
                + "or restore the backup taken before the upgrade")
        }
        let changed = migrations.filter { m in applied[m.version].map { !Self.matches(m, $0) } ?? false }
        if !changed.isEmpty {
            throw StorageError("migration(s) \(changed.map(\.name).joined(separator: ", ")) differ from the text applied to this "
                + "database: this liandongd's schemas/migrations (--migrations) belong to another release")
        }
        let pending = migrations.filter { applied[$0.version] == nil }
        if !pending.isEmpty {
            throw StorageError("the database lacks \(pending.count) migration(s) (\(pending.map(\.name).joined(separator: ", "))): "
                + "run `liandongd migrate --config FILE` first")
        }
    }

    package static func explain(_ error: PQError, migration: Migration) -> Error {
        let text = error.message
        if text.contains("postgis") && (text.contains("control file") || text.contains("is not available")) {
            return StorageError("the PostGIS extension is not installed on the database server "
                + "(install postgresql-15-postgis-3 there): \(text)")
        }
        if error.sqlState == "42501" {
            let setup = "a DBA runs deploy/dba-setup.sql once (as a superuser), then `liandongd migrate` works as the database owner"
            if text.contains("extension") {
                return StorageError("migration \(migration.name) cannot create the extensions postgis and btree_gist "
                    + "(that needs a superuser): \(setup): \(text)")
            }
            if text.contains("create role") {
                return StorageError("migration \(migration.name) cannot create the role liandong_operator (that needs CREATEROLE): "
                    + "\(setup): \(text)")
            }
            return StorageError("migration \(migration.name) lacks a privilege; the migrating role should own the database "
                + "(\(setup)): \(text)")
        }
        return StorageError("migration \(migration.name) failed: \(error)")
    }
}
