import LiandongCore
import LibPQ

/// A device catalog's rows: liandong.device_channels and their history, through
/// liandong.record_device_catalog (migration 035), one call per catalog in the batch's
/// transaction (catalogs are few: one per device and catalog_interval_s).
extension DeviceCatalog: RecordRows {
    package static func write(_ db: PGConnection, _ records: [DeviceCatalog]) throws {
        struct Channel: Encodable {
            let channel_id: String
            let name, manufacturer, model, civil_code, address, parent_id, status, event: String?
            let lon, lat: Double?
        }
        struct Row: Encodable { let device_id: String, at_s: Double, complete: Bool, channels: [Channel] }
        for catalog in records.sorted(by: { $0.at < $1.at }) {
            let row = Row(device_id: catalog.deviceID, at_s: catalog.at, complete: catalog.complete, channels: catalog.channels.map {
                Channel(channel_id: $0.channelID, name: $0.name, manufacturer: $0.manufacturer, model: $0.model, civil_code: $0.civilCode,
                        address: $0.address, parent_id: $0.parentID, status: $0.online.map { $0 ? "ON" : "OFF" }, event: $0.event,
                        lon: $0.position?.lon, lat: $0.position?.lat)
            })
            try db.query("SELECT liandong.record_device_catalog($1::jsonb)", [try TaskStore.json(row)])
        }
    }
}
