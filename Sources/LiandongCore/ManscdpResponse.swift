/// GB/T 28181 MANSCDP responses a device sends to the platform's queries (root `<Response>`):
/// its Catalog (the channels of an NVR or a platform, possibly in several MESSAGEs: SumNum in
/// all, DeviceList Num in each) and its DeviceInfo. Read as liberally as vendors write them
/// (missing optional fields, zero coordinates meaning none, Status ON/OFF in any case, OK/ONLINE),
/// strictly where identity is at stake (20-digit ids, SN, SumNum).
public enum ManscdpResponse: Sendable, Equatable {
    case catalog(CatalogPart)
    case deviceInfo(ManscdpDeviceInfo)
    /// Another command's response (DeviceControl, Alarm, ...): its CmdType and Result.
    case other(cmdType: String, sn: String, deviceID: String, result: String?)

    /// Decodes a body already converted to UTF-8 (`TextEncoding.xmlToUTF8`).
    public static func decode(utf8: [UInt8]) throws(Rejection) -> ManscdpResponse {
        let (root, cmd, sn, device) = try MANSCDP.envelope(utf8, root: "Response")
        switch cmd {
        case "Catalog":
            return .catalog(try catalog(root, sn: sn, device: device))
        case "DeviceInfo":
            return .deviceInfo(ManscdpDeviceInfo(
                sn: sn, deviceID: device, name: root.value("DeviceName"), result: root.value("Result"),
                manufacturer: root.value("Manufacturer"), model: root.value("Model"), firmware: root.value("Firmware"),
                channels: root.value("Channel").flatMap { Int($0) }.flatMap { (0...100_000).contains($0) ? $0 : nil }))
        default:
            return .other(cmdType: String(cmd.prefix(32)), sn: sn, deviceID: device, result: root.value("Result"))
        }
    }

    /// A catalog NOTIFY (root `<Notify>`, CmdType Catalog): channels that changed, each with its Event.
    public static func catalogNotify(utf8: [UInt8]) throws(Rejection) -> CatalogPart {
        let (root, cmd, sn, device) = try MANSCDP.envelope(utf8, root: "Notify")
        guard cmd == "Catalog" else { throw Rejection(.invalidField, "CmdType \(cmd.prefix(32)) is not Catalog") }
        return try catalog(root, sn: sn, device: device)
    }

    static func catalog(_ root: XMLElement, sn: String, device: String) throws(Rejection) -> CatalogPart {
        guard let sumText = root.value("SumNum") else { throw Rejection(.missingField, "SumNum is required") }
        guard let sum = Int(sumText), (0...CatalogPart.maxChannels).contains(sum) else {
            throw Rejection(.invalidField, "SumNum \"\(sumText.prefix(24))\" is not 0...\(CatalogPart.maxChannels)")
        }
        var items: [CatalogItem] = []
        for item in root.child("DeviceList")?.children ?? [] where item.name == "Item" {
            items.append(try CatalogItem(item))
        }
        guard items.count <= CatalogPart.maxChannels else {
            throw Rejection(.invalidField, "DeviceList has \(items.count) items, more than \(CatalogPart.maxChannels)")
        }
        return CatalogPart(sn: sn, deviceID: device, sumNum: sum, items: items)
    }
}

/// One MESSAGE of a Catalog response.
public struct CatalogPart: Sendable, Equatable {
    /// A device with more channels than this is refused (a platform's whole tree belongs in
    /// several registrations).
    public static let maxChannels = 10_000
    public var sn: String
    /// The device that answered (an NVR, a platform).
    public var deviceID: String
    /// Items in the whole response (all its MESSAGEs).
    public var sumNum: Int
    public var items: [CatalogItem]

    public init(sn: String, deviceID: String, sumNum: Int, items: [CatalogItem]) {
        self.sn = sn
        self.deviceID = deviceID
        self.sumNum = sumNum
        self.items = items
    }
}

/// A channel (or a sub-device, a business group, a virtual organisation) in a Catalog.
public struct CatalogItem: Sendable, Equatable {
    public var channelID: String
    public var name: String?
    public var manufacturer: String?
    public var model: String?
    public var civilCode: String?
    public var address: String?
    public var parentID: String?
    /// ON or OFF (normalised; OK/ONLINE are ON, anything else OFF); nil when not given.
    public var online: Bool?
    /// Longitude/Latitude (WGS-84 as the standard says) when given and not zero.
    public var position: LonLat?
    /// In a catalog NOTIFY: what happened to the channel (`CatalogItem.events`): ON, OFF, VLOST,
    /// DEFECT change its status only, DEL removes it, ADD and UPDATE give all of it.
    public var event: String?

    /// The Event values of a catalog NOTIFY (GB/T 28181-2016 A.2.5).
    public static let events: Set<String> = ["ON", "OFF", "VLOST", "DEFECT", "ADD", "DEL", "UPDATE"]

    public init(channelID: String, name: String? = nil, manufacturer: String? = nil, model: String? = nil, civilCode: String? = nil,
                address: String? = nil, parentID: String? = nil, online: Bool? = nil, position: LonLat? = nil) {
        self.channelID = channelID
        self.name = name
        self.manufacturer = manufacturer
        self.model = model
        self.civilCode = civilCode
        self.address = address
        self.parentID = parentID
        self.online = online
        self.position = position
    }

    init(_ item: XMLElement) throws(Rejection) {
        channelID = try MANSCDP.deviceID(item.value("DeviceID"), field: "DeviceList/Item/DeviceID")
        func text(_ path: String, _ limit: Int = 200) -> String? {
            guard let value = item.value(path), !value.isEmpty else { return nil }
            return String(value.prefix(limit))
        }
        name = text("Name")
        manufacturer = text("Manufacturer")
        model = text("Model")
        civilCode = text("CivilCode", 20)
        address = text("Address")
        // A ParentID names the device or a group; several, separated by "/", name the path: the last.
        parentID = text("ParentID", 420).flatMap { $0.split(separator: "/").last.map(String.init) }.flatMap { DeviceID($0) != nil ? $0 : nil }
        online = text("Status").map { ["ON", "OK", "ONLINE"].contains($0.uppercased()) }
        if let e = text("Event", 12)?.uppercased() {
            guard Self.events.contains(e) else {
                throw Rejection(.invalidField, "DeviceList/Item/Event \"\(e)\" is none of \(Self.events.sorted().joined(separator: ", "))")
            }
            event = e
            // The event says the status (an item of a status NOTIFY often carries nothing else).
            if e == "ON" { online = true } else if ["OFF", "VLOST", "DEFECT"].contains(e) { online = false }
        }
        if let lon = text("Longitude").flatMap(Double.init), let lat = text("Latitude").flatMap(Double.init),
           lon != 0 || lat != 0, (-180...180).contains(lon), (-90...90).contains(lat)
        {
            position = LonLat(lon: lon, lat: lat)
        }
    }
}

/// A DeviceInfo response.
public struct ManscdpDeviceInfo: Sendable, Equatable {
    public var sn: String
    public var deviceID: String
    public var name: String?
    /// OK or ERROR.
    public var result: String?
    public var manufacturer: String?
    public var model: String?
    public var firmware: String?
    /// Channel: how many channels the device says it has.
    public var channels: Int?
}

/// Collects a Catalog response that comes in several MESSAGEs (one SN): complete once SumNum
/// distinct channels are in, or when `deadline` passes with some in (what came is what the
/// device said; the rest is missing, not gone).
public struct CatalogAssembly: Sendable, Equatable {
    public let deviceID: String
    public let sn: String
    public private(set) var sumNum: Int
    public private(set) var items: [String: CatalogItem] = [:]
    /// Channel ids in the order they came.
    public private(set) var order: [String] = []
    /// MESSAGEs added so far.
    public private(set) var parts = 0
    public let deadline: Double

    public init(deviceID: String, sn: String, deadline: Double) {
        self.deviceID = deviceID
        self.sn = sn
        self.deadline = deadline
        sumNum = 0
    }

    /// Adds a part; false when it belongs to another device or query.
    public mutating func add(_ part: CatalogPart) -> Bool {
        guard part.deviceID == deviceID, part.sn == sn else { return false }
        sumNum = max(sumNum, part.sumNum)
        parts += 1
        for item in part.items where items.count < CatalogPart.maxChannels {
            if items.updateValue(item, forKey: item.channelID) == nil { order.append(item.channelID) }
        }
        return true
    }

    /// Every channel the device announced is in.
    public var isComplete: Bool { parts > 0 && items.count >= sumNum }

    /// Complete, or out of time.
    public func isDone(now: Double) -> Bool { isComplete || now >= deadline }

    /// The channels in the order they came.
    public var channels: [CatalogItem] { order.compactMap { items[$0] } }
}
