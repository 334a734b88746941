import Foundation
import LiandongCore
import LibPQ

/// liandong.silences for `liandongd silence add|list|expire`.
public struct SilenceStore {
    let db: PGConnection

    public init(db: PGConnection) { self.db = db }

    public struct Row: Sendable {
        public var id: String
        public var devicePrefix, divisionPrefix: String
        public var category: String?
        public var startsAt, endsAt, createdBy, comment: String
        public var active: Bool
    }

    /// Adds a silence; `startsAt`/`endsAt` are epoch seconds. Returns its id.
    /// `knownCategories`: the categories the daemon's rules give events (a misspelt category would
    /// silence nothing and look like it worked); `now`: a window wholly before it is refused.
    public func add(devicePrefix: String, divisionPrefix: String, category: String?, startsAt: Double, endsAt: Double,
                    createdBy: String, comment: String, knownCategories: Set<String>,
                    now: Double = Date().timeIntervalSince1970) throws -> String {
        if let category, !knownCategories.contains(category) {
            throw StorageError("--category \(category) is not a category of this configuration (known: "
                + knownCategories.sorted().joined(separator: ", ") + ")")
        }
        guard devicePrefix.count <= 20, devicePrefix.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw StorageError("--device \(devicePrefix): a GB/T 28181 device-id prefix is up to 20 digits")
        }
        guard divisionPrefix.count <= 15, divisionPrefix.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw StorageError("--division \(divisionPrefix): a division-code prefix is up to 15 digits")
        }
        guard !devicePrefix.isEmpty || !divisionPrefix.isEmpty || category != nil else {
            throw StorageError("a silence needs at least one of --device, --division, --category (a silence of everything would make the centre deaf)")
        }
        guard endsAt > startsAt else { throw StorageError("the silence would end before it starts") }
        guard endsAt > now else {
            throw StorageError("the silence ended at \(Timestamp.formatCST(endsAt)), before now: it would silence nothing (check --starts/--until: "
                + "a time without an offset is China Standard Time)")
        }
        guard !comment.trimmingCharacters(in: .whitespaces).isEmpty else { throw StorageError("--comment: say why (it is shown to whoever wonders where the tasks went)") }
        if !divisionPrefix.isEmpty,
            try db.query("SELECT 1 FROM liandong.divisions WHERE code LIKE $1 || '%' OR $1 LIKE code || '%' LIMIT 1", [divisionPrefix]).count == 0
        {
            throw StorageError("--division \(divisionPrefix) matches no division in liandong.divisions")
        }
        return try db.query("""
            INSERT INTO liandong.silences (device_prefix, division_prefix, category, starts_at, ends_at, created_by, comment)
            VALUES ($1, $2, $3, to_timestamp($4), to_timestamp($5), $6, $7) RETURNING id
            """, [devicePrefix, divisionPrefix, category, String(startsAt), String(endsAt), createdBy, comment]).scalar ?? ""
    }

    /// Silences not yet ended (with `all`: every one).
    public func list(all: Bool) throws -> [Row] {
        try db.query("""
            SELECT id, device_prefix, division_prefix, category, to_char(starts_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI'),
                   to_char(ends_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI'), created_by, comment,
                   starts_at <= now() AND ends_at > now()
            FROM liandong.silences WHERE $1 OR ends_at > now() ORDER BY starts_at, id
            """, [all ? "t" : "f"]).typed.map {
            Row(id: try $0.string(0), devicePrefix: try $0.string(1), divisionPrefix: try $0.string(2), category: $0[3],
                startsAt: try $0.string(4), endsAt: try $0.string(5), createdBy: try $0.string(6), comment: try $0.string(7),
                active: try $0.bool(8))
        }
    }

    /// Ends a silence now; false when there is no such silence still running or to come.
    public func expire(id: String) throws -> Bool {
        guard Int64(id) != nil else { throw StorageError("silence id \(id): a number (liandongd silence list)") }
        return try db.query("""
            UPDATE liandong.silences SET ends_at = greatest(starts_at + interval '1 microsecond', now()), expired_at = now()
            WHERE id = $1 AND ends_at > now() RETURNING id
            """, [id]).count == 1
    }
}
