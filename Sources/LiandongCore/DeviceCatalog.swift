/// A GB/T 28181 device's catalog (liandong.device_catalog.v1, topic `catalog`): the channels an
/// NVR or a platform listed in its answer to the bridge's Catalog query, assembled from the
/// MESSAGEs it came in (`CatalogAssembly`). liandongd keeps them in liandong.device_channels:
/// a listed channel is added or updated, a status change is a row of history, and a complete
/// catalog marks the device's channels it no longer lists as gone (never deleted).
public struct DeviceCatalog: Sendable, Equatable {
    public static let schema = "liandong.device_catalog.v1"

    public var deviceID: String
    /// The query's SN (with device and time: the catalog's identity).
    public var sn: String
    /// When the answer was complete (or its time ran out), Unix seconds.
    public var at: Double
    /// `at` as sent (part of the id).
    public var atText: String
    /// SumNum: channels the device announced.
    public var sumNum: Int
    /// Every announced channel came (false: the query's time ran out first; nothing is marked gone).
    public var complete: Bool
    public var channels: [CatalogItem]

    public init(_ assembly: CatalogAssembly, at: Double) {
        deviceID = assembly.deviceID
        sn = assembly.sn
        self.at = at
        atText = Timestamp.formatCST(at)
        sumNum = assembly.sumNum
        complete = assembly.isComplete
        channels = assembly.channels
    }

    /// What the acknowledged path's answer names: a repeat has the same id.
    public var id: String { "catalog:\(deviceID):\(sn):\(atText)" }

    public func json() -> [UInt8] {
        var out = JSONText()
        out.object {
            $0.field("at", atText)
            $0.field("channels") { json in
                json.array(channels) { json, c in
                    json.object {
                        if let v = c.address { $0.field("address", v) }
                        $0.field("channel_id", c.channelID)
                        if let v = c.civilCode { $0.field("civil_code", v) }
                        if let v = c.event { $0.field("event", v) }
                        if let p = c.position {
                            $0.field("lat", number: p.lat)
                            $0.field("lon", number: p.lon)
                        }
                        if let v = c.manufacturer { $0.field("manufacturer", v) }
                        if let v = c.model { $0.field("model", v) }
                        if let v = c.name { $0.field("name", v) }
                        if let v = c.parentID { $0.field("parent_id", v) }
                        if let online = c.online { $0.field("status", online ? "ON" : "OFF") }
                    }
                }
            }
            $0.field("complete", bool: complete)
            $0.field("device_id", deviceID)
            $0.field("schema", Self.schema)
            $0.field("sn", sn)
            $0.field("sum_num", integer: sumNum)
        }
        return Array(out.text.utf8)
    }
}

/// Its decoder and its plan step as an inbound record (rows: DeviceCatalogRows).
extension DeviceCatalog: InboundRecord {
    package static let topic = "catalog"

    /// Its channels place alarms by channel.
    package static var changesReference: Bool { true }

    /// Its channels as liandong.record_device_catalog will record them (a status change alone keeps
    /// the channel's position; DEL, or a complete catalog's silence, removes it).
    package func amend(_ reference: inout ReferenceData) {
        if complete {
            let listed = Set(channels.map(\.channelID))
            reference.channels = reference.channels.filter { $0.value.device != deviceID || listed.contains($0.key) }
        }
        for c in channels {
            switch c.event {
            case "DEL"?:
                if reference.channels[c.channelID]?.device == deviceID { reference.channels[c.channelID] = nil }
            case "ON"?, "OFF"?, "VLOST"?, "DEFECT"?:
                if reference.channels[c.channelID] == nil { reference.channels[c.channelID] = (deviceID, nil) }
            default:
                reference.channels[c.channelID] = (deviceID, c.position)
            }
        }
    }

    package static func decode(_ f: inout Fields, by decoder: MessageDecoder, now: Double) throws -> DeviceCatalog {
        let schema = try f.string("schema")
        guard schema == Self.schema else {
            throw Rejection(.unknownSchema, "schema \"\(schema.prefix(64))\" is not supported on topic catalog (expected \(Self.schema))")
        }
        let device = try MANSCDP.deviceID(try f.string("device_id"), field: "device_id")
        let sn = try MANSCDP.serialNumber(try f.string("sn"), field: "sn")
        let atText = try f.string("at")
        guard let at = Timestamp.parse(atText) else { throw Rejection(.invalidTime, "at \"\(atText.prefix(40))\" is not an RFC 3339 time") }
        try decoder.checkTime(at, atText, field: "at", now: now)
        guard case .number(let sum)? = f.value("sum_num"), sum == sum.rounded(), (0...Double(CatalogPart.maxChannels)).contains(sum) else {
            throw Rejection(.invalidField, "sum_num must be an integer 0...\(CatalogPart.maxChannels)")
        }
        guard case .bool(let complete)? = f.value("complete") else { throw Rejection(.missingField, "complete (true or false) is required") }
        guard case .array(let list)? = f.value("channels"), list.count <= CatalogPart.maxChannels else {
            throw Rejection(.missingField, "channels (an array of at most \(CatalogPart.maxChannels)) is required")
        }
        var channels: [CatalogItem] = []
        var seen = Set<String>()
        for (n, value) in list.enumerated() {
            guard case .object(let o) = value else { throw Rejection(.invalidField, "channels[\(n)] is not an object") }
            func text(_ key: String, _ limit: Int = 200) throws -> String? {
                guard let v = o[key] else { return nil }
                guard case .string(let s) = v, s.utf8.count <= limit * 4 else {
                    throw Rejection(.invalidField, "channels[\(n)].\(key) is not a string of at most \(limit) characters")
                }
                return s
            }
            let id = try MANSCDP.deviceID(try text("channel_id"), field: "channels[\(n)].channel_id")
            guard seen.insert(id).inserted else { throw Rejection(.invalidField, "channels[\(n)]: channel \(id) is listed twice") }
            var item = CatalogItem(channelID: id, name: try text("name"), manufacturer: try text("manufacturer"), model: try text("model"),
                                   civilCode: try text("civil_code", 20), address: try text("address"))
            if let parent = try text("parent_id") { item.parentID = try MANSCDP.deviceID(parent, field: "channels[\(n)].parent_id") }
            switch try text("status") {
            case nil: break
            case "ON": item.online = true
            case "OFF": item.online = false
            case let other?: throw Rejection(.invalidField, "channels[\(n)].status \"\(other.prefix(12))\" is not ON or OFF")
            }
            if let event = try text("event", 12) {
                guard CatalogItem.events.contains(event) else {
                    throw Rejection(.invalidField, "channels[\(n)].event \"\(event)\" is none of \(CatalogItem.events.sorted().joined(separator: ", "))")
                }
                item.event = event
            }
            switch (o["lon"], o["lat"]) {
            case (nil, nil): break
            case (.number(let lon)?, .number(let lat)?) where LonLat(lon: lon, lat: lat).isValid:
                item.position = LonLat(lon: lon, lat: lat)
            default: throw Rejection(.invalidField, "channels[\(n)]: lon and lat must both be given, as WGS-84 degrees")
            }
            channels.append(item)
        }
        var catalog = DeviceCatalog(CatalogAssembly(deviceID: device, sn: sn, deadline: 0), at: at)
        catalog.atText = atText
        catalog.sumNum = Int(sum)
        catalog.complete = complete
        catalog.channels = channels
        return catalog
    }

    /// Judged like a device's status: by the registry and the sender's scope (the SIP bridge is county-wide).
    package func refusal(from sender: Sender?, reference: ReferenceData) -> Rejection? {
        DeviceStatusReport.refusal(device: deviceID, from: sender, reference: reference)
    }

    package static let counter = (name: "liandong_device_catalogs_total", label: "result", values: ["complete", "partial"])

    package var counterValue: String { complete ? "complete" : "partial" }
}
