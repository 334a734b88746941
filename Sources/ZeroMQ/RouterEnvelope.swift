/// What a ROUTER socket receives, split into the envelope its answer must carry and the body:
/// a DEALER sends [identity][body...], a REQ [identity][empty delimiter][body...]. Every ROUTER
/// endpoint of the contract serves both.
public enum RouterEnvelope {
    public static func split(_ frames: [[UInt8]]) -> (envelope: [[UInt8]], body: [[UInt8]]) {
        guard let identity = frames.first else { return ([], []) }
        if frames.count >= 3 && frames[1].isEmpty { return ([identity, []], Array(frames.dropFirst(2))) }
        return ([identity], Array(frames.dropFirst()))
    }
}
