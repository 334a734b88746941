import LibPQ

/// Read-only operators scoped to a division-code prefix (migration 020: liandong.operator_scopes,
/// row-level security on the tables, security_invoker views): `liandongd operator grant|revoke|list`.
public struct OperatorAccess {
    let db: PGConnection

    public init(db: PGConnection) { self.db = db }

    /// Whether every login may take advisory locks (EXECUTE on pg_try_advisory_lock not revoked
    /// from PUBLIC): then any of them could take the daemon's writer or leadership lock first.
    package static func publicMayTakeAdvisoryLocks(_ db: PGConnection) throws -> Bool {
        try db.query("SELECT has_function_privilege('public', 'pg_catalog.pg_try_advisory_lock(bigint)', 'EXECUTE')").scalar == "t"
    }

    public struct Grant: Sendable, Equatable {
        public var role: String
        public var scope: String
        public var grantedAt: String
        public var grantedBy: String
    }

    /// Makes `role` a member of liandong_operator that sees the rows of divisions under `scope`
    /// ("" for everything, dead letters included). Creates the role (LOGIN, no password) when it
    /// does not exist and this connection may create roles. Returns a sentence saying what it did.
    public func grant(role: String, scope: String) throws -> String {
        try Self.checkName(role)
        guard scope.count <= 15, scope.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw StorageError("--scope \(scope): a division-code prefix is digits only (620922100 a township, 620922 the county; \"\" everything)")
        }
        return try db.transaction { db in
            if !scope.isEmpty {
                let covered = try db.query("SELECT count(*) FROM liandong.divisions WHERE code LIKE $1 || '%' OR $1 LIKE code || '%'", [scope])
                guard (covered.scalar.flatMap(Int.init) ?? 0) > 0 else {
                    throw StorageError("--scope \(scope) matches no division in liandong.divisions (import divisions first, or check the code)")
                }
            }
            var created = false
            let existing = try db.query("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", [role])
            if existing.count == 0 {
                do {
                    try db.execute("CREATE ROLE \(Self.quoted(role)) LOGIN")
                    created = true
                } catch let e as PQError {
                    throw StorageError("role \(role) does not exist and this connection may not create roles (\(e.message)): "
                        + "a DBA runs CREATE ROLE \(role) LOGIN PASSWORD '...'; then run this again")
                }
            } else if existing[0, "rolsuper"] == "t" || existing[0, "rolbypassrls"] == "t" {
                throw StorageError("role \(role) is a superuser or bypasses row-level security: it would see everything; "
                    + "a scoped operator must be a plain role")
            }
            if try db.query("SELECT 1 FROM pg_tables WHERE schemaname = 'liandong' AND tablename = 'tasks' AND tableowner = $1",
                            [role]).count > 0 {
                throw StorageError("role \(role) owns the liandong tables (it is the daemon's role): owners bypass row-level security")
            }
            do {
                try db.execute("GRANT liandong_operator TO \(Self.quoted(role))")
            } catch let e as PQError {
                throw StorageError("cannot grant liandong_operator to \(role) (\(e.message)): the database owner needs "
                    + "GRANT liandong_operator TO <owner> WITH ADMIN OPTION (deploy/dba-setup.sql does it)")
            }
            try db.query("""
                INSERT INTO liandong.operator_scopes (role, scope) VALUES ($1, $2)
                ON CONFLICT (role) DO UPDATE SET scope = excluded.scope, granted_at = now(), granted_by = current_user
                """, [role, scope])
            let counts = try db.query("""
                SELECT (SELECT count(*) FROM liandong.divisions WHERE code LIKE $1 || '%') AS divisions,
                       (SELECT count(*) FROM liandong.grids WHERE grid_code LIKE $1 || '%') AS grids
                """, [scope])
            let reach = scope.isEmpty ? "everything (dead letters included)" : "the divisions under \(scope)"
            return (created ? "created login role \(role) (no password: set one, or a pg_hba rule); " : "")
                + "\(role) is a read-only operator of \(reach): \(counts[0, "divisions"] ?? "0") divisions, \(counts[0, "grids"] ?? "0") grids"
        }
    }

    /// Takes the role out of liandong_operator and drops its scope.
    public func revoke(role: String) throws -> String {
        try Self.checkName(role)
        return try db.transaction { db in
            let deleted = try db.query("DELETE FROM liandong.operator_scopes WHERE role = $1 RETURNING scope", [role])
            let scope = deleted.count == 0 ? nil : deleted.rows[0][0]
            if try db.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]).count > 0 {
                try db.execute("REVOKE liandong_operator FROM \(Self.quoted(role))")
            }
            return deleted.count == 0 ? "\(role) had no operator scope; liandong_operator revoked if it had it"
                : "\(role) is no longer an operator (its scope was \(scope.flatMap { $0 }.map { $0.isEmpty ? "everything" : $0 } ?? ""))"
        }
    }

    public func list() throws -> [Grant] {
        try db.query("SELECT role, scope, granted_at, granted_by FROM liandong.operator_scopes ORDER BY scope, role").typed.map {
            Grant(role: try $0.string(0), scope: try $0.string(1), grantedAt: try $0.string(2), grantedBy: try $0.string(3))
        }
    }

    /// A checked name (letters, digits, '_', '-') as an SQL identifier.
    static func quoted(_ role: String) -> String { "\"" + role + "\"" }

    static func checkName(_ role: String) throws {
        guard !role.isEmpty, role.utf8.count <= 63, role.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-".contains($0)) })
        else { throw StorageError("role \"\(role)\": use 1-63 letters, digits, '_' or '-'") }
    }
}
