import Foundation

/// The frames of one message as they arrived, for dead letters and acknowledgements.
public struct RawMessage: Sendable {
    /// Which socket it came in on ("ingest.sub", ...).
    public var endpoint: String
    public var frames: [[UInt8]]
    public var receivedAt: Double
    /// For a message from the acknowledged ROUTER: the envelope to answer to after commit.
    public var replyEnvelope: [[UInt8]]?
    /// With security.curve: the authenticated sender, as known on arrival.
    public var sender: Sender?

    public init(endpoint: String, frames: [[UInt8]], receivedAt: Double, replyEnvelope: [[UInt8]]? = nil, sender: Sender? = nil) {
        self.endpoint = endpoint
        self.frames = frames
        self.receivedAt = receivedAt
        self.replyEnvelope = replyEnvelope
        self.sender = sender
    }
}

/// One unit of work for the writer: a validated event, or a message already refused by the decoder.
/// Indirect: a case's payload (an event is 470 bytes) lives in its own allocation, so the ingest
/// queue and the writer's batches hold a word per message, not 480 bytes of mostly unused slots.
package indirect enum Inbound: Sendable {
    case event(IngestEvent, RawMessage)
    /// Recorded, not correlated: a device's status (liandong.device_status.v1, or a MANSCDP
    /// Keepalive), ... (`InboundRecord`).
    case record(any InboundRecord, RawMessage)
    case rejected(Rejection, RawMessage)

    package var raw: RawMessage {
        switch self {
        case .event(_, let raw), .record(_, let raw), .rejected(_, let raw): raw
        }
    }

    /// What the acknowledged path's answer names: the alert_id or report_id, the status report's
    /// id, or for a message refused before it was read, its id when it can be read at all.
    package var id: String? {
        switch self {
        case .event(let event, _): event.sourceID
        case .record(let record, _): record.id
        case .rejected(_, let raw): MessageDecoder.peekID(raw.frames)
        }
    }

    /// A message as received, validated by the pure decoder (at its arrival time).
    /// A sender whose role may not send events is refused before its message is read.
    package init(_ raw: RawMessage, decodedBy decoder: MessageDecoder) {
        if let sender = raw.sender, case .forbidden(let why) = TrustPolicy.ingest(sender) {
            self = .rejected(Rejection(.forbidden, why), raw)
            return
        }
        switch decoder.decodeMessage(frames: raw.frames, now: raw.receivedAt) {
        case .success(.event(let event)): self = .event(event, raw)
        case .success(.record(let record)): self = .record(record, raw)
        case .failure(let rejection): self = .rejected(rejection, raw)
        }
    }
}

/// A committed feed message, ready to publish.
public struct FeedMessage: Sendable, Equatable {
    public var seq: Int64
    public var topic: String
    public var body: String
    /// verify, dispatch, joint_dispatch, escalation or update ("" when read back for republishing).
    public var kind: String

    public init(seq: Int64, topic: String, body: String, kind: String = "") {
        self.seq = seq
        self.topic = topic
        self.body = body
        self.kind = kind
    }
}

/// What happened to each item of a batch, in input order.
public enum ItemOutcome: Sendable, Equatable {
    case stored(incidentID: String)
    case duplicate
    case rejected(Rejection)
}

/// What a batch's events met besides being stored, for the metrics.
public struct BatchCounts: Sendable, Equatable {
    /// Events whose correlation window reached before the in-memory window (matched in PostgreSQL).
    public var late = 0
    /// Stored events a silence matched (they made no task message).
    public var silenced = 0
    /// Stored analytics alarms inhibited by their camera's video-lost or tamper alarm.
    public var inhibited = 0
    /// Stored alerts of a noisy camera (liandong.camera_suppressions): no task message for them.
    public var suppressed = 0
    /// Events kept out of their nearest incident by a bound (max_span_m, max_duration_s).
    public var cut = 0
    /// Evidence updates held back by coalescing (each covered later by one update with the counts).
    public var coalesced = 0

    public init() {}

    public static func += (a: inout BatchCounts, b: BatchCounts) {
        a.late += b.late
        a.silenced += b.silenced
        a.inhibited += b.inhibited
        a.suppressed += b.suppressed
        a.cut += b.cut
        a.coalesced += b.coalesced
    }
}

/// The result of writing one batch.
public struct BatchResult: Sendable {
    public var outcomes: [ItemOutcome]
    public var messages: [FeedMessage]
    public var counts: BatchCounts

    public init(outcomes: [ItemOutcome], messages: [FeedMessage], counts: BatchCounts = BatchCounts()) {
        self.outcomes = outcomes
        self.messages = messages
        self.counts = counts
    }

    public var stored: Int { outcomes.filter { if case .stored = $0 { true } else { false } }.count }
    public var duplicates: Int { outcomes.filter { $0 == .duplicate }.count }
    public var rejected: Int { outcomes.filter { if case .rejected = $0 { true } else { false } }.count }
}
