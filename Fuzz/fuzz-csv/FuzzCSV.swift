import FuzzSupport
import LiandongStorage

/// libFuzzer target: the CSV reader of the divisions and cameras importers. Never crashes; line
/// numbers only grow.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let rows = parseCSV(text)
    var last = 0
    for row in rows {
        precondition(row.line > last, "line numbers out of order")
        last = row.line
    }
    return 0
}

@main
enum Main {
    static func main() { runLibFuzzer { fuzzCSV($0, $1) } }
}
