import FuzzSupport
import LiandongCore

/// libFuzzer target: GB/T 28181 MANSCDP bodies (encoding detection and iconv conversion, the XML
/// reader, the Notify checks, AlarmTime, the Catalog, DeviceInfo and DeviceControl responses, catalog NOTIFYs). Never crashes; a
/// decoded alarm is well formed, a decoded catalog names 20-digit channels within its limits.
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
    if let utf8 = try? TextEncoding.xmlToUTF8(bytes) {
        do {
            if case .catalog(let part) = try ManscdpResponse.decode(utf8: utf8) {
                precondition(part.items.count <= CatalogPart.maxChannels && (0...CatalogPart.maxChannels).contains(part.sumNum),
                             "accepted a catalog beyond its limits")
                for item in part.items {
                    precondition(item.channelID.utf8.count == 20 && (item.position.map(\.isValid) ?? true), "accepted a bad channel: \(item)")
                }
                var assembly = CatalogAssembly(deviceID: part.deviceID, sn: part.sn, deadline: 0)
                precondition(assembly.add(part) && assembly.channels.count <= part.items.count, "assembly lost its way")
            }
        } catch {
            precondition(!error.detail.isEmpty, "a rejection without a reason")
        }
        // A catalog NOTIFY: every item's Event one of the standard's, and its status said by it.
        do {
            let part = try ManscdpResponse.catalogNotify(utf8: utf8)
            for item in part.items {
                precondition(item.event.map { CatalogItem.events.contains($0) } ?? true, "accepted an unknown Event: \(item)")
                if item.event == "ON" { precondition(item.online == true, "ON did not set the status") }
                if ["OFF", "VLOST", "DEFECT"].contains(item.event ?? "") { precondition(item.online == false, "OFF did not set the status") }
            }
        } catch {
            precondition(!error.detail.isEmpty, "a rejection without a reason")
        }
    }
    // The reader alone, on the raw bytes too.
    _ = try? XMLReader.parse(bytes)
    return 0
}

@main
enum Main {
    static func main() { runLibFuzzer { fuzzMANSCDP($0, $1) } }
}
