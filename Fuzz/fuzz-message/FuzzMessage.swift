import FuzzSupport
import LiandongCore

/// libFuzzer target: the whole message decoder (topic frame, body frame: JSON, schema, fields,
/// times, coordinates, device ids; events and records: device status, catalogs, device facts,
/// positions). The input is split at its first 0x00 byte into topic and body (without one: a
/// single frame). Never crashes; an accepted event is well formed; an accepted record has an id,
/// and a device fact or a catalog reads back the same from what it writes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMessage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let frames: [[UInt8]]
    if let zero = bytes.firstIndex(of: 0) {
        frames = [Array(bytes[..<zero]), Array(bytes[(zero + 1)...])]
    } else {
        frames = [bytes]
    }
    let now = 1_764_400_000.0  // 2025-11-29, the contract's example day
    switch decoder.decodeMessage(frames: frames, now: now) {
    case .success(.event(let event)):
        precondition(!event.sourceID.isEmpty && (1...4).contains(event.priority), "accepted a malformed event: \(event)")
        precondition(event.observedAt <= now + 600 && event.observedAt >= now - 7 * 86_400, "time out of range accepted")
        precondition(event.via.map { DeviceID($0) != nil && $0 != event.deviceID } ?? true, "accepted a bad via: \(event)")
    case .success(.record(let record)):
        precondition(!record.id.isEmpty, "a record without an id: \(record)")
        // What the bridge writes, liandongd reads back the same.
        if let fact = record as? DeviceFact {
            let again = decoder.decodeMessage(frames: [frames[0], fact.json()], now: now)
            precondition(again == .success(.record(fact)), "a device fact does not read back: \(fact) -> \(again)")
        } else if let catalog = record as? DeviceCatalog {
            precondition(catalog.channels.count <= CatalogPart.maxChannels, "a catalog beyond its limits")
            let again = decoder.decodeMessage(frames: [frames[0], catalog.json()], now: now)
            precondition(again == .success(.record(catalog)), "a catalog does not read back: \(catalog) -> \(again)")
        }
    case .failure(let rejection):
        precondition(!rejection.detail.isEmpty, "a rejection without a reason")
    }
    _ = MessageDecoder.peekSequence(frames)
    return 0
}

nonisolated(unsafe) let decoder = MessageDecoder()

@main
enum Main {
    static func main() { runLibFuzzer { fuzzMessage($0, $1) } }
}
