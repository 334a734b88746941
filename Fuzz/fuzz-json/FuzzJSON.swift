import FuzzSupport
import Foundation
import LiandongCore

/// libFuzzer target: the JSON parser every message goes through. Never crashes, and what it
/// accepts survives a round trip (encoded again and parsed again: the same value).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let value = try? JSONValue.parse(bytes) else { return 0 }
    guard let encoded = try? JSONEncoder().encode(value) else { fatalError("a parsed value does not encode: \(value)") }
    guard let again = try? JSONValue.parse(Array(encoded)) else {
        fatalError("round trip: \(String(decoding: encoded, as: UTF8.self)) does not parse again")
    }
    if again != value { fatalError("round trip changed \(value) into \(again)") }
    return 0
}

@main
enum Main {
    static func main() { runLibFuzzer { fuzzJSON($0, $1) } }
}
