import FuzzSupport
import LiandongCore

/// libFuzzer target: GB/T 28181 MANSCDP bodies (encoding detection and iconv conversion, the XML
/// reader, the Notify checks, AlarmTime). Never crashes; a decoded alarm is well formed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMANSCDP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let notify = try MANSCDP.decode(bytes)
        precondition(notify.deviceID.utf8.count == 20 && !notify.sn.isEmpty, "accepted a Notify without identity: \(notify)")
        if case .alarm(let a) = notify.command {
            precondition((1...4).contains(a.priority) && a.method >= 1 && !a.timeText.isEmpty, "accepted a malformed alarm: \(a)")
            precondition(a.position.map(\.isValid) ?? true, "accepted an impossible position")
        }
    } catch {
        precondition(!error.detail.isEmpty, "a rejection without a reason")
    }
    // The reader alone, on the raw bytes too.
    _ = try? XMLReader.parse(bytes)
    return 0
}

@main
enum Main {
    static func main() { runLibFuzzer { fuzzMANSCDP($0, $1) } }
}
