import LibPQ
import Testing

@Suite("Typed rows")
struct RowTests {
    @Test("a NULL where a value is required, or text that is not the type, throws naming the column; optional readers take NULL as nil")
    func decode() throws {
        let row = PGRow(columns: ["id", "n", "x", "flag", "gone"], values: ["a", "42", "1.5", "t", nil])
        #expect(try row.string(0) == "a" && row.int(1) == 42 && row.int64(1) == 42 && row.double(2) == 1.5 && row.bool(3))
        #expect(try row.optionalDouble(4) == nil && row.optionalInt(4) == nil && row.optionalString(4) == nil)
        #expect(throws: PGDecodeError.self) { try row.string(4) }
        do {
            _ = try row.int(0)
            Issue.record("text read as an integer")
        } catch {
            #expect(error.description == "column id: expected an integer, found \"a\"")
        }
        do {
            _ = try row.double(4)
            Issue.record("NULL read as a number")
        } catch {
            #expect(error.description == "column gone: expected a number, found NULL")
        }
        #expect(throws: PGDecodeError.self) { try row.bool(1) }
        #expect(throws: PGDecodeError.self) { try row.optionalInt(2) }
    }
}
