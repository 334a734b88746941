/// Why a message was not accepted. The raw value is what lands in rejected_messages.reason and in
/// the `reason` label of the rejection metric.
public enum RejectReason: String, Sendable, CaseIterable {
    case wrongFrameCount = "wrong_frame_count"
    case oversized
    case invalidUTF8 = "invalid_utf8"
    case malformedJSON = "malformed_json"
    /// A GB/T 28181 MANSCDP body that is not well-formed (or hostile) XML, or not a Notify.
    case malformedXML = "malformed_xml"
    /// A body in an encoding that cannot be read (undeclared non-UTF-8 that is not GB18030 either,
    /// an encoding other than UTF-8 or the GB family, bytes invalid in the declared one).
    case invalidEncoding = "invalid_encoding"
    case unknownTopic = "unknown_topic"
    case unknownSchema = "unknown_schema"
    case topicMismatch = "topic_mismatch"
    case missingField = "missing_field"
    case invalidField = "invalid_field"
    case invalidDeviceID = "invalid_device_id"
    case invalidTime = "invalid_time"
    case timeOutOfRange = "time_out_of_range"
    case coordinatesOutOfRange = "coordinates_out_of_range"
    /// Decided by the store: the alert has no position and its camera is not registered.
    case unknownDevice = "unknown_device"
    /// Decided by the store: the report has no position and its grid_code is unknown.
    case unknownGrid = "unknown_grid"
    /// Decided by the store: the position lies outside every grid.
    case outsideArea = "outside_area"
    /// Decided by the store: a worker's position names no grid worker of liandong.grid_workers.
    case unknownWorker = "unknown_worker"
    /// The database refused the event even when written alone (a bug or a constraint): kept here, not lost.
    case storeError = "store_error"
    /// A task_update on the updates socket that could not be read.
    case invalidUpdate = "invalid_update"
    /// security.curve: the sender's role may not use this socket, or it is no longer a peer.
    case forbidden
    /// security.curve, decided by the store: the event lies outside its gateway's scope.
    case outOfScope = "out_of_scope"
}

/// A refused message: a reason code and a sentence a gateway operator can act on.
public struct Rejection: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: RejectReason
    public let detail: String

    public init(_ reason: RejectReason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    public var description: String { "\(reason.rawValue): \(detail)" }
}
