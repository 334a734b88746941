import Foundation

/// Grids, cameras and grid workers in memory for the writer: where an event is and which grid covers it,
/// without a query per event. Reloaded when an import changes the tables.
package struct ReferenceData: Sendable {
    /// liandong.reference_version when loaded; a different value means reload.
    package let version: String
    package let grids: GridMap
    /// Grid code -> the grid and a point on its surface (where a report without position goes).
    package let gridByCode: [String: (shape: GridShape, surfacePoint: LonLat)]
    /// Registered camera positions (WGS-84) by device id.
    package let cameras: [String: LonLat]
    /// The grid worker responsible for each grid (the lowest worker id when several are registered).
    package let workers: [String: String]
    /// Each registered grid worker's grid.
    package var workerGrids: [String: String] = [:]
    /// Division names by code, camera names by device id: what task messages show besides codes.
    package var divisionNames: [String: String] = [:]
    package var cameraNames: [String: String] = [:]
    /// Each registered camera's grid ("" when it lies in none): whose scope its status is in.
    package var cameraGrids: [String: String] = [:]
    /// Silences that still matter: not ended, or ended within the oldest event age accepted.
    package var silences: [Silence] = []
    /// Noisy cameras whose alerts ask for no verify task of their own (liandong.camera_suppressions).
    package var suppressedCameras = Set<String>()
    /// GB/T 28181 catalog channels not gone (liandong.device_channels): the device that lists each
    /// (an NVR, a platform) and the position it gives, when it gives one.
    package var channels: [String: (device: String, position: LonLat?)] = [:]

    package init(version: String, grids: GridMap, gridByCode: [String: (shape: GridShape, surfacePoint: LonLat)],
                 cameras: [String: LonLat], workers: [String: String])
    {
        self.version = version
        self.grids = grids
        self.gridByCode = gridByCode
        self.cameras = cameras
        self.workers = workers
    }

    /// Where an event is, which grid covers it and - when its device is a catalog channel - the
    /// channel's device, or why it cannot be placed: the position as sent (already WGS-84), else
    /// the registered camera, else the channel's catalog position, else a point inside the
    /// sender's grid.
    package func place(_ event: IngestEvent) -> Result<(point: LonLat, crs: String, grid: GridShape, parent: String?), Rejection> {
        let point: LonLat
        var crs = event.crs.rawValue
        let channel = event.deviceID.flatMap { channels[$0] }
        if let p = event.position {
            point = p
        } else if event.source == .alert {
            if let camera = cameras[event.deviceID ?? ""] {
                point = camera
                crs = "camera"
            } else if let p = channel?.position {
                point = p
                crs = "channel"
            } else {
                return .failure(Rejection(.unknownDevice, channel != nil
                    ? "device_id \(event.deviceID ?? "") is a channel of device \(channel!.device) whose catalog gives no position, not a registered camera, and the alert carries no lon/lat"
                    : "device_id \(event.deviceID ?? "") is not a registered camera nor a catalog channel with a position, and the alert carries no lon/lat"))
            }
        } else {
            guard let grid = gridByCode[event.gridCode ?? ""] else {
                return .failure(Rejection(.unknownGrid,
                    "grid_code \(event.gridCode ?? "") is not a known grid and the report carries no lon/lat"))
            }
            point = grid.surfacePoint
            crs = "grid"
        }
        guard let grid = grids.locate(point, preferring: event.gridCode) else {
            return .failure(Rejection(.outsideArea, "position (\(point.lon), \(point.lat)) lies outside every grid"))
        }
        return .success((point, crs, grid, channel?.device ?? event.via))
    }
}

