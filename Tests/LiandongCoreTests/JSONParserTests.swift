import Foundation
import LiandongCore
import Testing

@Suite("JSON parser")
struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Array(text.utf8)) }

    @Test("values, nesting, escapes and surrogate pairs; the same as Foundation's decoder")
    func valid() throws {
        let text = #"{"a":[1,-2.5e3,0,true,false,null],"s":"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude92 中文","o":{},"e":[]}"#
        let value = try parse(text)
        #expect(value == .object([
            "a": .array([.number(1), .number(-2500), .number(0), .bool(true), .bool(false), .null]),
            "s": .string("x\"\\/\u{08}\u{0C}\n\r\té🚒 中文"), "o": .object([:]), "e": .array([]),
        ]))
        #expect(value == (try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))))
        #expect(try parse(" \n\t 42 \r\n") == .number(42))
    }

    @Test("malformed documents are refused with the offset", arguments: [
        "", "{", "{\"a\":1,}", "[1,]", "01", "-", "1.", "1e", "+1", "tru", "nul", "\"abc", "{\"a\" 1}", "{a:1}",
        "[1 2]", "{\"a\":1}x", "\"\u{01}\"", "\"\\x\"", "\"\\ud83d\"", "\"\\ude92\"", "\"\\u12\"", "NaN", "1e999",
    ])
    func invalid(_ text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test("nesting deeper than the limit is refused without recursing into it")
    func depth() throws {
        let ok = String(repeating: "[", count: JSONValue.maxDepth) + String(repeating: "]", count: JSONValue.maxDepth)
        _ = try parse(ok)
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try parse(deep) }
    }

    @Test("reading a few fields validates the whole document as parsing it does and returns the same values", arguments: [
        #"{"gateway_id":"gw-1","seq":7,"x":{"y":[1,{"z":"\u00e9"}],"w":"a\"b"},"n":null}"#,
        #"{"seq":1,"seq":2,"gateway_id":"g\u00e9"}"#, #"{}"#, #" {"o":{"gateway_id":"inner"}} "#,
        #"{"gateway_id":"g","seq":1,}"#, #"{"gateway_id":"g","x":"\x"}"#, #"{"x":"\ud83d","seq":1}"#,
        #"{"x":01}"#, #"{"x":[1 2]}"#, #"{"x":{"a" 1}}"#, #"{"seq":1}x"#, #"[1]"#, #"{"x":"a"#, "{\"x\":\"\u{01}\"}",
    ])
    func fields(_ text: String) throws {
        let keys: Set<String> = ["gateway_id", "seq"]
        let bytes = Array(text.utf8)
        guard case .object(let all)? = try? JSONValue.parse(bytes) else {
            #expect(throws: JSONParseError.self) { try JSONValue.fields(bytes, keys) }
            return
        }
        #expect(try JSONValue.fields(bytes, keys) == all.filter { keys.contains($0.key) })
    }
}
