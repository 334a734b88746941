import LiandongCore
import LibPQ

/// A device fact's row: liandong.devices through liandong.record_device_info (migration 036), one
/// call per fact in the batch's transaction (facts are few: a handful per registration).
extension DeviceFact: RecordRows {
    package static func write(_ db: PGConnection, _ records: [DeviceFact]) throws {
        for fact in records.sorted(by: { $0.at < $1.at }) {
            var o: [String: JSONValue] = ["device_id": .string(fact.deviceID), "at_s": .number(fact.at)]
            func text(_ v: String?) -> JSONValue { v.map(JSONValue.string) ?? .null }
            switch fact.fact {
            case .registration(let r):
                o["registration"] = .object(["transport": .string(r.transport.rawValue), "from": .string(r.from),
                                             "expires_s": .number(r.expiresAt)])
            case .info(let i):
                o["info"] = .object(["name": text(i.name), "manufacturer": text(i.manufacturer), "model": text(i.model),
                                     "firmware": text(i.firmware), "channels": i.channels.map { .number(Double($0)) } ?? .null])
            case .guardState(let state, let detail):
                o["guard"] = .object(["state": .string(state.rawValue), "detail": text(detail)])
            case .subscription(let event, let state, let until, let detail):
                o["subscription"] = .object(["event": .string(event.rawValue), "state": .string(state.rawValue),
                                             "until_s": until.map(JSONValue.number) ?? .null, "detail": text(detail)])
            }
            try db.query("SELECT liandong.record_device_info($1::jsonb)", [try TaskStore.json(JSONValue.object(o))])
        }
    }
}
