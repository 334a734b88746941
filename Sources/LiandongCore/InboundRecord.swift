import Foundation

/// A kind of inbound message that is recorded rather than correlated: a device's status, a grid
/// worker's position; a GB/T 28181 catalog response next. A new kind takes three places:
/// a type conforming to this protocol (its decoder and its plan step, here in the core), its
/// line in `MessageDecoder.recordKinds` (which also subscribes the SUB socket to its topic), and
/// its rows (`RecordRows`, in LiandongStorage). The pipeline between - queue, spill, planner,
/// the batch's transaction, acknowledgements, the metrics - carries it without knowing it (the
/// planner reads one kind itself: a worker's position, for where the workers are).
package protocol InboundRecord: Sendable, Equatable {
    /// The topic it comes on (`topic` or `topic.<anything>`).
    static var topic: String { get }
    /// Reads its JSON body: frames, size, UTF-8 and JSON are checked already; `decoder` checks
    /// times against ingest.max_future_s and max_age_s (`MessageDecoder.checkTime`).
    static func decode(_ fields: inout Fields, by decoder: MessageDecoder, now: Double) throws -> Self
    /// What the acknowledgement names (a repeat has the same id).
    var id: String { get }
    /// Plan step: false when the reference data does not know what it names - the planner then
    /// asks for the reference data again (once a batch) before judging it: an import a moment ago.
    func isKnown(to reference: ReferenceData) -> Bool
    /// Plan step: why `sender` may not record it (nil: it may).
    func refusal(from sender: Sender?, reference: ReferenceData) -> Rejection?
    /// Plan step, once it may be recorded: what the reference data adds to its rows (the grid a
    /// position lies in, ...), so writing it asks the database nothing more.
    func placed(by reference: ReferenceData) -> Self
    /// The counter each recorded one adds to: its name, its label and the label's values.
    static var counter: (name: String, label: String, values: [String]) { get }
    /// This one's value of the counter's label.
    var counterValue: String { get }
    /// Whether recording it may change the reference data (`ReferenceData`): the batch after the
    /// one that committed it checks for a new version at once.
    static var changesReference: Bool { get }
    /// Plan step: what recording it changes in the reference data, for the events planned with
    /// it or after it before it is committed (and the reference data loaded again).
    func amend(_ reference: inout ReferenceData)
}

extension InboundRecord {
    package func isKnown(to reference: ReferenceData) -> Bool { true }

    package func placed(by reference: ReferenceData) -> Self { self }

    package static var changesReference: Bool { false }

    package func amend(_ reference: inout ReferenceData) {}

    /// Whether `other` is the same record (for `DecodedMessage`'s equality).
    package func isEqual(to other: any InboundRecord) -> Bool { (other as? Self) == self }
}
