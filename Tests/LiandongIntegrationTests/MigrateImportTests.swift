import Foundation
import LibPQ
import LiandongServices
import LiandongStorage
import Testing

@Suite("Migrations and imports")
struct MigrateImportTests {
    @Test("migrate applies every migration once; the second run is a no-op")
    func migrateIdempotent() throws {
        let url = try TestDatabase.create(seeded: false)
        let first = try liandongd(["migrate"], database: url)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("applied 001_base"))
        let second = try liandongd(["migrate"], database: url)
        #expect(second.status == 0)
        #expect(second.stdout.contains("nothing to do"))
        let db = try PGConnection(conninfo: url)
        let count = try Migrator(directory: TestDatabase.migrations).migrations.count
        #expect(try db.int("SELECT count(*) FROM liandong.schema_migrations") == count)
    }

    @Test("every table, view, column and function in schema liandong has a COMMENT")
    func everythingCommented() throws {
        let db = try PGConnection(conninfo: try TestDatabase.create())
        let relations = try db.query("""
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'liandong' AND c.relkind IN ('r', 'v', 'm', 'p') AND obj_description(c.oid, 'pg_class') IS NULL
            """)
        #expect(relations.rows.isEmpty, "uncommented: \(relations.rows)")
        let columns = try db.query("""
            SELECT c.relname || '.' || a.attname FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'liandong' AND c.relkind IN ('r', 'v') AND a.attnum > 0 AND NOT a.attisdropped
              AND col_description(c.oid, a.attnum) IS NULL
            """)
        #expect(columns.rows.isEmpty, "uncommented columns: \(columns.rows.map { $0[0]! })")
        let functions = try db.query("""
            SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'liandong' AND obj_description(p.oid, 'pg_proc') IS NULL
            """)
        #expect(functions.rows.isEmpty, "uncommented functions: \(functions.rows)")
        let expected = ["divisions", "grids", "grid_workers", "cameras", "events", "incidents", "tasks", "feed",
                        "rejected_messages"]
        let tables = Set(try db.query("SELECT tablename FROM pg_tables WHERE schemaname = 'liandong'").rows.map { $0[0]! })
        #expect(Set(expected).isSubset(of: tables))
    }

    @Test("importing the Guazhou dataset twice updates in place and never duplicates")
    func importIdempotent() throws {
        let url = try TestDatabase.create(seeded: false)
        #expect(try liandongd(["migrate"], database: url).status == 0)
        let files = [("divisions", "divisions.csv"), ("grids", "grids.geojson"), ("cameras", "cameras.csv")]
        for round in 0..<2 {
            for (kind, file) in files {
                let r = try liandongd(["import", kind, TestDatabase.data + "/" + file], database: url)
                #expect(r.status == 0, "\(r.stderr)")
                #expect(r.stdout.contains(round == 0 ? "0 updated" : "0 new"), "\(kind) round \(round): \(r.stdout)")
            }
        }
        let db = try PGConnection(conninfo: url)
        #expect(try db.int("SELECT count(*) FROM liandong.divisions") == 99)
        #expect(try db.int("SELECT count(*) FROM liandong.divisions WHERE level = 'village'") == 83)
        #expect(try db.int("SELECT count(*) FROM liandong.divisions WHERE level = 'township'") == 15)
        #expect(try db.int("SELECT count(*) FROM liandong.grids") == 767)
        #expect(try db.int("SELECT count(*) FROM liandong.grid_workers") == 767)
        #expect(try db.int("SELECT count(*) FROM liandong.cameras") == 320)
        #expect(try db.int("SELECT count(*) FROM liandong.cameras WHERE grid_code IS NULL") == 0)
    }

    @Test("a divisions file with bad rows names their lines and imports nothing")
    func badDivisions() throws {
        let url = try TestDatabase.create(seeded: false)
        #expect(try liandongd(["migrate"], database: url).status == 0)
        let file = try temporaryFile("code,name,kind,parent_code\n620922,瓜州县,county,\n620922100,渊泉镇,town,620922\n62092210,坏码,town,620922\n620922100001,社区,hamlet,620922100\n")
        let r = try liandongd(["import", "divisions", file], database: url)
        #expect(r.status == 1)
        #expect(r.stderr.contains("line 4") && r.stderr.contains("line 5") && r.stderr.contains("nothing imported"))
        #expect(!r.stderr.contains("line 2") && !r.stderr.contains("line 3"))
        #expect(try PGConnection(conninfo: url).int("SELECT count(*) FROM liandong.divisions") == 0)
    }

    @Test("import workers: staff changes without the grids file - a new worker, one moved to another grid; bad lines named, nothing imported")
    func importWorkers() throws {
        let url = try TestDatabase.create()
        let db = try PGConnection(conninfo: url)
        defer { db.close() }
        let existing = try #require(try db.query("SELECT worker_id, grid_code FROM liandong.grid_workers ORDER BY worker_id LIMIT 1").rows.first)
        let other = try #require(try db.query("SELECT grid_code FROM liandong.grids WHERE grid_code <> $1 ORDER BY grid_code LIMIT 1",
                                              [existing[1]]).scalar)
        let before = try db.int("SELECT count(*) FROM liandong.grid_workers")
        let version = try db.query("SELECT version::text FROM liandong.reference_version").scalar
        let good = try temporaryFile("worker_id,name,grid_code\nw-new-1,张新,\(other)\n\(existing[0]!),调岗,\(other)\n")
        let r = try liandongd(["import", "workers", good], database: url)
        #expect(r.status == 0 && r.stdout.contains("workers: 1 new, 1 updated"), "\(r.stdout)\(r.stderr)")
        #expect(try db.int("SELECT count(*) FROM liandong.grid_workers") == before + 1)
        #expect(try db.query("SELECT grid_code || ' ' || name FROM liandong.grid_workers WHERE worker_id = $1", [existing[0]]).scalar
                == "\(other) 调岗")
        #expect(try db.query("SELECT version::text FROM liandong.reference_version").scalar != version, "the writer reloads its reference data")
        let bad = try temporaryFile("worker_id,name,grid_code\nw-new-2,甲,\(other)\nw-new-2,乙,\(other)\n,丙,\(other)\nw-new-3,丁,62092299\nw-new-4,戊,620922999999999\n")
        let refused = try liandongd(["import", "workers", bad], database: url)
        #expect(refused.status == 1 && refused.stderr.contains("line 3: worker_id w-new-2 appears twice")
                && refused.stderr.contains("line 4: worker_id") && refused.stderr.contains("line 5: grid_code")
                && refused.stderr.contains("nothing imported"), "\(refused.stderr)")
        let unknown = try temporaryFile("worker_id,name,grid_code\nw-new-5,己,\(other)\nw-new-6,庚,620922999999999\n")
        let notInService = try liandongd(["import", "workers", unknown], database: url)
        #expect(notInService.status == 1 && notInService.stderr.contains("line 3: grid_code 620922999999999 is not a grid in service"),
                "\(notInService.stderr)")
        #expect(try db.int("SELECT count(*) FROM liandong.grid_workers") == before + 1, "nothing of the bad files imported")
    }

    @Test("a grids file with an invalid polygon or an unknown village names the feature and imports nothing")
    func badGrids() throws {
        let db = try PGConnection(conninfo: try TestDatabase.create())
        let before = try db.int("SELECT count(*) FROM liandong.grids")
        let square = "[[[95.0,40.0],[95.01,40.0],[95.01,40.01],[95.0,40.01],[95.0,40.0]]]"
        let bowtie = "[[[95.0,40.0],[95.01,40.01],[95.01,40.0],[95.0,40.01],[95.0,40.0]]]"
        func feature(_ code: String, _ village: String, _ rings: String) -> String {
            "{\"type\":\"Feature\",\"properties\":{\"grid_code\":\"\(code)\",\"village_code\":\"\(village)\"},\"geometry\":{\"type\":\"Polygon\",\"coordinates\":\(rings)}}"
        }
        let importer = Importer(db: db)
        let invalid = try temporaryFile("{\"type\":\"FeatureCollection\",\"features\":[\(feature("620922102201901", "620922102201", square)),\(feature("620922102201902", "620922102201", bowtie))]}")
        #expect { try importer.importGrids(path: invalid) } throws: { error in
            "\(error)".contains("feature 1: invalid polygon") && !"\(error)".contains("feature 0")
        }
        let unknown = try temporaryFile("{\"type\":\"FeatureCollection\",\"features\":[\(feature("620922102299001", "620922102299", square))]}")
        #expect { try importer.importGrids(path: unknown) } throws: { "\($0)".contains("feature 0: village_code 620922102299") }
        #expect(try db.int("SELECT count(*) FROM liandong.grids") == before)
    }

    @Test("a cameras file with a bad device id or position names the line and imports nothing")
    func badCameras() throws {
        let db = try PGConnection(conninfo: try TestDatabase.create())
        let file = try temporaryFile("device_id,name,lon,lat,crs\n62092200001320009991,ok,95.78,40.52,wgs84\n6209220000132000999,short,95.78,40.52,\n62092200001320009993,far,295.78,40.52,\n62092200001320009994,crs,95.78,40.52,utm\n")
        #expect { try Importer(db: db).importCameras(path: file) } throws: { error in
            let text = "\(error)"
            return text.contains("line 3") && text.contains("line 4") && text.contains("line 5") && !text.contains("line 2")
        }
        #expect(try db.int("SELECT count(*) FROM liandong.cameras WHERE device_id = '62092200001320009991'") == 0)
    }

    @Test("GCJ-02 camera positions are converted to WGS-84 on import")
    func cameraConversion() throws {
        let db = try PGConnection(conninfo: try TestDatabase.create())
        let file = try temporaryFile("device_id,name,lon,lat,crs\n62092200001320009995,gcj,95.7846,40.5188,gcj02\n")
        _ = try Importer(db: db).importCameras(path: file)
        let d = try db.query("""
            SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(95.7846, 40.5188), 4326)::geography), source_crs
            FROM liandong.cameras WHERE device_id = '62092200001320009995'
            """)
        #expect(Double(d.scalar!)! > 100)
        #expect(d[0, "source_crs"] == "gcj02")
    }
}

func temporaryFile(_ contents: String) throws -> String {
    let path = "\(Scratch.directory)/ld-\(UUID().uuidString)"
    try contents.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}
